"""The Ray worker side of a trial: train in the Optuna trial the driver asked, decide ASHA here.

The driver (``_ray_searcher.StudySearcher``) asks Optuna for a trial and hands Tune the config
``{"_odeattn_trial": number, "_odeattn_params": params}``. In the Ray worker, :func:`make_trainable`'s
function opens the same trial through the storage's public API
(``get_study_id_from_name``, ``get_trial_id_from_study_id_trial_number``), records an Optuna
heartbeat while it trains (RDB storages: any host can recover a trial whose worker died), tags
it with this process, runs ``trial_fn`` and returns the outcome as a plain result dict — an
exception of the trial becomes ``{"_odeattn_error": "Type: message"}`` (one line for the driver
to print, the traceback in the ``traceback`` user attribute), never a Tune traceback; a
``SetupError`` (the study is wrong, before training) is flagged so the driver stops the search.

ASHA (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020) is decided
here, from the storage, so that a stopped trial ends like any other: ``run_trial`` sees
``report() -> True``, stops training and records its attributes and artifacts. Rungs are
r_k = grace · η^k < max_t (never the last epoch); at a rung a trial continues when its value is in
the top 1/η of the values every trial of the study recorded at that rung, itself included:

    maximize: stop if v < Q_{1-1/η}(values at r_k)      minimize: stop if v > Q_{1/η}(values at r_k)

Per-epoch values are kept in the ``intermediate`` user attribute; the Optuna intermediate value
(``Trial.report``'s storage) is written only in single-objective studies, as the optuna backend
does (TPE scores pruned trials by their intermediate values, which a multi-objective study lacks).
"""

from __future__ import annotations

import math
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna

from odeattn.search.backends.ray._storage import open_storage
from odeattn.search.storage import heartbeat
from odeattn.study.config import SetupError

__all__ = [
    "ERROR",
    "FINAL",
    "META",
    "PARAMS",
    "PRUNED",
    "SETUP",
    "asha_stops",
    "make_trainable",
    "rungs",
]

META, PARAMS, FINAL, PRUNED, ERROR, SETUP = (
    "_odeattn_trial",
    "_odeattn_params",
    "_odeattn_final",
    "_odeattn_pruned",
    "_odeattn_error",
    "_odeattn_setup",
)


def rungs(max_epochs: int, grace_period: int, reduction_factor: float) -> list[int]:
    """ASHA's rung epochs: grace · η^k for k = 0, 1, … while below ``max_epochs``."""
    out, r = [], float(grace_period)
    while r < max_epochs:
        out.append(round(r))
        r *= reduction_factor
    return out


def asha_stops(value: float, recorded: Sequence[float], mode: str, eta: float) -> bool:
    """ASHA's rule at one rung: stop unless ``value`` is in the top 1/η of ``recorded``."""
    ref = np.asarray([v for v in recorded if math.isfinite(v)], dtype=float)
    if not math.isfinite(value) or len(ref) == 0:
        return not math.isfinite(value)
    if mode == "max":
        return bool(value < np.quantile(ref, 1.0 - 1.0 / eta))
    return bool(value > np.quantile(ref, 1.0 / eta))


def _recorded(study: optuna.Study, metric: str, epoch: int) -> list[float]:
    out = []
    for t in study.get_trials(deepcopy=False):
        vals = (t.user_attrs.get("intermediate") or {}).get(metric) or []
        if len(vals) >= epoch and vals[epoch - 1] is not None:
            out.append(float(vals[epoch - 1]))
    return out


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool | int | float):
            out[str(key)] = float(value)
        elif hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            out[str(key)] = float(value.item())
    return out


class _Reporter:
    """``report(epoch, metrics) -> stop``: per-epoch attribute, Tune report, the ASHA decision."""

    def __init__(self, trial: optuna.Trial, storage: Any, trial_id: int, plan: dict) -> None:
        self.trial, self.storage, self.trial_id, self.plan = trial, storage, trial_id, plan
        self.seen: dict[str, list[float | None]] = {}
        self.epoch, self.stopped = 0, False

    def __call__(self, epoch: int, metrics: Mapping[str, Any]) -> bool:
        from ray import tune

        flat, plan = _scalars(metrics), self.plan
        for key, value in flat.items():
            self.seen.setdefault(key, []).append(value if math.isfinite(value) else None)
        self.trial.set_user_attr("intermediate", self.seen)
        value = flat.get(plan["metric"], math.nan)
        if plan["single"] and math.isfinite(value):
            self.storage.set_trial_intermediate_value(self.trial_id, int(epoch), value)
        self.epoch = int(epoch)
        tune.report({**flat, "epoch": int(epoch)})
        if int(epoch) in plan["rungs"] and not self.stopped:
            recorded = _recorded(self.trial.study, plan["metric"], int(epoch))
            self.stopped = asha_stops(value, recorded, plan["mode"], plan["eta"])
        return self.stopped


def _open_trial(storage: Any, study_name: str, number: int) -> tuple[optuna.Trial, int]:
    study_id = storage.get_study_id_from_name(study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    study = optuna.load_study(study_name=study_name, storage=storage)
    return optuna.Trial(study, trial_id), trial_id


def make_trainable(
    study_cfg: Any,
    storage_url: str,
    study_name: str,
    trial_fn: Callable,
    objectives: Sequence[str],
    plan: dict,
    threads: int,
) -> Callable:
    """Tune's function trainable; ``plan`` holds the ASHA ``metric``, ``mode``, ``eta``, ``rungs``
    and ``single`` (one objective: intermediate values are stored)."""
    cwd = os.getcwd()  # relative paths of the study (runs/, artifacts, data) mean the driver's

    def trainable(config: dict) -> dict:
        import torch

        if os.path.isdir(cwd):  # Tune starts each trial in its own directory
            os.chdir(cwd)
        torch.set_num_threads(threads)  # never above the trial's CPUs (oversubscription: 4x slower)
        storage = open_storage(storage_url)
        trial, trial_id = _open_trial(storage, study_name, int(config[META]))
        report = _Reporter(trial, storage, trial_id, plan)
        with heartbeat(storage, trial_id):
            try:
                out = _scalars(trial_fn(study_cfg, config[PARAMS], report, trial=trial))
            except Exception as exc:  # the trial's own failure: one line for the driver
                message = f"{type(exc).__name__}: {exc}".splitlines()[0]
                trial.set_user_attr("error", message)
                trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
                setup = isinstance(exc, SetupError)  # the study is wrong: no budget spent
                if setup:
                    trial.set_user_attr("odeattn_setup", True)
                return {ERROR: message, SETUP: float(setup), "epoch": report.epoch}
        missing = [m for m in objectives if m not in out]
        if missing and not report.stopped:
            message = f"the trial returned no value for objective(s) {missing}"
            trial.set_user_attr("error", message)
            return {ERROR: message, "epoch": report.epoch}
        return {**out, "epoch": report.epoch, FINAL: 1.0, PRUNED: float(report.stopped)}

    return trainable
