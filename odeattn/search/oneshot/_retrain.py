"""Step 3 of ``strategy: supernet``: the best architectures trained from scratch, side by side.

Which: the ``supernet.top_k`` best finished trials by supernet score (one objective), or, with
several objectives, the Pareto front, then the front of the rest, and so on (non-dominated
sorting, Deb et al. 2002), each front ranked by its first objective, until ``top_k``; a
configuration served again as a duplicate counts once.

Where: a second study ``<name>-retrain`` in the same storage, one trial per picked configuration
(enqueued with its params, the supernet trial's number and score as user attributes), run by the
normal search (``strategy: scratch``: ``train_replicates`` with the plan's replicates, any
backend, ``--workers``). Why a study and not attributes of the first: every retraining is then
an ordinary trial with the search's reliability rules (exact budget, Ctrl-C and killed-worker
re-queueing, resume), its artifacts and its own optuna-dashboard view, and the supernet study's
values stay what the supernet measured. The retrain study's budget is the number of distinct
configurations picked so far, so a resumed run trains only what is missing and a finished one
nothing.

Then: supernet score and stand-alone validation accuracy (mean over replicates) per configuration
and Kendall τ between them with a bootstrap 95 % CI (``results.kendall_ci``), printed and stored
as the supernet study's ``supernet_retrain`` user attribute.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from odeattn.search.results import (
    check_outcome,
    conclude,
    finished,
    format_corr,
    kendall_ci,
    pareto,
)
from odeattn.search.storage import create_or_load, make_storage
from odeattn.search.trial import json_safe
from odeattn.study import StudyConfig, supernet_settings

__all__ = ["SUFFIX", "comparison", "conclude_for", "picks", "retrain_best", "retrain_config"]

SUFFIX = "-retrain"


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def picks(study: StudyConfig, s: optuna.Study) -> list[tuple[FrozenTrial, list[float]]]:
    """The configurations step 3 retrains (module docstring), best first."""
    seen, done = set(), []
    for t, v in finished(study, s):
        if "duplicate_of" not in t.user_attrs and _key(t.params) not in seen:
            seen.add(_key(t.params))
            done.append((t, v))
    k, sign = supernet_settings(study).top_k, -1.0 if study.directions[0] == "maximize" else 1.0
    out: list[tuple[FrozenTrial, list[float]]] = []
    while done and len(out) < k:  # one objective: the best first; several: front by front
        front = pareto(done, study.directions) if len(study.directions) > 1 else done
        out += sorted(front, key=lambda tv: (sign * tv[1][0], tv[0].number))
        done = [tv for tv in done if all(tv[0] is not f[0] for f in front)]
    return out[:k]


def retrain_config(study: StudyConfig, url: str, n: int) -> StudyConfig:
    """The ``<name>-retrain`` study: the same search trained from scratch, ``n`` trials."""
    doc = study.model_dump(exclude={"file"})
    doc |= {
        "name": study.name + SUFFIX,
        "strategy": "scratch",
        "supernet": None,
        "storage": url,
        "budget": {"n_trials": n, "timeout": None},
        "noise": {"trials": 0},
        "sampler": {"name": "random", "seed": study.sampler.seed},
    }
    return StudyConfig.model_validate({**doc, "file": study.file})


def _configurations(s: optuna.Study, rs: optuna.Study) -> set[str]:
    """The configurations the retrain study holds, in any state. A WAITING trial shows no params
    until it runs: it is known by the supernet trial it was enqueued for, or by the trial whose
    re-queue it is (``odeattn_retry_of``: an interrupted or dead trial)."""
    trials = {t.number: t for t in rs.get_trials(deepcopy=False)}
    out = set()
    for t in trials.values():
        if t.state != TrialState.WAITING:
            out.add(_key(t.params))
        elif "supernet_trial" in t.user_attrs:
            out.add(_key(s.trials[int(t.user_attrs["supernet_trial"])].params))
        elif "odeattn_retry_of" in t.user_attrs:
            out.add(_key(trials[int(t.user_attrs["odeattn_retry_of"])].params))
    return out


def _enqueue(study: StudyConfig, s: optuna.Study, url: str, chosen: list) -> int:
    """Enqueue the chosen configurations the retrain study lacks; returns its budget (the number
    of distinct configurations it then holds)."""
    rs = create_or_load(make_storage(url), study.name + SUFFIX, study.directions)
    present = _configurations(s, rs)
    for t, v in chosen:
        if _key(t.params) not in present:
            attrs = {"supernet_trial": t.number, "supernet_score": v[0]}
            rs.enqueue_trial(dict(t.params), user_attrs=attrs)
            present.add(_key(t.params))
    return len(present)


def comparison(study: StudyConfig, s: optuna.Study, rs: optuna.Study) -> dict[str, Any]:
    """Supernet score vs stand-alone accuracy per retrained configuration, and Kendall τ."""
    done = rs.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    by_params = {_key(t.params): t for t in done if "duplicate_of" not in t.user_attrs}
    rows = []
    for t, _ in picks(study, s):
        r = by_params.get(_key(t.params))
        if r is None:
            continue
        se = (r.user_attrs.get("objectives_se") or {}).get("val_accuracy")
        rows.append({
            "trial": t.number,
            "retrain_trial": r.number,
            "placement": t.user_attrs.get("placement"),
            "architecture": arch_label(t.user_attrs),
            "params": t.user_attrs.get("params"),
            "supernet": t.user_attrs.get("val_accuracy"),
            "standalone": r.user_attrs.get("val_accuracy"),
            "standalone_se": se,
        })  # fmt: skip
    pairs = [
        (r["supernet"], r["standalone"])
        for r in rows
        if None not in (r["supernet"], r["standalone"])
    ]
    corr = kendall_ci([a for a, _ in pairs], [b for _, b in pairs], n_boot=study.noise.bootstrap)
    return {"study": rs.study_name, "rows": rows, "kendall": corr}


def arch_label(attrs: dict[str, Any]) -> str:
    """What a row shows of a trial's architecture: its placement mask ("110|011"), else its
    adaptor per block ("se,none|eca,se,se"; stages split by |), else its adaptor and method."""
    if attrs.get("placement"):
        return str(attrs["placement"])
    adaptor = attrs.get("adaptor")
    if isinstance(adaptor, list | tuple):
        return "|".join(",".join(map(str, g)) if isinstance(g, list | tuple) else str(g)
                        for g in adaptor)  # fmt: skip
    return " ".join(str(attrs[k]) for k in ("adaptor", "method") if attrs.get(k) is not None)


def _table(result: dict[str, Any]) -> Table:
    tab = Table(title=f"supernet score vs stand-alone accuracy ({result['study']})")
    for col in ("trial", "retrain", "architecture", "params", "supernet acc", "stand-alone acc"):
        tab.add_column(col)
    for r in result["rows"]:
        se = f" ± {r['standalone_se']:.2g}" if r["standalone_se"] is not None else ""
        alone = "" if r["standalone"] is None else f"{r['standalone']:.4f}{se}"
        sup = "" if r["supernet"] is None else f"{r['supernet']:.4f}"
        tab.add_row(str(r["trial"]), str(r["retrain_trial"]), r["architecture"],
                    str(r["params"]), sup, alone)  # fmt: skip
    return tab


def _check(study: StudyConfig, s: optuna.Study, console: Any, *_: Any) -> None:
    """``conclude``'s signature (runner, deadline unused): the failure checks only."""
    check_outcome(study, s)


