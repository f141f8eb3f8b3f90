"""Time the end of a finished search (as benchmarks/bench_scale.py's _results_child does)."""

import json
import sys
import time
from pathlib import Path

import optuna

from odeattn.search.results import (
    best_of,
    export_best,
    finished,
    study_plots,
    summary_table,
    write_summary,
)
from odeattn.search.storage import make_storage
from odeattn.study import load_study

study_file, runs_dir, url, out = sys.argv[1:5]
study = load_study(study_file, runs_dir=runs_dir, n_trials=1000)
t0 = time.perf_counter()
s = optuna.load_study(study_name=study.name, storage=make_storage(url))
times = {"load_study_s": round(time.perf_counter() - t0, 3)}
for name, fn in (
    ("read_trials", lambda: s.get_trials(deepcopy=False)),
    ("finished", lambda: finished(study, s)),
    ("front", lambda: best_of(study, s)),
    ("summary", lambda: write_summary(study, s, summary_table(study, s))),
    ("export_best", lambda: export_best(study, s)),
    ("plots", lambda: study_plots(study, s)),
):
    t0 = time.perf_counter()
    got = fn()
    times[f"{name}_s"] = round(time.perf_counter() - t0, 3)
times["front_size"] = len(best_of(study, s))
times["finished"] = len(finished(study, s))
print(json.dumps(times, indent=1))
Path(out).write_text(json.dumps(times, indent=1))
