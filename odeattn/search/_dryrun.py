"""``--dry-run``: validate, sample a few configurations, build each model, run one batch.

Nothing is written: the configurations come from an in-memory study with a seeded
``RandomSampler``. The batch is real validation data when the dataset loads; when its files are
absent (paper-scale studies on a laptop) a synthetic batch of the dataset's shape is used and the
output says so. Each configuration gets one forward + backward (cross-entropy) and an NSI/TNS
summary of the batch, so a dry-run exercises the same code a trial does, minus ``fit``.
"""

from __future__ import annotations

from typing import Any

import optuna
import torch

from odeattn.models import create_model
from odeattn.proxies import count_params
from odeattn.search.trial import attention_blocks, build, stiffness
from odeattn.study import SHAPES, Space, StudyConfig, data_for, input_batch, sample

__all__ = ["dry_run"]


def _batch(study: StudyConfig, n: int) -> tuple[Any, torch.Tensor, torch.Tensor, str]:
    try:
        data = data_for(study)
    except (FileNotFoundError, OSError, ValueError) as e:
        if study.data.name not in SHAPES:
            raise
        shape, classes = SHAPES[study.data.name]
        g = torch.Generator().manual_seed(0)
        x = torch.randn((n, *shape), generator=g)
        y = torch.randint(0, classes, (n,), generator=g)
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return (
            None,
            x,
            y,
            (
                f"synthetic batch {tuple(x.shape)} instead of real data (data files absent: {first}); "
                "a real run stops with exit 2 until the files load"
            ),
        )
    x = input_batch(data, n)
    return data, x, data.val.y[:n].long(), f"validation batch {tuple(x.shape)} of {study.data.name}"


def dry_run(
    study: StudyConfig, space: Space, n_configs: int = 3, batch: int = 8
) -> list[dict[str, Any]]:
    """Sample ``n_configs`` architectures, build and run each on one batch; returns one row each."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data, x, y, where = _batch(study, batch)
    classes = getattr(data, "num_classes", None) or SHAPES.get(study.data.name, (None, None))[1]
    s = optuna.create_study(
        directions=study.directions, sampler=optuna.samplers.RandomSampler(seed=study.sampler.seed)
    )
    rows = []
    for _ in range(n_configs):
        trial = s.ask()
        params = sample(trial, space)
        model, train_over = build(study, space, params, data)
        if data is None and classes is not None and "num_classes" not in study.model.kwargs:
            kw = model.architecture()
            kw["num_classes"] = classes

            model = create_model(**kw)
        model.train()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        st = stiffness(model, x, kind=study.measure.nsi, p_hat_m=study.measure.p_hat_m)
        arch = model.architecture()
        rows.append(
            {
                "trial": trial.number,
                "params": params,
                "train": train_over,
                "placement": arch.get("placement"),
                "method": arch.get("method"),
                "n_params": count_params(model, trainable_only=False),
                "loss": loss.item(),
                "tns": st["tns"],
                "attention_blocks": attention_blocks(arch),
                "batch": where,
            }
        )
        s.tell(trial, [0.0] * len(study.directions))
    return rows
