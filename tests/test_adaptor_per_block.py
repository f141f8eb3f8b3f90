"""The adaptor per block (issue 19): models built from a list per stage of preset names, the
supernet's per-block draw with its own weights per choice, and the study's ``type: per_block``.

The supernet's path = extracted model equality on sampled per-block architectures is
``tests/test_supernet.py`` (cases ``per_block`` and ``per_block_all``); here: the model form
against the single-name form it generalises, the per-choice weights, the study round trip.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch

from odeattn.adaptors import create_adaptor
from odeattn.models import create_model
from odeattn.proxies import count_params
from odeattn.search.trial import attention_blocks
from odeattn.study import ConfigError, decode, load_study, resolve_space, sample
from odeattn.supernet import Choices, Supernet, from_study

torch.set_num_threads(1)

NAME = "digits_resnet"
KW = {"blocks": [3, 3, 3], "widths": [16, 16, 16], "stem_width": 8}
FIXED = {"widths": [16, 16, 16], "stem_width": 8}
PER_BLOCK = Choices(adaptors=("none", "se", "eca", "stepnet"), adaptor_per_block=True)
X = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def _seeded(**kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(NAME, **KW, **kw).eval()


@pytest.mark.parametrize(
    ("per_block", "single", "placement"),
    [
        ([["se", "none", "se"], ["none"] * 3, ["se"] * 3], "se", "101|000|111"),
        ([["dia_lstm", "none", "dia_lstm"]] * 3, "dia_lstm", "101|101|101"),  # stage-shared
        ([["none"] * 3] * 3, "se", "000|000|000"),
    ],
)
def test_one_preset_per_block_is_the_placement_form(per_block, single, placement):
    a, b = _seeded(adaptor=per_block), _seeded(adaptor=single, placement=placement)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    torch.testing.assert_close(a(X), b(X), rtol=0, atol=0)
    assert a.architecture()["sharing"] == b.architecture()["sharing"]


def test_mixed_presets_build_each_blocks_own_adaptor():
    names = [["se", "eca", "none"], ["stepnet", "none", "se"], ["eca"] * 3]
    model = _seeded(adaptor=names)
    plain = count_params(create_model(NAME, **KW))
    per = {n: count_params(create_adaptor(n, 16)) for n in ("se", "eca", "stepnet")}
    assert count_params(model) == plain + sum(per[n] for g in names for n in g if n != "none")
    kinds = [[getattr(getattr(model, f"layer{s + 1}").blocks[i].step, "kind", "none")
              for i in range(3)] for s in range(3)]  # fmt: skip
    assert kinds == names
    arch = model.architecture()
    assert arch["adaptor"] == names and arch["placement"] is None and arch["sharing"] == "block"
    assert attention_blocks(arch) == 7  # the names other than "none"
    again = create_model(**arch)
    assert again.architecture() == arch and count_params(again) == count_params(model)
    assert not torch.allclose(model(X), _seeded(adaptor=[["se"] * 3] * 3)(X))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"adaptor": [["se"] * 3] * 2}, r"`adaptor` must be one list per stage .*3\|3\|3"),
        ({"adaptor": [["se"] * 3, ["se"] * 2, ["se"] * 3]}, "stage 1 has 2 names"),
        (
            {"adaptor": [["se", "sx", "se"], ["se"] * 3, ["se"] * 3]},
            r"unknown adaptor 'sx'; did you mean 'se'.*stage 0, block 1",
        ),
        ({"adaptor": [["se"] * 3] * 3, "placement": "111|111|111"}, "`placement` must be None"),
        (
            {"adaptor": [["se", "eca", "none"], ["se"] * 3, ["se"] * 3], "sharing": "stage"},
            r"`adaptor\[0\]` must name one preset besides 'none' .*mixes \['eca', 'se'\]",
        ),
        ({"adaptor": [["dia_lstm", "se", "none"]] * 3}, "`sharing` must be given"),
    ],
)
def test_a_wrong_per_block_adaptor_names_the_stage_block_and_fix(kw, match):
    with pytest.raises(ValueError, match=match):
        create_model(NAME, **{**KW, **kw})


def test_mixed_defaults_build_with_an_explicit_sharing():
    model = create_model(NAME, **KW, adaptor=[["dia_lstm", "se", "none"]] * 3, sharing="block")
    assert model.architecture()["sharing"] == "block"


# -- supernet ---------------------------------------------------------------------------------
def _perturb(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g))


def test_each_choice_of_a_block_has_its_own_weights():
    sn = Supernet(NAME, FIXED, choices=PER_BLOCK).eval()
    ids = {}  # every (bank, stage, block) owns parameters no other one holds
    for key, bank in sn.adaptors.items():
        for s, stage in enumerate(bank):
            for i, mod in enumerate(stage):
                ids[key, s, i] = {id(p) for p in mod.parameters()}
    assert sorted(k for k, *_ in ids) == sorted(
        k for k in ("eca__block", "se__block", "stepnet__block") for _ in range(9)
    )
    owned = [v for v in ids.values()]
    assert all(v and not (v & w) for j, v in enumerate(owned) for w in owned[:j])
    arch = {"adaptor": [["se", "se", "none"], ["eca", "stepnet", "se"], ["none"] * 3]}
    out = sn(X, arch)
    _perturb(sn.adaptors["eca__block"][0][1], 1)  # block (0, 1) runs SE: ECA's weights unused
    _perturb(sn.adaptors["se__block"][0][2], 2)  # block (0, 2) has no adaptor
    torch.testing.assert_close(sn(X, arch), out, rtol=0, atol=0)
    _perturb(sn.adaptors["se__block"][0][1], 3)  # the weights block (0, 1) runs
    assert not torch.allclose(sn(X, arch), out)
    model = sn.extract(arch)
    assert count_params(model) == count_params(create_model(NAME, **FIXED, **arch))
    got, want = model.layer1.blocks[1].step.state_dict(), sn.adaptors["se__block"][0][1]
    assert all(torch.equal(got[k], v) for k, v in want.state_dict().items())
    torch.testing.assert_close(model(X), sn(X, arch), rtol=0, atol=1e-6)


def test_per_block_draws_are_uniform_per_block_and_bounded():
    sn = Supernet(NAME, FIXED, choices=PER_BLOCK)
    g = torch.Generator().manual_seed(0)
    draws = [sn.sample(g)["adaptor"] for _ in range(300)]
    assert all([len(s) for s in d] == [3, 3, 3] for d in draws)
    names = [n for d in draws for g in d for n in g]
    for o in PER_BLOCK.adaptors:  # 2700 draws, 1/4 each: 5 standard deviations
        assert abs(names.count(o) / 2700 - 0.25) < 5 * (0.25 * 0.75 / 2700) ** 0.5
    assert sn.largest() == {"adaptor": [["stepnet"] * 3] * 3}
    assert sn.smallest() == {"adaptor": [["none"] * 3] * 3}


@pytest.mark.parametrize(
    ("fixed", "choices", "match"),
    [
        (FIXED, {"adaptor_per_block": True}, "`choices.adaptors` must list the presets"),
        (
            FIXED,
            {"adaptors": ("none", "se"), "adaptor_per_block": True, "placement": True},
            "`choices.placement` must be False with adaptor_per_block",
        ),
        (FIXED, {"adaptors": ("se",), "adaptor_per_block": 1}, "must be True or False"),
        (
            FIXED,
            {"adaptors": ("se", "dia_lstm"), "adaptor_per_block": True},
            "more than one preset needs sharing 'block'.*'dia_lstm'",
        ),
        (
            FIXED,
            {"adaptors": ("se", "eca"), "adaptor_per_block": True, "sharing": ("block", "stage")},
            "more than one preset needs sharing 'block'",
        ),
        (
            {**FIXED, "placement": "1|1|1", "blocks": [1, 1, 1]},
            {"adaptors": ("none", "se"), "adaptor_per_block": True},
            "fixed `placement` cannot go with adaptor_per_block",
        ),
    ],
)
def test_per_block_supernet_construction_errors(fixed, choices, match):
    with pytest.raises(ValueError, match=match):
        Supernet(NAME, fixed, choices=choices)


@pytest.mark.parametrize(
    ("fixed", "adaptors", "sharing"),
    [
        ({"sharing": "block"}, ("none", "dia_lstm", "se"), "block"),  # DIA with per-block ones
        ({}, ("none", "dia_lstm"), "stage"),  # one stage-shared preset: a placement, ranked
    ],
)
def test_stage_default_presets_in_a_per_block_supernet(fixed, adaptors, sharing):
    choices = {"adaptors": adaptors, "adaptor_per_block": True}
    sn = Supernet(NAME, {**FIXED, **fixed}, choices=choices).double().eval()
    g, x = torch.Generator().manual_seed(3), X.double()
    for arch in [sn.largest(), *(sn.sample(g) for _ in range(3))]:
        model = sn.extract(arch)
        assert model.architecture()["sharing"] == sharing
        assert count_params(model) == count_params(create_model(NAME, **FIXED, **fixed, **arch))
        torch.testing.assert_close(model(x), sn(x, arch), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("adaptor", "match"),
    [
        ([["se"] * 3] * 2, r"`arch\['adaptor'\]` must be a list per stage"),
        ("se", r"`arch\['adaptor'\]` must be a list per stage"),
        ([["se", "cbam", "se"]] + [["se"] * 3] * 2, "not among the supernet's choices"),
    ],
)
def test_a_per_block_architecture_outside_the_choices_is_an_error(adaptor, match):
    sn = Supernet(NAME, FIXED, choices=PER_BLOCK)
    for run in (lambda a: sn(X, a), sn.extract):
        with pytest.raises(ValueError, match=match):
            run({"adaptor": adaptor})


# -- study ------------------------------------------------------------------------------------
SPACE = """params:
  blocks: {type: per_stage, choices: [1, 2]}
  adaptor: {type: per_block, choices: [none, se, eca]}
  method: {type: per_stage, choices: [euler, heun]}
