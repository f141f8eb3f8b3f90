"""measure(model, data): one recorded evaluation pass turned into a JSON-serialisable report.

The report carries TNS (exact, StepNet Def. 2) for the chosen NSI definition and for both, NSI per
measured block (mean, std, quantiles), the stiffness proportion p̂ at chosen M = (M1, M2), accuracy
when labels are given, and optionally every sample's NSI row and TNS contribution.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from odeattn._errors import must
from odeattn.data import BatchTransform
from odeattn.stiffness import _tns
from odeattn.stiffness._depth import degenerate_stages, measured_blocks
from odeattn.stiffness._metrics import stiffness_proportion, tns_per_sample
from odeattn.stiffness._probe import preserved
from odeattn.stiffness._recorder import NSI_DEFINITIONS, Recorder, record


def _bundle_split(data: Any, split: str) -> tuple[Tensor, Tensor | None, Any]:
    """(images, labels, normaliser) from an odeattn.data Dataset bundle (duck-typed)."""
    for attr in (split, f"{split}_x", f"x_{split}"):
        part = getattr(data, attr, None)
        if part is None:
            continue
        if isinstance(part, tuple | list):
            return part[0], (part[1] if len(part) > 1 else None), data
        x = getattr(part, "x", getattr(part, "images", part))
        y = getattr(part, "y", getattr(part, "labels", None))
        return x, y, data
    raise ValueError(f"`data` has no split {split!r}; pass split='train', 'val' or 'test'")


def _normalise(x: Tensor, bundle: Any) -> Tensor:
    """uint8 images → float with the bundle's ``(x / 255 − mean) / std`` (the training transform)."""
    if x.dtype != torch.uint8:
        return x if x.is_floating_point() else x.float()
    mean, std = getattr(bundle, "mean", None), getattr(bundle, "std", None)
    if mean is None or std is None:
        return x.float() / 255.0
    return BatchTransform(mean, std, device=x.device).normalize(x)


def _batches(data: Any, split: str, batch_size: int) -> Iterator[tuple[Tensor, Tensor | None]]:
    """Yield (inputs, labels or None) from a tensor, an (x, y) pair, a loader or a data bundle."""
    if isinstance(data, Tensor):
        data = (data, None)
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], Tensor):
        x, y, bundle = data[0], data[1], None
    elif isinstance(data, Iterable) and not hasattr(data, split):
        for item in data:
            xb, yb = (item[0], item[1]) if isinstance(item, tuple | list) else (item, None)
            yield _normalise(xb, None), yb
        return
    else:
        x, y, bundle = _bundle_split(data, split)
    for i in range(0, x.shape[0], batch_size):
        yb = None if y is None else y[i : i + batch_size]
        yield _normalise(x[i : i + batch_size], bundle), yb


def _limited(batches: Iterator, limit: int | None) -> Iterator[tuple[Tensor, Tensor | None]]:
    seen = 0
    for xb, yb in batches:
        if limit is not None:
            if seen >= limit:
                return
            xb, yb = xb[: limit - seen], None if yb is None else yb[: limit - seen]
        seen += xb.shape[0]
        yield xb, yb


def _block_stats(
    nsi: Tensor, names: list[str], stage: list[int], qs: Sequence[float]
) -> list[dict]:
    q = torch.quantile(nsi, torch.tensor(list(qs), dtype=nsi.dtype), dim=0)  # (Q, L)
    return [
        {
            "name": names[j],
            "stage": stage[j],
            "mean": float(nsi[:, j].mean()),
            "std": float(nsi[:, j].std(unbiased=False)),
            "quantiles": {f"{p:g}": float(q[k, j]) for k, p in enumerate(qs)},
        }
        for j in range(nsi.shape[1])
    ]


def _run(model: nn.Module, batches: Iterator, include_first: bool, device: Any):
    correct, seen, labelled = 0, 0, True
    with record(model, include_first=include_first) as rec, torch.no_grad():
        for xb, yb in batches:
            out = model(xb.to(device))
            if yb is None or not isinstance(out, Tensor) or out.ndim != 2:
                labelled = False
                continue
            correct += int((out.argmax(1).cpu() == yb.cpu()).sum())
            seen += int(yb.shape[0])
    return rec, (correct / seen if labelled and seen else None)


def measure(
    model: nn.Module,
    data: Any,
    *,
    split: str = "test",
    kind: str = "step",
    mu: str = "sample",
    include_first: bool = False,
    m: Sequence[tuple[float, float]] = ((0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (0.5, 0.5)),
    quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
    batch_size: int = 256,
    per_sample: bool = False,
    max_samples: int | None = None,
    device: Any = None,
) -> dict[str, Any]:
    """Record NSI over ``data`` (in eval mode, without grad) and summarise its stiffness.

    ``data``: an input tensor, an ``(inputs, labels)`` pair, an iterable of batches, or an
    :func:`odeattn.data.load_dataset` bundle (``split`` picks the part; uint8 images are scaled and
    normalised with the bundle's mean/std as in training). ``m`` lists the (M1, M2) at which p̂ is
    reported; ``max_samples`` caps the number of samples; ``per_sample`` adds every sample's NSI
    row and TNS contribution.
    """

    if kind not in NSI_DEFINITIONS:
        raise must("kind", f"be one of {list(NSI_DEFINITIONS)}", kind, valid=NSI_DEFINITIONS)
    _tns.check_mu(mu)
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with preserved(model, bn_mode="eval"):
        batches = _limited(_batches(data, split, int(batch_size)), max_samples)
        rec, accuracy = _run(model, batches, include_first, device)
    report = _report(rec, kind, mu, m, quantiles, include_first=include_first, accuracy=accuracy)
    if not per_sample:
        del report["per_sample"]
    return report


def _report(
    rec: Recorder,
    kind: str,
    mu: str,
    m: Sequence[tuple[float, float]],
    quantiles: Sequence[float],
    *,
    include_first: bool,
    accuracy: float | None,
) -> dict[str, Any]:
    """The JSON report of a recorder's passes (``per_sample`` always filled in here)."""
    both = {k: rec.nsi(k) for k in NSI_DEFINITIONS}
    nsi, stage, names = both[kind], rec.stage, rec.names
    per = {k: tns_per_sample(v, stage, mu=mu) for k, v in both.items()}
    m_arr = np.asarray(m, dtype=np.float64).reshape(-1, 2)
    p_hat = stiffness_proportion(nsi, stage, m_arr[:, 0], m_arr[:, 1], mu=mu)
    return {
        "definition": kind,
        "definition_text": NSI_DEFINITIONS[kind],
        "mu": mu,
        "include_first": bool(include_first),
        "n_samples": int(nsi.shape[0]),
        "n_blocks": int(nsi.shape[1]),
        "measured_blocks": measured_blocks(stage),
        "degenerate_stages": degenerate_stages(stage),  # < 3 measured blocks: TNS/p̂ constant
        "tns": float(per[kind].mean()),
        "tns_by_definition": {k: float(v.mean()) for k, v in per.items()},
        "accuracy": accuracy,
        "stage": stage,
        "blocks": _block_stats(nsi, names, stage, quantiles),
        "stiffness_proportion": [
            {"m1": float(a), "m2": float(b), "p_hat": float(p)}
            for (a, b), p in zip(m_arr, np.atleast_1d(p_hat))
        ],
        "per_sample": {"tns": per[kind].tolist(), "nsi": nsi.tolist()},
    }
