"""Issue 19's evidence (docs/results.md §6): the plan, the arms, the statistics, the page, and
the units (a stand-alone training and a supernet's scores) against independent computations."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution
from scipy import stats

from odeattn.experiments import _oneshot, _oneshot_page, _oneshot_rank, _oneshot_runs
from odeattn.experiments.__main__ import main
from odeattn.experiments._oneshot import placement_of, scheme_of, uniform
from odeattn.experiments._oneshot_plan import (
    ONESHOT_CLAIMS,
    ONESHOT_FULL,
    ONESHOT_QUICK,
    SEARCH_ARMS,
    SPREAD_QUICK,
    SPREAD_STUDY,
    STUDY,
    RankSize,
)
from odeattn.experiments._oneshot_rank import rank_archs, rank_tests, spread_archs
from odeattn.experiments._oneshot_runs import (
    StandaloneCache,
    one_thread,
    study_variant,
    supernet_scores,
)
from odeattn.experiments._oneshot_search import best_of, search_study
from odeattn.experiments._page import page_main, render
from odeattn.experiments._plan import CLAIM_RULES
from odeattn.experiments._plan import tests_of as plan_tests
from odeattn.experiments._stats import mean_ci
from odeattn.models import create_model
from odeattn.proxies import count_params
from odeattn.search import run_trial
from odeattn.search.trial import loaded_supernet, score_trial
from odeattn.study import data_for, decode, encode, load_study, resolve_space
from odeattn.supernet import from_study
from odeattn.train import evaluate


@pytest.fixture(scope="module")
def study():
    return load_study(STUDY)


@pytest.fixture(scope="module")
def space(study):
    return resolve_space(study)


def test_the_plan_fixes_each_part_s_tests_before_the_runs():
    rank, search, lth, spread, elastic = (plan_tests(c) for c in ONESHOT_CLAIMS)
    assert {t: (v.role, v.rule, v.threshold) for t, v in elastic.items()} == {
        t: (v.role, v.rule, v.threshold) for t, v in spread.items()
    }  # (e) is (d)'s test on the elastic space
    for part in (rank, spread, elastic):
        assert [t for t, v in part.items() if v.role == "primary"] == [
            "recal short tau",
            "recal long tau",
        ]
    assert rank["ceiling"].role == "premise" and rank["ceiling"].threshold == 0.0
    assert (spread["ceiling"].role, spread["ceiling"].threshold) == ("premise", 0.6)  # claim 3's
    assert [t for t in rank if t not in spread] == ["long - attention"]
    assert [t for t in spread if t not in rank] == ["long - params"]
    assert [(v.role, v.rule, v.threshold) for v in search.values()] == [
        ("primary", "above", 0.0),
        ("primary", "above", 0.0),
        ("secondary", "above", 0.0),
        ("secondary", "within", 0.01),
        ("secondary", "within", 0.01),
    ]
    assert (lth["full-none"].role, lth["full-none"].threshold) == ("premise", 0.01)
    assert (lth["sparse-full"].threshold, lth["sparse-full"].rule) == (-0.01, "above")
    assert all(CLAIM_RULES[c] == "all" for c in ONESHOT_CLAIMS)
    assert "30 epochs" in rank["recal long tau"].comparison  # the full size's long supernet
    assert "48 epochs" in spread["recal long tau"].comparison
    assert "48 epochs" in elastic["recal long tau"].comparison


def test_the_full_size_meets_the_issue_s_minimums_and_fits_40_minutes():
    f = ONESHOT_FULL
    assert f.archs >= 30 and f.seeds >= 3 and f.search_seeds >= 5 and f.lth_seeds >= 5
    assert f.long > f.short and len(f.fresh) >= 3 and not set(f.fresh) & set(range(f.seeds))
    total = sum(_oneshot_page.estimate(f).values())
    assert total <= 42 * 60, f"full size estimated at {total / 60:.1f} min"


def test_the_estimate_is_units_times_counts_over_jobs(monkeypatch):
    monkeypatch.setattr(
        _oneshot_page, "UNIT_SECONDS", dict.fromkeys(_oneshot_page.UNIT_SECONDS, 1.0)
    )
    q = ONESHOT_QUICK  # net = 1 + 1 epoch = 2 s
    est = _oneshot_page.estimate(q, jobs=2)
    assert est["oneshot_rank"] == (1 + 2 + 6) + 6 * 2 * 2 / 2  # the long supernet, then nets
    assert est["oneshot_search"] == 6 * (45 + 1) / 2 + 6 * 2 * 2 / 2
    assert est["oneshot_lth4sa"] == 6 + 1 + (3 * 2 - 2 * 2) * 2 / 2
    d = SPREAD_QUICK  # (d): its own units, (a)'s formula
    assert _oneshot_page.spread_estimate(d, jobs=2) == (1 + 2 + 6) + 6 * 2 * 2 / 2
    assert _oneshot_page.spread_estimate(d, jobs=1) == (1 + 2 + 6) + (1 + 1 + 6) + 6 * 2 * 2


def test_part_a_archs_are_none_full_then_distinct_seeded_draws(space):
    archs = rank_archs(space, 30)
    marks = [placement_of(space, p) for p in archs]
    assert marks[:2] == ["000|000|000", "111|111|111"]
    assert len(set(marks)) == 30 and rank_archs(space, 30) == archs  # distinct, deterministic
    assert marks[2:5] == [placement_of(space, p) for p in rank_archs(space, 5)[2:]]
    every = rank_archs(space, 512)  # the whole space, no duplicate
    assert len({placement_of(space, p) for p in every}) == 512
    with pytest.raises(ValueError, match=r"`archs` must be in 2\.\.512"):
        rank_archs(space, 513)


def _tau_by_hand(x: list[float], y: list[float]) -> float:
    """Kendall τ-b by counting pairs (Kendall 1945)."""
    c = d = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        c += sx * sy > 0
        d += sx * sy < 0
        tx += sx == 0 and sy != 0
        ty += sy == 0 and sx != 0
    return (c - d) / math.sqrt((c + d + tx) * (c + d + ty))


def test_part_a_statistics_on_a_fixed_input_match_counting_pairs(monkeypatch):
    monkeypatch.setattr(_oneshot_rank, "N_BOOT", 200)
    accs = [[0.90, 0.92, 0.91, 0.95, 0.97, 0.96], [0.91, 0.90, 0.93, 0.94, 0.98, 0.97]]
    mean = np.mean(accs, 0).tolist()
    recal = [0.5, 0.6, 0.55, 0.8, 0.9, 0.7]
    plain = [0.1, 0.9, 0.2, 0.3, 0.1, 0.4]
    scores = {k: {"recal": recal, "plain": plain} for k in ("short", "long")}
    att = [0, 9, 4, 5, 6, 3]
    tests, got_mean, ceil = rank_tests(scores, accs, att)
    by = {t["id"]: t for t in tests}
    assert got_mean == pytest.approx(mean)
    assert by["ceiling"]["estimate"] == ceil[0] == pytest.approx(_tau_by_hand(*accs))
    assert (by["ceiling"]["lo"], by["ceiling"]["hi"]) == ceil[1:]  # (a): the CI decides
    assert by["recal long tau"]["estimate"] == pytest.approx(_tau_by_hand(recal, mean))
    assert by["recal long tau"]["estimate"] == pytest.approx(stats.kendalltau(recal, mean)[0])
    assert by["plain short tau"]["estimate"] == pytest.approx(_tau_by_hand(plain, mean))
    diff = _tau_by_hand(recal, mean) - _tau_by_hand(plain, mean)
    assert by["recal-plain short"]["estimate"] == pytest.approx(diff)
    assert by["long-short"]["estimate"] == 0.0
    assert by["long - attention"]["estimate"] == pytest.approx(
        _tau_by_hand(recal, mean) - _tau_by_hand(att, mean)
    )
    assert all(t["lo"] <= t["estimate"] <= t["hi"] for t in tests if t["id"] != "long-short")


def test_part_a_without_a_ceiling_is_untestable(monkeypatch):
    monkeypatch.setattr(_oneshot_rank, "N_BOOT", 100)
    accs = [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]]  # τ = −1
    sc = {k: {"recal": [1, 2, 3, 4, 5, 6], "plain": [6, 5, 4, 3, 2, 1]} for k in ("short", "long")}
    tests, _, _ = rank_tests(sc, accs, [0, 1, 2, 3, 4, 5])
    assert tests[0]["verdict"] == "not held"
    assert {t["verdict"] for t in tests[1:]} == {"untestable here"}


def test_part_b_arms_are_the_search_s_own_studies(study, tmp_path):
    one = search_study(study, "oneshot", 3, 150, tmp_path)
    assert (one.strategy, one.sampler.name, one.sampler.seed) == ("supernet", "reinforce", 3)
    assert one.sampler.kwargs == study.sampler.kwargs  # EAN's settings, as the study ships them
    assert (one.supernet.seed, one.supernet.top_k, one.supernet.epochs) == (3, 0, 5)
    for arm in ("tpe", "random"):
        s = search_study(study, arm, 3, 150, tmp_path)
        assert (s.strategy, s.supernet, s.sampler.name, s.sampler.seed) == ("scratch", None, arm, 3)
        assert s.train.epochs == study.train.epochs == 5
    for s in (one, *(search_study(study, a, 3, 150, tmp_path) for a in ("tpe", "random"))):
        assert s.objective_names == ["val_accuracy"] and s.budget.timeout == 150.0
        assert (s.replicates, s.noise.trials, s.workers) == (1, 0, 1)
        assert s.runs_dir == str(tmp_path.resolve()) and s.name.endswith("_seed3")
    with pytest.raises(ValueError, match="`arm` must be one of"):
        search_study(study, "grid", 0, 1, tmp_path)


def _trial(number: int, acc: float, ones: int, params: dict | None = None) -> Any:
    params = params or {}
    t = optuna.trial.create_trial(
        values=[acc, float(ones)],
        params=params,
        distributions={k: CategoricalDistribution([0, 1]) for k in params},
        user_attrs={"attention_blocks": ones, "architecture": {"blocks": [3, 3, 3]}},
    )
    t.number = number
    return t


def test_part_c_scheme_has_the_highest_ean_reward_and_b_the_highest_value(study):
    trials = [_trial(0, 0.95, 9), _trial(1, 0.94, 0), _trial(2, 0.945, 3), _trial(3, 0.94, 0)]
    top, reward = scheme_of(study, trials)  # 95 + 0 < 94 + 2 = 96 (ties: the earliest)
    assert top.number == 1 and reward == pytest.approx(96.0)
    assert best_of(trials).number == 0
    with pytest.raises(RuntimeError, match="finished no scored"):
        scheme_of(study, [])


def _ones(space, params: dict) -> int:
    """Attention blocks of a placement; part (d)'s spread space: its depth."""
    if "placement" not in space.config.params:
        return sum(v for k, v in params.items() if k.startswith("blocks."))
    return placement_of(space, params).count("1")


