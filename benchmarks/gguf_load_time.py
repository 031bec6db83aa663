"""How long loading a built-in GGUF alias takes: the first time (dequantise into the cache) and later times.

Run (on a machine with nothing else running):
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/gguf_load_time.py [--models smollm2-135m gemma3-270m] [--later 2]
Writes benchmarks/results/gguf_load_time.{json,md}.

Each load runs in a fresh process, as a CLI command would, against an empty ``L3PRUNE_CACHE`` made for this
run (the user's cache is not touched). Two times: the ``LLMEncoder.from_pretrained(alias)`` call (after
``import l3prune``, but including transformers' lazy import of the model's code, which a fresh process pays
on every load) and the whole process. The first load converts the GGUF to a safetensors folder and then loads
it; later loads read that folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine, with_machine

from l3prune.files import write_json, write_text

RESULTS = Path(__file__).parent / "results"
ONE_LOAD = """
import json, sys, time
from l3prune.encoder import LLMEncoder
start = time.perf_counter()
encoder = LLMEncoder.from_pretrained(sys.argv[1], device="cpu")
print(json.dumps({"seconds": time.perf_counter() - start, "layers": encoder.num_layers}))
"""


def timed_load(model: str, cache: str) -> dict:
    """{"seconds": the call, "process_s": the whole process, "layers": ...} of one load in a fresh process."""
    env = {**os.environ, "L3PRUNE_CACHE": cache, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", ONE_LOAD, model], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"loading {model} failed:\n{done.stderr[-2000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "process_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--later", type=int, default=2, help="loads timed after the first")
    args = parser.parse_args()
    rows = []
    for model in args.models:
        with tempfile.TemporaryDirectory() as cache:
            first = timed_load(model, cache)
            later = [timed_load(model, cache) for _ in range(args.later)]
        rows.append({"model": model, "layers": first["layers"], "first_s": round(first["seconds"], 2),
                     "first_process_s": round(first["process_s"], 2),
                     "later_s": [round(load["seconds"], 2) for load in later],
                     "later_process_s": [round(load["process_s"], 2) for load in later]})
        print(f"{model}: first {first['seconds']:.1f} s, later {', '.join(str(s) for s in rows[-1]['later_s'])} s",
              flush=True)
    result = {"loads": rows, "machine": machine()}
    RESULTS.mkdir(exist_ok=True)
    write_json(RESULTS / "gguf_load_time.json", result, overwrite=True)
    table = [f"| {r['model']} | {r['first_s']} ({r['first_process_s']}) | {', '.join(map(str, r['later_s']))} "
             f"({', '.join(map(str, r['later_process_s']))}) |" for r in rows]
    write_text(RESULTS / "gguf_load_time.md", with_machine("\n".join([
        "# Loading a built-in GGUF alias (seconds, a fresh process each)",
        "",
        "The `LLMEncoder.from_pretrained(alias)` call, after `import l3prune` but with transformers' lazy import "
        "of the model's code, which every fresh process pays; in brackets, the whole process.",
        "",
        "| alias | first load (dequantise + cache + load) | later loads (from the cache) |",
        "|---|---|---|",
        *table,
    ]), result["machine"]), overwrite=True)
    print(f"wrote {RESULTS / 'gguf_load_time.md'}")


if __name__ == "__main__":
    main()
