"""A supernet trial (``strategy: supernet``, step 2): score a sampled architecture, train nothing.

EAN / LTH4SA (Huang et al., arXiv 2207.07858) score each candidate with the frozen supernet's
weights; SPOS (Guo et al. 2020) re-estimates the BatchNorm statistics of each path first.
:func:`score_trial` has the signature of ``train_replicates`` (the seam the backends call, chosen
by :func:`trial_function`): it loads the study's trained supernet once per process (the
checkpoint of ``supernet_plan(study)``, cached by path and modification time), converts the
trial's flat params into an architecture, and records

* ``val_accuracy`` / ``val_loss`` = ``odeattn.supernet.score`` (recalibration on the plan's
  ``recal_batches`` fixed training batches, then the validation split), also as
  ``supernet_accuracy`` / ``supernet_loss``;
* of the extracted stand-alone network (``Supernet.extract`` after the same recalibration):
  ``params``, ``flops``, TNS/NSI on the fixed evaluation set, ``attention_blocks``;
* ``epochs_run`` = 0, ``seconds``, ``threads``, ``seed`` (the supernet's), the ``supernet``
  score fingerprint and the dashboard attributes and artifacts of any trial (``record_trial``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from odeattn.proxies import count_params
from odeattn.search.storage import set_user_attrs
from odeattn.search.trial._dashboard import record_trial
from odeattn.search.trial._metrics import attention_blocks, cost, stiffness
from odeattn.search.trial._objective import Report, Screen
from odeattn.search.trial._replicates import train_replicates
from odeattn.study import STIFFNESS_METRICS, SetupError, Space, StudyConfig, data_for, input_batch
from odeattn.supernet import (
    Supernet,
    calibration_batches,
    from_study,
    recalibrate,
    score,
    supernet_plan,
)
from odeattn.train import load_checkpoint

__all__ = ["loaded_supernet", "score_trial", "trial_function"]

_LOADED: dict[str, tuple[tuple[int, int], Supernet]] = {}  # checkpoint -> (stamp, supernet)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def loaded_supernet(study: StudyConfig) -> Supernet:
    """The study's trained supernet in eval mode, loaded once per process (SetupError if the
    checkpoint of its plan is missing or unfinished)."""
    plan = supernet_plan(study)
    if not plan.trained:
        raise SetupError(
            f"the supernet of study {study.name!r} is not trained ({plan.checkpoint} missing or "
            f"unfinished); run python -m odeattn.search on the study: step 1 trains it"
        )
    ck = plan.checkpoint
    stamp = (ck.stat().st_mtime_ns, ck.stat().st_size)
    hit = _LOADED.get(str(ck))
    if hit is None or hit[0] != stamp:
        net = from_study(study)
        net.load_state_dict(load_checkpoint(ck)["model"])
        net.to(_device(plan.train.device)).eval()
        _LOADED.clear()  # one supernet per process
        _LOADED[str(ck)] = (stamp, net)
    return _LOADED[str(ck)][1]


def _extracted(net: Supernet, arch: dict[str, Any], batches: list[torch.Tensor]) -> Any:
    """The stand-alone network of ``arch`` with BatchNorm statistics recalibrated for it; the
    supernet's buffers are put back."""
    saved = [(b, b.detach().clone()) for b in net.buffers()]
    try:
        recalibrate(net, arch, batches)
        return net.extract(arch).eval()
    finally:
        with torch.no_grad():
            for b, value in saved:
                b.copy_(value)


def _measure(study: StudyConfig, model: Any, x: torch.Tensor) -> tuple[dict[str, float], dict]:
    m = study.measure
    summary = stiffness(model, x, kind=m.nsi, p_hat_m=m.p_hat_m, bn_mode="eval", batch=m.batch)
    latency = any(o.metric == "latency_ms" for o in study.objectives)
    out = {
        "params": float(count_params(model, trainable_only=False)),
        "attention_blocks": float(attention_blocks(model.architecture())),
        **cost(model, tuple(x.shape[1:]), latency=latency, latency_batch=m.latency_batch),
        **{k: summary[k] for k in (*STIFFNESS_METRICS, "tns_se")},
        "eval_samples": float(len(x)),
    }
    return out, summary


def score_trial(
    study: StudyConfig,
    params: dict[str, Any],
    report: Report | None = None,
    *,
    trial: Any,
    space: Space | None = None,
    screen: Screen | None = None,
    stopped: Callable[[], bool] | None = None,
    deadline: Any = None,
) -> dict[str, Any]:
    """Score ``params`` with the study's supernet (module docstring); ``train_replicates``'s
    signature: ``report`` is never called (nothing trains), ``space``, ``screen`` (refused by
    the schema for this strategy), ``stopped`` and ``deadline`` (a score takes seconds; the
    worker loop checks T between trials) are not used."""
    t0 = time.perf_counter()
    s = supernet_plan(study).settings
    try:
        net, data = loaded_supernet(study), data_for(study)
        arch = net.arch_of(params)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SetupError(f"supernet trial set-up failed ({type(e).__name__}: {first})") from e
    device = next(net.parameters()).device
    data = data.to(device)
    kw = {"batch_size": s.recal_batch_size, "seed": s.seed}
    got = score(net, arch, data, recal_batches=s.recal_batches, **kw)
    model = _extracted(net, arch, calibration_batches(data, s.recal_batches, **kw))
    out, summary = _measure(study, model, input_batch(data, study.measure.samples, device))
    out |= {
        "val_accuracy": got["val_accuracy"],
        "val_loss": got["val_loss"],
        "supernet_accuracy": got["val_accuracy"],
        "supernet_loss": got["val_loss"],
        "epochs_run": 0.0,
        "screened_out": 0.0,
        "seed": float(s.seed),
        "threads": float(torch.get_num_threads()),
        "seconds": time.perf_counter() - t0,
    }
    if trial is not None:
        full = model.architecture()
        record_trial(study, trial, model, full, out, {"end": summary}, {}, {})
        extra = {k: out[k] for k in ("supernet_accuracy", "supernet_loss", "seconds")}
        extra |= {"strategy": "supernet", "supernet": supernet_plan(study).score_fingerprint}
        set_user_attrs(trial, extra)
    return out


def trial_function(study: StudyConfig) -> Callable[..., dict[str, Any]]:
    """The trial the backends run for ``study.strategy``: ``train_replicates`` (scratch) or
    :func:`score_trial` (supernet); both take ``(study, params, report, *, trial, space,
    screen, stopped)``."""
    return score_trial if study.strategy == "supernet" else train_replicates
