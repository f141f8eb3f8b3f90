"""The units of issue 19's evidence: a placement trained from scratch, and a supernet's scores.

* :func:`study_variant` — the study with some settings changed (``runs_dir``, epochs, budget …),
  re-validated, as step 3 of the search derives its retrain study.
* :class:`StandaloneCache` — ``get(params, seed)``: ``odeattn.search.run_trial`` of the study
  (its data split, recipe and epochs; ``seed`` initialises the network and orders the data), the
  training a search trial does, cached as JSON under ``OUT/oneshot/standalone/`` by the study's
  model, data, training and measurement settings, the params, the seed and the thread count;
  :meth:`~StandaloneCache.fill` trains the missing ones ``jobs`` at a time.
* :func:`supernet_scores` — trains each study's supernet (``odeattn.search.oneshot
  .train_supernet``: ``fit``, a checkpoint per epoch, resumable) and scores every architecture
  with its weights, frozen: after BatchNorm recalibration (``odeattn.supernet.score``, what a
  supernet trial records) and with the supernet's shared statistics (``evaluate`` of
  ``extract(arch)``, which carries them), timing both; one JSON per supernet, ``jobs`` at a time.

Every unit runs on :data:`~._provenance.THREADS` torch thread(s) (:func:`one_thread` also pins
``ODEATTN_THREADS``, which the search's own code reads) and stores its provenance.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from odeattn.experiments._pool import run_jobs
from odeattn.experiments._provenance import THREADS, provenance
from odeattn.search import run_trial
from odeattn.search.oneshot import train_supernet
from odeattn.study import StudyConfig, data_for
from odeattn.supernet import from_study, score, supernet_plan
from odeattn.train import evaluate, load_checkpoint

__all__ = ["StandaloneCache", "one_thread", "store_record", "study_variant", "supernet_scores"]


def study_variant(base: StudyConfig, **changes: Any) -> StudyConfig:
    """``base`` with top-level settings replaced (a dict is merged into the section it
    replaces; ``None`` clears it), validated again like a study file."""
    doc = base.model_dump(exclude={"file"})
    for key, value in changes.items():
        old = doc.get(key)
        doc[key] = {**old, **value} if isinstance(value, dict) and isinstance(old, dict) else value
    return StudyConfig.model_validate({**doc, "file": base.file})


def _doc(study: StudyConfig) -> tuple[dict[str, Any], str]:
    """A study as picklable data for a worker process (rebuilt by :func:`_study`)."""
    return study.model_dump(exclude={"file"}), study.file


def _study(doc: dict[str, Any], file: str) -> StudyConfig:
    return StudyConfig.model_validate({**doc, "file": file})


@contextmanager
def one_thread() -> Iterator[None]:
    """torch and ``ODEATTN_THREADS`` at :data:`THREADS` in this process; both restored after."""
    old_env, old = os.environ.get("ODEATTN_THREADS"), torch.get_num_threads()
    os.environ["ODEATTN_THREADS"] = str(THREADS)
    torch.set_num_threads(THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(old)
        if old_env is None:
            os.environ.pop("ODEATTN_THREADS", None)
        else:
            os.environ["ODEATTN_THREADS"] = old_env


def _key(*parts: Any) -> str:
    doc = json.dumps([*parts, f"threads={THREADS}"], sort_keys=True, default=str)
    return hashlib.sha1(doc.encode()).hexdigest()[:16]


def store_record(path: Path, record: dict[str, Any]) -> None:
    """Store ``record`` whole (``.part`` first) with its provenance."""
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(record | {"provenance": provenance()}))
    tmp.replace(path)


def _train_to_file(doc: dict, file: str, params: dict, seed: int, path: str) -> None:
    """Train one placement as a trial of the study (no Optuna trial: nothing else is written)."""
    with one_thread():
        out = run_trial(_study(doc, file), dict(params), seed=seed)
        keep = ("val_accuracy", "flops", "attention_blocks", "seconds", "epochs_run")
        rec = {"arch": params, "seed": seed} | {k: out[k] for k in keep}
        store_record(Path(path), rec | {"n_params": out["params"]})  # provenance: 1 thread


class StandaloneCache:
    """``get(params, seed)``: the study's training of ``params`` with ``seed``, trained on first
    use; ``fill`` trains the missing requests ``jobs`` at a time (see the module docstring)."""

    def __init__(self, folder: str | Path, study: StudyConfig, jobs: int = 1) -> None:
        self.dir, self.study, self.jobs = Path(folder) / "standalone", study, jobs
        self.dir.mkdir(parents=True, exist_ok=True)
        keep = ("model", "data", "train", "measure", "search_space")
        self._setting = {k: v for k, v in study.model_dump(mode="json").items() if k in keep}

    def path(self, params: dict[str, Any], seed: int) -> Path:
        return self.dir / f"{_key(self._setting, params, seed)}.json"

    def fill(self, requests: Iterable[tuple[dict[str, Any], int]]) -> None:
        todo: dict[Path, tuple[dict[str, Any], int]] = {}
        for params, seed in requests:
            p = self.path(params, seed)
            if not p.is_file():
                todo.setdefault(p, (params, seed))
        doc, file = _doc(self.study)
        args = [(doc, file, prm, s, str(p)) for p, (prm, s) in todo.items()]
        for _ in run_jobs(_train_to_file, args, self.jobs):
            pass

    def get(self, params: dict[str, Any], seed: int) -> dict[str, Any]:
        path = self.path(params, seed)
        if not path.is_file():
            self.fill([(params, seed)])
        return json.loads(path.read_text())

    def mean_accuracy(self, params: dict[str, Any] | None, seeds: Iterable[int]) -> float:
        """Mean validation accuracy of ``params`` over ``seeds`` (NaN for None: nothing to train)."""
        if params is None:
            return math.nan
        accs = [self.get(params, s)["val_accuracy"] for s in seeds]
        return sum(accs) / len(accs)


def _timed(fn: Any) -> tuple[float, float]:
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def _score_to_file(doc: dict, file: str, archs: list[dict], path: str) -> None:
    """Train (or load) the study's supernet, then score every architecture both ways."""
    study = _study(doc, file)
    with one_thread():
        done = train_supernet(study, Console(quiet=True))
        plan = supernet_plan(study)
        net = from_study(study)
        net.load_state_dict(load_checkpoint(plan.checkpoint)["model"])
        net.eval()
        data, s = data_for(study), plan.settings
        kw = {"recal_batches": s.recal_batches, "batch_size": s.recal_batch_size, "seed": s.seed}
        rec: dict[str, list[float]] = {"recal": [], "recal_s": [], "plain": [], "plain_s": []}
        for params in archs:
            arch = net.arch_of(params)
            acc, t = _timed(lambda a=arch: score(net, a, data, **kw)["val_accuracy"])
            rec["recal"].append(acc)
            rec["recal_s"].append(t)
            acc, t = _timed(lambda a=arch: evaluate(net.extract(a).eval(), data, "val")["accuracy"])
            rec["plain"].append(acc)
            rec["plain_s"].append(t)
        head = {"epochs": plan.train.epochs, "fingerprint": plan.fingerprint, "archs": archs}
        store_record(Path(path), head | {"train_seconds": done["train_seconds"]} | rec)


def supernet_scores(
    studies: list[StudyConfig], archs: list[dict[str, Any]], folder: str | Path, jobs: int = 1
) -> list[dict[str, Any]]:
    """One record per study (module docstring): ``recal``, ``plain`` (accuracies in the order of
    ``archs``), ``recal_s`` / ``plain_s`` (seconds each), ``train_seconds``, ``epochs``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"scores_{supernet_plan(s).fingerprint}_{_key(archs)}.json" for s in studies]
    args = [(*_doc(s), archs, str(p)) for s, p in zip(studies, paths, strict=True)]
    todo = [a for a, p in zip(args, paths, strict=True) if not p.is_file()]
    for _ in run_jobs(_score_to_file, todo, jobs):
        pass
    return [json.loads(p.read_text()) for p in paths]
