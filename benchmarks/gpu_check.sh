#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU and CuPy (PyTorch optional), no network needed.
# From the repository root:
#
#     bash benchmarks/gpu_check.sh [RESULTS_DIR]        (default: benchmarks/results/gpu)
#
# PYTHON names the interpreter (default: python).
# 1. says which GPU it found, or stops (exit 3) with the reason when there is none, writing
#    nothing (the results recorded in RESULTS_DIR stay);
# 2. runs every CuPy case of the test suite (each backend-dependent test has one), in parallel when
#    pytest-xdist is installed;
# 3. trains each model for an epoch from the command line on the GPU;
# 4. runs the GPU benchmarks (benchmarks/run.py --backend cupy; GPU_CHECK_QUICK=1 for --quick): the VAE and the wide MLP against
#    NumPy on this machine's CPU and PyTorch CUDA, a batch-size/width sweep, the op overhead.
# Everything printed is also written to RESULTS_DIR (gpu.txt, tests.log, cli.log, benchmarks.md and
# speed-cupy.json).  It took about 100 s on an H100; GPU_CHECK_TEST_SECONDS bounds step 2 (default 300).
set -uo pipefail
out="${1:-benchmarks/results/gpu}"
python="${PYTHON:-python}"      # the interpreter that has minigen's dependencies
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"
export PYTHONUNBUFFERED=1

# The probe writes to a file of its own first: on a machine without a GPU the recorded results in
# RESULTS_DIR stay as they are.
probe=$(mktemp)
trap 'rm -f "$probe"' EXIT
"$python" - >"$probe" 2>&1 <<'PY'
import sys
import minigen as mg
try:
    mg.set_backend("cupy")
except mg.backend.BackendError as err:
    print(f"gpu_check: no usable GPU here, nothing to check: {err}")
    sys.exit(3)
import cupy
props = cupy.cuda.runtime.getDeviceProperties(0)
print(f"GPU: {props['name'].decode()} | CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()} | "
      f"CuPy {cupy.__version__} | minigen {mg.__version__}")
PY
found=$?
cat "$probe"
[ $found -eq 0 ] || exit 3
mkdir -p "$out"
cp "$probe" "$out/gpu.txt"
status=0

echo "== 1. the test suite's CuPy cases"
parallel=""
if "$python" -c "import xdist" 2>/dev/null; then parallel="-n 4"; fi
timeout "${GPU_CHECK_TEST_SECONDS:-300}" "$python" -m pytest -q -p no:cacheprovider -k cupy $parallel \
    tests 2>&1 | tee "$out/tests.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "== 2. each model for one epoch from the command line, on the GPU"
: >"$out/cli.log"
for model in vae gan vaegan; do
    echo "-- train $model" >>"$out/cli.log"
    "$python" -m minigen train "$model" --backend cupy --epochs 1 --quiet --overwrite \
        --out "/tmp/gpu_check_$model" \
        >>"$out/cli.log" 2>&1 || status=1
    "$python" -m minigen evaluate "/tmp/gpu_check_$model" 2>&1 | tr -d '\n ' >>"$out/cli.log"
    echo >>"$out/cli.log"
done
cat "$out/cli.log"

echo "== 3. benchmarks"
"$python" benchmarks/run.py --backend cupy ${GPU_CHECK_QUICK:+--quick} --threads "$(nproc)" \
    --out "$out/speed-cupy.json" 2>&1 | tee "$out/benchmarks.md"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
exit $status
