"""Starting Ray for odeattn: quiet, loopback-only when local, attached when given an address.

``_import_ray`` sets :data:`QUIET_ENV` (if unset) before ``import ray``; ``_init_ray`` starts a
private local Ray bound to 127.0.0.1 (checked after start; no dashboard) or attaches to
``address`` / ``RAY_ADDRESS`` (set inside ``ray job submit``), and says whether it started Ray (the
caller then shuts it down). Used by the search (``_tune``) and the noise ceiling (``_retrain``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["QUIET_ENV", "ray_available"]

#: Environment set (if unset) before ``import ray``: silent, loopback-only, no files outside the run.
QUIET_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_DISABLE_SIGINT_HANDLER": "1",  # Ctrl-C is ours: re-queue, then exit 130
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",  # per-epoch reports need not carry every objective
}
_OBJECT_STORE = 256 * 1024**2


def ray_available() -> bool:
    """True when ``ray[tune]`` can be imported (without importing it)."""
    return importlib.util.find_spec("ray") is not None


def _import_ray() -> Any:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import ray
        from ray import tune  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "backend 'ray' needs Ray Tune, but `import ray` failed "
            f"({exc}); install it with `pip install 'odeattn[ray]'` or use `backend: optuna`"
        ) from exc
    return ray


def _init_ray(ray: Any, address: str | None, num_cpus: int | None) -> bool:
    """Start (or attach to) Ray; True when this call started it (so we shut it down)."""
    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    address = address or os.environ.get("RAY_ADDRESS") or None  # set inside `ray job submit`
    if address is not None:
        ray.init(address=address, **quiet)
        return True
    temp_dir = Path(tempfile.gettempdir()) / f"ray-odeattn-{os.getuid()}"  # sockets < 107 chars
    ray.init(
        address="local",
        num_cpus=num_cpus or os.cpu_count() or 1,
        include_dashboard=False,
        object_store_memory=_OBJECT_STORE,
        _node_ip_address="127.0.0.1",
        _temp_dir=str(temp_dir),
        **quiet,
    )
    node_ip = ray.util.get_node_ip_address()
    if node_ip != "127.0.0.1":
        ray.shutdown()
        raise RuntimeError(
            f"local Ray must bind 127.0.0.1 only, but its node address is {node_ip}; "
            "set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before Ray is imported"
        )
    return True
