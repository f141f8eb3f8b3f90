"""Step 1 of ``strategy: supernet``: train the study's supernet once, resumably.

The supernet (``odeattn.supernet.from_study``) trains through ``odeattn.train.fit`` on the
study's data with the plan's training config (``supernet_plan``: the recipe stretched to
``supernet.epochs``, seeded with ``supernet.seed``); each training batch draws its own path
(SPOS) or the sandwich of largest, smallest and drawn paths. The checkpoint
``runs/<study>/supernet/<fingerprint>.pt`` is written after every epoch, so Ctrl-C or a kill
loses at most the running epoch and the next run resumes from it; ``<fingerprint>.json`` marks it
finished (and holds the training time), after which step 1 is skipped. The study records the
score fingerprint (``odeattn_supernet``): a study scored by one supernet is never continued with
another, nor a scratch study with a supernet or the reverse (exit 2, one line, naming the fix).
"""

from __future__ import annotations

import json
import os
import pickle
import time
from typing import Any

import optuna
import torch

from odeattn.search.storage import budget_used
from odeattn.study import ConfigError, Space, StudyConfig, check_data
from odeattn.study.config import SetupError
from odeattn.supernet import SupernetPlan, from_study, study_choices, supernet_plan
from odeattn.train import fit, load_checkpoint

__all__ = ["check_supernet", "prepare_supernet", "train_supernet"]

_KEY = "odeattn_supernet"


def check_supernet(study: StudyConfig, space: Space) -> None:
    """Validation (exit 2, one line): the study's space must be one a supernet shares."""
    if study.strategy == "supernet":
        study_choices(study, space)


def _epoch_line(console: Any, plan: SupernetPlan) -> Any:
    def report(epoch: int, m: dict[str, float]) -> bool:
        console.print(
            f"supernet epoch {epoch}/{plan.train.epochs}: train loss {m['train_loss']:.4f}, "
            f"val acc of the largest path {m.get('val_accuracy', float('nan')):.4f} (BatchNorm "
            f"statistics of all paths; scores recalibrate them) "
            f"({m['epoch_time_s']:.1f} s)",
            highlight=False,
        )
        return False

    return report


def _resume_from(plan: SupernetPlan, net: torch.nn.Module) -> int:
    """Epochs the checkpoint already holds (0 without one); a broken one is a SetupError."""
    if not plan.checkpoint.is_file():
        return 0
    try:
        ck = load_checkpoint(plan.checkpoint)
        net.load_state_dict(ck["model"])
    except (OSError, ValueError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SetupError(
            f"cannot resume the supernet from {plan.checkpoint}: {first}; delete the file to "
            "train the supernet again"
        ) from None
    return int(ck["epoch"])


def _write_done(plan: SupernetPlan, doc: dict[str, Any]) -> None:
    tmp = plan.done_file.with_name(f".{plan.done_file.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, plan.done_file)


def train_supernet(study: StudyConfig, console: Any) -> dict[str, Any]:
    """Train (or resume, or skip) the study's supernet; returns its ``<fingerprint>.json``."""
    plan = supernet_plan(study)
    if plan.trained:
        console.print(f"supernet: trained already ({plan.checkpoint}); step 1 skipped")
        return json.loads(plan.done_file.read_text())
    threads = int(os.environ.get("ODEATTN_THREADS", "0"))
    if threads:
        torch.set_num_threads(threads)
    net, data = from_study(study), check_data(study)
    done = _resume_from(plan, net)
    verb = f"resumed after epoch {done}" if done else "training"
    console.print(f"supernet: {verb}, {plan.train.epochs} epochs -> {plan.checkpoint}")
    resume = plan.checkpoint if done else None
    t0 = time.perf_counter()
    out = fit(
        net,
        data,
        plan.train,
        report=_epoch_line(console, plan),
        checkpoint=plan.checkpoint,
        resume=resume,
    )
    history = load_checkpoint(plan.checkpoint)["history"]
    doc = {
        "fingerprint": plan.fingerprint,
        "epochs": plan.train.epochs,
        "train_seconds": float(sum(h["epoch_time_s"] for h in history)),
        "this_run_seconds": time.perf_counter() - t0,
        "val_accuracy_largest": out.get("val_accuracy"),
        "threads": torch.get_num_threads(),
        "sandwich": net.sandwich,
    }
    _write_done(plan, doc)
    console.print(f"supernet: trained in {doc['train_seconds']:.1f} s ({plan.checkpoint})")
    return doc


def _refuse(study: StudyConfig, what: str) -> ConfigError:
    return ConfigError(
        study.file,
        "strategy",
        f"study {study.name!r} {what}; use another name (--study-name NEW) or another --storage",
    )


def prepare_supernet(study: StudyConfig, s: optuna.Study, console: Any) -> None:
    """Before the backend: refuse to mix strategies or supernets in one study, record which
    supernet scores it, and train that supernet while the study's budget is not spent."""
    old = s.user_attrs.get(_KEY)
    if study.strategy != "supernet":
        if old is not None:
            raise _refuse(study, "was scored by a supernet (strategy: supernet)")
        return
    fp = supernet_plan(study).score_fingerprint
    if old is None and s.get_trials(deepcopy=False):
        raise _refuse(study, "holds trials trained from scratch (strategy: scratch)")
    if old is not None and old != fp:
        raise _refuse(
            study, f"was scored with another supernet or scoring settings ({old}, now {fp})"
        )
    if old is None:
        s.set_user_attr(_KEY, fp)
    if budget_used(s) < study.budget.n_trials:
        train_supernet(study, console)
