"""EAN's REINFORCE controller as an Optuna sampler (``sampler: {name: reinforce, kwargs: {...}}``).

EAN / LTH4SA (Huang et al., arXiv 2011.14058 and 2207.07858; code
``gbup-group/EAN-efficient-attention-network``) search attention placement with a policy
gradient: per block, logits ``l`` over {off, on}; a choice is drawn from ``softmax(l / T)``
(temperature T = 5); after every step of ``samples_per_step`` = 3 scored architectures the logits
take one Adam step (lr 0.05) on

    loss = − Σ_params mean_s [ log π(a_s) · (R_s − b) ],
    R_s  = reward_scale · v_s + sparsity_weight · (1 − attention share_s) + bonus,

with v_s the trial's first objective (negated when minimised; ``reward_scale`` = 100 turns an
accuracy into EAN's percent), the attention share read from the trial's ``attention_blocks`` and
``architecture.blocks`` attributes (EAN: "2 · sparsity"), the RND curiosity bonus of
:mod:`._rnd`, and the baseline b an exponential moving average of the steps' mean rewards
(decay 0.95; updated before the advantage, as ENAS's controller does; ``baseline: null`` starts
it at the first step's mean, EAN's ``− 54`` is ``baseline: 54``). EAN's MLP on a constant zero
input is a table of logits; here it is that table. EAN's PPO-style replay update is not done.

Every categorical parameter (and every int range of at most 64 values) gets its own logits, so
the controller learns any discrete space (placement bits, adaptors, tableaux, depths); float
parameters are drawn uniformly (``RandomSampler``). Multi-objective studies: the reward uses the
first objective (EAN's scalarisation), the front is still taken over all of them.

The controller's state is rebuilt from the storage: finished trials enter it in the order they
finished, ``samples_per_step`` at a time, so a resumed study or a worker process continues from
the same state (with one worker exactly; parallel workers share the trials, each draws with its
own seed).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
import torch
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from odeattn._errors import must
from odeattn.study.samplers._rnd import Curiosity

__all__ = ["ReinforceSampler"]

_MAX_INT_CHOICES = 64
_B1, _B2, _EPS = 0.9, 0.999, 1e-8  # Adam's defaults (torch.optim.Adam)


def _choices(dist: BaseDistribution) -> tuple[Any, ...] | None:
    """The discrete values a distribution offers, or None (a float: not learned)."""
    if isinstance(dist, CategoricalDistribution):
        return tuple(dist.choices)
    if isinstance(dist, IntDistribution) and not dist.log:
        n = (dist.high - dist.low) // dist.step + 1
        if n <= _MAX_INT_CHOICES:
            return tuple(range(dist.low, dist.high + 1, dist.step))
    return None


class _Logits:
    """One learned parameter: logits, its choices, Adam moments."""

    def __init__(self, choices: tuple[Any, ...]) -> None:
        self.choices = choices
        self.logits = np.zeros(len(choices))
        self.m, self.v, self.t = np.zeros(len(choices)), np.zeros(len(choices)), 0

    def probs(self, temperature: float) -> np.ndarray:
        z = self.logits / temperature
        e = np.exp(z - z.max())
        return e / e.sum()

    def adam(self, grad: np.ndarray, lr: float) -> None:
        self.t += 1
        self.m = _B1 * self.m + (1 - _B1) * grad
        self.v = _B2 * self.v + (1 - _B2) * grad**2
        m_hat, v_hat = self.m / (1 - _B1**self.t), self.v / (1 - _B2**self.t)
        self.logits = self.logits - lr * m_hat / (np.sqrt(v_hat) + _EPS)


def attention_share(t: FrozenTrial) -> float | None:
    """Share of the trial's blocks that carry attention (None when its attributes lack it)."""
    n = t.user_attrs.get("attention_blocks")
    blocks = (t.user_attrs.get("architecture") or {}).get("blocks")
    if n is None or not blocks:
        return None
    return float(n) / float(sum(blocks))


