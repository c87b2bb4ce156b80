#!/usr/bin/env bash
# Every GPU check of Ember, in one go, on a machine with an NVIDIA GPU (about five minutes):
#   1. installs this checkout (without its dependencies, which the machine has) into /tmp/ember-site,
#      with llvmlite from the wheels in .whl/ when that folder exists (else the machine's own), and
#      prints the GPU and the versions used;
#   2. runs the tests marked `gpu` (every op on the GPU vs the reference interpreter, a LeNet training
#      step, artifacts, the seed MLP trained on mx.gpu(), the driver layer);
#   3. runs the GPU benchmarks: the seed MLP training step and a 4096^3 SGEMM against PyTorch (cuBLAS)
#      on the same GPU, with NumPy on the CPU as the third column.
# Logs and the benchmark JSON go to $OUT (default /tmp/ember-gpu). Usage: bash benchmarks/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/ember-gpu}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

SITE=/tmp/ember-site
rm -rf "$SITE"
wheels=()
if compgen -G ".whl/*.whl" >/dev/null; then wheels=(.whl/*.whl); fi
"$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$SITE" . "${wheels[@]}" || exit 1
export PYTHONPATH=$SITE

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -2
"$PY" - <<'EOF' 2>&1 | tee "$OUT/versions.txt"
import llvmlite, numpy
import ember
from ember.runtime.cuda_driver import gpu_available
print("ember", ember.__version__, "llvmlite", llvmlite.__version__, "numpy", numpy.__version__)
print("gpu:", gpu_available())
from ember.codegen.nvptx import find_libdevice
print("libdevice:", find_libdevice())
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.cuda.is_available())
except ImportError as err:
    print("torch absent:", err)
EOF

parallel=()
if "$PY" -c "import xdist" 2>/dev/null; then parallel=(-n 8); fi
echo "== tests marked gpu"
timeout 200 "$PY" -m pytest -q -m gpu "${parallel[@]}" -p no:cacheprovider -k "not seed_mlp_trains" \
    tests/test_cuda_gpu.py tests/test_cuda_driver.py 2>&1 | tee "$OUT/gpu_tests.log" | tail -40
echo "== the seed MLP on mx.gpu() and on the CPU"
timeout 90 "$PY" -m pytest -q -s -m gpu -p no:cacheprovider -k "seed_mlp_trains" tests/test_cuda_gpu.py 2>&1 \
    | tee "$OUT/gpu_seed.log" | tail -8
echo "== GPU benchmarks"
timeout 150 "$PY" benchmarks/run_suite.py --only gpu_mlp_train gpu_sgemm --json "$OUT/gpu_bench.json" 2>&1 \
    | tee "$OUT/gpu_bench.txt" | tail -25
