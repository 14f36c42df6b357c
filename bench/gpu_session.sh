#!/usr/bin/env bash
# The one command a GPU session runs for issue 19: every figure of bench/gpu.py in one run (< 5 min on an H200).
#
#   here, first:   bash bench/gpu_wheels.sh                      (fastai & co. as wheels for the GPU image, into .whl/)
#   device call:   run(command="bash bench/gpu_session.sh", carry=[".whl"], timeout_s=480)
#   here, after:   cp <files_at>/gpu_h200.md bench/results/gpu_h200.md   (the device's working tree does not come back)
#
# It writes bench/results/gpu_h200.md there (dated; rewritten after each section, so a run cut short keeps what it
# measured) and copies it, the full log and the JSON rows to $OUT. It needs no network.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
MD=${GPU_MD:-bench/results/gpu_h200.md}     # GPU_MD: another file, for a dry run on a CPU
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 BENCH_JSON=$OUT/gpu_h200.jsonl
export PYTHONWARNINGS=ignore::FutureWarning OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.used --format=csv; nproc --all;
  python3 -c "import torch, torchvision, PIL; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'PIL', PIL.__version__)";
  python3 -c "import fastai, lodisc_nb.data, lodisc_nb.model; print('fastai', fastai.__version__, ': imports ok')"; } 2>&1 | tee "$OUT/env.txt"
# budget: no new compiled candidate after 150 s; the final interleaved timing, the data table and the profile follow.
timeout 420 python3 bench/gpu.py --profile --budget-s 150 --out "$MD" 2>&1 | tee "$OUT/gpu_log.txt"
rc=${PIPESTATUS[0]}
cp "$MD" "$OUT/" 2>/dev/null || echo "no $MD written"
echo "bench/gpu.py exit status: $rc"
exit $rc
