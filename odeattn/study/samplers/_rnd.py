"""Random Network Distillation (Burda et al. 2019, "Exploration by Random Network Distillation"):
the curiosity bonus of EAN's controller (Huang et al., arXiv 2011.14058, code
``gbup-group/EAN-efficient-attention-network``).

A fixed random *target* net ``g`` (D → 32 → 32 → 4D, ReLU) and a learned *predictor* ``ĝ``
(D → 32 → 4D) see the sampled architectures as vectors ``z`` (one indicator per non-first choice
of every learned parameter; for attention bits that is the bit itself, EAN's 16-bit mask). The
bonus of one controller step is the summed squared prediction error over its samples,

    bonus = Σ_s ‖ĝ(z_s) − g(z_s)‖²,

added as one scalar to every reward of the step; then ĝ takes one Adam step on the mean of the
same errors. Architectures seen often are predicted well and earn little bonus.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

__all__ = ["Curiosity"]


def _mlp(sizes: list[int], gen: torch.Generator) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        lin = nn.Linear(a, b).double()
        with torch.no_grad():  # nn.Linear's default init, from our generator (reproducible)
            bound = 1.0 / a**0.5
            lin.weight.copy_(
                torch.empty(b, a, dtype=torch.float64).uniform_(-bound, bound, generator=gen)
            )
            lin.bias.copy_(
                torch.empty(b, dtype=torch.float64).uniform_(-bound, bound, generator=gen)
            )
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Curiosity:
    """RND bonus over vectors of ``dim`` features; ``lr`` is the predictor's Adam step size."""

    def __init__(self, dim: int, *, lr: float, seed: int, hidden: int = 32) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.target = _mlp([dim, hidden, hidden, 4 * dim], gen).requires_grad_(False)
        self.predictor = _mlp([dim, hidden, 4 * dim], gen)
        self.opt = torch.optim.Adam(self.predictor.parameters(), lr=lr)
        self.dim = dim

    def step(self, z: torch.Tensor) -> float:
        """(S, dim) sampled architectures -> the step's bonus; trains the predictor once."""
        z = z.to(torch.float64)
        err = ((self.predictor(z) - self.target(z)) ** 2).sum(1)  # (S,)
        bonus = float(err.sum().detach())
        self.opt.zero_grad()
        err.mean().backward()
        self.opt.step()
        return bonus
