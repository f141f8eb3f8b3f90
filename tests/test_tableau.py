"""Butcher tableaux: order conditions, row sums, stability functions, validation, CLI."""

from __future__ import annotations

import math
import subprocess
import sys
from fractions import Fraction

import pytest

from odeattn.tableau import TABLEAUS, ButcherTableau, get_tableau
from odeattn.tableau._trees import order_residuals, trees_of_order

REQUIRED = [
    "euler",
    "midpoint",
    "heun",
    "ralston",
    "rk3",
    "ssprk3",
    "rk4",
    "rk38",
    "bosh3",
    "fehlberg45",
    "cashkarp",
    "dopri5",
    "tsit5",
    "backward_euler",
    "implicit_midpoint",
    "trapezoid",
    "gauss_legendre4",
    "gauss_legendre6",
    "radau_iia3",
    "radau_iia5",
    "sdirk2",
]
NAMES = sorted(TABLEAUS)


def _zero(x, tol):
    return x == 0 if tol == 0 else abs(x) <= tol


def test_required_names_present():
    assert set(REQUIRED) <= set(TABLEAUS)


def test_tree_counts_and_densities():
    assert [len(trees_of_order(n)) for n in range(1, 8)] == [1, 1, 2, 4, 9, 20, 48]
    # densities of the order-4 trees: [•••] 4, [[•]•] 8, [[••]] 12, [[[•]]] 24
    assert sorted(t.gamma for t in trees_of_order(4)) == [4, 8, 12, 24]
    assert len({t.bracket() for n in range(1, 8) for t in trees_of_order(n)}) == 85


@pytest.mark.parametrize("name", NAMES)
def test_order_conditions_hold_at_order_and_fail_above(name):
    t = TABLEAUS[name]
    res = list(order_residuals(t.a, t.b, t.order + 1))
    assert all(_zero(r, t.tol) for tr, r in res if tr.order <= t.order)
    assert any(not _zero(r, t.tol) for tr, r in res if tr.order == t.order + 1)
    if t.b_err is not None:
        b_hat = [x - e for x, e in zip(t.b, t.b_err)]
        res = list(order_residuals(t.a, b_hat, t.err_order + 1))
        assert all(_zero(r, t.tol) for tr, r in res if tr.order <= t.err_order)
        assert any(not _zero(r, t.tol) for tr, r in res if tr.order == t.err_order + 1)
        assert _zero(sum(t.b_err, Fraction(0)), t.tol)


@pytest.mark.parametrize("name", NAMES)
def test_row_sums_and_float_views(name):
    t = TABLEAUS[name]
    for i in range(t.stages):
        assert math.isclose(sum(t.a_f[i]), t.c_f[i], abs_tol=1e-15)
        assert _zero(sum(t.a[i], Fraction(0)) - t.c[i], t.tol)
    assert math.isclose(sum(t.b_f), 1.0, abs_tol=1e-15)
    assert len(t.a_f) == t.stages and all(len(r) == t.stages for r in t.a_f)


def test_known_flags_and_counts():
    assert [n for n in NAMES if TABLEAUS[n].fsal] == [
        "bosh3",
        "dopri5",
        "trapezoid",
        "trbdf2",
        "tsit5",
    ]
    assert all(TABLEAUS[n].is_explicit for n in REQUIRED[:13])
    assert not any(TABLEAUS[n].is_explicit for n in REQUIRED[13:])
    assert TABLEAUS["sdirk2"].is_diagonally_implicit
    assert not TABLEAUS["gauss_legendre4"].is_diagonally_implicit
    stage = {
        n: TABLEAUS[n].stage_order
        for n in ("gauss_legendre4", "gauss_legendre6", "radau_iia5", "rk4", "trapezoid")
    }
    assert stage == {
        "gauss_legendre4": 2,
        "gauss_legendre6": 3,
        "radau_iia5": 3,
        "rk4": 1,
        "trapezoid": 2,
    }
    # reference counts (ode_solvers.md §6): dopri5 fails 11/20 order-6 conditions, tsit5 20/20
    rep = TABLEAUS["dopri5"].order_report()
    assert rep["b"]["fail_at_next_order"] == "11/20"
    assert TABLEAUS["tsit5"].order_report()["b"]["fail_at_next_order"] == "20/20"


