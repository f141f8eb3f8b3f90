"""A supernet built from a study (``from_study``): the study's params both ways, refusals.

Every shipped study is either shareable — then ``Supernet.sample`` gives exactly the flat params
an Optuna trial of that study stores, the params decode to the supernet's architecture, and
params -> arch -> params -> arch is stable (identity for bits and categoricals) — or refused with
a ConfigError naming the parameter or the model and the fix ``strategy: scratch``.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
import yaml

from odeattn.models import format_placement, parse_placement
from odeattn.study import (
    ConfigError,
    decode,
    density_mask,
    draw,
    encode,
    load_study,
    resolve_space,
    sample,
)
from odeattn.supernet import from_study, supernet_plan

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
STUDIES = {p.stem: p for p in sorted((ROOT / "studies").glob("*.yaml"))}
INVALID = ROOT / "tests" / "invalid_studies"
#: shipped study -> True (the supernet shares its space) or the key its ConfigError names
SHAREABLE = {
    "adaptors_supernet": True,
    "cifar100_lth4sa": "params.lr",
    "cifar10_adaptors_supernet": True,
    "cifar10_lth4sa_supernet": True,
    "cifar10_stepnet": "params.inputs",
    "evidence_paper": True,
    "evidence_deep": True,
    "elastic_supernet": True,
    "evidence_spread": True,
    "lm_resnet_digits": "model.name",
    "lth4sa": "params.lr",
    "lth4sa_ray": True,
    "lth4sa_supernet": True,
    "rk_stages": True,
    "rkcnn_digits": "model.name",
    "spread_supernet": True,
    "stepnet_adaptors": "params.inputs",
    "tns_proxy": True,
}
EXACT = {  # no floats
    "adaptors_supernet",
    "cifar10_adaptors_supernet",
    "cifar10_lth4sa_supernet",
    "evidence_deep",
    "elastic_supernet",
    "evidence_spread",
    "lth4sa_ray",
    "lth4sa_supernet",
    "rk_stages",
    "spread_supernet",
}
BIG = {  # ResNet-164: a few draws, no forward
    "cifar10_adaptors_supernet",
    "cifar10_lth4sa_supernet",
    "evidence_deep",
    "elastic_supernet",
    "evidence_spread",
    "evidence_paper",
}


def test_the_table_lists_every_shipped_study() -> None:
    assert set(SHAREABLE) == set(STUDIES)


def _stored_params(study, space, params: dict) -> dict:
    """The params an Optuna trial of ``study`` stores when its sampler proposes ``params``."""
    s = optuna.create_study(directions=study.directions)
    s.enqueue_trial(params)
    return sample(s.ask(), space)


@pytest.mark.parametrize("name", sorted(SHAREABLE))
def test_from_study_speaks_the_studys_params_both_ways(name: str) -> None:
    study = load_study(STUDIES[name])
    if SHAREABLE[name] is not True:
        with pytest.raises(ConfigError) as e:
            from_study(study)
        assert e.value.key == SHAREABLE[name]
        assert "strategy: scratch" in str(e.value) and "\n" not in str(e.value)
        return
    space, net = resolve_space(study), from_study(study).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 8, 8, generator=g)  # digits (the BIG ones run no forward)
    for _ in range(3 if name in BIG else 12):
        p = net.sample(g)
        assert _stored_params(study, space, p) == p  # the same flat dict a trial stores
        arch = net.arch_of(p)
        model = decode(space, p).model
        for key, value in arch.items():  # the params decode to the supernet's architecture
            if key not in model:  # a `when` switched it off: no attention, any mask
                assert key == "placement" and arch["adaptor"] == "none"
            elif key == "placement":
                value = parse_placement(value, arch.get("blocks", space.blocks))
                assert [list(m) for m in value] == [list(m) for m in model[key]]
            elif key == "method" and isinstance(model[key], str):
                assert value == [model[key]] * len(space.blocks)
            else:
                assert value == model[key]
        back = net.params_of(arch)
        assert net.arch_of(back) == arch and net.params_of(net.arch_of(back)) == back
        if name in EXACT:
            assert back == p
        if name not in BIG:
            torch.testing.assert_close(net(x, p), net(x, arch), rtol=0, atol=0)


def test_the_adaptors_study_draws_a_declared_preset_per_block_and_extracts_equal_networks() -> None:
    """``studies/adaptors_supernet.yaml``: every drawn trial has one ``adaptor.s<i>.b<j>`` per
    block of its drawn depth (2-4 a stage), each a declared preset; the extracted network runs
    those presets block by block and equals the supernet's path (weights moved off their
    initial values; outputs O(1)), and one block switched to "none" changes the output."""
    study = load_study(STUDIES["adaptors_supernet"])
    presets = resolve_space(study).config.params["adaptor"].choices
    assert presets == ["none", "se", "eca", "stepnet"]
    net = from_study(study).double().eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for w in net.parameters():
            w.add_(0.05 * torch.randn(w.shape, generator=g, dtype=w.dtype))
    x = torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64)
    seen: set[str] = set()
    for _ in range(5):
        p = net.sample(g)
        depth = [p[f"blocks.s{s}"] for s in range(3)]
        assert all(d in (2, 3, 4) for d in depth), p
        per_block = {f"adaptor.s{s}.b{b}" for s in range(3) for b in range(depth[s])}
        per_stage = {f"{k}.s{s}" for k in ("blocks", "method") for s in range(3)}
        assert set(p) == per_block | per_stage
        assert {p[k] for k in per_block} <= set(presets)
        seen |= {p[k] for k in per_block}
        names = [[p[f"adaptor.s{s}.b{b}"] for b in range(depth[s])] for s in range(3)]
        assert net.arch_of(p)["adaptor"] == names
        model = net.extract(p)
        stages = [getattr(model, f"layer{s + 1}").blocks for s in range(3)]
        assert [[getattr(b.step, "kind", "none") for b in st] for st in stages] == names
        y = net(x, p)
        torch.testing.assert_close(model(x), y, rtol=0, atol=1e-6)
        k = next(k for k in sorted(per_block) if p[k] != "none")
        assert (net(x, {**p, k: "none"}) - y).abs().max() > 1e-2  # that block's preset runs
    assert seen == set(presets)


def test_a_supernet_from_a_study_trains_on_its_params_and_starts_from_the_same_weights() -> None:
    study = load_study(STUDIES["lth4sa_supernet"])
    a, b = from_study(study), from_study(study)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, w), k
    a.train()
    a(torch.randn(4, 1, 8, 8))
    g = torch.Generator().manual_seed(supernet_plan(study).settings.seed)
    assert a.last_archs == [draw(resolve_space(study), g)]  # SPOS: one study draw per batch


def test_density_and_k_of_l_placements_are_encoded_per_mode() -> None:
    space = resolve_space(load_study(STUDIES["evidence_paper"]))  # density [0.3, 1], 18 blocks
    mask = [density_mask(18, d) for d in (0.3, 0.5, 1.0)]
    flat = encode(space, {"adaptor": "se", "placement": format_placement(mask)})
    assert flat["adaptor"] == "se" and 0.3 <= flat["placement.s0"] <= 1.0
    assert [list(m) for m in decode(space, flat).model["placement"]] == mask
    assert encode(space, {"adaptor": "none", "placement": None}) == {"adaptor": "none"}  # when
    with pytest.raises(ValueError, match="not in the space"):  # not evenly spaced
        encode(space, {"adaptor": "se", "placement": "1" * 17 + "0|" + "1" * 18 + "|" + "1" * 18})
    with pytest.raises(ValueError, match="not in the space"):  # density 0 < 0.3
        encode(space, {"adaptor": "se", "placement": "0" * 18 + "|" + "1" * 18 + "|" + "1" * 18})
    k_space = resolve_space(load_study(STUDIES["tns_proxy"]))  # k of 12 in [1, 3]
    flat = encode(k_space, {"placement": "0100|0000|0001"})
    assert flat["placement.k"] == 2 and flat["placement.r1"] == 1.0 and flat["placement.r0"] == 0
    assert decode(k_space, flat).model["placement"] == [
        (False, True, False, False), (False, False, False, False), (False, False, False, True)
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"placement\.k"):
        encode(k_space, {"placement": "1110|1000|0000"})


def test_study_draws_are_uniform_per_parameter() -> None:
    space = resolve_space(load_study(STUDIES["rk_stages"]))  # blocks 1..3, 5 tableaux per stage
    g = torch.Generator().manual_seed(1)
    draws = [draw(space, g) for _ in range(1500)]
    for s in range(3):
        for k in (1, 2, 3):  # 500 expected each; sd ≈ 18
            assert abs(sum(d[f"blocks.s{s}"] == k for d in draws) - 500) < 80
        assert abs(sum(d[f"method.s{s}"] == "rk4" for d in draws) - 300) < 70


@pytest.mark.parametrize(
    ("noise", "refused"),
    [({"bootstrap": 500}, False), ({"trials": 0}, False), ({"trials": 4}, True)],
)
def test_a_noise_section_is_refused_only_when_it_asks_for_retrains(
    tmp_path: Path, noise: dict, refused: bool
) -> None:
    """``noise.trials`` left at ``auto`` (or 0) is no noise ceiling in a supernet study, not a
    TypeError; a count above 0 is one line naming the key."""
    doc = yaml.safe_load((INVALID / "supernet_noise_trials.yaml").read_text())
    doc["search_space"] = str((INVALID / doc["search_space"]).resolve())
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc | {"noise": noise}))
    if not refused:
        load_study(tmp_path / "s.yaml")
        return
    with pytest.raises(ConfigError) as e:
        load_study(tmp_path / "s.yaml")
    assert e.value.key == "noise.trials" and "\n" not in str(e.value)