def _acc(k: int, seed: int) -> float:
    """Fake stand-alone accuracy: 2 points for full attention, a seed offset shared by all."""
    return 0.9 + 0.02 * k / 9 + 0.001 * (seed % 7)


class _FakeCache(_oneshot_runs.StandaloneCache):  # its mean_accuracy is the real one
    def __init__(self, folder, study, jobs=1):
        self.space = resolve_space(study)

    def fill(self, requests):
        list(requests)

    def get(self, params, seed):
        k = _ones(self.space, params)
        return {"val_accuracy": _acc(k, seed), "attention_blocks": k, "n_params": 100 + k,
                "seconds": 2.0, "provenance": {"threads": 1}}  # fmt: skip


def _fake_scores(studies, archs, folder, jobs=1):
    space = resolve_space(studies[0])
    ones = [_ones(space, p) for p in archs]
    return [
        {"recal": [k + 0.01 * i for i, k in enumerate(ones)], "plain": [-k for k in ones],
         "recal_s": [0.5] * len(archs), "plain_s": [0.25] * len(archs),
         "train_seconds": 3.0 * s.supernet.epochs}
        for s in studies
    ]  # fmt: skip


NO_BEST: dict[str, None] = {}  # arms whose runs found nothing


def _fake_search(base, seeds, seconds, folder, jobs=1):
    space = resolve_space(base)
    best = {"oneshot": uniform(space, "1"), "tpe": uniform(space, "0"),
            "random": encode(space, {"placement": "100|100|100"})}  # fmt: skip
    best |= NO_BEST
    return {
        a: [{"arm": a, "seed": s, "trials": 10 * (i + 1), "distinct": 5, "best": best[a],
             "best_value": 0.95, "supernet_seconds": 3.0 if a == "oneshot" else None}
            for s in range(seeds)]
        for i, a in enumerate(SEARCH_ARMS)
    }  # fmt: skip