"""
STUDY = """name: per_block
search_space: space.yaml
strategy: {strategy}
data: {{name: digits}}
model: {{name: digits_resnet, kwargs: {{widths: [8, 8, 8], stem_width: 8}}}}
objectives: [{{metric: val_accuracy, direction: maximize}}]
budget: {{n_trials: 2}}
"""


def _study(tmp_path: Path, strategy: str = "supernet"):
    (tmp_path / "space.yaml").write_text(SPACE)
    (tmp_path / "per_block.yaml").write_text(STUDY.format(strategy=strategy))
    return load_study(tmp_path / "per_block.yaml")


def test_a_per_block_study_samples_trial_params_and_extracts_equal_models(tmp_path):
    study = _study(tmp_path)
    space, net = resolve_space(study), from_study(study).double().eval()
    g, x = torch.Generator().manual_seed(0), X.double()
    for _ in range(4):
        p = net.sample(g)
        s = optuna.create_study()
        s.enqueue_trial(p)
        assert sample(s.ask(), space) == p  # the flat dict an Optuna trial stores
        arch = net.arch_of(p)
        assert arch["adaptor"] == decode(space, p).model["adaptor"]
        assert [len(gr) for gr in arch["adaptor"]] == arch["blocks"]
        assert {f"adaptor.s{s}.b{b}" for s, n in enumerate(arch["blocks"]) for b in range(n)} == {
            k for k in p if k.startswith("adaptor.")
        }
        assert net.params_of(arch) == p and net.arch_of(net.params_of(arch)) == arch
        model = net.extract(p)
        torch.testing.assert_close(model(x), net(x, p), rtol=0, atol=1e-6)


def test_a_scratch_study_builds_the_decoded_per_block_model(tmp_path):
    study = _study(tmp_path, "scratch")
    p = {"blocks.s0": 2, "blocks.s1": 1, "blocks.s2": 1, "method.s0": "heun", "method.s1": "euler",
         "method.s2": "euler", "adaptor.s0.b0": "se", "adaptor.s0.b1": "none",
         "adaptor.s1.b0": "eca", "adaptor.s2.b0": "none"}  # fmt: skip
    kw = decode(resolve_space(study), p).model
    model = create_model("digits_resnet", widths=[8, 8, 8], stem_width=8, **kw)
    assert model.architecture()["adaptor"] == [["se", "none"], ["eca"], ["none"]]


def test_per_block_must_target_the_adaptor(tmp_path):
    study = _study(tmp_path, "scratch")
    (tmp_path / "space.yaml").write_text(
        "params:\n  attn: {type: per_block, choices: [se], target: model.method}\n"
    )
    with pytest.raises(ConfigError) as e:
        resolve_space(load_study(tmp_path / "per_block.yaml"))
    assert e.value.key == "params.attn" and "must target model.adaptor" in str(e.value)
    assert study.name == "per_block"
