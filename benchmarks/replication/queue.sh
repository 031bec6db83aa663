#!/usr/bin/env bash
# The whole paper-budget study in its order of importance, one configuration at a time, resumable.
#
#   FINISH_BY=12:20 OMP_NUM_THREADS=2 nohup bash benchmarks/replication/queue.sh > replicate_queue.log 2>&1 &
#
# Every step skips what is cached (seeded from the committed results by --restore, so a fresh machine does not
# redo finished rows) and resumes a stopped training run from its checkpoint while the cache lives; with
# --commit each finished row is committed. Order: Gemma-3 seed 42 (tier 1; SmolLM2's full and small rows have
# landed), the rest of SmolLM2 seed 42, the other seeds on both, then tier 2 on SmolLM2. Set REPLICATE_ROOT
# and PYTHONPATH to run a frozen copy of the code (see run.py's docstring).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}  # an absolute path when this runs from a frozen worktree
# FINISH_BY=HH:MM (the session's end, less the time to wrap up): rows that would not finish are not started.
run() { "$PY" benchmarks/replication/run.py --budget paper --commit --restore ${FINISH_BY:+--finish-by "$FINISH_BY"} "$@"; }
run --model gemma3-270m --tier 1 --seeds 42 --no-throughput
run --model smollm2-135m --tier 1 --seeds 42 --no-throughput
run --model smollm2-135m --tier 1
run --model gemma3-270m --tier 1
run --model smollm2-135m --tier 2
"$PY" benchmarks/replication/report.py