class _FakeStudy:
    def __init__(self, trials):
        self.trials = trials

    def get_trials(self, deepcopy=False):
        return self.trials


def _fake_run_search(study, space, **kw):
    sparse = encode(space, {"placement": "110|000|000"})
    return _FakeStudy([_trial(0, 0.95, 9, uniform(space, "1")), _trial(1, 0.94, 2, sparse)])


@pytest.fixture
def fake_units(monkeypatch):
    for module in (_oneshot, _oneshot_rank):
        monkeypatch.setattr(module, "StandaloneCache", _FakeCache)
    monkeypatch.setattr(_oneshot_rank, "supernet_scores", _fake_scores)
    monkeypatch.setattr(_oneshot, "search_runs", _fake_search)
    monkeypatch.setattr(_oneshot, "run_search", _fake_run_search)
    monkeypatch.setattr(_oneshot_rank, "N_BOOT", 100)


def _verdicts(res: dict) -> dict[str, str]:
    return {t["id"]: t["verdict"] for t in res["tests"]}


def test_the_three_parts_judge_their_plan_and_the_page_shows_them(fake_units, tmp_path, space):
    out = tmp_path / "out"
    assert main(["run", "oneshot", "--quick", "--out", str(out)]) == 0
    res = {c: json.loads((out / c / "result.json").read_text()) for c in ONESHOT_CLAIMS}
    rank = res["oneshot_rank"]
    mean = [np.mean([a["accuracy"]]) for a in rank["architectures"]]
    recal = [a["recal_long"] for a in rank["architectures"]]
    assert [a["placement"] for a in rank["architectures"][:2]] == ["000|000|000", "111|111|111"]
    t = next(t for t in rank["tests"] if t["id"] == "recal long tau")
    assert t["estimate"] == pytest.approx(_tau_by_hand(recal, mean)) and t["verdict"] == "held"
    assert rank["cost"]["supernet_long_train_s"] == 6.0 and rank["cost"]["standalone_s"] == 2.0
    search = res["oneshot_search"]
    assert search["retrained"]["oneshot"] == pytest.approx([0.92 + 0.0025] * 2)
    assert search["retrained"]["random"] == pytest.approx([0.9 + 0.02 * 3 / 9 + 0.0025] * 2)
    assert _verdicts(search) == {
        "oneshot-tpe": "held",  # +2 points every seed
        "oneshot-random": "held",
        "tpe-random": "not held",
        "oneshot-tpe within": "not held",  # 2 points: outside ±1
        "oneshot-random within": "not held",
    }
    assert search["search_runs"]["oneshot"][0]["placement"] == "111|111|111"
    spread = res["oneshot_rank_spread"]  # fake accuracies: depth decides, every seed alike
    assert spread["ceiling"]["tau"] == 1.0 and _verdicts(spread)["ceiling"] == "held"
    assert [a["n_params"] for a in spread["architectures"]] == [
        100 + sum(v for k, v in a["params"].items() if k.startswith("blocks.")) for a in
        spread["architectures"]
    ]  # fmt: skip
    assert spread["epochs"] == {"short": 1, "long": 2} and "long - params" in _verdicts(spread)
    lth = res["oneshot_lth4sa"]
    assert lth["schemes"]["sparse"]["attention"] == 2 and lth["found"]["trial"] == 1
    assert lth["found"]["reward"] == pytest.approx(94 + 2 * 7 / 9)
    d = [a - b for a, b in zip(lth["accuracy"]["sparse"], lth["accuracy"]["full"], strict=True)]
    t = next(t for t in lth["tests"] if t["id"] == "sparse-full")
    assert [t["estimate"], t["lo"], t["hi"]] == pytest.approx(list(mean_ci(d)))
    assert _verdicts(lth) == {"full-none": "held", "sparse-full": "not held", "sparse-none": "held"}
    page = tmp_path / "page.md"
    names = ["oneshot_rank_taus", "claim_oneshot_lth4sa", "oneshot_lth4sa_schemes",
             "oneshot_rank_spread_taus"]  # fmt: skip
    page.write_text("".join(f"<!-- table:{n} -->\n<!-- /table -->\n" for n in names))
    argv = ["--page", str(page), "--data", str(tmp_path / "data"), "--collect", str(out)]
    assert page_main(argv, "report") == 0
    text = page.read_text()
    assert "| long (2 epochs) | recalibrated BN |" in text and "| 6 s | 0.50 s |" in text
    assert "| sparse-full | primary |" in text and "**not held**" in text
    assert "trial 1 of 2 scored" in text and "size quick" in text
    assert "| score / architecture |" in text and "(6 architectures, 2 seeds)" in text
    assert "Noise ceiling τ = 1.00 [" in text
    NO_BEST["random"] = None  # a run that finished no trial: every comparison untestable
    try:
        assert main(["run", "oneshot_search", "--quick", "--out", str(tmp_path / "o2")]) == 0
    finally:
        NO_BEST.clear()
    again = json.loads((tmp_path / "o2" / "oneshot_search" / "result.json").read_text())
    assert again["retrained"]["random"] == [None, None]  # NaN, stored as null
    assert set(_verdicts(again).values()) == {"untestable here"}