def test_regressions_against_known_library_bugs():
    gl4 = TABLEAUS["gauss_legendre4"]
    s3 = math.sqrt(3)
    assert gl4.c_f == pytest.approx((0.5 - s3 / 6, 0.5 + s3 / 6), abs=1e-16)
    # tsit5 propagates b (order 5), not b̂ (torchdiffeq's tsit5 propagates b̂, 4th order)
    ts = TABLEAUS["tsit5"]
    assert ts.b_f[6] == 0.0 and ts.b_f[1] == 0.01
    assert ts.b_err_f[6] == pytest.approx(-1 / 66, rel=1e-15)
    # rk38 is torchdiffeq's "rk4"; rk4 is the classic one
    assert TABLEAUS["rk4"].b == tuple(Fraction(x) for x in ("1/6", "1/3", "1/3", "1/6"))
    # dopri5 uses Shampine's b̂: b_err[6] = -1/60
    assert TABLEAUS["dopri5"].b_err[6] == Fraction(-1, 60)


def _poly(cs, z):
    return sum(c * z**k for k, c in enumerate(cs))


ZS = [complex(-0.7, 0.3), complex(-2.5, 1.0), complex(0.4, -0.2), complex(-6.0, 0.0)]
CLOSED = {
    "euler": lambda z: 1 + z,
    "rk4": lambda z: sum(z**k / math.factorial(k) for k in range(5)),
    "rk38": lambda z: sum(z**k / math.factorial(k) for k in range(5)),
    "rk3": lambda z: sum(z**k / math.factorial(k) for k in range(4)),
    "heun": lambda z: 1 + z + z**2 / 2,
    "backward_euler": lambda z: 1 / (1 - z),
    "implicit_midpoint": lambda z: (1 + z / 2) / (1 - z / 2),
    "trapezoid": lambda z: (1 + z / 2) / (1 - z / 2),
    "gauss_legendre4": lambda z: (z**2 + 6 * z + 12) / (z**2 - 6 * z + 12),
    "gauss_legendre6": lambda z: (
        (z**3 + 12 * z**2 + 60 * z + 120) / (-(z**3) + 12 * z**2 - 60 * z + 120)
    ),
    "radau_iia3": lambda z: (1 + z / 3) / (1 - 2 * z / 3 + z**2 / 6),
    "radau_iia5": lambda z: (
        (1 + 2 * z / 5 + z**2 / 20) / (1 - 3 * z / 5 + 3 * z**2 / 20 - z**3 / 60)
    ),
    "dopri5": lambda z: sum(z**k / math.factorial(k) for k in range(6)) + z**6 / 600,
}


@pytest.mark.parametrize("name", sorted(CLOSED))
def test_stability_function_closed_forms(name):
    t = TABLEAUS[name]
    for z in ZS:
        assert t.R(z) == pytest.approx(CLOSED[name](z), rel=1e-13, abs=1e-14)


def test_stability_function_exact_coefficients():
    assert TABLEAUS["gauss_legendre4"].stability_function.num == (
        1,
        Fraction(1, 2),
        Fraction(1, 12),
    )
    assert TABLEAUS["rk4"].stability_function.den == (1,)
    # SDIRK2 (γ = 1 − √2/2) is L-stable: degree(num) < degree(den)
    sf = TABLEAUS["sdirk2"].stability_function
    assert len(sf.num) < len(sf.den)
    assert abs(TABLEAUS["sdirk2"].R(-1e8)) < 1e-7


@pytest.mark.parametrize("name", NAMES)
def test_stability_function_matches_matrix_formula(name):
    """R(z) = 1 + z bᵀ (I − zA)⁻¹ 1, evaluated independently with numpy."""
    np = pytest.importorskip("numpy")
    t = TABLEAUS[name]
    a, b = np.array(t.a_f), np.array(t.b_f)
    for z in ZS:
        direct = 1 + z * b @ np.linalg.solve(np.eye(t.stages) - z * a, np.ones(t.stages))
        assert t.R(z) == pytest.approx(direct, rel=1e-12)


