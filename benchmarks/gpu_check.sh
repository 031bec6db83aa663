#!/usr/bin/env bash
# The prepared GPU check: speed and memory of a randomly initialised Llama-3-8B-shape model (SPEED ONLY).
#
# On a lent H200 (through the device tool), from the repository root:
#     OUT=$OUT bash benchmarks/gpu_check.sh
# Tiny CPU mode (what the tests run, seconds):
#     TINY=1 OUT=/tmp/gpu_tiny PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
#
# Needs only what that machine has (torch, transformers, sentence-transformers, peft; no gguf, no install):
# the package is imported from src/ through PYTHONPATH. Writes under $OUT:
#   matmul.json                 bare bf16 matmul rate (the measured ceiling beside the 790 TFLOP/s spec)
#   encode_gpu.{json,md}        encode tokens/s, peak memory, fraction of peak at 32/25/8 layers; vs stock ST
#   train_step_gpu.{json,md}    train s/step and peak memory, batch 64 x 512, gradient checkpointing, 32/25/8 layers
#   gpu_check.log               everything printed
# Budget: at most 8 minutes on one H200; each part has its own timeout so one hang cannot eat the rest.
set -u -o pipefail
: "${OUT:?set OUT to the folder for the results}"
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH="$(pwd)/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
LOG="$OUT/gpu_check.log"
status=0
run() {  # run NAME SECONDS COMMAND...: one part, logged, timed out on its own
  local name=$1 limit=$2; shift 2
  echo "=== $name ($(date -u +%H:%M:%S), limit ${limit}s)" | tee -a "$LOG"
  timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || { echo "=== $name FAILED with status $rc" | tee -a "$LOG"; status=1; }
}

if [ -n "${TINY:-}" ]; then
  run matmul 60 "$PY" benchmarks/matmul_rate.py --device cpu --dtype fp32 --shape 64 64 64 --out "$OUT/matmul"
  run encode 120 "$PY" benchmarks/encode_gpu.py --device cpu --config tiny --dtype fp32 --layers 4 2 --st-layers 2 \
      --texts 8 --length 16 --repeats 1 --tmp "$OUT" --out "$OUT/encode_gpu"
  run train 120 "$PY" benchmarks/train_step_time.py --device cpu --random-init-config tiny --dtype fp32 --layers 4 2 \
      --batch-size 4 --length 16 --rounds 1 --out "$OUT/train_step_gpu"
else
  { nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv; "$PY" -c \
    "import torch, transformers, sentence_transformers as st, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'sentence-transformers', st.__version__, 'peft', peft.__version__)"; } 2>&1 | tee -a "$LOG"
  run matmul 60 "$PY" benchmarks/matmul_rate.py --device cuda --dtype bf16 --shape 8192 8192 8192 --out "$OUT/matmul"
  run encode 200 "$PY" benchmarks/encode_gpu.py --device cuda --config llama3-8b --layers 32 25 8 --st-layers 8 \
      --texts 512 --length 512 --batch-size 32 --repeats 3 --tmp /tmp --out "$OUT/encode_gpu"
  run train 200 "$PY" benchmarks/train_step_time.py --device cuda --random-init-config llama3-8b --layers 32 25 8 \
      --batch-size 64 --length 512 --rounds 3 --out "$OUT/train_step_gpu"
fi
echo "=== done ($(date -u +%H:%M:%S)), status $status" | tee -a "$LOG"
exit $status