def test_a_part_not_run_names_its_command_and_paper_size_is_refused(capsys):
    body = render("<!-- table:oneshot_search_arms -->\n<!-- /table -->", Path("/nonexistent"))
    assert "Not run yet" in body and "run oneshot_search --jobs 2" in body
    assert main(["run", "oneshot", "--size", "paper"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "`--size` must be full or quick" in err


def test_a_stand_alone_run_is_the_search_s_trial_and_is_cached(study, space, tmp_path, monkeypatch):
    st = study_variant(study, runs_dir=str(tmp_path), train={"epochs": 1})
    p = uniform(space, "1")
    rec = StandaloneCache(tmp_path, st).get(p, 0)
    with one_thread():
        ref = run_trial(st, dict(p), seed=0)
    assert rec["val_accuracy"] == ref["val_accuracy"] and rec["n_params"] == ref["params"]
    assert rec["attention_blocks"] == 9.0 and rec["provenance"]["threads"] == 1

    def boom(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(_oneshot_runs, "run_trial", boom)
    assert StandaloneCache(tmp_path, st).get(p, 0) == rec
    other = study_variant(st, train={"epochs": 2})  # another setting: another network
    assert StandaloneCache(tmp_path, other).path(p, 0) != StandaloneCache(tmp_path, st).path(p, 0)


def test_supernet_scores_are_what_a_trial_records_and_the_shared_statistics(study, space, tmp_path):
    st = study_variant(study, runs_dir=str(tmp_path), supernet={"epochs": 1})
    archs = rank_archs(space, 3)
    [rec] = supernet_scores([st], archs, tmp_path)
    assert rec["epochs"] == 1 and rec["train_seconds"] > 0 and len(rec["recal_s"]) == 3
    net, data = loaded_supernet(st), data_for(st)
    with one_thread():
        for p, recal, plain in zip(archs, rec["recal"], rec["plain"], strict=True):
            assert score_trial(st, dict(p), None, trial=None)["val_accuracy"] == recal
            net.eval_arch = p  # eval mode runs eval_arch with the shared BN statistics
            assert evaluate(net, data, "val")["accuracy"] == plain
    assert supernet_scores([st], archs, tmp_path) == [rec]  # stored: read back, not redone


def test_part_d_draws_distinct_architectures_of_every_shared_dimension():
    space = resolve_space(load_study(SPREAD_STUDY))
    archs = spread_archs(space, 40)
    models = [decode(space, p).model for p in archs]
    assert len({json.dumps(m, sort_keys=True) for m in models}) == 40  # distinct
    assert spread_archs(space, 40) == archs and spread_archs(space, 5) == archs[:5]  # seeded
    g = torch.Generator().manual_seed(0)  # ARCH_SEED: the first draws of the supernet's sampler
    net = from_study(load_study(SPREAD_STUDY))
    assert [net.sample(g) for _ in range(3)] == archs[:3]
    for key in ("blocks", "adaptor", "method"):  # every shared dimension takes each of its values
        assert len({str(m[key]) for m in models}) > 1, key
    assert {m["adaptor"] for m in models} == {"none", "se", "stepnet", "eca"}
    assert {b for m in models for b in m["blocks"]} == {1, 2, 3}
    assert {x for m in models for x in m["method"]} == {"euler", "heun"}
    with pytest.raises(ValueError, match="`archs` must be at most"):
        spread_archs(space, 865)  # 3^3 depths × 4 adaptors × 2^3 methods = 864


@pytest.mark.parametrize("part", ["SPREAD", "ELASTIC"])
def test_parts_d_and_e_run_for_real_and_their_tau_is_scipy_s_of_the_stored_values(
    part, tmp_path, monkeypatch
):
    """The quick size shrunk (4 architectures, 2 seeds, 1 epoch; supernets of 1 and 2 epochs):
    every stored τ is ``scipy.stats.kendalltau`` of the stored scores and mean accuracies; each
    stored parameter count is the stand-alone network's (the elastic part's widths its own)."""
    tiny = RankSize(archs=4, seeds=2, epochs=1, short=1, long=2)
    rp = replace(getattr(_oneshot_rank, part), quick=tiny)
    monkeypatch.setattr(_oneshot_rank, part, rp)
    monkeypatch.setattr(_oneshot_rank, "N_BOOT", 100)
    assert main(["run", rp.claim, "--quick", "--out", str(tmp_path / "o")]) == 0
    res = json.loads((tmp_path / "o" / rp.claim / "result.json").read_text())
    space = resolve_space(load_study(rp.study))
    rows = res["architectures"]
    assert [r["params"] for r in rows] == spread_archs(space, 4)
    label = "blocks 3-1-3; adaptor none; method" if part == "SPREAD" else "blocks "
    assert rows[0]["architecture"].startswith(label)
    by = {t["id"]: t for t in res["tests"]}
    accs = np.array([r["accuracy"] for r in rows])  # (architectures, seeds)
    assert accs.shape == (4, 2) and ((accs > 0) & (accs <= 1)).all()
    mean = accs.mean(1)
    for k in ("short", "long"):
        for m in ("recal", "plain"):
            x = [r[f"{m}_{k}"] for r in rows]
            assert all(0 <= v <= 1 for v in x)
            tau = stats.kendalltau(x, mean).statistic
            assert _same(by[f"{m} {k} tau"]["estimate"], tau), (m, k)
    c = stats.kendalltau(accs[:, 0], accs[:, 1]).statistic
    assert _same(res["ceiling"]["tau"], c) and _same(by["ceiling"]["estimate"], c)
    assert by["ceiling"]["lo"] == by["ceiling"]["hi"] == by["ceiling"]["estimate"]  # claim 3's
    assert by["ceiling"]["verdict"] == ("held" if c > 0.6 else "not held")
    runs = res["runs_provenance"]
    assert {p["threads"] for p in runs} == {1} and res["epochs"] == {"short": 1, "long": 2}
    kw = {"num_classes": 10} | ({"widths": [4, 8, 16]} if part == "SPREAD" else {})
    models = [decode(space, r["params"]).model for r in rows]
    nets = [create_model("digits_resnet", **kw, **m) for m in models]
    assert [r["n_params"] for r in rows] == [count_params(n, trainable_only=False) for n in nets]
    if part == "ELASTIC":  # the widths vary between the drawn architectures
        assert len({tuple(m["widths"]) for m in models}) > 1


def _same(stored: float | None, expected: float) -> bool:
    """A stored value (NaN as null) equals ``expected``."""
    return math.isnan(expected) if stored is None else stored == pytest.approx(expected)


@pytest.mark.slow
def test_the_quick_experiment_runs_for_real(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "oneshot", "--quick", "--jobs", "2", "--out", str(out)]) == 0
    rank, search, lth, spread = (
        json.loads((out / c / "result.json").read_text()) for c in ONESHOT_CLAIMS
    )
    assert len(rank["architectures"]) == ONESHOT_QUICK.archs
    assert len(spread["architectures"]) == SPREAD_QUICK.archs
    for a in rank["architectures"]:
        assert all(0 < v <= 1 for v in (*a["accuracy"], a["recal_short"], a["recal_long"]))
    assert all(r["trials"] >= 1 and r["best"] for rs in search["search_runs"].values() for r in rs)
    assert all(0 < v <= 1 for vs in search["retrained"].values() for v in vs)
    assert lth["found"]["scored"] == ONESHOT_QUICK.lth_trials
    assert {p["threads"] for p in lth["runs_provenance"]} == {1}
