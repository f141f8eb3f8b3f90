"""Forward+backward of ResNet-164 built by odeattn vs a hand-written PyTorch network (same weights).

Cases: plain, +SE, +StepNet, +DIA-LSTM (pre-activation bottleneck ResNet-164, CIFAR stem, 10
classes). The reference is written the ordinary way (bearpaw ``preresnet.py`` blocks with the
attention module inline); weights are copied from the odeattn model and the outputs are checked
equal before timing. CPU, channels_last, batch 8 at 32x32 by default. Prints one JSON object per
case with ``ratio = t_odeattn / t_reference`` (medians of interleaved repeats, same process), plus
each adaptor's cost relative to the plain network (DIA paper: DIA-LSTM ≈ 12 % slower).

    flock /tmp/odeattn-bench.lock python benchmarks/bench_models.py [--batch 8] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics

import torch
import torch.nn.functional as F
from _common import time_calls
from torch import nn

from odeattn.models import create_model


class RefCell(nn.Module):
    """DIA-LSTM cell: small cells ih/hh, h = σ(o) σ(c)."""

    def __init__(self, c: int, r: int = 4):
        super().__init__()
        self.ih = nn.Sequential(nn.Linear(c, c // r), nn.ReLU(), nn.Linear(c // r, 4 * c))
        self.hh = nn.Sequential(nn.Linear(c, c // r), nn.ReLU(), nn.Linear(c // r, 4 * c))

    def forward(self, y, h, c):
        i, f, g, o = (self.ih(y) + self.hh(h)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.sigmoid(c), c


class RefStepNet(nn.Module):
    """StepNet adaptor: channel-wise FC over [GAP(x_t + Φ), GAP(x_t)] -> IEBN -> σ."""

    def __init__(self, c: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(c, 2))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))
        self.register_buffer("num_batches_tracked", torch.tensor(0))
        self.gamma, self.beta = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))
        self.ie_w, self.ie_b = nn.Parameter(torch.zeros(c)), nn.Parameter(torch.full((c,), -1.0))

    def forward(self, x, phi):
        gx = x.mean((2, 3))
        z = (gx + phi.mean((2, 3))) * self.weight[:, 0] + gx * self.weight[:, 1]  # (B, C)
        zn = F.batch_norm(
            z, self.running_mean, self.running_var, None, None, self.training, 0.1, 1e-5
        )
        out = zn * torch.sigmoid(z * self.ie_w + self.ie_b) * self.gamma + self.beta
        return torch.sigmoid(out)[:, :, None, None]


class RefBottleneck(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int, att: str | None):
        super().__init__()
        cout = 4 * planes
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, planes, 1, bias=False)
        self.bn2, self.conv2 = (
            nn.BatchNorm2d(planes),
            nn.Conv2d(planes, planes, 3, stride, 1, bias=False),
        )
        self.bn3, self.conv3 = nn.BatchNorm2d(planes), nn.Conv2d(planes, cout, 1, bias=False)
        self.att = att
        if att == "se":
            self.fc1, self.fc2 = nn.Linear(cout, cout // 16), nn.Linear(cout // 16, cout)
        elif att == "stepnet":
            self.stepnet = RefStepNet(cout)
        proj = stride != 1 or cin != cout
        self.downsample = nn.Conv2d(cin, cout, 1, stride, bias=False) if proj else None

    def branch(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return self.conv3(F.relu(self.bn3(out)))

    def forward(self, x, dia=None):
        out = self.branch(x)
        res = x if self.downsample is None else self.downsample(x)
        if self.att == "se":
            out = (
                out * torch.sigmoid(self.fc2(F.relu(self.fc1(out.mean((2, 3))))))[:, :, None, None]
            )
        elif self.att == "stepnet":
            out = out * self.stepnet(res, out)
        elif dia is not None:
            out = out * dia[:, :, None, None]
        return out + res


class RefResNet164(nn.Module):
    def __init__(self, att: str | None, n: int = 18):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.stages, self.cells, c = nn.ModuleList(), nn.ModuleList(), 16
        for s, planes in enumerate((16, 32, 64)):
            blocks = []
            for i in range(n):
                blocks.append(
                    RefBottleneck(c, planes, 2 if s and not i else 1, att if att != "dia" else None)
                )
                c = 4 * planes
            self.stages.append(nn.ModuleList(blocks))
            if att == "dia":
                self.cells.append(RefCell(c))
        self.dia = att == "dia"
        self.bn, self.fc = nn.BatchNorm2d(c), nn.Linear(c, 10)

    def forward(self, x):
        x = self.conv1(x)
        for s, blocks in enumerate(self.stages):
            if not self.dia:
                for b in blocks:
                    x = b(x)
                continue
            for i, b in enumerate(blocks):  # DIA: one LSTM per stage, state reset at block 0
                out = b.branch(x)
                y = out.mean((2, 3))
                if i == 0:
                    h = c = y.new_zeros(y.shape)
                h, c = self.cells[s](y, h, c)
                res = x if b.downsample is None else b.downsample(x)
                x = out * h[:, :, None, None] + res
        return self.fc(F.relu(self.bn(x)).mean((2, 3)))


def copy_weights(model: nn.Module, ref: RefResNet164) -> None:
    """odeattn -> reference, by structure (branch names match; adaptor tensors by name)."""
    ref.conv1.load_state_dict(model.stem[0].state_dict())
    for s, blocks in enumerate(ref.stages):
        stage = getattr(model, f"layer{s + 1}")
        for step, rb in zip(stage.blocks, blocks, strict=True):
            (branch,) = step.fields
            for name in ("bn1", "conv1", "bn2", "conv2", "bn3", "conv3"):
                getattr(rb, name).load_state_dict(getattr(branch, name).state_dict())
            if rb.downsample is not None:
                rb.downsample.load_state_dict(step.shortcut.state_dict())
            if rb.att == "se":
                _copy_named(step.step, rb, "")
            elif rb.att == "stepnet":
                _copy_named(step.step, rb.stepnet, "")
        if ref.dia:
            _copy_named(stage.adaptor, ref.cells[s], "")
    ref.bn.load_state_dict(model.head.bn.state_dict())
    ref.fc.load_state_dict(model.head.fc.state_dict())


_RENAME = {"ie_weight": "ie_w", "ie_bias": "ie_b"}


def _copy_named(src: nn.Module, dst: nn.Module, prefix: str) -> None:
    state = dst.state_dict()
    for key, value in src.state_dict().items():
        name = key.removeprefix("process.").replace("norms.0.", "")
        name = _RENAME.get(name, name)
        state[prefix + name].copy_(value.reshape(state[prefix + name].shape))


def bench_case(att: str | None, batch: int, repeats: int) -> dict:
    adaptor = {"se": "se", "stepnet": "stepnet", "dia": "dia_lstm"}.get(att or "")
    torch.manual_seed(0)
    model = create_model("resnet164", adaptor=adaptor)
    ref = RefResNet164(att)
    copy_weights(model, ref)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    model, ref = (
        model.to(memory_format=torch.channels_last),
        ref.to(memory_format=torch.channels_last),
    )
    model.eval(), ref.eval()
    with torch.no_grad():
        want = ref(x)
        err = ((model(x) - want).abs().max() / want.abs().max()).item()
    if err > 1e-4:
        raise RuntimeError(f"{att}: reference differs from odeattn by {err} (relative)")
    model.train(), ref.train()

    def step(net):
        def run():
            net.zero_grad(set_to_none=True)
            net(x).sum().backward()

        return run

    for net in (model, ref):  # warm-up
        step(net)()
    t_ours, t_ref = [], []
    for _ in range(repeats):  # interleaved so drifts in machine load hit both
        t_ours += time_calls(step(model), 1)
        t_ref += time_calls(step(ref), 1)
    mo, mr = statistics.median(t_ours), statistics.median(t_ref)
    return {
        "case": f"resnet164+{att or 'plain'}",
        "t_odeattn_s": round(mo, 4),
        "t_reference_s": round(mr, 4),
        "ratio": round(mo / mr, 4),
        "max_rel_err_eval": err,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cases", default="plain,se,stepnet,dia")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    settings = {
        "device": "cpu",
        "threads": args.threads,
        "batch": args.batch,
        "input": "3x32x32",
        "memory_format": "channels_last",
        "repeats": args.repeats,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    plain = None
    for case in args.cases.split(","):
        res = bench_case(None if case == "plain" else case, args.batch, args.repeats)
        if case == "plain":
            plain = res["t_odeattn_s"]
        elif plain is not None:
            res["cost_vs_plain"] = round(res["t_odeattn_s"] / plain, 4)
        print(json.dumps({**res, **settings}), flush=True)


if __name__ == "__main__":
    main()
