"""Read a finished strategy: supernet study back with optuna's public API (states, numbers,
budget, duplicates, per-trial scoring vs bookkeeping; the retrain study too)."""

import json
import statistics
import sys
from collections import Counter
from itertools import pairwise
from pathlib import Path

import optuna

from odeattn.search.storage import budget_used, make_storage
from odeattn.study import load_study

study_file, runs_dir, url, out = sys.argv[1:5]
study = load_study(study_file, runs_dir=runs_dir)
doc = {}
for name in (study.name, study.name + "-retrain"):
    s = optuna.load_study(study_name=name, storage=make_storage(url))
    ts = s.get_trials(deepcopy=False)
    nums = [t.number for t in ts]
    fin = [t for t in ts if t.datetime_complete and t.datetime_start]
    dur = [(t.datetime_complete - t.datetime_start).total_seconds() for t in fin]
    sec = [t.user_attrs["seconds"] for t in fin if "seconds" in t.user_attrs]
    book = [d - t.user_attrs["seconds"] for d, t in zip(dur, fin) if "seconds" in t.user_attrs]
    order = sorted(fin, key=lambda t: t.datetime_start)
    gaps = [(b.datetime_start - a.datetime_complete).total_seconds() for a, b in pairwise(order)]
    first, last = min(t.datetime_start for t in fin), max(t.datetime_complete for t in fin)

    def q(v):
        return (
            None
            if not v
            else {
                "n": len(v),
                "median": round(statistics.median(v), 4),
                "mean": round(statistics.fmean(v), 4),
                "sum": round(sum(v), 2),
                "max": round(max(v), 3),
            }
        )

    tenth = max(1, len(order) // 10)
    doc[name] = {
        "trials_stored": len(ts),
        "states": dict(Counter(t.state.name for t in ts)),
        "numbers_unique": len(set(nums)) == len(nums),
        "numbers_contiguous": sorted(nums) == list(range(len(ts))),
        "budget_used": budget_used(s),
        "duplicates_served": sum("duplicate_of" in t.user_attrs for t in ts),
        "distinct_param_sets": len({frozenset(t.params.items()) for t in ts}),
        "trial_wall_s": q(dur),
        "scoring_seconds_attr": q(sec),
        "bookkeeping_s_per_trial(wall-seconds)": q(book),
        "gap_between_trials_s": q(gaps),
        "first_start_to_last_complete_s": (last - first).total_seconds(),
        "trial_wall_first_tenth_median": round(statistics.median(dur[:tenth]), 4) if dur else None,
        "trial_wall_last_tenth_median": round(
            statistics.median(
                [(t.datetime_complete - t.datetime_start).total_seconds() for t in order[-tenth:]]
            ),
            4,
        )
        if order
        else None,
        "gap_first_tenth_median": round(statistics.median(gaps[:tenth]), 4) if gaps else None,
        "gap_last_tenth_median": round(statistics.median(gaps[-tenth:]), 4) if gaps else None,
        "scoring_first_tenth_median": round(
            statistics.median([t.user_attrs.get("seconds", 0) for t in order[:tenth]]), 4
        )
        if order
        else None,
        "scoring_last_tenth_median": round(
            statistics.median([t.user_attrs.get("seconds", 0) for t in order[-tenth:]]), 4
        )
        if order
        else None,
    }
print(json.dumps(doc, indent=1))
Path(out).write_text(json.dumps(doc, indent=1))
