"""A search by TNS or p̂ needs at least 3 measured blocks in every stage (issue 21).

TNS and p̂ compare each measured block's NSI with the mean μ_s of its stage (StepNet Eq. 5,
``max(μ_s (1 + M1), M2)``). The first block of a stage changes its width or resolution and is not
measured, so a stage of b blocks has b − 1 measured blocks; with L_s of them the ratios
NSI_t / μ_s sum to L_s, and below ``MIN_MEASURED`` = 3 the stage adds a constant: L_s = 1 adds
exactly 0 to TNS, L_s = 2 gives p̂(M1 = 0) = ½ for every network (``odeattn.stiffness._depth``).

:func:`check_depth` refuses a study that optimises, constrains or screens by such a metric
(:data:`DEPTH_METRICS`, at the keys of :func:`depth_keys`) when its base model or its space can
produce a stage below the minimum: one :class:`ConfigError` line naming the study file, the key,
the smallest blocks per stage and where they come from, and the fix. The search calls it before
anything is written (``search._cli`` before a dry run, ``run_search`` before the storage); the
proxy benchmark, which measures TNS on shallow spaces to show exactly this, does not.

The smallest depth has one source each, read without building another model:

* the base model: ``Space.measured``, the measured blocks per stage of the model that
  ``resolve_space`` builds (``odeattn.stiffness.measured_blocks``), so a factory default
  (ResNet-164: 18 a stage; digits_resnet: 3) counts exactly as ``model.kwargs.blocks`` does;
* the space: each ``model.blocks`` parameter's smallest value a stage (``low``, or the smallest
  of its ``choices``), less the unmeasured first block; such a parameter replaces the base
  model's depth in every trial.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from odeattn._errors import must
from odeattn.models import MODELS
from odeattn.stiffness import MIN_MEASURED
from odeattn.study._space import Space, target_of
from odeattn.study.config import DEPTH_METRICS, ConfigError, PerStageParam, StudyConfig

__all__ = ["check_depth", "depth_keys"]


def depth_keys(study: StudyConfig) -> list[tuple[str, str, str]]:
    """``(key, metric, fix)`` for every place of ``study`` that reads a :data:`DEPTH_METRICS`
    metric: objectives, constraints, the screen and ASHA's metric (pruning takes per-epoch
    metrics only, refused elsewhere)."""
    out = [
        (f"objectives[{i}]", o.metric, f"drop the {o.metric} objective")
        for i, o in enumerate(study.objectives)
        if o.metric in DEPTH_METRICS
    ]
    out += [
        (f"constraints[{i}]", c.metric, f"drop the {c.metric} constraint")
        for i, c in enumerate(study.constraints)
        if c.metric in DEPTH_METRICS
    ]
    sc = study.screen
    if sc is not None and sc.metric in DEPTH_METRICS:
        out.append(("screen.metric", sc.metric, "screen by another metric, e.g. nsi_mean"))
    rc = study.ray
    if study.backend == "ray" and rc.scheduler == "asha" and rc.asha.metric in DEPTH_METRICS:
        out.append(("ray.asha.metric", rc.asha.metric, "give ASHA another metric"))
    return out


@dataclass(frozen=True)
class _Depth:
    """The smallest measured blocks per stage that one source of the study can give."""

    what: str  # the key that sets it, e.g. model.kwargs.blocks or params.blocks.low
    got: object  # its value
    where: str  # where the value comes from
    measured: tuple[int, ...]  # measured blocks per stage
    example: str  # the fix, e.g. "blocks: [4, 4, 4]"


def _base(study: StudyConfig, space: Space) -> _Depth:
    kw, n = study.model.kwargs, space.measured
    key = _depth_kwarg(study.model.name)
    example = f"{key}: {[MIN_MEASURED + 1] * (len(n) or len(space.blocks) or 1)}"
    if key in kw:
        return _Depth(f"model.kwargs.{key}", kw[key], "", n, example)
    built = [k + 1 for k in n]  # as built: the first block of a stage is not measured
    return _Depth(f"model.kwargs.{key}", built, f" ({study.model.name}'s default)", n, example)


def _depth_kwarg(model: str) -> str:
    """The keyword that sets a model's blocks per stage: ``blocks``, or ``steps`` (RKCNN)."""
    factory = MODELS.get(model)
    params = inspect.signature(factory).parameters if factory is not None else {}
    return "steps" if "steps" in params and "blocks" not in params else "blocks"


def _params(space: Space) -> list[_Depth]:
    """The space's ``model.blocks`` parameters, each at its smallest value."""
    out = []
    for name in space.order:
        p = space.config.params[name]
        if target_of(name, p) != "model.blocks" or not isinstance(p, PerStageParam):
            continue  # a blocks target of another type is refused by the model when built
        if p.choices is None:
            assert p.low is not None
            what, got, low = f"params.{name}.low", p.low, p.low
            example = f"low: {MIN_MEASURED + 1}"
        else:
            ints = [c for c in p.choices if isinstance(c, int) and not isinstance(c, bool)]
            if not ints:  # other choices are refused by the model when a trial builds it
                continue
            what, got, low = f"params.{name}.choices", p.choices, min(ints)
            example = f"choices of {MIN_MEASURED + 1} or more"
        n = p.stages or len(space.blocks)
        measured = (max(low - 1, 0),) * n  # the first block of a stage is not measured
        out.append(_Depth(what, got, f" in {space.file}", measured, example))
    return out


def _sources(study: StudyConfig, space: Space) -> list[_Depth]:
    """Every source of a stage's depth that a trial can meet: the depth parameters of the space,
    else the base model. A space's depth parameters are sampled first, so the first of them has
    no ``when`` (``check_params``): it always replaces the base model's depth."""
    return _params(space) or [_base(study, space)]


def check_depth(study: StudyConfig, space: Space) -> None:
    """Refuse (:class:`ConfigError`, one line) a search by TNS or p̂ on a model or space with a
    stage of fewer than 3 measured blocks; a no-op for a study that reads neither."""
    keys = depth_keys(study)
    if not keys:
        return
    key, metric, fix = keys[0]
    for d in _sources(study, space):
        few = {s: k for s, k in enumerate(d.measured) if k < MIN_MEASURED}
        if d.measured and not few:
            continue
        need = (
            f"be >= {MIN_MEASURED + 1} blocks a stage for {metric} ({MIN_MEASURED} measured: the "
            f"first block of a stage is not measured, and with fewer {metric} is a constant of "
            "the depth, not a measurement)"
        )
        left = f"stages {few} (stage: measured blocks)" if d.measured else "no measured block"
        raise ConfigError(
            study.file,
            key,
            f"{must(d.what, need, d.got)}{d.where}, which leaves {left}; use >= "
            f"{MIN_MEASURED + 1} blocks a stage, e.g. {d.example}, or {fix}",
        )
