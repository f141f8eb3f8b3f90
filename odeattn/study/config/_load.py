"""Reading study and search-space files: ``yaml.safe_load``, pydantic validation, one-line errors.

Every problem becomes a :class:`~odeattn.study.config._base.ConfigError`
``FILE: key.path: what is wrong; how to fix it``; the command line prints exactly that line and
exits with status 2, before any storage is touched.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from odeattn.study.config._base import ConfigError, _KeyedError, closest
from odeattn.study.config._space import SearchSpaceConfig
from odeattn.study.config._study import StudyConfig

__all__ = ["MAX_ALIASES", "MAX_BYTES", "load_search_space", "load_study", "short"]


# ----------------------------------------------------------------------------- loading
#: A study or space file is a page of settings: more than this is not one (and an alias bomb
#: — a 1 KB file whose anchors expand to millions of nodes — is refused before it expands).
MAX_BYTES, MAX_ALIASES = 1_000_000, 20


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys (YAML 1.2 forbids them; PyYAML keeps the
    last silently) and more than :data:`MAX_ALIASES` aliases."""

    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(
                    f"more than {MAX_ALIASES} aliases (*name) at line {mark.line + 1}; "
                    "write the values out instead of aliasing them"
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.YAMLError(
                    f"key {key!r} appears twice at line {key_node.start_mark.line + 1}; keep one"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(path, "", f"file not found (cwd {Path.cwd()}); check the path")
    if path.stat().st_size > MAX_BYTES:
        raise ConfigError(path, "", f"larger than {MAX_BYTES} bytes; is it a study file?")
    try:
        data = yaml.load(path.read_text(), Loader=_StrictLoader)
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(path, "", f"not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "not a text file (not UTF-8); check the path") from None
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


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 2, 40, 40, 4, 4


def short(value: Any) -> str:
    """A bounded ``repr`` for messages (a wrongly typed 5 MB value is not printed whole)."""
    return _SHORT.repr(value)


def _fix(err: dict[str, Any], missing: list[str]) -> str:
    kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
    inp = err.get("input")
    if kind == "extra_forbidden":
        near = closest(str(err["loc"][-1]), missing).split(" valid:")[0] if missing else ""
        return f"unknown key; {near or 'remove it or check its spelling'}"
    if kind == "missing":
        return "required key is missing; add it"
    if kind == "union_tag_invalid":
        return f"{msg}; set type to one of float, int, categorical, per_stage, placement"
    if kind.endswith(("_type", "_parsing")) or kind in ("literal_error",):
        return f"{msg}, but got {short(inp)}"
    return msg


def _validate(cls: type[BaseModel], data: dict[str, Any], source: Path, **extra: Any) -> Any:
    try:
        return cls.model_validate({**data, **extra})
    except ValidationError as e:
        errs = sorted(e.errors(include_url=False), key=lambda x: x["type"] != "extra_forbidden")
        err = errs[0]
        parent = tuple(err["loc"][:-1])
        missing = [
            str(x["loc"][-1])
            for x in errs
            if x["type"] == "missing" and tuple(x["loc"][:-1]) == parent
        ]
        ctx_err = (err.get("ctx") or {}).get("error")
        key = _loc(tuple(err["loc"]), _TAGS)
        if isinstance(ctx_err, _KeyedError):
            key = ctx_err.key
        more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
        raise ConfigError(source, key, _fix(err, missing) + more) from None


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