def _positive(name: str, value: Any, *, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        raise must(name, f"be a positive {'int' if integer else 'number'}", value)


class ReinforceSampler(optuna.samplers.BaseSampler):
    """EAN's controller (module docstring); every keyword is a ``sampler.kwargs`` key."""

    def __init__(
        self,
        *,
        seed: int | None = None,
        lr: float = 0.05,
        temperature: float = 5.0,
        samples_per_step: int = 3,
        baseline_decay: float = 0.95,
        baseline: float | None = None,
        reward_scale: float = 100.0,
        sparsity_weight: float = 2.0,
        curiosity: float = 1.0,
    ) -> None:
        _positive("lr", lr)
        _positive("temperature", temperature)
        _positive("samples_per_step", samples_per_step, integer=True)
        if not 0.0 <= baseline_decay < 1.0:
            raise must("baseline_decay", "lie in [0, 1)", baseline_decay)
        for name, v in (("reward_scale", reward_scale), ("sparsity_weight", sparsity_weight)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise must(name, "be a finite number", v)
        if isinstance(curiosity, bool) or not isinstance(curiosity, int | float) or curiosity < 0:
            raise must("curiosity", "be a number ≥ 0 (0: no RND bonus)", curiosity)
        self.lr, self.temperature, self.samples_per_step = lr, temperature, samples_per_step
        self.baseline_decay, self.baseline = baseline_decay, baseline
        self.reward_scale, self.sparsity_weight, self.curiosity = (
            reward_scale,
            sparsity_weight,
            curiosity,
        )
        self._seed = 0 if seed is None else int(seed)
        self._rng = np.random.default_rng(seed)
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self.params: dict[str, _Logits] = {}
        self.steps, self.rewards, self.bonuses = 0, [], []  # per step: mean reward, RND bonus
        self._seen: set[int] = set()
        self._pending: list[FrozenTrial] = []
        self._rnd: Curiosity | None = None
        self._features: list[tuple[str, int]] = []  # (param, choice index) per RND input
        self._synced: int | None = None

    # -- Optuna's sampler interface --------------------------------------------------------
    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study: Any, trial: FrozenTrial) -> dict:
        return {}

    def sample_relative(self, study: Any, trial: FrozenTrial, search_space: dict) -> dict:
        return {}

    def sample_independent(
        self, study: Any, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        choices = _choices(param_distribution)
        if choices is None:
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        if self._synced != trial.number:
            self.sync(study)
            self._synced = trial.number
        p = self._logits(param_name, choices).probs(self.temperature)
        return choices[int(self._rng.choice(len(choices), p=p))]

    # -- the controller ---------------------------------------------------------------------
    def _logits(self, name: str, choices: tuple[Any, ...]) -> _Logits:
        if name not in self.params or self.params[name].choices != choices:
            self.params[name] = _Logits(choices)
        return self.params[name]

    def sync(self, study: Any) -> int:
        """Take in the study's newly finished trials, a step per ``samples_per_step``; returns
        the number of controller steps taken so far."""
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        new = [t for t in done if t.number not in self._seen]
        new.sort(key=lambda t: (t.datetime_complete is None, t.datetime_complete, t.number))
        sign = 1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1.0
        for t in new:
            self._seen.add(t.number)
            self._pending.append(t)
            if len(self._pending) == self.samples_per_step:
                self.update(self._pending, sign)
                self._pending = []
        return self.steps

    def _reward(self, t: FrozenTrial, sign: float) -> float:
        r = self.reward_scale * sign * float(t.values[0])
        share = attention_share(t)
        return r + (self.sparsity_weight * (1.0 - share) if share is not None else 0.0)

    def _actions(self, t: FrozenTrial) -> dict[str, int]:
        out = {}
        for name, value in t.params.items():
            choices = _choices(t.distributions[name])
            if choices is not None and value in choices:
                out[name] = self._logits(name, choices).choices.index(value)
        return out

    def _bonus(self, actions: list[dict[str, int]]) -> float:
        if self.curiosity == 0:
            return 0.0
        if self._rnd is None:  # features: the parameters of the first step, non-first choices
            self._features = [
                (n, i) for n in sorted(self.params) for i in range(1, len(self.params[n].choices))
            ]
            if not self._features:
                return 0.0
            self._rnd = Curiosity(len(self._features), lr=self.lr, seed=self._seed)
        z = torch.tensor([[float(a.get(n) == i) for n, i in self._features] for a in actions])
        return self.curiosity * self._rnd.step(z)

    def update(self, trials: list[FrozenTrial], sign: float) -> None:
        """One REINFORCE step on ``trials`` (one controller step's samples)."""
        actions = [self._actions(t) for t in trials]
        self.bonuses.append(self._bonus(actions))
        rewards = np.array([self._reward(t, sign) for t in trials]) + self.bonuses[-1]
        mean = float(rewards.mean())
        d = self.baseline_decay
        self.baseline = mean if self.baseline is None else d * self.baseline + (1 - d) * mean
        adv = rewards - self.baseline
        for name, p in self.params.items():
            rows = [(a[name], adv[s]) for s, a in enumerate(actions) if name in a]
            if not rows:
                continue
            probs, grad = p.probs(self.temperature), np.zeros(len(p.choices))
            for idx, a in rows:  # d/dl of −log softmax(l/T)[idx]·a = −(onehot − p)·a/T
                onehot = np.eye(len(p.choices))[idx]
                grad -= (onehot - probs) * a / self.temperature
            p.adam(grad / len(rows), self.lr)
        self.steps += 1
        self.rewards.append(mean)
