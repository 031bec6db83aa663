#!/usr/bin/env bash
# The whole paper-budget study in its order of importance, one configuration at a time, resumable.
#
#   OMP_NUM_THREADS=2 nohup bash benchmarks/replicate_queue.sh > replicate_queue.log 2>&1 &
#
# Every step skips what is cached and resumes a stopped training run from its checkpoint, so the queue can be
# killed and restarted at any point; with --commit each finished row is committed. Order: SmolLM2 seed 42
# (tier 1), Gemma-3 seed 42 (tier 1), the other seeds on both, then tier 2 on SmolLM2. Set REPLICATE_ROOT
# and PYTHONPATH to run a frozen copy of the code (see replicate.py's docstring).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}  # an absolute path when this runs from a frozen worktree
run() { "$PY" benchmarks/replicate.py --budget paper --commit "$@"; }
run --model smollm2-135m --tier 1 --seeds 42 --no-throughput
run --model gemma3-270m --tier 1 --seeds 42 --no-throughput
run --model smollm2-135m --tier 1
run --model gemma3-270m --tier 1
run --model smollm2-135m --tier 2
"$PY" benchmarks/replication_report.py
