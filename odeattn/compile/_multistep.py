"""Compiled linear multistep steps: the history nodes of a multistep :class:`MethodGraph`.

``x_{n+1} = Σ_j α_j x_{n−j} + h Σ_j β_j f_{n−j}`` (Hairer, Nørsett & Wanner I, III.1). The
compiler reads the graph's structure — which lags feed ``pred`` and ``phi``, the state weights α
— and computes the weights per step: variable-step Adams weights β_j = ∫_{t_n}^{t_{n+1}} ℓ_j
(Lagrange basis on the times of the lags used; III.5), the uniform-step values when the times
are unit steps (a network). With fewer past values than the order needs (the first steps, or a
block after a width change) the step uses the highest order the history allows (Adams start-up:
AB starts as Euler, PECE as Euler predictor + trapezoidal corrector, i.e. Heun). LM-ResNet
(Lu et al. 2018, Eq. 5): α = (1 − k_n, k_n), β = (1), one learnable scalar k_n per block; a
missing x_{n−1} is taken as x_n, so the first step is the plain residual step x + f(x).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import torch
from torch import Tensor, nn

from odeattn.compile._record import Recordable
from odeattn.graph import GraphKind, MethodGraph, adams_weights

__all__ = ["History", "MultistepStep"]

#: (past states, past derivatives), newest first: ((x_{n−1}, x_{n−2}, …), (f_{n−1}, …)).
History = tuple[tuple[Tensor, ...], tuple[Tensor, ...]]


@lru_cache(maxsize=64)
def _uniform(lags: tuple[int, ...]) -> tuple[float, ...]:
    return tuple(float(w) for w in adams_weights([-lag for lag in lags], 0, 1))


def _weights(lags: tuple[int, ...], times: Sequence[float] | None) -> tuple[float, ...]:
    """β·h per lag (lag −1 = t_{n+1}); ``times`` = (t_{n+1}, t_n, t_{n−1}, …) or None (h = 1)."""
    if times is None:
        return _uniform(lags)
    tn = float(times[1])  # relative to t_n: no cancellation in the monomial integrals
    nodes = [float(times[lag + 1]) - tn for lag in lags]
    return tuple(adams_weights(nodes, 0.0, float(times[0]) - tn))


class MultistepStep(Recordable, nn.Module):
    """One linear multistep step compiled from ``MethodGraph.multistep(...)``.

    ``step(f, times, x, hist)`` is the ODE step (f(t, x); times newest first); ``forward(x,
    hist)`` the network block (f = ``field(x)``, unit steps) returning ``(y, new_hist)``.
    """

    def __init__(
        self,
        graph: MethodGraph,
        field: nn.Module | Callable | None = None,
        *,
        shortcut: nn.Module | None = None,
        k_init: float = 0.0,
    ) -> None:
        super().__init__()
        if not isinstance(graph, MethodGraph) or graph.kind is not GraphKind.MULTISTEP:
            raise TypeError(f"`graph` must be a multistep MethodGraph, but got graph={graph!r}")
        g = graph.graph
        self.scheme, self.order = graph.scheme, graph.order
        self.field, self.shortcut = field, shortcut
        self.n_states, self.n_derivs = graph.history
        self.pred_lags = (
            tuple(sorted(e["lag"] for _, _, e in g.in_edges("pred", data=True) if "lag" in e))
            if "pred" in g
            else ()
        )
        self.phi_lags = tuple(sorted(e["lag"] for _, _, e in g.in_edges("phi", data=True)))
        self.k = nn.Parameter(torch.tensor(float(k_init))) if self.scheme == "lm" else None

    def _lags(self, lags: tuple[int, ...], have: int) -> tuple[int, ...]:
        """The lags usable with ``have`` past derivatives, lowering the order at start-up."""
        if not lags:
            return lags
        p = min(len(lags), have + 1)
        return tuple(range(lags[0], lags[0] + p))

    def _combine(self, x: Tensor, fs: dict[int, Tensor], lags, times) -> Tensor:
        out = x
        for lag, w in zip(lags, _weights(lags, times)):
            out = out + w * fs[lag]
        return out

    def _advance(self, f: Callable, t1, x: Tensor, hist: History, times) -> tuple[Tensor, Tensor]:
        """(y, f_n): the Adams/PECE/LM update from x = x_n and the history."""
        states, derivs = hist
        fn = f(x)
        fs = {0: fn, **{j + 1: d for j, d in enumerate(derivs)}}
        if self.scheme == "lm":
            prev = states[0] if states else x
            return torch.lerp(x, prev, self.k) + fn, fn
        if self.scheme == "adams_bashforth":
            return self._combine(x, fs, self._lags(self.phi_lags, len(derivs)), times), fn
        pred = self._combine(x, fs, self._lags(self.pred_lags, len(derivs)), times)
        fs[-1] = f(pred) if t1 is None else f(t1, pred)
        return self._combine(x, fs, self._lags(self.phi_lags, len(derivs) + 1), times), fn

    def step(
        self, f: Callable, times: Sequence[float], x: Tensor, hist: History
    ) -> tuple[Tensor, History]:
        """ODE step t_n → t_{n+1}; ``times`` = (t_{n+1}, t_n, t_{n−1}, …) for the history used."""
        t1 = torch.as_tensor(times[0], dtype=x.dtype)
        tn = torch.as_tensor(times[1], dtype=x.dtype)
        y, fn = self._advance(lambda *a: f(tn, a[0]) if len(a) == 1 else f(*a), t1, x, hist, times)
        return y, self._push(x, fn, hist)

    def _push(self, x: Tensor, fn: Tensor, hist: History) -> History:
        states, derivs = hist
        return ((x, *states)[: self.n_states], (fn, *derivs)[: self.n_derivs])

    def forward(self, x: Tensor, hist: History | None = None) -> tuple[Tensor, History]:
        """Network block: unit step, f = ``field`` (the recorder sees x_t, y, Φ = y − x_t, 1).

        With a projection ``shortcut`` the field sees the raw x and x_t = shortcut(x) (as in
        :class:`MethodStep`); LM maps the kept x_{n−1} by the same shortcut, Adams schemes take
        an Euler step there (their past derivatives live in the old width)."""
        states, derivs = hist if hist is not None else ((), ())
        if self.shortcut is None:
            x_t = x
            y, fn = self._advance(self.field, None, x, (states, derivs), None)
        else:
            fn, x_t = self.field(x), self.shortcut(x)
            states, derivs = tuple(self.shortcut(s) for s in states), ()
            prev = states[0] if states else x_t
            y = (x_t if self.k is None else torch.lerp(x_t, prev, self.k)) + fn
        if self._recorder is not None:
            self._emit(x_t, y, y - x_t, 1.0)
        return y, self._push(x_t, fn, (states, derivs))
