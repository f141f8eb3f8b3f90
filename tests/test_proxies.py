"""Proxies: FLOPs against hand counts, latency bookkeeping, TNS at init, the screen, rank correlations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from odeattn import proxies
from odeattn.compile._record import Recordable


def _small_net() -> nn.Module:
    # (B,1,8,8) -conv3x3 p1-> (B,4,8,8) -conv3x3 s2 p1, groups 2-> (B,6,4,4) -flatten-> 96 -fc-> 10
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(96, 10),
    )


def test_flops_match_hand_count() -> None:
    conv1 = 2 * (4 * 8 * 8) * (1 * 3 * 3)  # 2 · out elements · MACs per element
    conv2 = 2 * (6 * 4 * 4) * ((4 // 2) * 3 * 3)  # grouped: C_in/groups inputs per output
    fc = 2 * 96 * 10
    assert proxies.count_flops(_small_net(), (1, 8, 8)) == conv1 + conv2 + fc == 4608 + 3456 + 1920
    assert proxies.count_flops(_small_net(), (1, 8, 8), batch_size=3) == 3 * (conv1 + conv2 + fc)


def test_flops_leave_model_mode_and_params() -> None:
    net = _small_net().train()
    before = [p.detach().clone() for p in net.parameters()]
    stats_before = net[1].running_mean.clone()
    proxies.count_flops(net, (1, 8, 8))
    assert net.training
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert torch.equal(stats_before, net[1].running_mean)  # eval-mode forward: BN stats untouched


def test_count_params_counts_shared_once() -> None:
    lin = nn.Linear(5, 3)  # 15 + 3
    net = nn.Sequential(lin, nn.ReLU(), lin)  # the same module twice
    assert proxies.count_params(net) == 18
    lin.bias.requires_grad_(False)
    assert proxies.count_params(net) == 15
    assert proxies.count_params(net, trainable_only=False) == 18


class _Counting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls, self.modes, self.grad = 0, set(), set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.modes.add(self.training)
        self.grad.add(torch.is_grad_enabled())
        return x * 2


def test_latency_runs_warmup_plus_repeats_in_eval_no_grad() -> None:
    net = _Counting().train()
    out = proxies.measure_latency(net, (3, 4), warmup=2, repeats=5, batch_size=2)
    assert net.calls == 7 and net.modes == {False} and net.grad == {False}
    assert net.training  # restored
    assert 0 <= out["p10_s"] <= out["median_s"] <= out["p90_s"]
    assert out["repeats"] == 5 and out["batch_size"] == 2
    with pytest.raises(ValueError, match="repeats"):
        proxies.measure_latency(net, (3,), repeats=0)
    with pytest.raises(ValueError, match="input_shape"):
        proxies.measure_latency(net, (3, 0))


class _Block(Recordable, nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phi = self.f(x)
        y = x + phi
        self._emit(x, y, phi, 1.0)
        return y


class _Toy(nn.Module):
    """Two stages of three residual blocks (the first of each stage is not measured)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            _Block(3).set_position(s, i) for s in range(2) for i in range(3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return x


def _hand_nsi(model: _Toy, x: torch.Tensor) -> tuple[np.ndarray, list[int]]:
    cols, stage = [], []
    for b in model.blocks:
        phi = b.f(x)
        if not b.first_in_stage:
            cols.append((phi.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)).double())
            stage.append(b.stage_id)
        x = x + phi
    return torch.stack(cols, 1).numpy(), stage


def test_tns_at_init_uses_batch_statistics_and_restores_the_model() -> None:
    from odeattn.stiffness import tns

    torch.manual_seed(0)
    model = _Toy().eval()
    for b in model.blocks:  # running stats far from the batch's: eval and train modes differ
        b.f[0].running_mean.fill_(3.0)
    x = torch.randn(16, 3, 5, 5)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    got = proxies.tns_at_init(model, x)
    assert not model.training
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    model.train()
    with torch.no_grad():
        nsi, stage = _hand_nsi(model, x)
    model.load_state_dict(state)
    assert stage == [0, 0, 1, 1]
    assert got == pytest.approx(tns(nsi, stage), rel=1e-5)
    model.eval()
    with torch.no_grad():
        nsi_eval, _ = _hand_nsi(model, x)
    assert proxies.tns_at_init(model, x, bn_mode="eval") == pytest.approx(
        tns(nsi_eval, stage), rel=1e-5
    )
    assert abs(tns(nsi_eval, stage) - got) > 1e-3 * abs(got)  # the mode matters here


