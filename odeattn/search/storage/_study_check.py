"""A study name reused with another search: refused before anything is written.

An Optuna study keeps its trials whatever file later names it, so a second file (or an edited
one) under the same name and storage would mix two searches: old trials counted toward the new
budget, values stored under the wrong metric names. Each study therefore records, on creation,
the fingerprint of what its trials depend on (``odeattn_plan``: ``TrialPlan.fingerprint``, SHA-256 of
the resolved space, base model and blocks, data, training settings, measurement, replicates) next to Optuna's directions and metric names. On a re-run
:func:`check_study` compares them with the file:

* other directions → always refused (Optuna cannot change them);
* other objective metrics or another space → refused unless ``accept_changes`` (the CLI's
  ``--accept-changed-study``), which records the new fingerprint.

Every refusal is a :class:`ConfigError` (exit 2, one line) that names the fix: another name
(``--study-name NEW``), another ``--storage``, or ``--accept-changed-study``.
"""

from __future__ import annotations

from typing import Any

import optuna

from odeattn.search.storage._storage_url import redact
from odeattn.study import ConfigError, StudyConfig, plan_for

__all__ = ["check_study", "fingerprint", "stamp_study"]

_KEY = "odeattn_plan"  # (odeattn_space: the older, narrower hash; not compared)


def fingerprint(study: StudyConfig, space: Any = None) -> str:
    """What a study's trials depend on, as a short hash: ``TrialPlan.fingerprint`` (space, base
    model and blocks, data, recipe and overrides, epochs, measurement, replicates, screen)."""
    return plan_for(study).fingerprint


def _refuse(study: StudyConfig, url: str, key: str, what: str, hint: str) -> ConfigError:
    return ConfigError(
        study.file,
        key,
        f"study {study.name!r} in {redact(url)} {what}; {hint}",
    )


def check_study(
    study: StudyConfig, space: Any, storage: Any, url: str, *, accept_changes: bool = False
) -> None:
    """Refuse (ConfigError) an existing study of this name that searches something else."""
    try:
        old = optuna.load_study(study_name=study.name, storage=storage)
    except KeyError:
        return  # a new study
    other = "use another name (--study-name NEW) or another --storage"
    directions = [d.name.lower() for d in old.directions]
    if directions != list(study.directions):
        raise _refuse(
            study,
            url,
            "objectives",
            f"has directions {directions}, but the file asks {list(study.directions)}",
            other,
        )
    if accept_changes:
        old.set_user_attr(_KEY, fingerprint(study, space))
        return
    hint = other + ", or --accept-changed-study to continue it anyway"
    names = old.metric_names
    if names is not None and list(names) != list(study.objective_names):
        raise _refuse(
            study,
            url,
            "objectives",
            f"was run with objectives {list(names)}, but the file "
            f"asks {list(study.objective_names)}",
            hint,
        )
    stored = old.user_attrs.get(_KEY)
    if stored is not None and stored != fingerprint(study, space):
        raise _refuse(
            study,
            url,
            "search_space",
            "was run with another search space, model, data, training or measurement settings (epochs, recipe, overrides, replicates, …)",
            hint,
        )


def stamp_study(study: StudyConfig, space: Any, s: optuna.Study) -> None:
    """Record the fingerprint on a study that has none yet (new, or made by an older odeattn)."""
    if _KEY not in s.user_attrs:
        s.set_user_attr(_KEY, fingerprint(study, space))
