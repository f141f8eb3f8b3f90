"""Storage URLs checked up front: one line naming the fix instead of a driver traceback.

A ``--storage`` value is either a journal file path (no ``scheme://``) or an SQLAlchemy URL
``dialect[+driver]://…`` (RFC 1738 form, as Optuna's ``RDBStorage`` takes it). Before anything
is created:

* ``sqlite:///FILE`` needs three slashes (``sqlite://x.db`` is "did you mean sqlite:///x.db?");
* ``postgresql://`` (and ``postgres://``) get the driver ``.[postgres]`` installs: SQLAlchemy 2.1
  maps a bare ``postgresql://`` to psycopg 3, so the URL becomes ``postgresql+psycopg2://`` when
  only psycopg2 is importable (an explicit ``+driver`` is kept, and must be importable);
* an unknown dialect, a driver that is not installed, or a path whose first part is a dialect name
  (``postgresql//host/db``, a missing colon) is refused with the fix;
* :func:`redact` hides a password before a URL is printed (credentials are never logged).
"""

from __future__ import annotations

import importlib.util
import re

from sqlalchemy.engine import make_url

from odeattn._errors import did_you_mean

__all__ = ["StorageURLError", "check_storage_url", "redact"]

_DIALECTS = {  # dialect -> (default driver module, the extra that installs one)
    "sqlite": ("sqlite3", ""),
    "postgresql": ("psycopg2", "pip install 'odeattn[postgres]'"),
    "mysql": ("pymysql", "pip install pymysql"),
}
_DRIVER_MODULES = {"psycopg2": "psycopg2", "psycopg": "psycopg", "pymysql": "pymysql"}
_ALIASES = {"postgres": "postgresql"}


class StorageURLError(ValueError):
    """A storage URL that cannot work; the message names the fix."""


def _check_path(text: str) -> str:
    first = re.split(r"[/\\]", text, maxsplit=1)[0].lower().rstrip(":")
    dialect = first.split("+")[0]
    if dialect in _DIALECTS or dialect in _ALIASES or ":" in first:
        rest = text[len(first) :].lstrip(":/")
        raise StorageURLError(
            f"storage {text!r} looks like a URL with a malformed scheme; "
            f"did you mean {f'{first}://{rest}'!r}? (a journal file is a plain path)"
        )
    return text


def _driver(dialect: str, driver: str, text: str) -> str:
    if dialect == "postgresql" and not driver:
        if importlib.util.find_spec("psycopg") is not None:
            return "psycopg"  # SQLAlchemy's default for postgresql:// in 2.1
        driver = "psycopg2"
    module, install = _DIALECTS[dialect]
    module = _DRIVER_MODULES.get(driver, driver or module)
    if importlib.util.find_spec(module) is None:
        raise StorageURLError(
            f"storage {text!r} needs the Python driver {module!r}, which is not installed; "
            f"{install or 'install it'}"
        )
    return driver


def check_storage_url(url: str) -> str:
    """The URL Optuna will be given (driver made explicit), or :class:`StorageURLError`."""
    text = str(url).strip()
    if not text:
        raise StorageURLError("storage must be a journal file path or a URL, but got ''")
    if "://" not in text:
        return _check_path(text)
    scheme, rest = text.split("://", 1)
    dialect, _, driver = scheme.lower().partition("+")
    dialect = _ALIASES.get(dialect, dialect)
    if dialect not in _DIALECTS:
        raise StorageURLError(
            f"storage {text!r} has unknown database {scheme!r}{did_you_mean(dialect, _DIALECTS)}; "
            "use sqlite:///FILE, postgresql://user@host:port/db or a journal file path"
        )
    if dialect == "sqlite":
        if not rest.startswith("/"):
            raise StorageURLError(
                f"storage {text!r}: an SQLite URL has three slashes; did you mean "
                f"{'sqlite:///' + rest!r}?"
            )
        return text
    driver = _driver(dialect, driver, text)
    try:
        parsed = make_url(f"{dialect}+{driver}://{rest}")
    except Exception as exc:  # SQLAlchemy's ArgumentError and friends: say which part is wrong
        raise StorageURLError(f"storage {redact(text)!r} is not a valid URL: {exc}") from exc
    if not parsed.database:
        raise StorageURLError(f"storage {redact(text)!r} names no database; add /DBNAME")
    return f"{dialect}+{driver}://{rest}"


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (for printing)."""
    if "://" not in str(url) or "@" not in str(url):
        return str(url)
    try:
        return make_url(str(url)).render_as_string(hide_password=True)
    except Exception:  # not parseable: hide everything between :// and @
        return re.sub(r"://[^@]*@", "://***@", str(url))
