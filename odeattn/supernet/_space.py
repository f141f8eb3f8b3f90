"""Architectures of a supernet: plain dicts of ``create_model`` kwargs, checked, drawn, ranked.

An architecture ``arch`` holds exactly the searched kwargs (see :attr:`Choices.searched`) in the
forms ``odeattn.models.create_model`` takes — ``{"blocks": [2, 3, 1], "widths": [8, 4, 16], "placement": "11|011|0",
"adaptor": "se", "method": ["euler", "heun", "rk4"], "sharing": "stage"}`` — so
``create_model(name, **fixed, **arch)`` builds the stand-alone network. :class:`Path` is what a
forward pass needs from it. :func:`sample` draws every dimension independently and uniformly
(placement bits ~ Bernoulli(½), as EAN's supernet training draws its masks); :func:`extreme`
gives the largest / smallest architecture of the sandwich rule (Yu & Huang 2019). With
``Choices(adaptor_per_block=True)`` the ``adaptor`` value is a list per stage of one preset name
per block run (``[["se", "none"], ["eca"], ["none", "se", "se"]]``), drawn block by block.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from odeattn._errors import did_you_mean, must, unknown_name
from odeattn.adaptors import default_sharing, resolve_spec
from odeattn.models import MODELS, format_placement, list_models, parse_placement
from odeattn.supernet._choices import UNSHAREABLE, Choices
from odeattn.tableau import get_tableau

__all__ = ["ArchSpace", "Path", "extreme", "sample"]

_FIELD = {"blocks": "choices.depths", "widths": "choices.widths"}  # kwarg -> its Choices field


class Path(NamedTuple):
    """One architecture as the supernet runs it."""

    blocks: tuple[int, ...]  # blocks run per stage
    mask: tuple[tuple[bool, ...], ...]  # placement bit per block run
    adaptor: Any  # the create_model `adaptor` value (None, a name, a spec, a per-block list)
    labels: tuple[tuple[str | None, ...], ...]  # bank label per block run; None: Δt = 1
    sharing: str  # "block" | "stage"
    methods: tuple[str, ...]  # tableau per stage
    widths: tuple[int, ...]  # channels per stage


@dataclass(frozen=True)
class ArchSpace:
    """The searched dimensions of one model: its fixed kwargs and per-dimension options."""

    name: str
    fixed: Mapping[str, Any]
    choices: Choices
    n_stages: int
    blocks: tuple[int, ...]  # per stage: the fixed counts, or the largest allowed depth
    widths: tuple[int, ...]  # per stage: the fixed widths, or the largest allowed width
    base: Mapping[str, Any]  # every kwarg of the factory: fixed, else its default
    adaptors: tuple[Any, ...]  # the adaptor options (the choices, or the one fixed value)
    labels: tuple[str | None, ...]  # bank label per option: its name, "fixed", None if Δt = 1

    @classmethod
    def build(cls, name: str, fixed: Mapping[str, Any], choices: Choices) -> ArchSpace:
        """Check that ``name`` and ``fixed`` admit ``choices`` (the model is not built)."""
        _check_model(name)
        defaults = {
            k: p.default
            for k, p in inspect.signature(MODELS[name]).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        for key in fixed:
            if key in choices.searched:
                raise ValueError(
                    f"`{key}` is both fixed (fixed[{key!r}]={fixed[key]!r}) and searched by the "
                    f"choices ({_FIELD.get(key, key)}); drop it from `fixed` (create_model(name, **fixed, **arch) takes "
                    f"each kwarg once; the largest depths give the supernet's blocks)"
                )
            if key not in defaults:
                raise unknown_name(f"keyword of {name!r}", key, defaults)
        base = {**defaults, **fixed}
        n = len(tuple(base["widths" if choices.widths is None else "blocks"]))
        n = len(choices.depths) if choices.widths and choices.depths else n
        for what, per in (("depths", choices.depths), ("widths", choices.widths)):
            if per is not None and len(per) != n:
                raise must(f"choices.{what}", f"have one tuple per stage ({n} stages)", per)
        blocks = tuple(max(d) for d in choices.depths) if choices.depths else tuple(base["blocks"])
        widths = tuple(max(w) for w in choices.widths) if choices.widths else tuple(base["widths"])
        adaptors = choices.adaptors or (base["adaptor"],)
        labels = tuple(_label(a) for a in adaptors)
        space = cls(name, dict(fixed), choices, n, blocks, widths, base, adaptors, labels)
        space._check_combinations()
        return space

    def _check_combinations(self) -> None:
        ch, base = self.choices, self.base
        if ch.depths is not None and base.get("placement") is not None:
            raise ValueError(
                f"a fixed `placement` cannot follow elastic depths, but got placement="
                f"{base['placement']!r}; search it too (Choices(placement=True)) or fix `blocks`"
            )
        if ch.adaptor_per_block and base.get("placement") is not None:
            raise ValueError(
                f"a fixed `placement` cannot go with adaptor_per_block (a block drawing 'none' "
                f"has no adaptor), but got placement={base['placement']!r}; drop it"
            )
        real = [a for a, lab in zip(self.adaptors, self.labels) if lab]
        stage = [a for a in real if "stage" in self.sharings(a)]
        if ch.adaptor_per_block and stage and len(real) > 1:
            raise ValueError(
                f"adaptor_per_block with more than one preset needs sharing 'block' (a "
                f"stage-shared adaptor (DIA) is one module per stage, so a stage could not mix "
                f"presets), but {stage[0]!r} may be shared per stage; fix sharing='block' (model "
                f"kwargs) or keep one preset besides 'none'"
            )
        if (ch.placement or ch.sharing) and not any(self.labels):
            raise ValueError(
                "searching `placement` or `sharing` needs an adaptor: add adaptor choices "
                "other than 'none' (Choices(adaptors=('none', 'se'))) or fix adaptor='se'"
            )

    def sharings(self, adaptor: Any) -> tuple[str, ...]:
        if self.choices.sharing:
            return self.choices.sharing
        fixed = self.base["sharing"]
        return (fixed if fixed is not None else default_sharing(adaptor),)

    def _first_real(self) -> Any:
        """The first adaptor option that is not Δt = 1 (its sharing is the per-block one)."""
        return next((a for a, lab in zip(self.adaptors, self.labels) if lab), self.adaptors[0])

    def resolve(self, arch: Mapping[str, Any]) -> Path:
        """The :class:`Path` of ``arch``; any key or value outside the choices is an error."""
        _check_keys(arch, self.choices.searched)
        ch = self.choices
        blocks = _per_stage("blocks", arch["blocks"], ch.depths) if ch.depths else self.blocks
        widths = _per_stage("widths", arch["widths"], ch.widths) if ch.widths else self.widths
        if ch.adaptor_per_block:
            idx = _per_block(arch["adaptor"], ch.adaptors, blocks)
            adaptor = [[self.adaptors[i] for i in g] for g in idx]
            labels = tuple(tuple(self.labels[i] for i in g) for g in idx)
            mask = tuple(tuple(lab is not None for lab in g) for g in labels)
        else:
            placement = arch["placement"] if ch.placement else self.base["placement"]
            mask = tuple(tuple(m) for m in parse_placement(placement, blocks))
            i = _index("adaptor", arch["adaptor"], ch.adaptors) if ch.adaptors else 0
            adaptor = self.adaptors[i]
            labels = tuple(tuple(self.labels[i] if b else None for b in m) for m in mask)
        if ch.sharing:
            sharing = ch.sharing[_index("sharing", arch["sharing"], ch.sharing)]
        else:
            sharing = self.sharings(self._first_real() if ch.adaptor_per_block else adaptor)[0]
        methods = _methods(arch["method"], ch.methods, self.n_stages) if ch.methods else None
        if methods is None:
            fixed = self.base["method"]
            methods = tuple(fixed) if isinstance(fixed, list | tuple) else (fixed,) * self.n_stages
        return Path(blocks, mask, adaptor, labels, sharing, methods, widths)

    def to_arch(self, path: Path) -> dict[str, Any]:
        """The architecture dict of ``path`` (searched keys only, canonical forms)."""
        values = {
            "blocks": list(path.blocks),
            "widths": list(path.widths),
            "placement": format_placement(path.mask),
            "adaptor": path.adaptor,
            "method": list(path.methods),
            "sharing": path.sharing,
        }
        return {k: values[k] for k in self.choices.searched}


def _label(adaptor: Any) -> str | None:
    if adaptor is None or resolve_spec(adaptor)[0] is None:
        return None
    return adaptor if isinstance(adaptor, str) else "fixed"


def _check_model(name: str) -> None:
    if name in list_models("resnet"):
        return
    if name in MODELS:
        raise ValueError(
            f"a supernet shares weights across the ResNet family only, but got model {name!r} "
            f"(another family: its blocks are not the resnet's); use a train-from-scratch search"
        )
    raise unknown_name("model", name, list_models("resnet"), "(the resnet family)")


def _check_keys(arch: Mapping[str, Any], searched: tuple[str, ...]) -> None:
    if not isinstance(arch, Mapping):
        raise must("arch", "be a dict of the searched kwargs " + str(list(searched)), arch)
    for key in arch:
        if key not in searched:
            why = f" ({UNSHAREABLE[key]})" if key in UNSHAREABLE else ""
            raise ValueError(
                f"`arch` has {key!r}, which this supernet does not search{why}"
                f"{did_you_mean(key, searched)} Searched: {', '.join(searched) or 'nothing'}"
            )
    missing = [k for k in searched if k not in arch]
    if missing:
        raise must("arch", f"give every searched kwarg (missing {missing})", dict(arch))


def _index(what: str, value: Any, options: tuple[str, ...]) -> int:
    if value not in options:
        raise unknown_name(f"{what} choice", value, options, "(not among the supernet's choices)")
    return options.index(value)


def _per_block(value: Any, options: tuple[str, ...], blocks: tuple[int, ...]) -> list[list[int]]:
    """Indices into ``options`` of a per-block adaptor value (a list per stage of names)."""
    req = f"be a list per stage of one adaptor name per block run ({list(blocks)} blocks)"
    ok = isinstance(value, list | tuple) and len(value) == len(blocks)
    if not ok or any(not isinstance(g, list | tuple) or len(g) != n for g, n in zip(value, blocks)):
        raise must("arch['adaptor']", req, value)
    return [[_index("adaptor", a, options) for a in g] for g in value]


def _per_stage(what: str, value: Any, options: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
    ok = isinstance(value, list | tuple) and len(value) == len(options)
    if not ok or any(k not in d or isinstance(k, bool) for k, d in zip(value, options)):
        raise must(f"arch[{what!r}]", f"take per stage one of {[list(d) for d in options]}", value)
    return tuple(int(k) for k in value)


def _methods(value: Any, options: tuple[str, ...], n: int) -> tuple[str, ...]:
    names = [value] * n if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or len(names) != n:
        raise must("arch['method']", f"be one tableau name or {n} (one per stage)", value)
    return tuple(options[_index("method", m, options)] for m in names)


def sample(space: ArchSpace, generator: torch.Generator) -> dict[str, Any]:
    """One architecture, every dimension drawn independently and uniformly with ``generator``."""
    ch = space.choices

    def pick(options: tuple[Any, ...]) -> Any:
        return options[int(torch.randint(len(options), (), generator=generator))]

    blocks = tuple(pick(d) for d in ch.depths) if ch.depths else space.blocks
    bits = torch.randint(2, (sum(blocks),), generator=generator).tolist() if ch.placement else None
    if ch.adaptor_per_block:
        assert ch.adaptors is not None
        adaptor: Any = [[pick(ch.adaptors) for _ in range(k)] for k in blocks]
    else:
        adaptor = pick(ch.adaptors) if ch.adaptors else None
    arch = {
        "blocks": list(blocks),
        "placement": None if bits is None else format_placement(_split(bits, blocks)),
        "adaptor": adaptor,
        "method": [pick(ch.methods) for _ in range(space.n_stages)] if ch.methods else None,
        "sharing": pick(ch.sharing) if ch.sharing else None,
    }
    arch["widths"] = [pick(w) for w in ch.widths] if ch.widths else None  # drawn last: no
    return {k: arch[k] for k in ch.searched}  # draw of a space without widths changes


def _split(bits: list[int], blocks: tuple[int, ...]) -> list[list[bool]]:
    out, i = [], 0
    for k in blocks:
        out.append([b == 1 for b in bits[i : i + k]])
        i += k
    return out


def extreme(
    space: ArchSpace, size: Callable[[str | None, str], int], *, largest: bool
) -> dict[str, Any]:
    """The largest (or smallest) architecture: depth, width, attention bits, adaptor parameters
    (``size(label, sharing)``) and method stages all maximal (minimal); ties keep choice order."""
    ch, sign = space.choices, 1 if largest else -1
    pairs = [(i, s) for i, a in enumerate(space.adaptors) for s in space.sharings(a)]
    i, sharing = max(pairs, key=lambda p: sign * size(space.labels[p[0]], p[1]))
    blocks = tuple((max if largest else min)(d) for d in ch.depths) if ch.depths else space.blocks
    widths = [(max if largest else min)(w) for w in ch.widths] if ch.widths else None
    method = max(ch.methods or ("euler",), key=lambda m: sign * get_tableau(m).stages)
    arch = {
        "blocks": list(blocks),
        "widths": widths,
        "placement": format_placement([[largest] * k for k in blocks]),
        "adaptor": [[space.adaptors[i]] * k for k in blocks]
        if ch.adaptor_per_block
        else space.adaptors[i],
        "method": [method] * space.n_stages,
        "sharing": sharing,
    }
    return {k: arch[k] for k in ch.searched}
