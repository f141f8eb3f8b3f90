#!/usr/bin/env bash
# The cluster path of the README, for real, inside a network namespace that has only loopback
# (run as: unshare --net --pid --fork --mount-proc bash tests/reliability/cluster.sh WORKDIR STUDY;
# the own PID namespace makes `ray stop` see this cluster's processes only): a local PostgreSQL,
# a Ray head (`ray start --head --node-ip-address 127.0.0.1`), the search submitted as a Ray job,
# one trial's worker SIGKILLed mid-trial, then the storage dumped as JSON (Optuna's API), the
# dashboard asked over HTTP, the listeners listed with `ss`, and everything stopped.
# Writes WORKDIR/result.json; exits non-zero when a step fails. Needs root (PostgreSQL runs as
# the `postgres` user through runuser) and the `ray` CLI of ray[default].
set -euo pipefail
WORK=$(realpath "$1"); STUDY=$(realpath "$2"); HERE=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python}; RAY=${RAY:-$(dirname "$(command -v "$PY")")/ray}
ip link set lo up
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled
export ODEATTN_THREADS=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PG=$(mktemp -d /tmp/odeattn-pg-XXXXXX); chown postgres "$PG"  # postgres must reach it
as_pg() { runuser -u postgres -- "$@"; }
RAYTMP=$(mktemp -d /tmp/ray-cl-XXXXXX)  # short: Ray's socket paths stay under 107 characters
cleanup() {
    "$RAY" stop --force >/dev/null 2>&1 || true  # this PID namespace's Ray only
    rm -rf "$RAYTMP" 2>/dev/null || true  # Ray's last writers may still be exiting
    as_pg "$PGBIN/pg_ctl" -D "$PG/data" -m fast -w stop >/dev/null 2>&1 || true
    cp "$PG/log" "$WORK/postgres.log" 2>/dev/null || true
    rm -rf "$PG" 2>/dev/null || true
}
trap cleanup EXIT
as_pg "$PGBIN/initdb" -D "$PG/data" -U odeattn --auth=trust -E UTF8 >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PG/data" -l "$PG/log" -w start \
    -o "-p 5433 -c listen_addresses=127.0.0.1 -k $PG -c fsync=off" >/dev/null
as_pg "$PGBIN/createdb" -h 127.0.0.1 -p 5433 -U odeattn optuna
# The URL reaches the job through the environment, never on a command line that is logged.
export ODEATTN_STORAGE="postgresql://odeattn@127.0.0.1:5433/optuna"
"$RAY" start --head --node-ip-address 127.0.0.1 --port 6390 --dashboard-host 127.0.0.1 \
    --dashboard-port 8265 --num-cpus 2 --disable-usage-stats --temp-dir "$RAYTMP" \
    >"$WORK/ray-start.log" 2>&1
export RAY_ADDRESS=http://127.0.0.1:8265
"$RAY" job submit --no-wait --submission-id odeattn-cluster -- \
    bash -c "cd $WORK && $PY -m odeattn.search $STUDY --storage \"\$ODEATTN_STORAGE\" --runs-dir $WORK/shared/runs --quiet" \
    >"$WORK/submit.log" 2>&1
# kill the Ray worker of the first trial that has trained an epoch
"$PY" - "$WORK/killed.json" <<'EOF'
import os, signal, sys, time, json, optuna
url = os.environ["ODEATTN_STORAGE"].replace("postgresql://", "postgresql+psycopg2://")
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    try:
        ts = optuna.load_study(study_name="lth4sa", storage=url).get_trials()
    except KeyError:
        ts = []
    hit = [t for t in ts if t.state.name == "RUNNING" and t.user_attrs.get("intermediate")]
    if hit:
        pid = int(hit[0].user_attrs["odeattn_pid"].rsplit(":", 2)[1])
        os.kill(pid, signal.SIGKILL)
        json.dump({"killed": hit[0].number, "pid": pid}, open(sys.argv[1], "w"))
        break
    time.sleep(0.5)
else:
    raise SystemExit("no trial ever trained an epoch")
EOF
for _ in $(seq 1 600); do
    status=$("$RAY" job status odeattn-cluster 2>/dev/null | grep -oiE "job .* (succeeded|failed|stopped)" | grep -oiE "succeeded|failed|stopped" | tr a-z A-Z | head -1 || true)
    [ -n "$status" ] && break
    sleep 2
done
"$RAY" job logs odeattn-cluster >"$WORK/job.log" 2>&1 || true
# optuna-dashboard reads the database (on loopback, as the README shows it)
"$(dirname "$(command -v "$PY")")/optuna-dashboard" \
    "${ODEATTN_STORAGE/postgresql:/postgresql+psycopg2:}" --host 127.0.0.1 \
    --port 8089 --artifact-dir "$WORK/shared/runs/lth4sa/artifacts" >"$WORK/dashboard.log" 2>&1 &
DASH=$!
dash=$("$PY" - <<'EOF'
import time, urllib.request
for _ in range(120):
    try:
        print(urllib.request.urlopen("http://127.0.0.1:8089/api/studies", timeout=2).read().decode())
        break
    except OSError:
        time.sleep(0.5)
EOF
)
kill "$DASH" 2>/dev/null || true
listeners=$(ss -ltnH | awk '{print $4}' | sort -u | tr '\n' ' ')
"$PY" - "$WORK" "${status:-TIMEOUT}" "$listeners" "$dash" <<'EOF'
import json, os, sys, optuna
work, status, listeners, dash = sys.argv[1:5]
url = os.environ["ODEATTN_STORAGE"].replace("postgresql://", "postgresql+psycopg2://")
ts = optuna.load_study(study_name="lth4sa", storage=url).get_trials()
json.dump({
    "status": status,
    "listeners": listeners.split(),
    "dashboard_sees_study": '"lth4sa"' in dash,
    "trials": [{"number": t.number, "state": t.state.name, "params": t.params,
                "stale": bool(t.user_attrs.get("odeattn_stale")),
                "retry_of": t.user_attrs.get("odeattn_retry_of")} for t in ts],
}, open(os.path.join(work, "result.json"), "w"), indent=1)
EOF