def _tab(**kw):
    base = dict(name="x", c=[0, "1/2"], a=[[0, 0], ["1/2", 0]], b=[0, 1], order=2)
    base.update(kw)
    return ButcherTableau(**base)


@pytest.mark.parametrize(
    "kw, needle",
    [
        (dict(a=[[0, 0], ["1/2"]]), "row 1 has 1 entries"),
        (dict(c=[0, "1/3"]), "row sums must equal the nodes"),
        (dict(b=["1/2", "1/4"]), "Σ b = 3/4"),
        (dict(order=3), "declared order=3"),
        (dict(order=1), "every order-2 condition also holds"),
        (dict(b=[float("nan"), 1]), "finite"),
        (dict(b=[0, 1, 0]), "`b` must have 2 entries"),
        (dict(b_err=[1, 0]), "Σ b_err = 0"),
        (dict(a=[[0, 0], ["one half", 0]]), "cannot parse"),
        (dict(order=0), "positive int"),
    ],
)
def test_malformed_tableaux_raise_value_error(kw, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace("Σ", "Σ")):
        _tab(**kw)


def test_valid_custom_tableau_and_embedded_inference():
    t = _tab(b_err=[-1, 1])  # midpoint with embedded Euler
    assert t.err_order == 1 and t.order == 2 and t.c == (0, Fraction(1, 2))
    f = _tab(c=None, a=[[0.0, 0.0], [0.5, 0.0]], b=[0.0, 1.0])
    assert f.tol == 1e-12 and f.c_f == (0.0, 0.5)


def test_get_tableau_unknown_name_lists_valid_and_closest():
    assert get_tableau("RK4") is TABLEAUS["rk4"]
    with pytest.raises(ValueError) as err:
        get_tableau("dopri_5")  # "dopri" alone is as close to dopri8
    msg = str(err.value)
    assert "did you mean 'dopri5'" in msg and "gauss_legendre6" in msg and "euler" in msg


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "odeattn.tableau", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_commands_and_errors():
    ok = _cli("verify", "--all")
    assert ok.returncode == 0 and len(ok.stdout.strip().splitlines()) == len(TABLEAUS)
    assert '"fail_at_next_order": "9/9"' in _cli("verify", "rk4").stdout
    assert "1/2 + 1/6·√3" in _cli("show", "gauss_legendre4").stdout
    for args in (("show", "rk5"), ("bogus",), ("verify",), ("verify", "rk4", "--all")):
        bad = _cli(*args)
        assert bad.returncode == 2, args
        assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    assert "did you mean 'rk4'" in _cli("show", "rk5").stderr
    dot = _cli("graph", "trapezoid", "--dot")
    assert dot.returncode == 0 and '"k2" -> "k2" [label="1/2"];' in dot.stdout
    assert "[implicit]" in _cli("graph", "gauss_legendre4").stdout


def test_import_without_torch():
    code = "import sys, odeattn.tableau; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_order_is_required():
    with pytest.raises(TypeError, match="order"):
        ButcherTableau("x", None, [[0]], [1])


def test_float_views_and_plan_live_with_their_owners():
    from odeattn.compile._plan import Plan

    tab = ButcherTableau("mine", None, [[0, 0], ["2/3", 0]], ["1/4", "3/4"], order=2)
    assert tab.a_f == ((0.0, 0.0), (2 / 3, 0.0)) and tab.a_f is tab.a_f  # computed once
    assert tab.c_f == (0.0, 2 / 3) and tab.b_f == (0.25, 0.75) and tab.b_err_f is None
    plan = Plan.of(tab)
    assert Plan.of(tab) is plan and plan.rows[1] == ((0, 2 / 3),)
    assert not hasattr(tab, "_plan")  # nothing attached to the frozen tableau from outside


def test_library_builds_once_on_first_use():
    from odeattn.tableau._library import Library

    calls = []

    def build():
        calls.append(1)
        return {"euler": TABLEAUS["euler"]}

    lib = Library(build)
    assert calls == []
    assert "euler" in lib and list(lib) == ["euler"] and len(lib) == 1
    assert lib["euler"] is TABLEAUS["euler"] and calls == [1]
    with pytest.raises(TypeError):
        lib["x"] = TABLEAUS["euler"]  # read-only
