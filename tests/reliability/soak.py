"""Soak: 4 concurrent ``python -m odeattn.search`` launches on one fresh study, repeated, on SQLite
and on PostgreSQL; prints crashes, duplicates and counts per repetition (numbers in the README).

    python tests/reliability/soak.py [--reps 5] [--launches 4] [--trials 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from conftest import counted, launch, study_file, trials


def _postgres(root: Path):
    """A throw-away PostgreSQL on 127.0.0.1 (tests/test_postgres.py's fixture, driven by hand)."""
    sys.path.insert(0, str(Path(__file__).parents[1]))
    import test_postgres

    gen = test_postgres.pg_url.__wrapped__()
    return next(gen), gen


def _rep(tmp: Path, url: str, launches: int, n_trials: int) -> dict:
    f = study_file(tmp, n_trials=n_trials, epochs=1)
    procs = [
        launch(
            str(f), "--storage", url, "--runs-dir", "runs", "--quiet", cwd=tmp, log=tmp / f"l{i}"
        )
        for i in range(launches)
    ]
    codes = [p.wait(timeout=1800) for p in procs]
    ts = trials(url)
    done = [t for t in ts if t.state.name == "COMPLETE"]
    params = Counter(tuple(sorted(t.params.items())) for t in done)
    return {
        "crashes": sum(c != 0 for c in codes),
        "complete": len(done),
        "counted": counted(ts),
        "running": sum(t.state.name == "RUNNING" for t in ts),
        "surplus": sum(bool(t.user_attrs.get("odeattn_surplus")) for t in ts),
        "duplicates": sum(n - 1 for n in params.values()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--launches", type=int, default=4)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--storages", default="sqlite,postgres")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="odeattn-soak-"))
    for kind in a.storages.split(","):
        pg = _postgres(root) if kind == "postgres" else None
        for rep in range(a.reps):
            tmp = root / f"{kind}{rep}"
            tmp.mkdir()
            name = f"soak{rep}"
            url = f"sqlite:///{tmp / 'study.db'}" if pg is None else pg[0]
            if pg is not None:  # a fresh study per repetition: a fresh database
                import psycopg2

                base = pg[0].rsplit("/", 1)[0].replace("postgresql+psycopg2://", "")
                user, hostport = base.split("@")
                host, port = hostport.split(":")
                con = psycopg2.connect(host=host, port=int(port), user=user, dbname="postgres")
                con.autocommit = True
                con.cursor().execute(f"CREATE DATABASE {name}")
                con.close()
                url = pg[0].rsplit("/", 1)[0] + f"/{name}"
            r = _rep(tmp, url, a.launches, a.trials)
            print(f"{kind} rep {rep}: {r}", flush=True)
        if pg is not None:
            for _ in pg[1]:
                pass


if __name__ == "__main__":
    main()
