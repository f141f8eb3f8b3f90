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
from odeattn.tableau._data_extra import extra_tableaus
from odeattn.tableau._data_implicit import implicit_tableaus
from odeattn.tableau._rows import diff, lower
from odeattn.tableau._tsit5 import tsit5

__all__ = ["build_tableaus"]


def _explicit_low() -> list[ButcherTableau]:
    """Explicit methods of order 1–2 (Euler, midpoint, Heun, Ralston, …)."""
    T = ButcherTableau
    return [
        T("euler", [0], [[0]], [1], order=1, source="forward Euler"),
        T(
            "midpoint",
            [0, "1/2"],
            lower([[], ["1/2"]]),
            [0, 1],
            order=2,
            source="explicit midpoint (Runge 1895)",
        ),
        T(
            "heun",
            [0, 1],
            lower([[], [1]]),
            ["1/2", "1/2"],
            order=2,
            source="Heun / explicit trapezoid / SSPRK22",
        ),
        T(
            "ralston",
            [0, "2/3"],
            lower([[], ["2/3"]]),
            ["1/4", "3/4"],
            order=2,
            source="Ralston 1962, minimal truncation error",
        ),
        T(
            "rk3",
            [0, "1/2", 1],
            lower([[], ["1/2"], [-1, 2]]),
            ["1/6", "2/3", "1/6"],
            order=3,
            source="Kutta's third-order method (1901)",
        ),
    ]


def _explicit_high() -> list[ButcherTableau]:
    """Explicit methods of order 3–4 (Kutta, SSPRK3, classic RK4, 3/8 rule, …)."""
    T = ButcherTableau
    return [
        T(
            "heun3",
            [0, "1/3", "2/3"],
            lower([[], ["1/3"], [0, "2/3"]]),
            ["1/4", 0, "3/4"],
            order=3,
            source="Heun's third-order method (torchdiffeq heun3)",
        ),
        T(
            "ralston3",
            [0, "1/2", "3/4"],
            lower([[], ["1/2"], [0, "3/4"]]),
            ["2/9", "1/3", "4/9"],
            order=3,
            source="Ralston's third-order method",
        ),
        T(
            "ssprk3",
            [0, 1, "1/2"],
            lower([[], [1], ["1/4", "1/4"]]),
            ["1/6", "1/6", "2/3"],
            order=3,
            source="Shu–Osher SSPRK(3,3)",
        ),
        T(
            "rk4",
            [0, "1/2", "1/2", 1],
            lower([[], ["1/2"], [0, "1/2"], [0, 0, 1]]),
            ["1/6", "1/3", "1/3", "1/6"],
            order=4,
            source="classic Runge–Kutta (Kutta 1901)",
        ),
        T(
            "rk38",
            [0, "1/3", "2/3", 1],
            lower([[], ["1/3"], ["-1/3", 1], [1, -1, 1]]),
            ["1/8", "3/8", "3/8", "1/8"],
            order=4,
            source="Kutta's 3/8 rule (torchdiffeq method='rk4')",
        ),
    ]


# Propagated (higher-order) weights of the embedded pairs, shared by b, the last row of A (FSAL)
# and b_err = b − b̂.
_BS3_B = ["2/9", "1/3", "4/9", 0]
_RKF_B = ["16/135", 0, "6656/12825", "28561/56430", "-9/50", "2/55"]
_CK_B = ["37/378", 0, "250/621", "125/594", 0, "512/1771"]
_DP_B = ["35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84", 0]


def _embedded_low() -> list[ButcherTableau]:
    """Embedded pairs, first half (b_err = b − b̂ computed exactly)."""
    T = ButcherTableau
    return [
        T(
            "bosh3",
            [0, "1/2", "3/4", 1],
            lower([[], ["1/2"], [0, "3/4"], _BS3_B[:3]]),
            _BS3_B,
            diff(_BS3_B, ["7/24", "1/4", "1/3", "1/8"]),
            order=3,
            err_order=2,
            source="Bogacki–Shampine 3(2), FSAL",
        ),
        T(
            "fehlberg45",
            [0, "1/4", "3/8", "12/13", 1, "1/2"],
            lower(
                [
                    [],
                    ["1/4"],
                    ["3/32", "9/32"],
                    ["1932/2197", "-7200/2197", "7296/2197"],
                    ["439/216", -8, "3680/513", "-845/4104"],
                    ["-8/27", 2, "-3544/2565", "1859/4104", "-11/40"],
                ]
            ),
            _RKF_B,
            diff(_RKF_B, ["25/216", 0, "1408/2565", "2197/4104", "-1/5", 0]),
            order=5,
            err_order=4,
            source="Runge–Kutta–Fehlberg 4(5), 5th-order solution propagated",
        ),
    ]


def _cashkarp() -> ButcherTableau:
    T = ButcherTableau
    return T(
        "cashkarp",
        [0, "1/5", "3/10", "3/5", 1, "7/8"],
        lower(
            [
                [],
                ["1/5"],
                ["3/40", "9/40"],
                ["3/10", "-9/10", "6/5"],
                ["-11/54", "5/2", "-70/27", "35/27"],
                ["1631/55296", "175/512", "575/13824", "44275/110592", "253/4096"],
            ]
        ),
        _CK_B,
        diff(_CK_B, ["2825/27648", 0, "18575/48384", "13525/55296", "277/14336", "1/4"]),
        order=5,
        err_order=4,
        source="Cash–Karp 5(4) (1990)",
    )


def _dopri5() -> ButcherTableau:
    T = ButcherTableau
    return T(
        "dopri5",
        [0, "1/5", "3/10", "4/5", "8/9", 1, 1],
        lower(
            [
                [],
                ["1/5"],
                ["3/40", "9/40"],
                ["44/45", "-56/15", "32/9"],
                ["19372/6561", "-25360/2187", "64448/6561", "-212/729"],
                ["9017/3168", "-355/33", "46732/5247", "49/176", "-5103/18656"],
                _DP_B[:6],
            ]
        ),
        _DP_B,
        diff(
            _DP_B,
            ["1951/21600", 0, "22642/50085", "451/720", "-12231/42400", "649/6300", "1/60"],
        ),
        order=5,
        err_order=4,
        source="Dormand–Prince 5(4), FSAL; b̂ of Shampine (1986) as in torchdiffeq/diffrax",
        b_mid=[
            "6025192743/60171106304",
            "0",
            "51252292925/130801643196",
            "-2691868925/90256659456",
            "187940372067/3189068634112",
            "-1776094331/39487288512",
            "11237099/470086768",
        ],  # Shampine's dense output at h/2
    )


def _embedded_high() -> list[ButcherTableau]:
    """Embedded pairs, second half."""
    return [_cashkarp(), _dopri5(), tsit5()]


def build_tableaus() -> dict[str, ButcherTableau]:
    """All built-in tableaux by name (each checked at construction)."""
    groups = (_explicit_low(), _explicit_high(), _embedded_low(), _embedded_high())
    return {
        t.name: t
        for t in (*(t for g in groups for t in g), *implicit_tableaus(), *extra_tableaus())
    }
