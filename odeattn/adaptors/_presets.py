"""Named adaptors with their published structure and initialisation, and ``create_adaptor``.

Per-block parameter counts for C channels (ResNet-164 has 18 blocks at each of C = 64, 128, 256;
base 1,704,154 on CIFAR-10, 1,727,284 on CIFAR-100):

    none        0                             Δt = 1: ``create_adaptor`` returns None
    se          2C²/16 + C/16 + C             SE (r = 16, biases)            +202,104 → 1.91M
    eca         k, k = 3/5/5                  ECA, adaptive k                +234     → 1.70M
    cbam        SE-MLP + 2k² + 2, k = 7       CBAM channel (avg+max, shared MLP, biases 0) then
                                              spatial (max/mean → 7×7 conv → BN, BN weight 0)
                                                                             +207,504 → 1.91M
                                              (the tables print 1.92M; 0.4 % off, see note below)
    srm         4C                            SRM style pool → cfc (init 0) → BN   +32,256 → 1.74M
    fca         2C²/16                        FcaNet top16 DCT pool → FC without bias (official);
                                              ``bias=True`` gives the tables' 1.91M (+202,104)
    spa         21C²/16 + C²/16               SPA pyramid (1, 2, 4) → FC without bias
    sge         2G, G = 64                    Spatial Group-wise Enhance (w 0, b 1)
    iebn        2C                            the IE operator of IEBN as an adaptor, σ(w⊙GAP(Φ)+b),
                                              w 0, b −1. The IEBN *network* (+24,224 on ResNet-164)
                                              replaces every BN of the blocks by ``IEBatchNorm2d``;
                                              that is a backbone option, not an adaptor.
    stepnet     6C                            StepNet (see below)            +48,384 → 1.75M
    dia_lstm    2(5C²/r + C/r + 4C) per stage DIA-LSTM, r = 4, one per stage +218,848 → 1.92M/1.95M
                                              (r = 16: +57,400 → 1.78M on CIFAR-100)
    dia_light   5C²/r + C/r + 4C + 8C, r = 20 DIA light                      +25,557 → 1.73M/1.75M

StepNet (ICCV 2023, Fig. 4b: Conv → Pooling → IEBN → σ, "Conv is group convolution"; no public
code). Δt = σ(IEBN(GAP(W ⊛ [x_{t+1}, x_t]))) with W a grouped 1×1 conv (groups = C, 2 weights per
channel, no bias, init N(0, 2/C) as the group's ResNet init loop gives any Conv2d) over the pair
interleaved per channel, IEBN with 4C parameters: 6C per block, +48,384 on ResNet-164 →
1.7525M (CIFAR-10, table 1.75M) / 1.7757M (CIFAR-100, table 1.77M, 0.3 % off; a 5C variant
would miss CIFAR-10 instead). Because a 1×1 conv commutes with GAP, we pool x_t and Φ first.

StepNet Table 4 adaptors a–d (Fig. 5 is missing from the text; our documented reading, each
changing one part of the adaptor while keeping the pair input):
    stepnet_a   normaliser: plain BN instead of IEBN (4C per block)
    stepnet_b   processor / early merge: SE bottleneck over the concatenated pair
                (Linear(2C → C/16) → ReLU → Linear(C/16 → C)), mixing channels
    stepnet_c   late merge: the same SE bottleneck applied to GAP(x_{t+1}) and GAP(x_t) separately,
                logits summed after processing
    stepnet_d   normaliser: IE without batch statistics, z·γ⊙σ(w⊙z + b) + β (6C per block)
The input ablations of Table 4 are ``create_adaptor("stepnet", C, inputs="x" | "next" | "diff")``.

Notes. CBAM's 1.92M in the DIA/StepNet tables is 0.4 % above the published module's count
(207,504 → 1.9117M); SPA's 1.93M in the DIA table cannot come from the 21C-input FC of the SPA
module (2.13M extra); we keep the published structures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from ._adaptor import Adaptor
from ._spec import AdaptorSpec, closest_error

__all__ = ["ADAPTORS", "PRESETS", "create_adaptor", "default_sharing", "resolve_spec"]

_PAIR_SE = {"inputs": "pair", "processor": "fc"}

PRESETS: dict[str, AdaptorSpec | None] = {
    "none": None,
    "se": AdaptorSpec(),
    "eca": AdaptorSpec(processor="eca"),
    "cbam": AdaptorSpec(
        extractor="avgmax",
        merge="sum",
        init="zero_bias",
        then=AdaptorSpec(extractor="channel_pool", processor="spatial_conv"),
    ),
    "srm": AdaptorSpec(extractor="style", processor="cfc"),
    "fca": AdaptorSpec(extractor="dct", bias=False),
    "spa": AdaptorSpec(extractor="pyramid", bias=False),
    "sge": AdaptorSpec(extractor="none", processor="sge"),
    "iebn": AdaptorSpec(processor="ie"),
    "stepnet": AdaptorSpec(inputs="pair", processor="cfc", norm="iebn", init="he"),
    "stepnet_a": AdaptorSpec(inputs="pair", processor="cfc", norm="bn", init="he"),
    "stepnet_b": AdaptorSpec(**_PAIR_SE, merge="concat"),
    "stepnet_c": AdaptorSpec(**_PAIR_SE, merge="sum"),
    "stepnet_d": AdaptorSpec(inputs="pair", processor="cfc", norm="ie", init="he"),
    "dia_lstm": AdaptorSpec(processor="lstm", sharing="stage"),
    "dia_light": AdaptorSpec(processor="lstm_light", sharing="stage"),
}


def resolve_spec(
    kind: str | AdaptorSpec | Mapping[str, Any] | None, **overrides: Any
) -> tuple[AdaptorSpec | None, str | None]:
    """(spec, preset name) for a preset name, spec, or YAML dict (``{"preset": "se", ...}`` ok)."""
    name = None
    if kind is None:
        spec = None
    elif isinstance(kind, AdaptorSpec):
        spec = kind
    elif isinstance(kind, str):
        if kind not in PRESETS:
            raise closest_error("adaptor", kind, PRESETS, " Or pass an AdaptorSpec / its dict.")
        name, spec = kind, PRESETS[kind]
    elif isinstance(kind, Mapping):
        data = dict(kind)
        if "preset" in data:
            base, name = resolve_spec(data.pop("preset"))
            if base is None:
                if data:
                    raise ValueError(f"adaptor 'none' takes no fields, but got {sorted(data)}")
                return None, name
            spec = base.replace(**data) if data else base
        else:
            spec = AdaptorSpec.from_dict(data)
    else:
        raise ValueError(
            f"an adaptor must be None, a name in ADAPTORS, an AdaptorSpec or its dict, "
            f"but got {type(kind).__name__}: {kind!r}"
        )
    if overrides:
        if spec is None:
            raise ValueError(
                f"adaptor {name or kind!r} (Δt = 1) takes no options, but got {sorted(overrides)}"
            )
        spec = spec.replace(**overrides)
    return spec, name


def create_adaptor(
    kind: str | AdaptorSpec | Mapping[str, Any] | None,
    channels: int,
    *,
    shared_blocks: int | None = None,
    **overrides: Any,
) -> nn.Module | None:
    """Build the adaptor ``kind`` for ``channels`` channels; None / "none" give None (Δt = 1).

    ``overrides`` replace spec fields (``reduction=8``, ``gate="hard_sigmoid"``, ``inputs="x"``);
    ``shared_blocks=n`` builds one stage-shared module for n blocks (see :func:`bind`).
    """
    spec, name = resolve_spec(kind, **overrides)
    if spec is None:
        return None
    if spec.sharing == "stage" and shared_blocks is None:
        raise ValueError(
            f"adaptor {name or 'spec'!r} is shared by the blocks of a stage (sharing='stage'), "
            "but got shared_blocks=None; pass shared_blocks=n (the number of blocks it serves) "
            "or sharing='block' for one module per block"
        )
    return Adaptor(spec, channels, shared_blocks=shared_blocks, kind=name)


def default_sharing(kind: str | AdaptorSpec | Mapping[str, Any] | None) -> str:
    """The sharing a model should use by default: "stage" for the DIA presets, else the spec's."""
    spec, _ = resolve_spec(kind)
    return "block" if spec is None else spec.sharing


def _factory(name: str) -> Callable[..., nn.Module | None]:
    def factory(channels: int, **kw: Any) -> nn.Module | None:
        return create_adaptor(name, channels, **kw)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"create_adaptor({name!r}, channels, **kw): the {name!r} preset."
    return factory


ADAPTORS: dict[str, Callable[..., nn.Module | None]] = {name: _factory(name) for name in PRESETS}
