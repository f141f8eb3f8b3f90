"""``--dry-run`` of a ``strategy: supernet`` study: build its supernet, run each sampled
configuration through it once (eval mode, two images of the data's shape, no data files
needed), and compare it with the stand-alone network ``extract`` gives. Nothing is written."""

from __future__ import annotations

from typing import Any

import torch

from odeattn.proxies import count_params
from odeattn.study import SHAPES, StudyConfig, data_for, input_batch
from odeattn.supernet import from_study, supernet_plan

__all__ = ["dry_run_supernet"]


def _images(study: StudyConfig) -> torch.Tensor:
    if study.data.name in SHAPES:
        shape = SHAPES[study.data.name][0]
        return torch.randn((2, *shape), generator=torch.Generator().manual_seed(0))
    return input_batch(data_for(study), 2)


def dry_run_supernet(study: StudyConfig, params: list[dict[str, Any]]) -> list[str]:
    """One line on the supernet and one per sampled configuration (max |supernet − extracted|)."""
    net = from_study(study).eval()
    plan = supernet_plan(study)
    x = _images(study)
    lines = [
        f"supernet: {count_params(net):,} shared parameters, {plan.train.epochs} training epochs, "
        f"sandwich {net.sandwich}; checkpoint {plan.checkpoint}"
    ]
    with torch.no_grad():
        for i, p in enumerate(params):
            arch = net.arch_of(p)
            diff = (net(x, p) - net.extract(arch).eval()(x)).abs().max().item()
            lines.append(
                f"  #{i}: {arch} -> supernet path = extracted network (max diff {diff:.1e})"
            )
    return lines
