"""The fused recording kernel: y bit-identical to x + Φ, norms equal to float64 references, and a
clean fall-back (same NSI) when it cannot or must not run."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch

from odeattn.stiffness import _kernels, record
from odeattn.stiffness._kernels import add_with_norms

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")


def _pair(shape, dtype, channels_last, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, p = (torch.randn(shape, generator=g, dtype=dtype) * 3 for _ in range(2))
    if channels_last:
        x, p = (t.contiguous(memory_format=torch.channels_last) for t in (x, p))
    return x, p


@needs_cc
def test_kernel_builds_on_this_machine():
    assert _kernels.load() is not None


@needs_cc
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("shape", "channels_last"),
    [
        ((1, 7, 33, 31), False),
        ((1, 7, 33, 31), True),
        ((3, 5, 9, 11), False),
        ((3, 5, 9, 11), True),
        ((32, 64, 8, 8), True),
        ((2, 3000), False),
    ],
)
def test_add_is_bit_identical_and_norms_match_float64(dtype, channels_last, shape):
    x, p = _pair(shape, dtype, channels_last)
    y, n = add_with_norms(x, p)
    ref = x + p
    assert torch.equal(y, ref) and y.stride() == ref.stride() and y.dtype == dtype
    exact = torch.stack([x.double().flatten(1).norm(dim=1), p.double().flatten(1).norm(dim=1)], 1)
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(n, exact, rtol=tol, atol=0)


@needs_cc
def test_kernel_uses_every_thread_for_a_single_sample():
    # B = 1 splits the sample into chunks; the partial sums must still add up exactly once
    x, p = _pair((1, 64, 32, 32), torch.float64, False, seed=3)
    _, n = add_with_norms(x, p)
    torch.testing.assert_close(n[0, 0], x.flatten().norm(), rtol=1e-13, atol=0)


def test_declines_what_it_cannot_fuse():
    x, p = _pair((2, 3, 4, 5), torch.float32, False)
    assert add_with_norms(x, p.contiguous(memory_format=torch.channels_last)) is None
    assert add_with_norms(x[:, :, :, :4], p[:, :, :, :4]) is None  # not dense per sample
    assert add_with_norms(x.half(), p.half()) is None
    assert add_with_norms(x, p.double()) is None
    xg = x.clone().requires_grad_()
    assert add_with_norms(xg, p) is None  # autograd must see the add
    with torch.no_grad():
        assert add_with_norms(xg, p) is not None or _kernels.load() is None


def test_disabled_or_unbuildable_kernel_falls_back(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(_kernels, "_lib", None)
    monkeypatch.setattr(_kernels, "_tried", False)
    monkeypatch.setenv("ODEATTN_KERNELS", "0")
    x, p = _pair((2, 3, 4, 5), torch.float32, False)
    assert add_with_norms(x, p) is None
    monkeypatch.setattr(_kernels, "_tried", False)
    monkeypatch.setenv("ODEATTN_KERNELS", "1")
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    monkeypatch.setenv("ODEATTN_CACHE_DIR", str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="odeattn"):
        assert add_with_norms(x, p) is None
    assert "could not build the fused recording kernel" in caplog.text
    assert not list(tmp_path.glob("*.so"))  # nothing half-written left in the cache
    monkeypatch.setattr(_kernels, "_tried", False)
    monkeypatch.delenv("CC")
    monkeypatch.setattr(_kernels, "_SOURCE_FILE", tmp_path / "missing.c")  # a broken install
    assert add_with_norms(x, p) is None


def _resnet(channels_last: bool):
    from odeattn.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10).eval()
    x = torch.randn(6, 3, 32, 32)
    if channels_last:
        model, x = (
            model.to(memory_format=torch.channels_last),
            x.contiguous(memory_format=torch.channels_last),
        )
    return model, x


@needs_cc
@pytest.mark.parametrize("channels_last", [False, True])
def test_recording_a_resnet_uses_the_kernel_and_matches_the_torch_path(channels_last, monkeypatch):
    model, x = _resnet(channels_last)
    with torch.no_grad():
        plain = model(x)
        with record(model) as fused:
            out = model(x)
        assert torch.equal(out, plain)  # recording changes no bit
        rows = [r for c in fused._columns.values() for r in c["rows"]]
        assert rows and all(isinstance(r, torch.Tensor) and r.shape == (6, 2) for r in rows)
        monkeypatch.setenv("ODEATTN_KERNELS", "0")
        monkeypatch.setattr(_kernels, "_tried", False)
        monkeypatch.setattr(_kernels, "_lib", None)
        with record(model) as eager:
            assert torch.equal(model(x), plain)
    assert all(isinstance(r, tuple) for c in eager._columns.values() for r in c["rows"])
    for kind in ("step", "fd"):
        torch.testing.assert_close(fused.nsi(kind), eager.nsi(kind), rtol=2e-6, atol=0)
    assert fused.stage == eager.stage and fused.names == eager.names


def test_recording_with_grad_takes_the_autograd_path():
    model, x = _resnet(False)
    model.train()
    with record(model) as rec:
        model(x).sum().backward()
    rows = [r for c in rec._columns.values() for r in c["rows"]]
    assert rows and all(isinstance(r, tuple) for r in rows)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@needs_cc
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dt_shape", [(5, 7, 1, 1), (1, 7, 1, 1), (5, 1, 1, 1), (1, 1, 1, 1)])
def test_step_norms_match_float64(dtype, channels_last, dt_shape):
    from odeattn.stiffness._kernels import step_norms

    x, p = _pair((5, 7, 33, 40), dtype, channels_last, seed=4)  # 1320 > 1024: blocked sums
    dt = torch.rand(dt_shape, dtype=dtype, generator=torch.Generator().manual_seed(5))
    dt = dt.requires_grad_()  # read-only use: grad mode does not matter
    out = step_norms(x, p, dt)
    xd, pd = x.double().flatten(1), p.double()
    ref = torch.stack(
        [
            xd.norm(dim=1),
            (dt.detach().double() * pd).flatten(1).norm(dim=1),
            pd.flatten(1).norm(dim=1),
        ],
        1,
    )
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(out, ref, rtol=tol, atol=0)


def test_step_norms_declines_other_steps():
    from odeattn.stiffness._kernels import step_norms

    x, p = _pair((2, 3, 4, 5), torch.float32, False)
    assert step_norms(x, p, torch.rand(2, 3, 4, 5)) is None  # spatial step: torch path
    assert step_norms(x, p, torch.rand(2, 3)) is None
    assert step_norms(x.flatten(1), p.flatten(1), torch.rand(2, 1)) is None
    assert (
        step_norms(x, p.contiguous(memory_format=torch.channels_last), torch.rand(2, 3, 1, 1))
        is None
    )


@needs_cc
def test_recording_an_attention_resnet_uses_the_step_kernel(monkeypatch):
    from odeattn.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, adaptor="se").eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        plain = model(x)
        with record(model) as fused:
            assert torch.equal(model(x), plain)
        monkeypatch.setenv("ODEATTN_KERNELS", "0")
        monkeypatch.setattr(_kernels, "_tried", False)
        monkeypatch.setattr(_kernels, "_lib", None)
        with record(model) as eager:
            model(x)
    rows = [r for c in fused._columns.values() for r in c["rows"]]
    assert rows and all(isinstance(r, torch.Tensor) and r.shape == (4, 3) for r in rows)
    for kind in ("step", "fd"):
        torch.testing.assert_close(fused.nsi(kind), eager.nsi(kind), rtol=2e-6, atol=0)
    assert (fused.nsi("step") > fused.nsi("fd")).all()  # SE gates Δt < 1


@needs_cc
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dt_shape", [(5, 7, 1, 1), (1, 7, 1, 1), (5, 1, 1, 1)])
def test_addcmul_is_bit_identical_and_norms_match_float64(dtype, channels_last, dt_shape):
    from odeattn.stiffness._kernels import addcmul_with_norms

    x, p = _pair((5, 7, 33, 40), dtype, channels_last, seed=6)
    dt = torch.rand(dt_shape, dtype=dtype, generator=torch.Generator().manual_seed(7))
    y, n = addcmul_with_norms(x, dt, p)
    ref = torch.addcmul(x, dt, p)
    assert torch.equal(y, ref) and y.stride() == ref.stride()
    pd = p.double()
    exact = torch.stack(
        [
            x.double().flatten(1).norm(dim=1),
            (dt.double() * pd).flatten(1).norm(dim=1),
            pd.flatten(1).norm(dim=1),
        ],
        1,
    )
    torch.testing.assert_close(n, exact, rtol=1e-6 if dtype == torch.float32 else 1e-13, atol=0)


def test_addcmul_declines_and_a_failed_self_check_keeps_torch(monkeypatch):
    from odeattn.stiffness._kernels import addcmul_with_norms

    x, p = _pair((2, 3, 4, 5), torch.float32, False)
    dt = torch.rand(2, 3, 1, 1)
    assert addcmul_with_norms(x, dt.double(), p) is None  # torch would promote: not ours
    assert addcmul_with_norms(x, torch.rand(2, 3, 4, 5), p) is None
    assert addcmul_with_norms(x, dt.requires_grad_(), p) is None  # autograd must see Δt
    monkeypatch.setitem(_kernels._ADDCMUL_OK, torch.float32, False)  # as on a non-fma build
    assert addcmul_with_norms(x, dt.detach(), p) is None


@needs_cc
def test_recording_an_attention_resnet_with_grad_changes_no_bit():
    from odeattn.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, adaptor="se").train()
    x = torch.randn(4, 3, 32, 32)
    torch.manual_seed(1)
    out = model(x)
    out.square().sum().backward()
    grads = [q.grad.clone() for q in model.parameters()]
    model.zero_grad()
    torch.manual_seed(1)
    with record(model) as rec:
        out2 = model(x)
        out2.square().sum().backward()
    assert torch.equal(out, out2)
    assert all(torch.equal(g, q.grad) for g, q in zip(grads, model.parameters()))
    rows = [r for c in rec._columns.values() for r in c["rows"]]
    assert all(isinstance(r, torch.Tensor) and r.shape == (4, 3) for r in rows)  # step_norms