def conclude_for(study: StudyConfig) -> Callable[..., None]:
    """What ends the backend's part: ``results.conclude`` (fail loudly, noise ceiling) for
    ``strategy: scratch``; for ``supernet`` only the failure checks (step 3 retrains instead)."""
    return _check if study.strategy == "supernet" else conclude


def retrain_best(
    study: StudyConfig, s: optuna.Study, url: str, console: Any, run: Callable[[StudyConfig], Any]
) -> dict[str, Any] | None:
    """Step 3: pick, enqueue and ``run`` the retrain study (the search's ``run_search``), then
    print and store the comparison; None when ``top_k`` is 0 or nothing finished."""
    check_outcome(study, s)
    chosen = picks(study, s)
    if not chosen:
        console.print("step 3: nothing to retrain (supernet.top_k: 0 or no finished trial)")
        return None
    cfg = retrain_config(study, url, _enqueue(study, s, url, chosen))
    console.print(f"step 3: {len(chosen)} architecture(s) trained from scratch in {cfg.name!r}")
    rs = run(cfg)
    result = comparison(study, s, rs)
    s.set_user_attr("supernet_retrain", json_safe(result))
    console.print(_table(result))
    console.print(f"supernet score vs stand-alone accuracy: {format_corr(result['kendall'])}")
    return result
