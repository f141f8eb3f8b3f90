"""The CUDA path against the CPU path, by value: training step, data, odeint, NSI, checkpoints.

Every test is marked ``cuda`` and skipped without a CUDA device; ``benchmarks/gpu_check.sh`` runs
them first on a lent GPU (``python -m pytest -m cuda tests/test_cuda.py``). fp32 comparisons turn
TF32 off (cudnn's default is on), so CPU and GPU differ only by summation order.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from odeattn import odeint
from odeattn.data import BatchTransform, load_dataset
from odeattn.models import create_model, load_checkpoint, save_checkpoint
from odeattn.stiffness import _kernels, record
from odeattn.torchdiffeq import odeint_adjoint
from odeattn.train import TrainConfig, fit

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

ADAPTORS = [None, "se", "stepnet", "dia_lstm"]


@pytest.fixture
def fp32():
    """TF32 off for the test (restored after): fp32 on the GPU is then true fp32."""
    prev = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = prev


def _net(adaptor: str | None = None, blocks=(2, 2, 2)) -> torch.nn.Module:
    """A small pre-activation bottleneck ResNet (ResNet-164's block), CIFAR stem."""
    torch.manual_seed(0)
    return create_model("resnet164", blocks=blocks, widths=(4, 8, 16), adaptor=adaptor)


def _data(n: int = 32, **kw):
    return load_dataset(
        "synthetic", n_train=n, n_test=16, size=16, channels=3, val_fraction=0.0, **kw
    )


def _one_step(model, device: str, **cfg) -> tuple[float, torch.Tensor, torch.nn.Module]:
    """fit() for exactly one SGD step over the whole (unaugmented) split: (loss, Δw, model)."""
    net = copy.deepcopy(model)
    w0 = torch.cat([p.detach().flatten() for p in net.parameters()])
    c = TrainConfig(epochs=1, batch_size=32, lr=0.05, schedule="constant", augment=False)
    c = dataclasses.replace(c, device=device, eval_test=False, **cfg)
    loss = fit(net, _data(), c)["train_loss"]
    w1 = torch.cat([p.detach().flatten().cpu() for p in net.parameters()])
    return loss, w1 - w0, net


@pytest.mark.parametrize("adaptor", ADAPTORS)
def test_bf16_channels_last_training_step_matches_fp32_cpu(adaptor, fp32):
    model = _net(adaptor)
    ref_loss, ref_dw, ref = _one_step(model, "cpu")
    loss32, dw32, _ = _one_step(model, "cuda", amp=False, channels_last=False)
    loss16, dw16, net = _one_step(model, "cuda")  # CUDA defaults: bf16 autocast + channels_last
    assert next(net.parameters()).is_cuda
    assert net.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert abs(loss32 - ref_loss) <= 1e-4 * abs(ref_loss)
    assert torch.isfinite(torch.tensor(loss16)) and abs(loss16 - ref_loss) <= 2e-2 * abs(ref_loss)
    assert F.cosine_similarity(dw32, ref_dw, 0) > 0.9999
    assert F.cosine_similarity(dw16, ref_dw, 0) > 0.98
    assert abs(dw16.norm() / ref_dw.norm() - 1) < 0.05
    for b, b_ref in zip(net.buffers(), ref.buffers(), strict=True):  # BN running statistics
        if b.is_floating_point():
            torch.testing.assert_close(b.float().cpu(), b_ref.float(), rtol=3e-2, atol=3e-3)


def test_device_data_stay_uint8_and_equal():
    cpu, gpu = _data(), _data(device="cuda")
    for s_cpu, s_gpu in ((cpu.train, gpu.train), (cpu.test, gpu.test)):
        assert s_gpu.x.is_cuda and s_gpu.x.dtype == torch.uint8 and s_gpu.y.dtype == torch.int64
        assert torch.equal(s_gpu.x.cpu(), s_cpu.x) and torch.equal(s_gpu.y.cpu(), s_cpu.y)
    assert (gpu.mean, gpu.std, gpu.crop_pad) == (cpu.mean, cpu.std, cpu.crop_pad)


def test_normalisation_on_cuda_matches_cpu():
    x = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    kw = {"mean": (0.49, 0.48, 0.45), "std": (0.2, 0.2, 0.2)}
    want = BatchTransform(**kw).normalize(x)
    got = BatchTransform(**kw, device="cuda", channels_last=True).normalize(x.cuda())
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got.cpu(), want, rtol=1e-6, atol=1e-6)


