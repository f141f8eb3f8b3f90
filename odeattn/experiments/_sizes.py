"""How big a claim's run is, and the context a claim runs in: sizes, the run cache, pairing.

``full`` is the CPU size every pre-registered test is planned for (docs/results.md, "Plan"):
10 paired seeds, 15 epochs of the ``digits`` recipe, networks deep enough that TNS measures
something (8 blocks a stage: 7 measured; DIA at ResNet-83's 9 a stage). ``quick`` runs the same
definitions with 3 seeds and 1 epoch (the tests); ``paper`` is ResNet-164 on CIFAR-10 (a GPU).
Differences are paired by seed: the same seed initialises and orders the data of both variants.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odeattn.experiments._provenance import stable
from odeattn.experiments._runs import DIGITS, RunCache
from odeattn.experiments._stats import mean_ci

__all__ = ["FULL", "PAPER", "QUICK", "SIZES", "Ctx", "Size", "paired", "provenances"]


@dataclass(frozen=True)
class Size:
    """Training seeds and epochs, the benchmark's N / epochs / seeds, and the claims' depths."""

    seeds: int
    epochs: int
    n: int  # benchmark: architectures, epochs and seeds of each
    bench_epochs: int
    bench_seeds: int
    setting: tuple[str, str, str, str] = DIGITS  # (model family, data, recipe, device)
    bench_space: str = "evidence_deep.yaml"
    deep: tuple[int, ...] | None = (8, 8, 8)  # claims 1-4, 6: blocks a stage (None: the model's)
    dia: tuple[int, ...] | None = (9, 9, 9)  # claim 5: ResNet-83's blocks a stage

    def deep_kw(self) -> dict[str, Any]:
        return {} if self.deep is None else {"blocks": list(self.deep)}

    def dia_kw(self) -> dict[str, Any]:
        return {} if self.dia is None else {"blocks": list(self.dia)}


FULL = Size(seeds=10, epochs=15, n=30, bench_epochs=8, bench_seeds=3)
QUICK = Size(seeds=3, epochs=1, n=6, bench_epochs=1, bench_seeds=2)
#: Paper scale (StepNet / DIA: ResNet-164 on CIFAR-10, 164 epochs): for a GPU machine.
PAPER = Size(
    seeds=10,
    epochs=164,
    n=24,
    bench_epochs=30,
    bench_seeds=2,
    setting=("resnet164", "cifar10", "resnet164_cifar", "auto"),
    bench_space="evidence_paper.yaml",
    deep=None,
    dia=None,
)
SIZES = {"full": FULL, "quick": QUICK, "paper": PAPER}


@dataclass(frozen=True)
class Ctx:
    """Where a claim writes (``OUT/NAME``), its size, and how many runs train at once."""

    out: Path
    size: Size
    jobs: int = 1

    @property
    def cache(self) -> RunCache:
        """The runs shared by every claim under ``OUT/runs``."""
        return RunCache(self.out.parent, self.size.setting, self.jobs)

    def runs(self, variants: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """Every variant's run records, seed 0 … seeds−1 (the missing ones trained first)."""
        cache, n, e = self.cache, self.size.seeds, self.size.epochs
        cache.fill((kw, s, e) for kw in variants.values() for s in range(n))
        return {name: [cache.get(kw, s, e) for s in range(n)] for name, kw in variants.items()}


def paired(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a − b over the seeds with its Student-t CI (the seeds pair the runs)."""
    return mean_ci([x - y for x, y in zip(a, b, strict=True)], level)


def provenances(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The distinct provenance records of the runs (date and command left out)."""
    seen: list[dict[str, Any]] = []
    for recs in runs.values():
        for r in recs:
            p = stable({"provenance": r.get("provenance") or {}})["provenance"]
            if p not in seen:
                seen.append(p)
    return seen
