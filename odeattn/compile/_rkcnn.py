"""Compiled RKCNN blocks (Zhu, Chang, Fu — RKCNN, Neural Comput. Appl. 2023; code ZhuMai/RKCNN).

A block is one time step whose s stages are learned networks that see the input and the other
stages densely, by channel concatenation (the RK coefficients a_ij and h are absorbed into the
convolutions):

    explicit stages   k_j = f_j(cat[x, k_1, …, k_{j−1}])                       j = 1..s
    update sweep r    k_j = u_j(cat[x, k_1, …, k_{j−1}, k_{j+1}, …, k_s])       (s·C channels)
                      -I: Gauss–Seidel (k_i, i < j, already from sweep r);  -R: Jacobi (sweep r−1)
    output            Φ = Σ_j k_j  (or ``combine(ks)``),   y = x + h·Δt ⊙ Φ  (default h = Δt = 1)

``fields`` lists f_1..f_s then the update networks u_1..u_s (shared by every sweep, the
published code's one update module per stage) — or u per sweep when the graph was built with
``share_sweeps=False`` (s + sweeps·s fields). The evaluation program is read off the
:class:`~odeattn.graph.MethodGraph` (schedule and in-edges), so the graph is the single truth.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from odeattn.compile._base import StepBase, as_modules
from odeattn.graph import MethodGraph

__all__ = ["RKCNNStep"]


class RKCNNStep(StepBase):
    """RKCNN-E/-I/-R block compiled from ``MethodGraph.rkcnn(variant, stages, sweeps)``."""

    def __init__(
        self,
        graph: MethodGraph,
        fields: Any,
        *,
        combine: nn.Module | None = None,
        step: Any = None,
        shortcut: nn.Module | None = None,
        h: float = 1.0,
    ) -> None:
        super().__init__()
        if shortcut is not None:
            raise ValueError(
                "RKCNN blocks keep the width; put the projection in the transition, "
                "not in `shortcut`"
            )
        self.fields = as_modules(fields)
        if len(self.fields) != graph.n_fields:
            raise ValueError(
                f"RKCNN-{graph.variant} with {graph.stages} stages and "
                f"{graph.sweeps} sweeps needs {graph.n_fields} fields (f_1..f_s, "
                f"then the update networks), but got {len(self.fields)}"
            )
        if combine is not None and not callable(combine):
            raise ValueError(
                f"`combine` must be a module mapping the stage list to Φ, got {combine!r}"
            )
        self.graph, self.combine = graph, combine
        self._init_step(step, None, h)
        g = graph.graph
        prog = []
        for block in graph.schedule():
            (name,) = block  # RKCNN graphs are acyclic (unrolled sweeps)
            srcs = sorted(
                (u for u, _ in g.in_edges(name)),
                key=lambda u: (-1, -1) if u == "x" else graph._order(u)[::-1],
            )
            prog.append((g.nodes[name]["field"], tuple(srcs), name))
        self.program = tuple(prog)
        self.outputs = tuple(
            sorted((u for u, _ in g.in_edges("phi")), key=lambda u: graph._order(u)[1])
        )

    def stage_values(self, x: Tensor) -> list[Tensor]:
        vals = {"x": x}
        for fi, srcs, name in self.program:
            inp = vals[srcs[0]] if len(srcs) == 1 else torch.cat([vals[u] for u in srcs], dim=1)
            vals[name] = self.fields[fi](inp)  # (B, C, H, W)
        return [vals[n] for n in self.outputs]

    def forward(self, x: Tensor) -> Tensor:
        ks = self.stage_values(x)
        if self.combine is not None:
            phi = self.combine(ks)
        else:
            phi = ks[0]
            for k in ks[1:]:
                phi = phi + k
        return self._finish(x, phi, ks)

    def extra_repr(self) -> str:
        g = self.graph
        return f"RKCNN-{g.variant}, stages={g.stages}, sweeps={g.sweeps}, h={self.h}"
