"""fit(): equivalence with a hand-written SGD loop, schedules in closed form, exact resume,
divergence, the report seam, checkpoints, and digits accuracy of a small pre-activation ResNet."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from odeattn.data import load_dataset
from odeattn.train import (
    RECIPES,
    Diverged,
    TrainConfig,
    evaluate,
    fit,
    load_checkpoint,
    lr_factor,
    save_checkpoint,
)
from odeattn.train._recipes import COUNTS, RANGES


class TinyNet(nn.Module):
    """Conv-BN-ReLU-pool-dropout-linear: BN buffers and dropout RNG make resume non-trivial."""

    def __init__(self, channels: int = 1, classes: int = 10, seed: int = 0, dropout: float = 0.2):
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Dropout(dropout),
        )
        self.head = nn.Linear(32, classes)

    def forward(self, x):
        return self.head(self.body(x))

    def architecture(self):
        return {"name": "tiny", "widths": (8,)}


@pytest.fixture(scope="module")
def synth():
    return load_dataset("synthetic", n_train=256, n_test=64, val_fraction=0.125)


def _cfg(**kw):
    base = dict(epochs=2, batch_size=32, lr=0.05, device="cpu", eval_test=False, deterministic=True)
    return TrainConfig(**{**base, **kw})


# ------------------------------------------------------------------------ schedules (closed form)


def test_lr_factor_closed_forms():
    c = RECIPES["resnet164_cifar"]
    s = 391
    assert lr_factor(c, s, 81 * s - 1) == 1.0
    assert lr_factor(c, s, 81 * s) == pytest.approx(0.1)
    assert lr_factor(c, s, 122 * s) == pytest.approx(0.01)
    cos = TrainConfig(epochs=10, schedule="cosine")
    assert lr_factor(cos, 100, 0) == 1.0
    assert lr_factor(cos, 100, 500) == pytest.approx(0.5)
    assert lr_factor(cos, 100, 250) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    warm = TrainConfig(epochs=10, schedule="cosine", warmup_epochs=2)
    assert lr_factor(warm, 100, 0) == pytest.approx(1 / 200)
    assert lr_factor(warm, 100, 99) == pytest.approx(0.5)
    assert lr_factor(warm, 100, 600) == pytest.approx(0.5)  # halfway through the 8 cosine epochs
    step = TrainConfig(epochs=90, schedule="step", step_size=30, gamma=0.2)
    assert [lr_factor(step, 7, e * 7) for e in (29, 30, 60)] == pytest.approx([1, 0.2, 0.04])
    assert lr_factor(TrainConfig(schedule="constant"), 5, 10**6) == 1.0


def test_recipes_follow_the_papers():
    r = RECIPES["resnet164_cifar"]
    assert (
        r.epochs,
        r.lr,
        r.momentum,
        r.weight_decay,
        r.batch_size,
        r.milestones,
        r.gamma,
        r.nesterov,
    ) == (164, 0.1, 0.9, 1e-4, 128, (81, 122), 0.1, False)
    assert (RECIPES["dianet_cifar"].epochs, RECIPES["dianet_cifar"].milestones) == (180, (60, 120))
    rk = RECIPES["rkcnn_cifar"]
    assert (rk.batch_size, rk.nesterov, rk.epochs, rk.milestones) == (32, True, 300, (150, 225))
    ode = RECIPES["odenet_mnist"]
    assert (ode.epochs, ode.milestones, ode.weight_decay, ode.batch_size) == (
        160,
        (60, 100, 140),
        0.0,
        128,
    )
    assert rk.with_epochs(100).milestones == (50, 75)


def test_config_validation_messages():
    with pytest.raises(ValueError, match=r"schedule.*did you mean 'cosine'"):
        TrainConfig(schedule="cosin")
    with pytest.raises(ValueError, match="nesterov"):
        TrainConfig(nesterov=True, momentum=0.0)
    with pytest.raises(ValueError, match=r"`epochs` must be a positive int, but got epochs=0"):
        TrainConfig(epochs=0)
    with pytest.raises(
        ValueError, match=r"unknown training option 'weight_decy'.*did you mean 'weight_decay'"
    ):
        TrainConfig.from_dict({"weight_decy": 0.1})
    assert TrainConfig.from_dict({"milestones": [3, 5]}).milestones == (3, 5)
    with pytest.raises(TypeError, match="TrainConfig"):
        fit(TinyNet(), load_dataset("synthetic", n_train=8, n_test=4), {"epochs": 1})


BAD_SETTINGS = [  # (field, value, what the one line must say)
    ("lr", math.nan, "`lr` must be a finite number > 0, but got lr=nan; e.g. lr=0.1"),
    ("lr", math.inf, "`lr` must be a finite number > 0, but got lr=inf; e.g. lr=0.1"),
    ("lr", 0, "`lr` must be a finite number > 0, but got lr=0; e.g. lr=0.1"),
    ("lr", -0.1, "but got lr=-0.1"),
    ("lr", "1e-3", "but got lr='1e-3' (YAML reads 1e-3 as text; write 0.001)"),
    ("lr", True, "but got lr=True"),
    ("momentum", 1.0, "`momentum` must be in [0, 1), but got momentum=1.0; e.g. momentum=0.9"),
    ("momentum", -0.5, "but got momentum=-0.5"),
    ("momentum", math.nan, "but got momentum=nan"),
    ("weight_decay", -1e-4, "`weight_decay` must be a finite number >= 0, but got weight_decay"),
    ("weight_decay", math.inf, "but got weight_decay=inf"),
    ("gamma", 0.0, "`gamma` must be a finite number > 0, but got gamma=0.0"),
    ("warmup_epochs", math.nan, "but got warmup_epochs=nan"),
    ("label_smoothing", 1.0, "`label_smoothing` must be in [0, 1), but got label_smoothing=1.0"),
    ("grad_clip", math.inf, "`grad_clip` must be a finite number > 0, but got grad_clip=inf"),
    ("grad_clip", 0.0, "but got grad_clip=0.0; e.g. grad_clip=5.0, or None"),
    ("epochs", 0, "`epochs` must be a positive int, but got epochs=0; e.g. epochs=15"),
    ("epochs", 2.5, "but got epochs=2.5"),
    ("batch_size", 0, "`batch_size` must be a positive int, but got batch_size=0; e.g."),
    ("batch_size", -1, "but got batch_size=-1"),
    ("eval_batch_size", 0, "but got eval_batch_size=0"),
    ("step_size", 0, "but got step_size=0"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_SETTINGS)
def test_bad_numeric_settings_are_refused_at_construction(field, value, message):
    for make in (
        lambda: TrainConfig(**{field: value}),
        lambda: TrainConfig.from_dict({field: value}, RECIPES["digits"]),  # --set / a study's YAML
    ):
        with pytest.raises(ValueError) as e:
            make()
        assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_every_checked_range_has_a_bad_value_and_its_edges_are_exact():
    assert {f for f, _, _ in BAD_SETTINGS} >= {*RANGES, *COUNTS, "grad_clip"}
    TrainConfig(momentum=0.0, weight_decay=0.0, warmup_epochs=0.0, label_smoothing=0.0)  # edges
    TrainConfig(lr=1e-12, momentum=0.999, gamma=1e-9, label_smoothing=0.999, grad_clip=1e-6)
    with pytest.raises(ValueError, match="`epochs` must be a positive int"):
        RECIPES["digits"].with_epochs(0)


# --------------------------------------------------------------- equivalence with a plain loop


def _hand_loop(model, data, cfg):
    """The loop fit() must equal: seeded order, normalise, CE, SGD, per-iteration lr."""
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.SGD(
        model.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
    )
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    n, b, it = len(data.train), cfg.batch_size, 0
    steps = n // b
    for _ in range(cfg.epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, b):
            idx = perm[i : i + b]
            x = (data.train.x[idx].float() / 255 - mean) / std
            e = it / steps  # closed form: linear warm-up, x gamma after each milestone
            lr = (
                cfg.lr
                * min(1.0, (it + 1) / (cfg.warmup_epochs * steps))
                * cfg.gamma ** sum(e >= m for m in cfg.milestones)
            )
            for grp in opt.param_groups:
                grp["lr"] = lr
            loss = F.cross_entropy(model(x), data.train.y[idx], label_smoothing=cfg.label_smoothing)
            opt.zero_grad()
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            it += 1


@pytest.mark.parametrize(
    "opts", [dict(), dict(nesterov=True, label_smoothing=0.1, grad_clip=0.5, weight_decay=1e-3)]
)
def test_fit_equals_hand_written_loop(synth, opts):
    cfg = _cfg(
        epochs=3,
        augment=False,
        schedule="multistep",
        milestones=(1, 2),
        gamma=0.5,
        warmup_epochs=0.5,
        **opts,
    )
    data = load_dataset("synthetic", n_train=256, n_test=8, val_fraction=0.0)
    a, b = TinyNet(seed=3, dropout=0.0), TinyNet(seed=3, dropout=0.0)
    fit(a, data, cfg)
    _hand_loop(b, data, cfg)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=1e-5, atol=1e-6, msg=k)
    assert not torch.equal(a.head.weight, TinyNet(seed=3).head.weight)  # it did train


# ------------------------------------------------------------------ resume, divergence, report


def test_resume_from_mid_run_checkpoint_is_bit_identical(synth, tmp_path):
    cfg = _cfg(epochs=4, schedule="cosine", warmup_epochs=0.5)
    full = TinyNet(seed=1)
    m_full = fit(full, synth, cfg)
    part = TinyNet(seed=1)
    ck = tmp_path / "ck.pt"
    fit(part, synth, cfg, report=lambda e, m: e == 2, checkpoint=ck)
    assert load_checkpoint(ck)["epoch"] == 2
    resumed = TinyNet(seed=99)  # different init: everything must come from the checkpoint
    m_res = fit(resumed, synth, cfg, resume=ck)
    for (k, va), vb in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(va, vb), k
    assert m_res["train_loss"] == m_full["train_loss"] and m_res["epochs_run"] == 4
    assert not torch.equal(part.head.weight, full.head.weight)  # epoch 2 really was mid-run


def test_resume_renames_an_old_history_and_keeps_its_best_epoch(synth, tmp_path):
    cfg = _cfg(epochs=3)
    ck = tmp_path / "ck.pt"
    fit(TinyNet(seed=1), synth, cfg, report=lambda e, m: e == 2, checkpoint=ck)
    old = torch.load(ck, weights_only=True)
    assert {"val_accuracy", "train_accuracy"} <= set(old["history"][0])
    old["history"] = [  # a history written before `*_acc` became `*_accuracy`
        {(k.replace("_accuracy", "_acc")): v for k, v in h.items()} for h in old["history"]
    ]
    old["history"][0]["val_acc"] = 2.0  # an impossible value: only the renamed entry can carry it
    torch.save(old, ck)
    out = fit(TinyNet(seed=99), synth, cfg, resume=ck)
    assert out["best_val_accuracy"] == 2.0 and out["best_epoch"] == 1
    assert not any(k.endswith("_acc") for k in out)


def test_diverged_on_huge_learning_rate(synth):
    with pytest.raises(Diverged) as e:
        fit(TinyNet(), synth, _cfg(lr=1e12, weight_decay=0.0, schedule="constant"))
    assert e.value.epoch == 1 and "diverged in epoch 1" in str(e.value)
    again = pickle.loads(pickle.dumps(e.value))
    assert isinstance(again, Diverged) and again.epoch == 1


def test_diverged_on_non_finite_weights(synth):
    net = TinyNet()
    net.register_parameter("unused", nn.Parameter(torch.tensor([float("nan")])))
    with pytest.raises(Diverged, match="non-finite weights"):
        fit(net, synth, _cfg(epochs=1))


def test_errors_are_not_swallowed(synth):
    with pytest.raises(RuntimeError, match=r"shapes cannot be multiplied|size mismatch|mat1"):
        fit(TinyNet(channels=1, classes=10).head, synth, _cfg(epochs=1))


def test_report_true_stops_and_sees_each_epoch(synth):
    calls = []

    def report(epoch, metrics):
        calls.append((epoch, sorted(metrics)))
        return epoch == 2

    out = fit(TinyNet(), synth, _cfg(epochs=5), report=report)
    assert [c[0] for c in calls] == [1, 2]
    assert {
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "images_per_s",
    } <= set(calls[0][1])
    assert out["epochs_run"] == 2 and out["stopped_early"] is True
    assert "val_top5" not in calls[0][1]  # 10 classes: no top-5


def test_deterministic_flag_is_restored(synth):
    assert not torch.are_deterministic_algorithms_enabled()
    fit(TinyNet(), synth, _cfg(epochs=1, deterministic=True))
    assert not torch.are_deterministic_algorithms_enabled()


# ------------------------------------------------------------------------------ checkpoints


def test_checkpoint_contents_atomic_and_weights_only(synth, tmp_path):
    net = TinyNet()
    ck = tmp_path / "sub" / "last.pt"
    fit(net, synth, _cfg(epochs=2), checkpoint=ck)
    assert sorted(p.name for p in ck.parent.iterdir()) == ["last.pt"]  # no temp file left
    c = load_checkpoint(ck)
    assert c["epoch"] == 2 and c["architecture"] == {"name": "tiny", "widths": [8]}
    assert {"model", "optimizer", "scheduler", "rng", "config", "data", "history"} <= set(c)
    assert (
        len(c["history"]) == 2 and c["config"]["epochs"] == 2 and c["data"]["name"] == "synthetic"
    )
    fresh = TinyNet(seed=5)
    fresh.load_state_dict(c["model"])
    assert all(
        torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), net.state_dict().values())
    )
    torch.load(ck, weights_only=True)  # loadable without running code


def test_checkpoint_rejects_non_plain_architecture(tmp_path):
    net = TinyNet()
    net.architecture = lambda: {"name": "x", "tableau": object()}
    with pytest.raises(TypeError, match=r"architecture.*plain"):
        save_checkpoint(tmp_path / "c.pt", net)
    assert not list(tmp_path.iterdir())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_evaluate_matches_manual_accuracy(synth):
    net = TinyNet(dropout=0.0).eval()
    got = evaluate(net, synth, "test", batch_size=7)
    x = (synth.test.x.float() / 255 - torch.tensor(synth.mean).view(1, -1, 1, 1)) / torch.tensor(
        synth.std
    ).view(1, -1, 1, 1)
    with torch.no_grad():
        logits = net(x)
    assert got["accuracy"] == pytest.approx(
        (logits.argmax(1) == synth.test.y).float().mean().item()
    )
    assert got["loss"] == pytest.approx(F.cross_entropy(logits, synth.test.y).item(), rel=1e-5)


# ------------------------------------------------------------------------- digits accuracy


def test_digits_preact_resnet_reaches_95_percent():
    from odeattn.models import create_model

    data = load_dataset("digits")
    model = create_model("digits_resnet", num_classes=10)
    out = fit(model, data, TrainConfig.from_dict({"device": "cpu"}, RECIPES["digits"]))
    assert out["test_accuracy"] >= 0.95, out
    assert out["best_val_accuracy"] >= 0.93
