"""Reading study and search-space files: ``yaml.safe_load``, pydantic validation, one-line errors.

Every problem becomes a :class:`~odeattn.study.config._base.ConfigError`
``FILE: key.path: what is wrong; how to fix it``; the command line prints exactly that line and
exits with status 2, before any storage is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from odeattn.study.config._base import ConfigError, _KeyedError
from odeattn.study.config._space import SearchSpaceConfig
from odeattn.study.config._study import StudyConfig

__all__ = ["load_search_space", "load_study"]


# ----------------------------------------------------------------------------- loading
def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(path, "", f"file not found (cwd {Path.cwd()}); check the path")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(path, "", f"not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "", f"must be a mapping of keys, but got {type(data).__name__}")
    return data


def _loc(loc: tuple[Any, ...], tags: set[str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in tags or str(part).startswith(("function-", "literal[", "int", "float")):
            continue  # union / discriminator branch names are not keys of the file
        else:
            out += f".{part}" if out else str(part)
    return out


_TAGS = {
    "float",
    "int",
    "categorical",
    "per_stage",
    "placement",
    "str",
    "bool",
    "none",
    "list[...]",
    "dict[...]",
    "tuple[...]",
}


def _fix(err: dict[str, Any]) -> str:
    kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
    inp = err.get("input")
    if kind == "extra_forbidden":
        return "unknown key; remove it or check its spelling"
    if kind == "missing":
        return "required key is missing; add it"
    if kind == "union_tag_invalid":
        return f"{msg}; set type to one of float, int, categorical, per_stage, placement"
    if kind.endswith(("_type", "_parsing")) or kind in ("literal_error",):
        return f"{msg}, but got {inp!r}"
    return msg


def _validate(cls: type[BaseModel], data: dict[str, Any], source: Path, **extra: Any) -> Any:
    try:
        return cls.model_validate({**data, **extra})
    except ValidationError as e:
        errs = e.errors(include_url=False)
        err = errs[0]
        ctx_err = (err.get("ctx") or {}).get("error")
        key = _loc(tuple(err["loc"]), _TAGS)
        if isinstance(ctx_err, _KeyedError):
            key = ctx_err.key
        more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
        raise ConfigError(source, key, _fix(err) + more) from None


def load_study(path: str | Path, **overrides: Any) -> StudyConfig:
    """Read and validate a study file; ``overrides`` replace top-level keys (the CLI's flags)."""
    path = Path(path)
    data = _read_yaml(path)
    if "file" in data:
        raise ConfigError(path, "file", "unknown key; remove it or check its spelling")
    for k, v in overrides.items():
        if k == "n_trials":
            data["budget"] = {**(data.get("budget") or {}), "n_trials": v}
        else:
            data[k] = v
    return _validate(StudyConfig, data, path, file=str(path.resolve()))


def load_search_space(study: StudyConfig) -> SearchSpaceConfig:
    """Read the study's search-space file (path relative to the study file)."""
    path = study.space_path
    if not path.is_file():
        raise ConfigError(
            study.file,
            "search_space",
            f"file {path} not found; give a path relative to the study file, "
            "e.g. ../search_spaces/<name>.yaml",
        )
    return _validate(SearchSpaceConfig, _read_yaml(path), path)
