"""Dense output inside an accepted step [t_n, t_n + h], at θ = (t − t_n)/h ∈ [0, 1].

- Cubic Hermite (every method): the cubic with p(0) = y_n, p(1) = y_{n+1}, p'(0) = h f_n,
  p'(1) = h f_{n+1}; local error O(h⁴) (Hairer, Nørsett & Wanner I, II.6, eq. 6.7).
  ``f_{n+1} = f(t_{n+1}, y_{n+1})`` is the next step's first stage, so it costs nothing extra.
- Quartic for dopri5 (Shampine 1986): the Hermite cubic plus ``16 θ²(1−θ)² (y_mid − H(½))``,
  i.e. the quartic that also passes through ``y_mid = y_n + h Σ c_mid,i k_i``, the method's own
  4th-order approximation of y(t_n + h/2) (the weights torchdiffeq, torchode and diffrax use;
  they belong to the tableau: ``ButcherTableau.b_mid``).
  Local error O(h⁵), matching dopri5's 4th-order error estimate.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["hermite", "mid_state", "quartic"]


def hermite(theta: Tensor, y0: Tensor, y1: Tensor, hf0: Tensor, hf1: Tensor) -> Tensor:
    """Cubic Hermite interpolant at θ (a 0-d tensor or float); ``hf = h·f``."""
    t2 = theta * theta
    t3 = t2 * theta
    h00 = 2 * t3 - 3 * t2 + 1
    h10 = t3 - 2 * t2 + theta
    h01 = -2 * t3 + 3 * t2
    h11 = t3 - t2
    return h00 * y0 + h10 * hf0 + h01 * y1 + h11 * hf1


def mid_state(y0: Tensor, h: Tensor, ks: list[Tensor], weights: tuple[float, ...]) -> Tensor:
    """``y0 + h Σ w_i k_i`` over the nonzero weights."""
    acc = None
    for w, k in zip(weights, ks):
        if w != 0.0:
            acc = k * w if acc is None else acc.add(k, alpha=w)
    return y0 + h * acc


def quartic(
    theta: Tensor, y0: Tensor, y1: Tensor, hf0: Tensor, hf1: Tensor, y_mid: Tensor
) -> Tensor:
    """The quartic through y0, y1, y_mid (θ = ½) with end slopes hf0, hf1."""
    h_half = 0.5 * (y0 + y1) + 0.125 * (hf0 - hf1)
    bump = 16 * (theta * (1 - theta)) ** 2
    return hermite(theta, y0, y1, hf0, hf1) + bump * (y_mid - h_half)
