"""Method graphs: structure from tableaux and RKCNN schemes, SCCs, schedules, rendering."""

from __future__ import annotations

import pytest

from odeattn.graph import MethodGraph
from odeattn.tableau import TABLEAUS


def _stage_edges(g):
    return {
        (u, v): d["weight"]
        for u, v, d in g.graph.edges(data=True)
        if u.startswith("k") and v.startswith("k")
    }


def test_rk4_graph_weights_and_zero_terms_dropped():
    g = MethodGraph.from_tableau("rk4")
    assert _stage_edges(g) == {("k1", "k2"): 0.5, ("k2", "k3"): 0.5, ("k3", "k4"): 1.0}
    phi = {u: d["weight"] for u, _, d in g.graph.in_edges("phi", data=True)}
    assert phi == pytest.approx({"k1": 1 / 6, "k2": 1 / 3, "k3": 1 / 3, "k4": 1 / 6})
    assert [g.graph.nodes[f"k{i}"]["c"] for i in range(1, 5)] == [0, 0.5, 0.5, 1]
    assert "err" not in g.graph and g.is_explicit and g.n_fields == 1
    assert g.schedule() == [["k1"], ["k2"], ["k3"], ["k4"]]


@pytest.mark.parametrize("name", sorted(TABLEAUS))
def test_every_tableau_graph_matches_its_matrix(name):
    tab, g = TABLEAUS[name], MethodGraph.from_tableau(name)
    nonzero = {
        (f"k{j + 1}", f"k{i + 1}"): tab.a_f[i][j]
        for i in range(tab.stages)
        for j in range(tab.stages)
        if tab.a[i][j] != 0
    }
    assert _stage_edges(g) == nonzero
    assert g.is_explicit == tab.is_explicit
    assert ("err" in g.graph) == (tab.b_err is not None)
    assert sorted(n for blk in g.schedule() for n in blk) == sorted(
        f"k{i + 1}" for i in range(tab.stages)
    )


def test_implicit_components_and_schedule():
    gl = MethodGraph.from_tableau("gauss_legendre4")
    assert gl.stage_components() == [["k1", "k2"]] and gl.schedule() == [["k1", "k2"]]
    sd = MethodGraph.from_tableau("sdirk2")  # DIRK: two self-loops, solved one after the other
    assert sd.schedule() == [["k1"], ["k2"]]
    assert sd.graph.has_edge("k1", "k1") and sd.graph.has_edge("k2", "k2")
    tr = MethodGraph.from_tableau("trapezoid")  # explicit first stage, implicit second
    assert tr.schedule() == [["k1"], ["k2"]] and not tr.graph.has_edge("k1", "k1")
    assert not tr.is_explicit


def test_step_node_kinds():
    assert MethodGraph.from_tableau("euler").graph.nodes["dt"]["step"] == "none"
    g = MethodGraph.from_tableau("euler", step=0.5)
    assert g.graph.nodes["dt"] == {"kind": "step", "step": "constant", "value": 0.5}
    c = MethodGraph.from_tableau("dopri5", step="controller")
    assert c.graph.has_edge("err", "dt")
    for kind in ("learnable", "adaptor"):
        assert MethodGraph.from_tableau("rk4", step=kind).graph.nodes["dt"]["step"] == kind
    with pytest.raises(ValueError, match="`step` must be"):
        MethodGraph.from_tableau("rk4", step="attention")


def test_rkcnn_graphs():
    e = MethodGraph.rkcnn("E", 3)
    assert sorted(u for u, _ in e.graph.in_edges("k3")) == ["k1", "k2", "x"]
    assert e.sweeps == 0 and e.n_fields == 3 and e.is_explicit
    i = MethodGraph.rkcnn("I", 3)  # Gauss–Seidel: k2 in sweep 1 sees the new k1
    assert sorted(u for u, _ in i.graph.in_edges("k2^1")) == ["k1^1", "k3", "x"]
    r = MethodGraph.rkcnn("R", 3)  # Jacobi: only the previous sweep
    assert sorted(u for u, _ in r.graph.in_edges("k2^1")) == ["k1", "k3", "x"]
    assert r.n_fields == 6 and MethodGraph.rkcnn("R", 3, 2, share_sweeps=False).n_fields == 9
    assert sorted(u for u, _ in r.graph.in_edges("phi")) == ["k1^1", "k2^1", "k3^1"]
    for bad in [("X", 3, None), ("E", 3, 1), ("I", 3, 0), ("R", 1, 1), ("E", 0, None)]:
        with pytest.raises(ValueError):
            MethodGraph.rkcnn(*bad)


def test_rendering():
    text = MethodGraph.from_tableau("gauss_legendre4").to_text()
    assert "[implicit]" in text and "c=1/2 + 1/6·√3" in text
    dot = MethodGraph.from_tableau("rk4").to_dot()
    assert dot.startswith('digraph "rk4"') and '"k3" -> "k4" [label="1"];' in dot
    assert '"k2" -> "k2"' in MethodGraph.from_tableau("trapezoid").to_dot()
    assert "k2^1 = f4(x, k1^1, k3)" in MethodGraph.rkcnn("I", 3).to_text()


def test_method_graph_is_built_by_keyword_with_an_enum_kind():
    from odeattn.graph import GraphKind

    g = MethodGraph.from_tableau("rk4")
    r = MethodGraph.rkcnn("R", 3, 1)
    assert g.kind is GraphKind.TABLEAU and r.kind is GraphKind.RKCNN
    assert r.variant == "R" and r.sweeps == 1 and g.tableau is not None
    with pytest.raises(TypeError):
        MethodGraph("tableau", g.graph)  # positional construction is gone
    assert g.to_text().splitlines()[0].endswith("(tableau)")
