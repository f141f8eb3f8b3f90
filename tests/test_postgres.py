"""Optuna storage in a real PostgreSQL server: written by one process, read by another, shared by two.

The fixture starts a throw-away server with initdb + pg_ctl (from PATH or
/usr/lib/postgresql/*/bin) on 127.0.0.1 at a free port in a temporary data directory, and stops
and deletes it afterwards. PostgreSQL refuses to run as root: when the tests run as root the
server runs as the existing ``postgres`` OS user, or else as an ``odeattn-pg`` system user that
the fixture creates (``useradd --system``), through ``runuser``.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import optuna
import pytest

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[1]


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    return Path(dirs[-1]) if dirs and Path(dirs[-1], "pg_ctl").exists() else None


def _os_user() -> str | None:
    """The OS user to run the server as (None: the current, non-root user)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "odeattn-pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "odeattn-pg"],
        check=True,
        capture_output=True,
    )
    return "odeattn-pg"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as(user: str | None, cmd: list[str]) -> list[str]:
    return cmd if user is None else ["runuser", "-u", user, "--", *cmd]


@pytest.fixture(scope="module")
def pg_url():
    pytest.importorskip("psycopg2")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; .ci/run installs them")
    user = _os_user()
    root = Path(tempfile.mkdtemp(prefix="odeattn-pg-"))
    data, port = root / "data", _free_port()
    if user is not None:
        shutil.chown(root, user)
    run = lambda cmd: subprocess.run(_as(user, cmd), check=True, capture_output=True, text=True)  # noqa: E731
    run([str(bindir / "initdb"), "-D", str(data), "-U", "odeattn", "--auth=trust", "-E", "UTF8"])
    opts = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off -c max_connections=40"
    run(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(root / "log"),
            "-w",
            "start",
        ]
    )
    try:
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=port, user="odeattn", dbname="postgres")
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE optuna")
        con.close()
        yield f"postgresql+psycopg2://odeattn@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run(
            _as(user, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def _python(code: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


WRITER = """
    import sys, optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    def objective(trial):
        x = trial.suggest_float("x", -3, 3)
        k = trial.suggest_categorical("k", ["a", "b"])
        for step in range(3):
            trial.report(x * x + 1.0 / (step + 1), step)
        trial.set_user_attr("placement", k * 3)
        trial.set_user_attr("writer", sys.argv[4])
        return x * x
    study = optuna.load_study(study_name=name, storage=url,
                              sampler=optuna.samplers.RandomSampler(seed=int(sys.argv[5])))
    study.optimize(objective, n_trials=n)
"""

READER = """
    import sys, json, optuna
    study = optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1])
    print(json.dumps([dict(number=t.number, state=t.state.name, value=t.value, params=t.params,
                           attrs=t.user_attrs, inter=t.intermediate_values) for t in study.trials]))
"""


def test_a_study_written_by_one_process_is_read_by_another(pg_url) -> None:
    optuna.create_study(study_name="one", storage=pg_url)
    _python(WRITER, pg_url, "one", "5", "w0", "0")
    trials = json.loads(_python(READER, pg_url, "one"))
    assert [t["number"] for t in trials] == list(range(5))
    for t in trials:
        x = t["params"]["x"]
        assert t["state"] == "COMPLETE" and t["value"] == pytest.approx(x * x, rel=1e-12)
        assert t["attrs"] == {"placement": t["params"]["k"] * 3, "writer": "w0"}
        assert {int(k): v for k, v in t["inter"].items()} == pytest.approx(
            {s: x * x + 1.0 / (s + 1) for s in range(3)}
        )
    # the same trials through a fresh storage object in this process: bit-identical values
    here = optuna.load_study(study_name="one", storage=pg_url).trials
    assert [t.value for t in here] == [t["value"] for t in trials]


def test_two_workers_share_one_study(pg_url) -> None:
    optuna.create_study(study_name="shared", storage=pg_url)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), pg_url, "shared", "4", f"w{i}", str(i)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    trials = optuna.load_study(study_name="shared", storage=pg_url).trials
    assert sorted(t.number for t in trials) == list(range(8))  # no number handed out twice
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(t.user_attrs["writer"] for t in trials) == ["w0"] * 4 + ["w1"] * 4


@pytest.mark.ray
@pytest.mark.slow
def test_ray_backend_writes_into_postgres(pg_url, tmp_path) -> None:
    """The cluster path: Ray trials (workers in other processes) report into PostgreSQL."""
    pytest.importorskip("ray")
    code = """
        import sys, optuna
        from odeattn.search.backends.ray import _tune as _ray
        def sample(trial, space):
            return {"x": trial.suggest_float("x", -1, 1)}
        def trial_fn(cfg, params, report, *, trial=None):
            report(1, {"loss": params["x"] ** 2 + 1})
            trial.set_user_attr("from_worker", True)
            return {"loss": params["x"] ** 2}
        s = _ray.run({}, sys.argv[1], study_name="ray_pg", objectives=[("loss", "minimize")],
                     space=None, n_trials=3, num_cpus=2, sample_fn=sample, trial_fn=trial_fn,
                     storage_path=sys.argv[2])
        print(s["complete"])
    """
    assert _python(code, pg_url, str(tmp_path)).strip().endswith("3")
    trials = optuna.load_study(study_name="ray_pg", storage=pg_url).trials
    assert len(trials) == 3 and all(t.user_attrs["from_worker"] for t in trials)
    assert all(
        t.value == t.params["x"] ** 2 and t.intermediate_values == {1: t.value + 1} for t in trials
    )


def test_several_user_attributes_are_one_upsert_on_postgres(pg_url) -> None:
    """``set_user_attrs`` (issue 20) on PostgreSQL: the rows ``set_user_attr`` writes, an existing
    key overwritten, one commit; a finished trial refused with nothing written."""
    import sqlalchemy

    from odeattn.search.storage import make_storage, set_user_attrs

    attrs = {"a": 1, "b": [1.5, None], "c": {"x": "y"}, "d": None}
    storage = make_storage(pg_url)
    study = optuna.create_study(study_name="attrs", storage=storage)
    one, many = study.ask(), study.ask()
    for k, v in attrs.items():
        one.set_user_attr(k, v)
    many.set_user_attr("a", -1)
    commits: list[int] = []
    sqlalchemy.event.listen(storage.engine, "commit", lambda conn: commits.append(1))
    set_user_attrs(many, attrs)
    assert len(commits) == 1
    study.tell(many, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        set_user_attrs(many, {"late": 1})
    trials = json.loads(_python(READER, pg_url, "attrs"))
    assert trials[0]["attrs"] == trials[1]["attrs"] == attrs
