"""The built-in tableaux, with exact coefficients (see ../shared/reference/ode_solvers.md §6).

Every entry is checked at import by :class:`ButcherTableau` (row sums, Σb = 1, Σb_err = 0,
order conditions holding at the declared order and failing at the next). Embedded pairs are
written with b̂ and ``b_err = b − b̂`` is computed exactly here, so no difference is transcribed.

Conventions: the propagated solution is always the higher-order one (local extrapolation);
``dopri5`` uses Shampine's b̂ (as torchdiffeq, diffrax and torchode); ``fehlberg45`` propagates
the 5th-order solution (as GSL; Fehlberg's original propagates the 4th); ``tsit5`` is
Tsitouras (2011) with 85-digit decimals and propagates b (not b̂ — torchdiffeq's bug);
``gauss_legendre4`` has c = 1/2 ± √3/6 (torchdiffeq's second node is wrong).
"""

from __future__ import annotations

from odeattn.tableau._butcher import ButcherTableau
from odeattn.tableau._exact import parse_entry

__all__ = ["build_tableaus"]


def _diff(b: list, b_hat: list) -> list:
    return [parse_entry(x)[0] - parse_entry(y)[0] for x, y in zip(b, b_hat)]


def _lower(rows: list[list]) -> list[list]:
    """Pad the strictly lower rows of an explicit method to a full s×s matrix."""
    s = len(rows)
    return [[*r, *([0] * (s - len(r)))] for r in rows]


def _explicit() -> list[ButcherTableau]:
    T = ButcherTableau
    return [
        T("euler", [0], [[0]], [1], order=1, source="forward Euler"),
        T(
            "midpoint",
            [0, "1/2"],
            _lower([[], ["1/2"]]),
            [0, 1],
            order=2,
            source="explicit midpoint (Runge 1895)",
        ),
        T(
            "heun",
            [0, 1],
            _lower([[], [1]]),
            ["1/2", "1/2"],
            order=2,
            source="Heun / explicit trapezoid / SSPRK22",
        ),
        T(
            "ralston",
            [0, "2/3"],
            _lower([[], ["2/3"]]),
            ["1/4", "3/4"],
            order=2,
            source="Ralston 1962, minimal truncation error",
        ),
        T(
            "rk3",
            [0, "1/2", 1],
            _lower([[], ["1/2"], [-1, 2]]),
            ["1/6", "2/3", "1/6"],
            order=3,
            source="Kutta's third-order method (1901)",
        ),
        T(
            "heun3",
            [0, "1/3", "2/3"],
            _lower([[], ["1/3"], [0, "2/3"]]),
            ["1/4", 0, "3/4"],
            order=3,
            source="Heun's third-order method (torchdiffeq heun3)",
        ),
        T(
            "ralston3",
            [0, "1/2", "3/4"],
            _lower([[], ["1/2"], [0, "3/4"]]),
            ["2/9", "1/3", "4/9"],
            order=3,
            source="Ralston's third-order method",
        ),
        T(
            "ssprk3",
            [0, 1, "1/2"],
            _lower([[], [1], ["1/4", "1/4"]]),
            ["1/6", "1/6", "2/3"],
            order=3,
            source="Shu–Osher SSPRK(3,3)",
        ),
        T(
            "rk4",
            [0, "1/2", "1/2", 1],
            _lower([[], ["1/2"], [0, "1/2"], [0, 0, 1]]),
            ["1/6", "1/3", "1/3", "1/6"],
            order=4,
            source="classic Runge–Kutta (Kutta 1901)",
        ),
        T(
            "rk38",
            [0, "1/3", "2/3", 1],
            _lower([[], ["1/3"], ["-1/3", 1], [1, -1, 1]]),
            ["1/8", "3/8", "3/8", "1/8"],
            order=4,
            source="Kutta's 3/8 rule (torchdiffeq method='rk4')",
        ),
    ]


