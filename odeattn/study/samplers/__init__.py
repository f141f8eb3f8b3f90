"""Samplers of odeattn's own, named in a study's ``sampler.name`` beside Optuna's.

``reinforce``: EAN's REINFORCE controller (learned logits per categorical parameter, temperature,
accuracy + λ · sparsity reward with a moving-average baseline, RND curiosity bonus), an
``optuna.samplers.BaseSampler`` usable by any Optuna study.
"""

from odeattn.study.samplers._reinforce import ReinforceSampler, attention_share

__all__ = ["ReinforceSampler", "attention_share"]
