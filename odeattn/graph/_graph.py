"""Method graphs (one-step methods): a Runge–Kutta or RKCNN step as a networkx DiGraph.

Nodes (attribute ``kind``):

- ``x`` (``input``): the state x_t;
- ``k1 … ks`` (``stage``): k_i = f_{field}(t + c_i h, x_t + h Σ_j a_ij k_j); edges ``kj → ki``
  carry ``weight = a_ij`` (zeros dropped; a_ii gives a self-loop) and ``x → ki`` the input;
- ``phi`` (``increment``): Φ = Σ b_i k_i (edges ``ki → phi`` weighted b_i);
- ``err`` (``error``, embedded pairs): h Σ b_err_i k_i;
- ``dt`` (``step``): Δt — ``None`` (1, no multiply), a constant float, ``"learnable"`` (a
  scalar parameter), ``"adaptor"`` (attention module, StepNet Eq. 12) or ``"controller"``
  (error-based, from ``err``);
- ``y`` (``output``): y = x_t + h·Δt ⊙ Φ.

Implicit tableaux give cycles among the stages: :meth:`MethodGraph.stage_components` are the
strongly connected components, :meth:`MethodGraph.schedule` their topological order (each
block is solved together; a block of one stage without self-loop is explicit).

RKCNN (Zhu et al., RKCNN Sec. 3): :meth:`MethodGraph.rkcnn` ``(variant, stages, sweeps)`` — s
explicit stages that see the input and all earlier stages densely (learned coefficients: edge
``weight=None``); then ``sweeps`` update sweeps where stage i is recomputed from x and the other
stages: ``"I"`` Gauss–Seidel (uses the current sweep's earlier stages), ``"R"`` Jacobi (previous
sweep only); ``"E"`` has no sweeps. Φ = Σ_i k_i (or a learned ``combine``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import networkx as nx

from odeattn.graph._checks import STEP_KINDS, _rkcnn_args, _step_kind
from odeattn.graph._multistep import build_multistep
from odeattn.tableau import ButcherTableau, get_tableau

__all__ = ["STEP_KINDS", "GraphKind", "MethodGraph"]


class GraphKind(StrEnum):
    """What a :class:`MethodGraph` was built from (its stage structure follows from it)."""

    TABLEAU = "tableau"  # a Butcher tableau: weighted stage edges, one shared field
    RKCNN = "rkcnn"  # an RKCNN scheme: dense learned stage edges, one field per stage network
    MULTISTEP = "multistep"  # a linear multistep method: history nodes x@-j, f@-j (lag j)


@dataclass(frozen=True, kw_only=True)
class MethodGraph:
    """One step of a method as a DiGraph; build with :meth:`from_tableau` or :meth:`rkcnn`
    (the fields are keyword-only: the classmethods are the way in)."""

    kind: GraphKind
    graph: nx.DiGraph = field(compare=False, repr=False)
    tableau: ButcherTableau | None = None
    variant: str | None = None
    stages: int = 0
    sweeps: int = 0
    step: Any = None
    share_sweeps: bool = True
    scheme: str | None = None
    order: int = 0

    @classmethod
    def from_tableau(cls, tab: str | ButcherTableau, step: Any = None) -> MethodGraph:
        tab = get_tableau(tab)
        kind = _step_kind(step)
        g = nx.DiGraph(name=tab.name)
        g.add_node("x", kind="input")
        for i in range(tab.stages):
            g.add_node(f"k{i + 1}", kind="stage", c=tab.c_f[i], c_exact=str(tab.c[i]), field=0)
            g.add_edge("x", f"k{i + 1}", role="input")
        for i, row in enumerate(tab.a):
            for j, a in enumerate(row):
                if a != 0:
                    g.add_edge(f"k{j + 1}", f"k{i + 1}", weight=float(a), exact=str(a))
        g.add_node("phi", kind="increment")
        for i, b in enumerate(tab.b):
            if b != 0:
                g.add_edge(f"k{i + 1}", "phi", weight=float(b), exact=str(b))
        if tab.b_err is not None:
            g.add_node("err", kind="error")
            for i, e in enumerate(tab.b_err):
                if e != 0:
                    g.add_edge(f"k{i + 1}", "err", weight=float(e))
        cls._add_output(g, kind, step)
        return cls(kind=GraphKind.TABLEAU, graph=g, tableau=tab, stages=tab.stages, step=step)

    @classmethod
    def rkcnn(
        cls,
        variant: str,
        stages: int,
        sweeps: int | None = None,
        *,
        step: Any = None,
        share_sweeps: bool = True,
    ) -> MethodGraph:
        """RKCNN-E/-I/-R block: ``stages`` dense explicit stages plus ``sweeps`` update sweeps.

        ``sweeps=None``: 0 for E, 1 for I and R (the published default). With
        ``share_sweeps`` every sweep reuses the update network of its stage (fields s+1…2s),
        otherwise each sweep has its own (fields s + r·s + i).
        """
        v, n = _rkcnn_args(variant, stages, sweeps)
        g = nx.DiGraph(name=f"RKCNN-{v}")
        g.add_node("x", kind="input")
        cur = []
        for i in range(stages):
            name = f"k{i + 1}"
            g.add_node(name, kind="stage", field=i, sweep=0, stage=i)
            for src in ["x", *cur]:
                g.add_edge(src, name, weight=None)
            cur.append(name)
        for r in range(1, n + 1):
            prev, new = list(cur), list(cur)
            for i in range(stages):
                name = f"k{i + 1}^{r}"
                fld = stages + i if share_sweeps else stages + (r - 1) * stages + i
                g.add_node(name, kind="stage", field=fld, sweep=r, stage=i)
                sources = new if v == "I" else prev
                for src in ["x", *(sources[j] for j in range(stages) if j != i)]:
                    g.add_edge(src, name, weight=None)
                new[i] = name
            cur = new
        g.add_node("phi", kind="increment")
        for name in cur:
            g.add_edge(name, "phi", weight=None)
        cls._add_output(g, _step_kind(step), step)
        return cls(
            kind=GraphKind.RKCNN,
            graph=g,
            variant=v,
            stages=stages,
            sweeps=n,
            step=step,
            share_sweeps=share_sweeps,
        )

    @classmethod
    def multistep(cls, scheme: str, order: int = 1) -> MethodGraph:
        """Linear multistep step (``"adams_bashforth"``, ``"adams_pece"`` of order 1…6, or
        ``"lm"``, LM-ResNet): see :mod:`odeattn.graph._multistep`. History nodes ``x@-j`` /
        ``f@-j`` read step n − j; α (state weights) is ``graph.graph["alpha"]`` {lag: weight}.
        The step node is ``"none"``: the step sizes are the times of the history (ODE use) or 1
        (a network block); no Δt adaptor."""
        g = build_multistep(scheme, order)
        cls._add_output(g, "none", None)
        for lag in g.graph["alpha"]:
            if lag:
                g.add_edge(f"x@-{lag}", "y", role="state", lag=lag)
        n_stages = sum(1 for _, d in g.nodes(data=True) if d["kind"] == "stage")
        return cls(
            kind=GraphKind.MULTISTEP,
            graph=g,
            stages=n_stages,
            scheme=scheme,
            order=order,
        )

    @property
    def history(self) -> tuple[int, int]:
        """(state lags, derivative lags) a step reads from earlier steps (0 for one-step)."""
        lags = [(d["of"], d["lag"]) for _, d in self.graph.nodes(data=True) if "of" in d]
        return (
            max((lag for of, lag in lags if of == "state"), default=0),
            max((lag for of, lag in lags if of == "deriv"), default=0),
        )

    @staticmethod
    def _add_output(g: nx.DiGraph, kind: str, step: Any) -> None:
        g.add_node("dt", kind="step", step=kind, value=step if kind == "constant" else None)
        g.add_node("y", kind="output")
        g.add_edge("x", "y", role="residual")
        g.add_edge("phi", "y", role="increment")
        g.add_edge("dt", "y", role="step")
        if kind == "controller" and "err" in g:
            g.add_edge("err", "dt", role="control")

    # -- structure ------------------------------------------------------------------------------
    @property
    def n_fields(self) -> int:
        """How many distinct vector fields the stages call (1 for a tableau: shared f)."""
        return 1 + max(d.get("field", 0) for _, d in self.stage_nodes())

    def stage_nodes(self) -> list[tuple[str, dict]]:
        return [(n, d) for n, d in self.graph.nodes(data=True) if d["kind"] == "stage"]

    def stage_components(self) -> list[list[str]]:
        """Strongly connected components of the stage subgraph (cycles = implicit blocks)."""
        sub = self.graph.subgraph(n for n, _ in self.stage_nodes())
        return [sorted(c, key=self._order) for c in nx.strongly_connected_components(sub)]

    def schedule(self) -> list[list[str]]:
        """Stage blocks in evaluation order; a block is solved together (implicit if cyclic)."""
        sub = self.graph.subgraph(n for n, _ in self.stage_nodes())
        cond = nx.condensation(sub)
        order = nx.lexicographical_topological_sort(
            cond, key=lambda c: min(self._order(n) for n in cond.nodes[c]["members"])
        )
        return [sorted(cond.nodes[c]["members"], key=self._order) for c in order]

    def _order(self, name: str) -> tuple[int, int]:
        d = self.graph.nodes[name]
        return d.get("sweep", 0), d.get("stage", int(name[1:].split("^")[0]) - 1)

    @property
    def is_explicit(self) -> bool:
        """No stage cycles (RKCNN sweeps are unrolled, so RKCNN graphs are explicit too)."""
        return all(
            len(c) == 1 and not self.graph.has_edge(c[0], c[0]) for c in self.stage_components()
        )

    # -- rendering --------------------------------------------------------------------------
    def to_text(self) -> str:
        g = self.graph
        lines = [f"MethodGraph {g.graph['name']} ({self.kind.value})"]
        for block in self.schedule():
            cyc = len(block) > 1 or g.has_edge(block[0], block[0])
            for n in block:
                d = g.nodes[n]
                ins = ", ".join(
                    f"{u}"
                    + (
                        ""
                        if e.get("weight") is None or u == "x"
                        else f"·{e.get('exact', e['weight'])}"
                    )
                    for u, _, e in g.in_edges(n, data=True)
                )
                c = f" c={d['c_exact']}" if "c_exact" in d else ""
                lines.append(f"  {n}{c} = f{d['field']}({ins})" + ("   [implicit]" if cyc else ""))
        phi = " + ".join(
            f"{e.get('exact', '') + '·' if e.get('weight') is not None else ''}{u}"
            for u, _, e in g.in_edges("phi", data=True)
        )
        if "pred" in g:
            pred = " + ".join(
                f"{e['exact']}·{u}" for u, _, e in g.in_edges("pred", data=True) if u != "x"
            )
            lines.append(f"  pred = x + h·({pred})")
        lines.append(f"  phi = {phi}")
        if "err" in g:
            lines.append(
                "  err = h·("
                + " + ".join(f"{e['weight']:.6g}·{u}" for u, _, e in g.in_edges("err", data=True))
                + ")"
            )
        alpha = g.graph.get("alpha")
        lhs = (
            " + ".join(f"({w})·x@-{j}" if j else f"({w})·x" for j, w in alpha.items())
            if alpha
            else "x"
        )
        lines.append(f"  y = {lhs} + h·dt⊙phi   (dt: {g.nodes['dt']['step']})")
        return "\n".join(lines)

    def to_dot(self) -> str:
        """Graphviz ``dot`` source (stage cycles drawn as they are)."""
        g = self.graph
        out = [f'digraph "{g.graph["name"]}" {{', "  rankdir=LR;"]
        shapes = {
            "input": "box",
            "stage": "circle",
            "increment": "diamond",
            "error": "diamond",
            "step": "hexagon",
            "output": "box",
            "history": "box3d",
            "predict": "diamond",
        }
        for n, d in g.nodes(data=True):
            label = n + (f"\\nc={d['c_exact']}" if "c_exact" in d else "")
            out.append(f'  "{n}" [shape={shapes[d["kind"]]}, label="{label}"];')
        for u, v, e in g.edges(data=True):
            w = e.get("exact", e.get("weight"))
            out.append(f'  "{u}" -> "{v}"' + (f' [label="{w}"];' if w is not None else ";"))
        out.append("}")
        return "\n".join(out)
