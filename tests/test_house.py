"""The house rules that import-linter cannot express, checked on the source tree.

* A package's face (``__init__.py``) is its contract: no module imports a private ``_module`` of
  another package (the root's two helpers are the exceptions: ``odeattn._errors``, the one
  did-you-mean helper, and ``odeattn._env``, the torch-free checks of ``ulimit -v`` and the thread
  variables that ``python -m odeattn.…`` runs before anything loads).
* Modules ≤ 300 lines, functions ≤ 50 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "odeattn"
FILES = sorted(ROOT.rglob("*.py"))
ROOT_HELPERS = ("odeattn._errors", "odeattn._env")


def _package(path: Path) -> str:
    return ".".join(("odeattn", *path.parent.relative_to(ROOT).parts))


def _imported(tree: ast.AST, here: str) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:  # relative: resolve against here
            base = here.split(".")[: len(here.split(".")) - node.level + 1]
            out.append(".".join([*base, *(node.module or "").split(".")]).strip("."))
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return [m for m in out if m.startswith("odeattn")]


def private_imports(source: str, here: str) -> list[str]:
    """Imports in ``source`` (a module of package ``here``) that reach past another package's
    face: a ``_private`` module or name whose owner is not ``here``."""
    bad = []
    for mod in _imported(ast.parse(source), here):
        parts = mod.split(".")
        for i, p in enumerate(parts[1:], start=1):
            if p.startswith("_") and not p.startswith("__"):
                hit, owner = ".".join(parts[: i + 1]), parts[:i]
                while not ROOT.parent.joinpath(*owner).is_dir():
                    owner = owner[:-1]  # a private name of a module: its package owns it
                inside = here == hit or here.startswith(hit + ".")  # a private package's own
                if (
                    ".".join(owner) != here
                    and not inside
                    and hit not in ROOT_HELPERS
                    and hit not in bad
                ):
                    bad.append(hit)
                break
    return bad


def test_no_package_imports_another_packages_private_module() -> None:
    found = {str(f.relative_to(ROOT)): private_imports(f.read_text(), _package(f)) for f in FILES}
    found = {k: v for k, v in found.items() if v}
    assert not found, f"imports past a package's face: {found}"


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        (
            "from odeattn.search.storage._storage import budget_used",
            ["odeattn.search.storage._storage"],
        ),
        ("from odeattn.search.storage import _storage", ["odeattn.search.storage._storage"]),
        ("import odeattn.study._plan", ["odeattn.study._plan"]),
        ("from odeattn.solve import _stepper", ["odeattn.solve._stepper"]),
        ("from odeattn.search.trial._metrics import cost", []),  # its own package
        ("from odeattn.search.storage import budget_used", []),
        ("from odeattn._errors import must", []),
        ("from odeattn._env import threads_from_env", []),
    ],
)
def test_the_checker_catches_a_private_import(source: str, bad: list[str]) -> None:
    assert private_imports(source, "odeattn.search.trial") == bad


def test_a_private_package_imports_its_own_modules() -> None:
    own = "from odeattn.search.storage._optuna_private._reads import backend_of"
    assert private_imports(own, "odeattn.search.storage._optuna_private") == []
    assert private_imports(own, "odeattn.search") == ["odeattn.search.storage._optuna_private"]


def _spans(tree: ast.AST) -> list[tuple[str, int]]:
    return [
        (n.name, (n.end_lineno or n.lineno) - n.lineno + 1)
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_small_units(path: Path) -> None:
    text = path.read_text()
    assert text.count("\n") <= 300, f"{path.name}: {text.count(chr(10))} lines (house rule: ≤ 300)"
    long = [(n, k) for n, k in _spans(ast.parse(text)) if k > 50]
    assert not long, f"functions over 50 lines: {long}"