def test_screen_keeps_best_fraction_of_seen() -> None:
    screen = proxies.Screen(0.5)
    first = screen.decide(3.0, [])
    assert first.kept and first.rank == 1 and first.n_keep == 1
    # seen = [1, 2, 4, 5] + 3: rank of 3 is 3, ceil(0.5·5) = 3 → kept; 4.5 has rank 4 → dropped
    assert screen.decide(3.0, [1.0, 2.0, 4.0, 5.0]).kept
    d = screen.decide(4.5, [1.0, 2.0, 4.0, 5.0])
    assert (d.rank, d.n_seen, d.n_keep, d.kept) == (4, 5, 3, False)
    assert d.as_user_attrs()["screen_kept"] is False and d.as_user_attrs()["screen_rank"] == 4
    up = proxies.Screen(0.25, direction="maximize").decide(10.0, [1.0, 2.0, 3.0])
    assert up.kept and up.rank == 1
    assert proxies.Screen(0.25, warmup=5).decide(100.0, [1.0, 2.0]).reason == "warm-up"
    assert not screen.decide(math.nan, [1.0]).kept
    assert screen.decide(2.0, [2.0, 2.0, 2.0]).kept  # ties share the best rank


def test_screen_matches_brute_force_quantile() -> None:
    rng = np.random.default_rng(0)
    screen = proxies.Screen(0.3)
    for _ in range(200):
        hist = rng.integers(0, 6, size=rng.integers(0, 12)).astype(float).tolist()
        s = float(rng.integers(0, 6))
        allv = [*hist, s]
        n_keep = max(1, math.ceil(0.3 * len(allv)))
        better = sorted(allv)[n_keep - 1]  # the n_keep-th best value; s kept iff s <= it
        assert screen.decide(s, hist).kept == (s <= better)


def test_screen_and_select_top_validate() -> None:
    with pytest.raises(ValueError, match="keep_fraction"):
        proxies.Screen(0.0)
    with pytest.raises(ValueError, match="direction"):
        proxies.Screen(0.5, direction="min")


def test_select_top() -> None:
    assert proxies.select_top([5, 1, 3, 2], 0.5) == [False, True, False, True]
    assert proxies.select_top([5, 1, 3, 2], 0.5, direction="maximize") == [True, False, True, False]
    assert proxies.select_top([1, 1, 1], 0.34) == [True, True, False]  # ceil(1.02) = 2, by position
    assert proxies.select_top([float("nan"), 2.0], 1.0) == [False, True]


@pytest.mark.parametrize("seed", range(6))
def test_rank_correlations_match_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    x = rng.integers(0, 5, n).astype(float) if seed % 2 else rng.normal(size=n)
    y = x + rng.normal(scale=1.0, size=n) if seed % 3 else rng.integers(0, 3, n).astype(float)
    assert proxies.kendall_tau(x, y) == pytest.approx(
        stats.kendalltau(x, y).statistic, nan_ok=True, abs=1e-12
    )
    assert proxies.spearman_rho(x, y) == pytest.approx(
        stats.spearmanr(x, y).statistic, nan_ok=True, abs=1e-12
    )


def test_rank_correlations_closed_forms() -> None:
    x = [1.0, 2.0, 3.0, 4.0]
    assert proxies.kendall_tau(x, [10, 20, 30, 40]) == 1.0
    assert proxies.spearman_rho(x, [4, 3, 2, 1]) == -1.0
    # one swap of neighbours among 4: C = 5, D = 1 → τ = 4/6; ρ = 1 − 6·2/(4·15) = 0.8
    assert proxies.kendall_tau(x, [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert proxies.spearman_rho(x, [1, 3, 2, 4]) == pytest.approx(0.8)
    assert math.isnan(proxies.kendall_tau(x, [1, 1, 1, 1]))
    with pytest.raises(ValueError, match="same length"):
        proxies.kendall_tau([1.0], [1.0])
