"""``python -m odeattn.tableau list | show NAME | verify NAME|--all | graph NAME [--dot]``.

Bad input exits with status 2 and one line on stderr (no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys

from odeattn.graph import MethodGraph
from odeattn.tableau import TABLEAUS, get_tableau

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m odeattn.tableau", description="Butcher tableaux of odeattn")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the built-in tableaux")
    sub.add_parser("show", help="print a tableau").add_argument("name")
    v = sub.add_parser("verify", help="re-check order conditions (JSON lines)")
    v.add_argument("name", nargs="?")
    v.add_argument("--all", action="store_true")
    g = sub.add_parser("graph", help="print the method graph of a tableau")
    g.add_argument("name")
    g.add_argument("--dot", action="store_true", help="Graphviz dot instead of text")
    return p


def _list() -> None:
    for t in TABLEAUS.values():
        emb = f"({t.err_order})" if t.b_err is not None else ""
        kind = "explicit" if t.is_explicit else ("DIRK" if t.is_diagonally_implicit else "implicit")
        print(f"{t.name:18s} order {t.order}{emb:4s} {t.stages} stages  {kind:8s}  {t.source}")


def _show(name: str) -> None:
    t = get_tableau(name)
    print(f"{t!r}\n{t.source}\n\n{t.table()}\n")
    print(f"stage order {t.stage_order}; fsal {t.fsal}; R(z) = {t.stability_function}")


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "list":
        _list()
    elif args.cmd == "show":
        _show(args.name)
    elif args.cmd == "verify":
        if bool(args.all) == (args.name is not None):
            raise ValueError("give exactly one of NAME or --all")
        for t in TABLEAUS.values() if args.all else [get_tableau(args.name)]:
            print(json.dumps(t.order_report()))
    elif args.cmd == "graph":
        graph = MethodGraph.from_tableau(get_tableau(args.name))
        print(graph.to_dot() if args.dot else graph.to_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ValueError as err:
        print(f"python -m odeattn.tableau: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
