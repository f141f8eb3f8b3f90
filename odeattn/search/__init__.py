"""Architecture search over residual networks seen as ODE solvers: ``python -m odeattn.search``.

A study file (``studies/*.yaml``, schema in :mod:`odeattn.study.config._study`) names a search-space file
(``search_spaces/*.yaml``), data, a model family, objectives, a budget, a sampler and a backend.
The backends share two seams, which stay stable:

``sample(trial, space) -> dict``
    Define-by-run. ``trial`` is an ``optuna.Trial`` (also what Ray's ``OptunaSearch`` passes to a
    define-by-run function); ``space`` is the :class:`Space` from ``resolve_space(study)``.
    Returns the flat ``{optuna_param_name: value}`` dict it suggested (equal to the entries of
    ``trial.params`` it created). It does no computation, so Ray's define-by-run function can be
    ``lambda t: (sample(t, space), None)[1]``.

``run_trial(study_cfg, params, report, *, trial=None) -> dict[str, float]``
    Builds the model from ``params`` (the flat dict above, or Ray's ``config`` = ``trial.params``),
    trains it with ``odeattn.train.fit``, measures the metrics. ``report(epoch, metrics) ->
    should_stop`` is called once per epoch (``metrics``: ``val_accuracy``, ``val_loss``,
    ``train_loss``, the static ``params``/``flops``/``attention_blocks``, and ``tns@<k>``… at
    epochs a stiffness objective or the ``dominated`` pruning rule asks for). The result holds
    every objective name (``study_cfg.objective_names``), ``params``, ``flops``,
    ``attention_blocks``, ``tns_se`` and ``eval_samples`` (TNS on the fixed evaluation set and its
    standard error), ``epochs_run``, ``screened_out``, ``seconds``, ``seed`` and ``threads``. With
    ``trial`` (an ``optuna.Trial``, or any object with ``set_user_attr``) it also writes the user
    attributes and, for an ``optuna.Trial``, the artifacts and the per-epoch note. A failure
    before training raises ``SetupError`` (the search stops with exit 2). Optional keywords:
    ``space=`` (skip re-resolving), ``screen=`` (``score -> keep?`` for the TNS proxy screen),
    ``seed=``.

``run_ray(study_cfg, space, storage_url, *, console) -> dict`` in ``_ray_study.py`` (the Ray
backend, on top of ``_ray.py``) runs the study's remaining budget with ``OptunaSearch`` on
``storage_url`` until ``budget_used`` reaches ``study_cfg.budget.n_trials`` and returns a summary
dict. ``study_cfg.ray`` holds its settings (:class:`odeattn.study.config._study.RayCfg`).

``run_search(study_cfg, space, *, console, progress=True)`` (``_run``) is one invocation of the
CLI's search without the CLI (storage, resume, backend, summary, exports; ``strategy:
supernet``'s three steps): the experiments run searches through it.

``trial_function(study_cfg)`` (``trial/``) is what both backends call per trial: the replicate
loop over ``run_trial`` (``strategy: scratch``) or ``score_trial`` (``strategy: supernet``: the
architecture scored with the study's trained supernet, no training; ``oneshot/`` trains that
supernet before the backend and retrains the best from scratch after it).

After either backend, ``_noise.conclude`` fails loudly (set-up failure: exit 2; every trial
failed: exit 1) and measures the study's noise ceiling; the summary, ``best/`` and the plots use
every finished trial (``_front``), pruned-at-the-final-epoch ones included.
"""

from __future__ import annotations

from odeattn._errors import lazy_attribute

#: public name -> the module that defines it; the face is lazy (PEP 562) so that the CLI's
#: ``--help`` and schema errors do not import torch.
_LAZY = {
    "Space": "odeattn.study",
    "budget_used": "odeattn.search.storage",
    "decode": "odeattn.study",
    "default_storage": "odeattn.search.storage",
    "die_with_parent": "odeattn.search.processes",
    "interrupt_once": "odeattn.search.processes",
    "make_storage": "odeattn.search.storage",
    "resolve_space": "odeattn.study",
    "run_search": "odeattn.search._run",  # issue 19's evidence runs searches at equal time
    "run_trial": "odeattn.search.trial",
    "sample": "odeattn.study",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_attribute("odeattn.search", _LAZY, globals())
