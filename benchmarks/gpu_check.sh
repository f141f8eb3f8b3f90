#!/usr/bin/env bash
# The GPU check (issue 22; benchmarks/README.md § GPU check): the CUDA tests and the GPU
# measurements within one deadline, written as JSON. Usage:
#   bash benchmarks/gpu_check.sh --out $OUT/gpu_check.json --deadline 480   # on a CUDA machine
#   bash benchmarks/gpu_check.sh --cpu-smoke --out /tmp/gpu_check.json      # tiny, on CPU
# The interpreter: $PYTHON, else the first of python3 / python that finds torch. Installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
    for candidate in python3 python; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("torch") is None)'; then
            PYTHON=$candidate
            break
        fi
    done
fi
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
