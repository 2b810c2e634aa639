#!/usr/bin/env bash
# The GPU check: run on a machine with an NVIDIA GPU and CuPy, from the repository root.
#   bash benchmarks/gpu_check.sh
# 1. the test suite's CuPy cases (every backend-dependent test has one; they are skipped without a GPU)
# 2. the op overhead benchmark on the GPU
set -uo pipefail
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$(pwd)"
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"
python - <<'PY'
import minigen as mg
mg.set_backend("cupy")
import cupy
props = cupy.cuda.runtime.getDeviceProperties(0)
print("GPU:", props["name"].decode(), "| CuPy", cupy.__version__, "| minigen", mg.__version__)
PY
python -m pytest -q -p no:cacheprovider -k cupy tests
status=$?
python benchmarks/op_overhead.py --backend cupy --repeat 500
exit $status
