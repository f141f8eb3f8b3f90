"""The Ray Tune backend: the same define-by-run search as Ray Tune trials, kept in Optuna storage.

``run_ray(study, space, url, console=)`` (``_study``) maps a validated study file onto the
engine ``_tune.run`` (Ray is imported only inside this package), whose Tune searcher
(``_searcher``) asks and tells Optuna through its public API and whose trainable (``_worker``)
runs ``run_trial`` in a Ray worker with a live ``optuna.Trial``, a heartbeat and ASHA decided
from the storage.
``check_ray(study)`` validates the Ray settings before anything is written; ``run_retrains``
(``_retrain``) runs the noise ceiling's retrains as Ray tasks on the same cluster (``_start``
starts or attaches to Ray for both).
"""

from odeattn.search.backends.ray._retrain import run_retrains
from odeattn.search.backends.ray._storage import open_storage, resolve_storage_url
from odeattn.search.backends.ray._study import check_ray, run_ray

__all__ = ["check_ray", "open_storage", "resolve_storage_url", "run_ray", "run_retrains"]
