"""One resolved plan per study: every setting a trial depends on, computed in one place.

A study file leaves several settings to defaults or to more than one key (the recipe's epochs,
``train.epochs``, ``--epochs``; a replicate's seed; the epochs at which TNS is measured; the
rung limits of a scheduler). Computing one of them in two places lets the two disagree (issue
18: four rules for the number of epochs). :func:`plan_for` resolves the study once into an
immutable :class:`TrialPlan` which the backends, the pruning rules, the front, the noise ceiling,
the dashboard and the exports all read.

Rules, each stated once:

* ``epochs`` = ``train.epochs`` (which ``--epochs`` sets) if given, else the recipe's; the
  recipe's milestones, step size and warm-up are stretched to it (``TrainConfig.with_epochs``).
  ``train.overrides.epochs`` is refused by the schema, so there is no second source.
* the trial's seed = ``sampler.seed + trial number``; replicate r trains with
  ``seed + r · STRIDE`` (``None`` throughout when the sampler is unseeded).
* ``fingerprint`` hashes everything that changes what a trial measures (space, base model and
  blocks, data, recipe and its overrides, epochs, measurement settings, replicates, screen): a
  resume under the same name with any of these changed would mix trials trained differently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from odeattn.study._build import train_config
from odeattn.study._resolve import resolve_space
from odeattn.study._space import Space
from odeattn.study.config import StudyConfig
from odeattn.train import TrainConfig

__all__ = ["STRIDE", "TrialPlan", "plan_for", "replicate_seeds"]

#: Distance between the seeds of two replicates of one trial (far from the trial-number offsets).
STRIDE = 1_000_003


def replicate_seeds(seed: int | None, k: int) -> list[int | None]:
    """The k training seeds of one configuration whose first seed is ``seed`` (``None``: unseeded)."""
    return [None if seed is None else seed + r * STRIDE for r in range(k)]


@dataclass(frozen=True)
class TrialPlan:
    """The resolved settings of every trial of one study (see the module docstring)."""

    study: StudyConfig
    space: Space
    epochs: int  # every trial trains exactly this many epochs unless pruned
    train: TrainConfig  # the recipe with the study's overrides and epochs; no trial overrides
    replicates: int
    fingerprint: str

    def seed(self, number: int) -> int | None:
        """The first training seed of trial ``number``."""
        s = self.study.sampler.seed
        return None if s is None else s + number

    def seeds(self, number: int) -> list[int | None]:
        """The seeds of the ``replicates`` trainings of trial ``number``."""
        return replicate_seeds(self.seed(number), self.replicates)

    def violations(self, values: Mapping[str, Any]) -> list[float]:
        """``constraints`` of the study on measured ``values`` (≤ 0: satisfied; Optuna's
        convention); empty without constraints."""
        return [c.violation(values.get(c.metric)) for c in self.study.constraints]

    def feasible(self, values: Mapping[str, Any]) -> bool:
        """Whether every constraint holds for ``values``."""
        return all(v <= 0 for v in self.violations(values))

    def train_config(self, overrides: dict[str, Any], seed: int | None) -> TrainConfig:
        """The training config of one replicate: the plan's, the trial's overrides, the seed."""
        cfg = dataclasses.replace(self.train, **overrides) if overrides else self.train
        return cfg if seed is None else dataclasses.replace(cfg, seed=seed)


def _fingerprint(study: StudyConfig, space: Space, epochs: int) -> str:
    doc = {
        "space": space.config.model_dump(mode="json"),
        "blocks": list(space.blocks),
        "model": study.model.model_dump(mode="json"),
        "data": study.data.model_dump(mode="json"),
        "train": study.train.model_dump(mode="json", exclude={"epochs", "device"}),
        "epochs": epochs,
        "measure": study.measure.model_dump(mode="json"),
        "replicates": study.replicates,
        "screen": study.screen.model_dump(mode="json") if study.screen else None,
        "constraints": [c.model_dump(mode="json") for c in study.constraints],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan_for(study: StudyConfig) -> TrialPlan:
    """The study's :class:`TrialPlan` (validated through ``resolve_space``; cached)."""
    key = (study.file, study.model_dump_json())
    if key not in _CACHE:
        space = resolve_space(study)
        train = train_config(study)
        _CACHE[key] = TrialPlan(
            study=study,
            space=space,
            epochs=train.epochs,
            train=train,
            replicates=study.replicates,
            fingerprint=_fingerprint(study, space, train.epochs),
        )
    return _CACHE[key]


_CACHE: dict[tuple[str, str], TrialPlan] = {}
