"""Where a study's supernet lives and what its training and scores depend on (``supernet_plan``).

One plan per study, computed in one place (as ``odeattn.study.plan_for`` does for trials):

* ``train``: the study's training config (recipe, overrides, device) stretched to
  ``supernet.epochs`` (default: the plan's epochs), seeded with ``supernet.seed``;
* ``fingerprint``: SHA-256 of everything the trained weights depend on (search space, base
  model, data, recipe, epochs, sandwich rule, seed); the checkpoint is
  ``runs/<study>/supernet/<fingerprint>.pt``, and ``<fingerprint>.json`` marks it finished, so a
  changed plan trains a new supernet and never resumes another's;
* ``score_fingerprint``: the weights' fingerprint plus the scoring settings (recalibration
  batches, the evaluation set): a study stores it, and its trials are only ever scored by one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odeattn.study import StudyConfig, SupernetCfg, plan_for, supernet_settings
from odeattn.train import TrainConfig

__all__ = ["SupernetPlan", "supernet_plan"]


def _hash(doc: Any) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SupernetPlan:
    """The resolved supernet settings of one study (see the module docstring)."""

    settings: SupernetCfg
    train: TrainConfig
    fingerprint: str
    score_fingerprint: str
    folder: Path

    @property
    def checkpoint(self) -> Path:
        return self.folder / f"{self.fingerprint}.pt"

    @property
    def done_file(self) -> Path:
        return self.folder / f"{self.fingerprint}.json"

    @property
    def trained(self) -> bool:
        """Whether a finished checkpoint of this plan exists."""
        return self.checkpoint.is_file() and self.done_file.is_file()


def supernet_plan(study: StudyConfig) -> SupernetPlan:
    """The study's :class:`SupernetPlan` (its ``supernet`` section, defaults if absent)."""
    plan, s = plan_for(study), supernet_settings(study)
    epochs = s.epochs or plan.epochs
    train = plan.train if epochs == plan.epochs else plan.train.with_epochs(epochs)
    train = dataclasses.replace(train, seed=s.seed)
    weights = {
        "space": plan.space.config.model_dump(mode="json"),
        "blocks": list(plan.space.blocks),
        "model": study.model.model_dump(mode="json"),
        "data": study.data.model_dump(mode="json"),
        "train": {k: v for k, v in dataclasses.asdict(train).items() if k != "device"},
        "sandwich": s.sandwich_paths if s.sandwich else None,
    }
    fp = _hash(weights)
    scoring = {
        "weights": fp,
        "recal": [s.recal_batches, s.recal_batch_size],
        "measure": study.measure.model_dump(mode="json"),
    }
    return SupernetPlan(s, train, fp, _hash(scoring), study.run_dir / "supernet")