def _candidates(x: torch.Tensor, p: int) -> torch.Tensor:
    """Every crop (zero padding p) and flip of each image, built the torchvision way on the CPU:
    (B, 2·(2p+1)², C, H, W)."""
    _, _, h, w = x.shape
    padded = F.pad(x, (p, p, p, p))
    crops = [
        padded[:, :, oy : oy + h, ox : ox + w] for oy in range(2 * p + 1) for ox in range(2 * p + 1)
    ]
    return torch.stack(crops + [c.flip(3) for c in crops], 1)


def test_crop_and_flip_on_cuda_are_torchvision_crops_of_the_cpu_images():
    """Each GPU-augmented image is exactly one zero-padded crop (+ flip) of its CPU original;
    over many images every offset and both flips occur; the same seed repeats the batch."""
    p, g = 2, torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (512, 3, 8, 8), dtype=torch.uint8, generator=g)  # no 0: padding shows
    tf = BatchTransform((0.0,) * 3, (1 / 255,) * 3, crop_pad=p, flip=True, device="cuda")
    gen = torch.Generator(device="cuda").manual_seed(7)
    out = tf.augment(x.cuda(), gen)  # scale ≈ 1, shift 0: the uint8 values as float32
    again = tf.augment(x.cuda(), torch.Generator(device="cuda").manual_seed(7))
    assert torch.equal(out, again)
    diff = (_candidates(x, p).float() - out.cpu()[:, None]).abs()  # (B, 2(2p+1)², C, H, W)
    hit = (diff < 0.5).flatten(2).all(2)  # (B, 2(2p+1)²): equal as uint8 values
    assert hit.any(1).all(), "a GPU-augmented image is no crop/flip of its original"
    first = hit.float().argmax(1)
    counts = torch.bincount(first % (2 * p + 1) ** 2, minlength=(2 * p + 1) ** 2)
    assert (counts > 0).all()
    assert 0.4 < (first >= (2 * p + 1) ** 2).float().mean() < 0.6  # flipped share ≈ 1/2


class _Field(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2 = torch.nn.Linear(6, 16), torch.nn.Linear(16, 6)

    def forward(self, t, y):  # y (B, 6)
        return self.l2(torch.tanh(self.l1(y) + t))


ODE_CASES = [
    ("rk4", {"options": {"step_size": 0.05}}),
    ("dopri5", {"rtol": 1e-6, "atol": 1e-8}),
    ("tsit5", {"rtol": 1e-6, "atol": 1e-8}),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("method", "kw"), ODE_CASES)
def test_odeint_on_cuda_matches_cpu(method, kw, dtype, fp32):
    f = _Field().to(dtype)
    y0 = torch.randn(5, 6, dtype=dtype, generator=torch.Generator().manual_seed(1))
    t = torch.linspace(0.0, 1.0, 4, dtype=dtype)
    want = odeint(f, y0, t, method=method, **kw)
    got = odeint(f.cuda(), y0.cuda(), t, method=method, **kw)  # t on the CPU: moved to y0's device
    assert got.is_cuda and got.dtype == dtype
    tol = {"rtol": 1e-9, "atol": 1e-11} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-5}
    torch.testing.assert_close(got.cpu(), want, **tol)


def test_adjoint_gradients_on_cuda_match_cpu(fp32):
    grads = []
    for dev in ("cpu", "cuda"):
        f = _Field().double().to(dev)
        y0 = torch.randn(5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        y0 = y0.to(dev).requires_grad_()
        t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64, device=dev)
        out = odeint_adjoint(f, y0, t, method="dopri5", rtol=1e-8, atol=1e-10)
        out.square().sum().backward()
        grads.append([y0.grad.cpu(), *(p.grad.cpu() for p in f.parameters())])
    for g_cuda, g_cpu in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(g_cuda, g_cpu, rtol=1e-7, atol=1e-9)