def _embedded() -> list[ButcherTableau]:
    T = ButcherTableau
    bs3_b = ["2/9", "1/3", "4/9", 0]
    rkf_b = ["16/135", 0, "6656/12825", "28561/56430", "-9/50", "2/55"]
    ck_b = ["37/378", 0, "250/621", "125/594", 0, "512/1771"]
    dp_b = ["35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84", 0]
    return [
        T(
            "bosh3",
            [0, "1/2", "3/4", 1],
            _lower([[], ["1/2"], [0, "3/4"], bs3_b[:3]]),
            bs3_b,
            _diff(bs3_b, ["7/24", "1/4", "1/3", "1/8"]),
            order=3,
            err_order=2,
            source="Bogacki–Shampine 3(2), FSAL",
        ),
        T(
            "fehlberg45",
            [0, "1/4", "3/8", "12/13", 1, "1/2"],
            _lower(
                [
                    [],
                    ["1/4"],
                    ["3/32", "9/32"],
                    ["1932/2197", "-7200/2197", "7296/2197"],
                    ["439/216", -8, "3680/513", "-845/4104"],
                    ["-8/27", 2, "-3544/2565", "1859/4104", "-11/40"],
                ]
            ),
            rkf_b,
            _diff(rkf_b, ["25/216", 0, "1408/2565", "2197/4104", "-1/5", 0]),
            order=5,
            err_order=4,
            source="Runge–Kutta–Fehlberg 4(5), 5th-order solution propagated",
        ),
        T(
            "cashkarp",
            [0, "1/5", "3/10", "3/5", 1, "7/8"],
            _lower(
                [
                    [],
                    ["1/5"],
                    ["3/40", "9/40"],
                    ["3/10", "-9/10", "6/5"],
                    ["-11/54", "5/2", "-70/27", "35/27"],
                    ["1631/55296", "175/512", "575/13824", "44275/110592", "253/4096"],
                ]
            ),
            ck_b,
            _diff(ck_b, ["2825/27648", 0, "18575/48384", "13525/55296", "277/14336", "1/4"]),
            order=5,
            err_order=4,
            source="Cash–Karp 5(4) (1990)",
        ),
        T(
            "dopri5",
            [0, "1/5", "3/10", "4/5", "8/9", 1, 1],
            _lower(
                [
                    [],
                    ["1/5"],
                    ["3/40", "9/40"],
                    ["44/45", "-56/15", "32/9"],
                    ["19372/6561", "-25360/2187", "64448/6561", "-212/729"],
                    ["9017/3168", "-355/33", "46732/5247", "49/176", "-5103/18656"],
                    dp_b[:6],
                ]
            ),
            dp_b,
            _diff(
                dp_b,
                ["1951/21600", 0, "22642/50085", "451/720", "-12231/42400", "649/6300", "1/60"],
            ),
            order=5,
            err_order=4,
            source="Dormand–Prince 5(4), FSAL; b̂ of Shampine (1986) as in torchdiffeq/diffrax",
        ),
        _tsit5(),
    ]


_TS_B = [
    "0.9646076681806522951816731316512876333711995238157997181903319145764851595234062815396e-1",
    "0.01",
    "0.4798896504144995747752495322905965199130404621990332488332634944254542060153074523509",
    "1.379008574103741893192274821856872770756462643091360525934940067397245698027561293331",
    "-3.290069515436080679901047585711363850115683290894936158531296799594813811049925401677",
    "2.324710524099773982415355918398765796109060233222962411944060046314465391054716027841",
    "0",
]
_TS_BHAT = [
    "0.9468075576583945807478876255758922856117527357724631226139574065785592789071067303271e-1",
    "0.9183565540343253096776363936645313759813746240984095238905939532922955247253608687270e-2",
    "0.4877705284247615707855642599631228241516691959761363774365216240304071651579571959813",
    "1.234297566930478985655109673884237654035539930748192848315425833500484878378061439761",
    "-2.707712349983525454881109975059321670689605166938197378763992255714444407154902012702",
    "1.866628418170587035753719399566211498666255505244122593996591602841258328965767580089",
    "1/66",
]
_TS_A = [
    [],
    ["0.161"],
    [
        "-0.8480655492356988544426874250230774675121177393430391537369234245294192976164141156943e-2",
        "0.3354806554923569885444268742502307746751211773934303915373692342452941929761641411569",
    ],
    [
        "2.897153057105493432130432594192938764924887287701866490314866693455023795137503079289",
        "-6.359448489975074843148159912383825625952700647415626703305928850207288721235210244366",
        "4.362295432869581411017727318190886861027813359713760212991062156752264926097707165077",
    ],
    [
        "5.325864828439256604428877920840511317836476253097040101202360397727981648835607691791",
        "-11.74888356406282787774717033978577296188744178259862899288666928009020615663593781589",
        "7.495539342889836208304604784564358155658679161518186721010132816213648793440552049753",
        "-0.9249506636175524925650207933207191611349983406029535244034750452930469056411389539635e-1",
    ],
    [
        "5.861455442946420028659251486982647890394337666164814434818157239052507339770711679748",
        "-12.92096931784710929170611868178335939541780751955743459166312250439928519268343184452",
        "8.159367898576158643180400794539253485181918321135053305748355423955009222648673734986",
        "-0.7158497328140099722453054252582973869127213147363544882721139659546372402303777878835e-1",
        "-0.2826905039406838290900305721271224146717633626879770007617876201276764571291579142206e-1",
    ],
    _TS_B[:6],
]
_TS_C = [
    "0",
    "0.161",
    "0.327",
    "0.9",
    "0.9800255409045096857298102862870245954942137979563024768854764293221195950761080302604",
    "1",
    "1",
]


