"""The implicit built-in tableaux: backward Euler, implicit midpoint, trapezoid, Gauss–Legendre 4/6,
Radau IIA 3/5 and Alexander's SDIRK2, stored exactly in Q(√d) so their order conditions hold with
zero residual (Hairer & Wanner II, §IV.5; ../shared/reference/ode_solvers.md §6).
"""

from __future__ import annotations

from odeattn.tableau._butcher import ButcherTableau

__all__ = ["implicit_tableaus"]

_S3, _S15, _S6 = "sqrt(3)", "sqrt(15)", "sqrt(6)"
_GAMMA = "(1 - sqrt(2)/2)"


def _collocation() -> list[ButcherTableau]:
    """One-stage implicit methods and the trapezoid."""
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
    ]


def _gauss_radau_sdirk() -> list[ButcherTableau]:
    """Gauss–Legendre, Radau IIA and SDIRK, exact in Q(√d)."""
    T = ButcherTableau
    return [
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


def implicit_tableaus() -> list[ButcherTableau]:
    """Every implicit built-in tableau."""
    return [*_collocation(), *_gauss_radau_sdirk()]