def _nsi(model, x, *, train: bool = False, device: str = "cpu", amp: bool = False):
    """(NSI (N, L), output) of a forward of a copy of ``model`` (its BN statistics stay as they
    are) on ``device`` (channels_last on CUDA), in train mode under autograd or eval without."""
    fmt = torch.channels_last if device == "cuda" else torch.contiguous_format
    net = copy.deepcopy(model).to(device, memory_format=fmt).train(train)
    x = x.to(device).contiguous(memory_format=fmt)
    autocast = torch.autocast(device, torch.bfloat16, enabled=amp)
    with record(net) as rec, torch.set_grad_enabled(train), autocast:
        out = net(x)
    return rec.nsi(), out.detach().float().cpu()


@pytest.mark.parametrize("adaptor", ADAPTORS)
def test_nsi_on_cuda_matches_the_fused_and_unfused_cpu_recording(adaptor, fp32, monkeypatch):
    """CPU with the fused kernels, CPU with torch reductions and CUDA (torch reductions, eval
    without grad and train mode under autograd) give the same NSI; bf16 autocast is close."""
    model = _net(adaptor, blocks=(3, 3, 3))
    x = torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    fused, ref = _nsi(model, x)
    fused_train, _ = _nsi(model, x, train=True)
    monkeypatch.setattr(_kernels, "_lib", None)
    monkeypatch.setattr(_kernels, "_tried", True)  # kernels off: the torch reductions
    unfused, _ = _nsi(model, x)
    torch.testing.assert_close(unfused, fused, rtol=1e-5, atol=1e-7)
    gpu, out = _nsi(model, x, device="cuda")
    assert gpu.shape == fused.shape == (6, 6)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gpu, fused, rtol=1e-4, atol=1e-6)
    gpu_train, _ = _nsi(model, x, train=True, device="cuda")
    torch.testing.assert_close(gpu_train, fused_train, rtol=1e-4, atol=1e-6)
    bf16, _ = _nsi(model, x, device="cuda", amp=True)
    assert torch.isfinite(bf16).all()
    torch.testing.assert_close(bf16, fused, rtol=5e-2, atol=1e-3)


def test_checkpoint_saved_on_cuda_loads_on_cpu_and_back(tmp_path, fp32):
    model, path = _net("se"), tmp_path / "ck.pt"
    fit(
        model,
        _data(),
        TrainConfig(epochs=1, batch_size=16, device="cuda", eval_test=False),
        checkpoint=path,
    )
    raw = torch.load(path, map_location="cpu", weights_only=True)
    ck = load_checkpoint(path)
    assert raw["epoch"] == ck["epoch"] == 1 and ck["architecture"]["adaptor"] == "se"
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    assert all(not v.is_cuda and torch.equal(v, state[k]) for k, v in ck["model"].items())
    cpu = create_model(**ck["architecture"])
    cpu.load_state_dict(ck["model"])
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    model.eval(), cpu.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x.cuda()).cpu(), cpu(x), rtol=1e-4, atol=1e-5)
    save_checkpoint(tmp_path / "cpu.pt", cpu, epoch=1)  # ... and back onto the GPU
    back = load_checkpoint(tmp_path / "cpu.pt", map_location="cuda")
    assert all(v.is_cuda for v in back["model"].values())
    gpu = create_model(**back["architecture"]).cuda().eval()
    gpu.load_state_dict(back["model"])
    assert all(torch.equal(v.cpu(), state[k]) for k, v in gpu.state_dict().items())


def test_resumed_cuda_run_continues_the_uninterrupted_one(tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=16, device="cuda", deterministic=True, eval_test=False)
    straight = _net()
    full = fit(straight, _data(), cfg)
    half = _net()
    fit(half, _data(), cfg, report=lambda epoch, _: epoch == 1, checkpoint=tmp_path / "ck.pt")
    resumed = fit(half, _data(), cfg, resume=tmp_path / "ck.pt")
    assert resumed["epochs_run"] == 2
    assert abs(resumed["train_loss"] - full["train_loss"]) <= 1e-3 * abs(full["train_loss"])
    for p, q in zip(half.parameters(), straight.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-5)
