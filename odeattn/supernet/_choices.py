"""The dimensions a weight-sharing supernet may switch, and the ones it refuses.

EAN / LTH4SA (Huang et al., arXiv 2207.07858) train one network with attention wired to every
block and switch it on per block; SPOS (Guo et al. 2020, "Single Path One-Shot NAS") trains one
uniformly drawn path per batch. In odeattn's ODE view more dimensions share weights for free:

    placement  one attention bit per block (LTH4SA): the step-size adaptor on or off
    adaptors   which adaptor preset the network uses; every choice has its own weights per block
               (per stage when shared), the branches Φ are common to all
               (``adaptor_per_block``: one preset per block, drawn per block; "none" = no adaptor)
    methods    the Butcher tableau of each stage: another tableau applied to the same field f
               (``k_i = f(x + h Σ_j a_ij k_j)``) needs no new weights
    depths     per stage, the block counts allowed; depth k runs the first k blocks (elastic depth)
    widths     per stage, the channel counts allowed; width w runs the leading w channels of
               every weight of the stage (elastic width, Once-for-All: Cai et al. 2020)
    sharing    ``"block"`` or ``"stage"`` (DIA: one adaptor per stage, shared by its blocks)

The stem's width, block type, normalisation and the model family change the shape or the kind of
the weights outside a stage's channel slicing, so a supernet cannot share them: :meth:`Choices.from_dict` names the dimension and the way out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from odeattn._errors import must, unknown_name
from odeattn.adaptors import ADAPTORS
from odeattn.tableau import TABLEAUS

__all__ = ["SHARINGS", "UNSHAREABLE", "Choices"]

SHARINGS = ("block", "stage")

_SHAPES = "changes the shape of the weights, so no supernet weight can serve two choices"
#: dimension -> why a supernet cannot share its weights across choices of it.
UNSHAREABLE: dict[str, str] = {
    "width": _SHAPES,
    "stem_width": _SHAPES,
    "block": "basic and bottleneck branches have different weights",
    "norm": "BatchNorm and IEBN keep different parameters",
    "preact": "pre- and post-activation branches order their BatchNorms differently",
    "model": "different model families share no weights",
    "family": "different model families share no weights",
    "in_channels": _SHAPES,
    "num_classes": _SHAPES,
}


@dataclass(frozen=True)
class Choices:
    """The searched dimensions of a :class:`~odeattn.supernet.Supernet` (None/False: fixed).

    ``depths`` has one tuple of allowed block counts per stage, e.g. ``((1, 2, 3),) * 3``;
    ``widths`` one tuple of allowed widths (channels) per stage, e.g. ``((4, 8, 16, 32),) * 3``;
    ``adaptors`` are preset names in ``odeattn.adaptors.ADAPTORS`` (``"none"`` = Δt = 1);
    ``methods`` tableau names in ``odeattn.tableau.TABLEAUS``, drawn per stage;
    ``adaptor_per_block`` draws one of ``adaptors`` per block instead of one per network (the
    architecture's ``adaptor`` is then a list per stage of names; it replaces ``placement``).
    """

    placement: bool = False
    adaptors: tuple[str, ...] | None = None
    adaptor_per_block: bool = False
    methods: tuple[str, ...] | None = None
    depths: tuple[tuple[int, ...], ...] | None = None
    sharing: tuple[str, ...] | None = None
    widths: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.placement, bool):
            raise must("choices.placement", "be True or False", self.placement)
        _set(self, "adaptors", _names("adaptors", self.adaptors, ADAPTORS, "adaptor"))
        _check_per_block(self)
        _set(self, "methods", _names("methods", self.methods, TABLEAUS, "method"))
        _set(self, "sharing", _names("sharing", self.sharing, SHARINGS, "sharing"))
        _set(self, "depths", _per_stage("depths", self.depths, "block counts", "(1, 2, 3)"))
        _set(self, "widths", _per_stage("widths", self.widths, "widths", "(4, 8, 16)"))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Choices:
        """Choices from a plain mapping (the YAML form); an unshareable or unknown key is an error."""
        fields = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key in UNSHAREABLE:
                raise ValueError(
                    f"`{key}` cannot be a supernet dimension: it {UNSHAREABLE[key]}; fix "
                    f"{key} in the model kwargs, or use a train-from-scratch search for it"
                )
            if key not in fields:
                raise unknown_name("supernet dimension", key, fields)
        return cls(**values)

    @property
    def searched(self) -> tuple[str, ...]:
        """The architecture keys (``create_model`` kwargs) these choices vary, in draw order."""
        keys = (
            ("blocks", self.depths),
            ("widths", self.widths),
            ("placement", self.placement or None),
            ("adaptor", self.adaptors),
            ("method", self.methods),
            ("sharing", self.sharing),
        )
        return tuple(k for k, v in keys if v is not None)


def _check_per_block(ch: Choices) -> None:
    if not isinstance(ch.adaptor_per_block, bool):
        raise must("choices.adaptor_per_block", "be True or False", ch.adaptor_per_block)
    if ch.adaptor_per_block and ch.adaptors is None:
        raise must(
            "choices.adaptors",
            "list the presets a block may take with adaptor_per_block=True, e.g. ('none', 'se')",
            None,
        )
    if ch.adaptor_per_block and ch.placement:
        raise must(
            "choices.placement",
            "be False with adaptor_per_block=True (a block drawing 'none' has no adaptor: "
            "add 'none' to choices.adaptors instead)",
            True,
        )


def _set(obj: Choices, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _names(
    what: str, value: Any, valid: Mapping[str, Any] | Sequence[str], kind: str
) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise must(f"choices.{what}", f"be a non-empty sequence of {kind} names", value)
    for name in value:
        if not isinstance(name, str) or name not in valid:
            raise unknown_name(kind, name, valid, f"(in choices.{what})")
    if len(set(value)) != len(value):
        raise must(f"choices.{what}", "list each name once", value)
    return tuple(value)


def _per_stage(
    what: str, value: Any, kind: str, example: str
) -> tuple[tuple[int, ...], ...] | None:
    if value is None:
        return None
    req = f"be one sequence of allowed {kind} (positive ints) per stage, e.g. ({example},) * 3"
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise must(f"choices.{what}", req, value)
    out = []
    for stage in value:
        if isinstance(stage, str) or not isinstance(stage, Sequence) or not stage:
            raise must(f"choices.{what}", req, value)
        if any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in stage):
            raise must(f"choices.{what}", req, value)
        if len(set(stage)) != len(stage):
            raise must(f"choices.{what}", f"list each of a stage's {kind} once", value)
        out.append(tuple(sorted(stage)))
    return tuple(out)
