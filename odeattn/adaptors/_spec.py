"""The composable description of a step-size adaptor (DIA paper, Fig. 1 / Fig. 3).

An adaptor computes the step Δt of ``x_{t+1} = x_t + Δt ⊙ Φ(x_t)`` in three parts:

    inputs    which tensors it looks at: Φ ("phi"), x_t ("x"), x_{t+1} = x_t + Φ ("next"),
              x_{t+1} − x_t ("diff", equal to Φ up to rounding), or the pair (x_{t+1}, x_t) ("pair",
              StepNet Eq. 12);
    extractor ① how each input is summarised: per-channel descriptors (B, C, K) — "gap",
              "avgmax" (CBAM), "style" (SRM mean/std), "dct" (FcaNet), "pyramid" (SPA) — or a
              spatial map — "none" (the feature itself, SGE), "channel_pool" (CBAM max/mean);
    processor ② how descriptors become logits: "fc" (SE bottleneck, reduction r), "eca" (1-D conv
              across channels, adaptive or fixed k), "cfc" (channel-wise FC over the K descriptors,
              SRM; with norm="iebn" the StepNet grouped conv + IEBN), "ie" (the IE operator
              σ(w⊙z+b)), "spatial_conv" (CBAM), "sge", "lstm" (DIA-LSTM), "lstm_light" (DIA light);
    gate      ③ the bounded map to (0, 1): "sigmoid" (default), "hard_sigmoid", "softsign", "tanh".

``sharing="stage"`` makes one module serve every block of a stage (DIA). ``then`` chains a second
adaptor that sees Φ ⊙ Δt₁ and multiplies its step in (CBAM: channel then spatial).
Hyper-parameters left as ``None`` take the processor's published default (see ``resolved``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from odeattn._errors import did_you_mean

__all__ = ["SPEC_CHOICES", "AdaptorSpec", "closest_error"]

INPUTS = ("phi", "x", "next", "diff", "pair")
CHANNEL_EXTRACTORS = ("gap", "avgmax", "style", "dct", "pyramid")
SPATIAL_EXTRACTORS = ("none", "channel_pool")
EXTRACTORS = CHANNEL_EXTRACTORS + SPATIAL_EXTRACTORS
PROCESSORS = ("fc", "eca", "cfc", "ie", "spatial_conv", "sge", "lstm", "lstm_light")
GATES = ("sigmoid", "hard_sigmoid", "softsign", "tanh")
SHARING = ("block", "stage")
MERGES = ("concat", "sum")
NORMS = ("none", "bn", "iebn", "ie")
FC_INITS = ("torch", "zero_bias")
CFC_INITS = ("zero", "he", "ie")
# The categorical parts of the space an adaptor-structure search explores (field -> choices).
SPEC_CHOICES: dict[str, tuple[str, ...]] = {
    "inputs": INPUTS,
    "extractor": EXTRACTORS,
    "processor": PROCESSORS,
    "gate": GATES,
    "sharing": SHARING,
    "merge": MERGES,
    "norm": NORMS,
}

# Which extractors each processor can read.
_PROCESSOR_EXTRACTORS: dict[str, tuple[str, ...]] = {
    **{p: CHANNEL_EXTRACTORS for p in ("fc", "eca", "cfc", "ie", "lstm", "lstm_light")},
    "spatial_conv": ("channel_pool",),
    "sge": ("none",),
}
# Hyper-parameter -> (processors or extractors it applies to, published default per user).
_APPLIES: dict[str, tuple[str, ...]] = {
    "reduction": ("fc", "lstm", "lstm_light"),
    "kernel_size": ("eca", "spatial_conv"),
    "bias": ("fc", "cfc"),
    "merge": ("fc",),
    "norm": ("cfc",),
    "init": ("fc", "cfc"),
    "groups": ("sge",),
    "dct_size": ("dct",),
    "levels": ("pyramid",),
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "fc": {"reduction": 16, "bias": True, "merge": "concat", "init": "torch"},
    "lstm": {"reduction": 4},
    "lstm_light": {"reduction": 20},
    "eca": {"kernel_size": None},  # None: adaptive k = odd(int((log2 C + 1) / 2))
    "spatial_conv": {"kernel_size": 7},
    "cfc": {"bias": False, "norm": "bn", "init": "zero"},
    "sge": {"groups": 64},
    "dct": {"dct_size": 7},
    "pyramid": {"levels": (1, 2, 4)},
}


def _fit_default(key: str, default: Any, channels: int | None) -> Any:
    if channels is None or default is None:
        return default
    if key == "reduction":
        return min(default, channels)
    if key == "groups":
        return math.gcd(default, channels)
    return default


def closest_error(what: str, got: object, valid: Iterable[str], hint: str = "") -> ValueError:
    """A ValueError naming the valid choices and the closest one (difflib)."""
    valid = sorted(valid)
    near = did_you_mean(got, valid)
    return ValueError(f"unknown {what} {got!r}{near} Valid: {', '.join(valid)}.{hint}")


def _choice(name: str, value: object, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise closest_error(f"`{name}`", value, valid)


def _positive_int(name: str, value: object, odd: bool = False) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < 1
        or (odd and value % 2 == 0)
    ):
        kind = "a positive odd int" if odd else "a positive int"
        raise ValueError(f"`{name}` must be {kind}, but got {name}={value!r}")


@dataclass(frozen=True)
class AdaptorSpec:
    """A step-size adaptor as extraction → processing → gate; see the module docstring."""

    inputs: str = "phi"
    extractor: str = "gap"
    processor: str = "fc"
    gate: str = "sigmoid"
    sharing: str = "block"
    reduction: int | None = None
    kernel_size: int | None = None
    bias: bool | None = None
    merge: str | None = None
    norm: str | None = None
    init: str | None = None
    groups: int | None = None
    dct_size: int | None = None
    levels: tuple[int, ...] | None = None
    then: AdaptorSpec | None = field(default=None)

    def __post_init__(self) -> None:
        if isinstance(self.levels, list):
            object.__setattr__(self, "levels", tuple(self.levels))
        if isinstance(self.then, Mapping):
            object.__setattr__(self, "then", AdaptorSpec.from_dict(self.then))
        self._check_names()
        self._check_combination()
        self._check_values()

    def _check_names(self) -> None:
        _choice("inputs", self.inputs, INPUTS)
        _choice("extractor", self.extractor, EXTRACTORS)
        _choice("processor", self.processor, PROCESSORS)
        _choice("gate", self.gate, GATES)
        _choice("sharing", self.sharing, SHARING)

    def _check_combination(self) -> None:
        ok = _PROCESSOR_EXTRACTORS[self.processor]
        if self.extractor not in ok:
            raise ValueError(
                f"extractor {self.extractor!r} conflicts with processor {self.processor!r}: "
                f"{self.processor!r} reads extractor {' or '.join(map(repr, ok))}"
            )
        if self.processor == "sge" and self.inputs == "pair":
            raise ValueError(
                "inputs 'pair' conflicts with processor 'sge': SGE gates one feature "
                "map; use inputs='phi', 'x', 'next' or 'diff'"
            )
        for name, users in _APPLIES.items():
            if (
                getattr(self, name) is not None
                and self.processor not in users
                and self.extractor not in users
            ):
                raise ValueError(
                    f"`{name}` applies only to {' / '.join(users)}, but got processor="
                    f"{self.processor!r}, extractor={self.extractor!r}, {name}={getattr(self, name)!r};"
                    f" drop `{name}` or change the part it belongs to"
                )
        if self.then is not None:
            if not isinstance(self.then, AdaptorSpec):
                raise ValueError(
                    f"`then` must be an AdaptorSpec or its dict, but got {self.then!r}"
                )
            if self.then.sharing != self.sharing:
                raise ValueError(
                    f"sharing {self.sharing!r} conflicts with then.sharing "
                    f"{self.then.sharing!r}: a chained adaptor is shared like its head"
                )

    def _check_values(self) -> None:
        r = self.resolved()
        if "reduction" in r:
            _positive_int("reduction", r["reduction"])
        if r.get("kernel_size") is not None:
            _positive_int("kernel_size", r["kernel_size"], odd=True)
        if "groups" in r:
            _positive_int("groups", r["groups"])
        if "dct_size" in r:
            _positive_int("dct_size", r["dct_size"])
            if r["dct_size"] < 7:
                raise ValueError(
                    f"`dct_size` must be >= 7 (FcaNet's frequencies live on a 7×7 "
                    f"grid scaled by dct_size // 7), but got dct_size={r['dct_size']}"
                )
        if "levels" in r:
            if not r["levels"]:
                raise ValueError("`levels` must be a non-empty tuple of pool sizes, but got ()")
            for v in r["levels"]:
                _positive_int("levels[i]", v)
        for name, valid in (("merge", MERGES), ("norm", NORMS)):
            if name in r:
                _choice(name, r[name], valid)
        if "init" in r:
            _choice("init", r["init"], FC_INITS if self.processor == "fc" else CFC_INITS)
        if "bias" in r and not isinstance(r["bias"], bool):
            raise ValueError(f"`bias` must be True or False, but got bias={r['bias']!r}")

    def resolved(self, channels: int | None = None) -> dict[str, Any]:
        """The hyper-parameters this spec uses, with published defaults filled in.

        With ``channels``, a published default that cannot fit that many channels (DIA light's
        r = 20 or SGE's 64 groups on a 16-channel digits net) is fitted to it: ``reduction``
        becomes at most ``channels`` and ``groups`` the largest divisor shared with
        ``channels``. Values the user gave are never changed (they are validated instead).
        """
        out: dict[str, Any] = {}
        for part in (self.processor, self.extractor):
            for key, default in _DEFAULTS.get(part, {}).items():
                given = getattr(self, key)
                out[key] = _fit_default(key, default, channels) if given is None else given
        return out

    @property
    def is_spatial(self) -> bool:
        """True when Δt varies over positions (shape (B, C|1, H, W))."""
        return self.processor in ("spatial_conv", "sge") or bool(self.then and self.then.is_spatial)

    def replace(self, **changes: Any) -> AdaptorSpec:
        """A copy with fields changed; unknown field names raise ValueError with the closest."""
        names = [f.name for f in dataclasses.fields(self)]
        for key in changes:
            if key not in names:
                raise closest_error("AdaptorSpec field", key, names)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML form) of the fields that differ from the defaults."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            if isinstance(value, AdaptorSpec):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdaptorSpec:
        """Build from the YAML form; unknown keys raise ValueError naming the closest field."""
        if not isinstance(data, Mapping):
            raise ValueError(f"an adaptor spec must be a mapping, but got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                raise closest_error("AdaptorSpec field", key, names)
        return cls(**dict(data))
