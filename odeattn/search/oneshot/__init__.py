"""One-shot search (``strategy: supernet``): train one supernet, score, retrain the best.

EAN / LTH4SA (Huang et al., arXiv 2207.07858) and SPOS (Guo et al. 2020) replace the training of
every candidate by one weight-sharing supernet. Three steps around the normal search:

1. ``prepare_supernet`` (``_train``): before the backend, train the study's supernet once through
   ``odeattn.train.fit`` (checkpoint per epoch under ``runs/<study>/supernet/``, resumed after an
   interrupt, skipped when finished) and stamp the study with the supernet that scores it;
2. the backends run ``search.trial.trial_function(study)`` = ``score_trial`` for every sampled
   architecture (an Optuna trial; any sampler, EAN's controller is ``sampler: reinforce``);
3. ``retrain_best`` (``_retrain``): the top k (or the front) trained from scratch in the study
   ``<name>-retrain`` of the same storage, printed beside their supernet scores with Kendall τ.

``check_supernet`` refuses at validation a space the supernet cannot share; ``dry_run_supernet``
is ``--dry-run``'s extra check.
"""

from odeattn.search.oneshot._dry import dry_run_supernet
from odeattn.search.oneshot._retrain import (
    SUFFIX,
    comparison,
    conclude_for,
    picks,
    retrain_best,
    retrain_config,
)
from odeattn.search.oneshot._train import check_supernet, prepare_supernet, train_supernet

__all__ = [
    "SUFFIX",
    "check_supernet",
    "comparison",
    "conclude_for",
    "dry_run_supernet",
    "picks",
    "prepare_supernet",
    "retrain_best",
    "retrain_config",
    "train_supernet",
]