def _tsit5() -> ButcherTableau:
    return ButcherTableau(
        "tsit5",
        _TS_C,
        _lower(_TS_A),
        _TS_B,
        _diff(_TS_B, _TS_BHAT),
        order=5,
        err_order=4,
        tol=1e-60,
        source="Tsitouras 5(4) (2011), FSAL; 85-digit coefficients (diffrax)",
    )


_S3, _S15, _S6 = "sqrt(3)", "sqrt(15)", "sqrt(6)"
_GAMMA = "(1 - sqrt(2)/2)"


def _implicit() -> list[ButcherTableau]:
    T = ButcherTableau
    return [
        T("backward_euler", [1], [[1]], [1], order=1, source="implicit Euler; L-stable"),
        T(
            "implicit_midpoint",
            ["1/2"],
            [["1/2"]],
            [1],
            order=2,
            source="implicit midpoint = Gauss–Legendre 1 stage; symplectic",
        ),
        T(
            "trapezoid",
            [0, 1],
            [[0, 0], ["1/2", "1/2"]],
            ["1/2", "1/2"],
            order=2,
            source="implicit trapezoid = Lobatto IIIA 2 stages; FSAL",
        ),
        T(
            "gauss_legendre4",
            [f"1/2 - {_S3}/6", f"1/2 + {_S3}/6"],
            [["1/4", f"1/4 - {_S3}/6"], [f"1/4 + {_S3}/6", "1/4"]],
            ["1/2", "1/2"],
            order=4,
            source="Gauss–Legendre 2 stages; A-stable, symplectic",
        ),
        T(
            "gauss_legendre6",
            [f"1/2 - {_S15}/10", "1/2", f"1/2 + {_S15}/10"],
            [
                ["5/36", f"2/9 - {_S15}/15", f"5/36 - {_S15}/30"],
                [f"5/36 + {_S15}/24", "2/9", f"5/36 - {_S15}/24"],
                [f"5/36 + {_S15}/30", f"2/9 + {_S15}/15", "5/36"],
            ],
            ["5/18", "4/9", "5/18"],
            order=6,
            source="Gauss–Legendre 3 stages",
        ),
        T(
            "radau_iia3",
            ["1/3", 1],
            [["5/12", "-1/12"], ["3/4", "1/4"]],
            ["3/4", "1/4"],
            order=3,
            source="Radau IIA 2 stages; L-stable, stiffly accurate",
        ),
        T(
            "radau_iia5",
            [f"(4 - {_S6})/10", f"(4 + {_S6})/10", 1],
            [
                [f"(88 - 7*{_S6})/360", f"(296 - 169*{_S6})/1800", f"(-2 + 3*{_S6})/225"],
                [f"(296 + 169*{_S6})/1800", f"(88 + 7*{_S6})/360", f"(-2 - 3*{_S6})/225"],
                [f"(16 - {_S6})/36", f"(16 + {_S6})/36", "1/9"],
            ],
            [f"(16 - {_S6})/36", f"(16 + {_S6})/36", "1/9"],
            order=5,
            source="Radau IIA 3 stages; L-stable, stiffly accurate",
        ),
        T(
            "sdirk2",
            [_GAMMA, 1],
            [[_GAMMA, 0], [f"1 - {_GAMMA}", _GAMMA]],
            [f"1 - {_GAMMA}", _GAMMA],
            order=2,
            source="Alexander's SDIRK, γ = 1 − √2/2; L-stable, stiffly accurate",
        ),
    ]


def build_tableaus() -> dict[str, ButcherTableau]:
    """All built-in tableaux by name (each checked at construction)."""
    from odeattn.tableau._data_extra import extra_tableaus  # torchdiffeq's further methods

    return {t.name: t for t in (*_explicit(), *_embedded(), *_implicit(), *extra_tableaus())}
