"""The paper's batch at a small batch's memory: peak memory and s/step with and without gradient caching.

Run (real SmolLM2-135M at 30 layers, shipped triplets, max length 128, the auto dtype; about 5 minutes):
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/grad_cache_memory.py
Each configuration (batch 16 and 64 uncached, batch 64 with --mini-batch-size 16 and 8) trains in its own
process, so that its peak resident memory (``ru_maxrss``, the model's load included) is its own; the processes
run one after another. Writes benchmarks/results/grad_cache_memory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path

from _machine import machine, machine_line

from l3prune.files import write_json, write_text

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = [(16, None), (64, None), (64, 16), (64, 8)]  # (batch, mini batch)


def one(args) -> dict:
    """Train ``args.steps`` steps of one configuration in this process; its step times and peak memory."""
    from l3prune.data import load_triplets
    from l3prune.encoder import LLMEncoder
    from l3prune.settings import LoadOptions
    from l3prune.training import Trainer, build_config

    encoder = LLMEncoder.from_pretrained(args.model, num_layers=args.layers,
                                         load=LoadOptions(max_length=args.max_length, device="cpu"))
    config = build_config(steps=1000, batch_size=args.batch, mini_batch_size=args.mini, warmup_steps=300,
                          schedule="constant")
    trainer = Trainer(encoder, load_triplets(None), config)
    seconds = [trainer.train_step()["seconds"] for _ in range(args.steps + 1)][1:]  # the first builds kernels
    return {"batch": args.batch, "mini_batch": args.mini, "seconds": seconds, "median_seconds": statistics.median(seconds),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "dtype": str(encoder.dtype)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="measured steps per configuration (after one warm-up)")
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)  # one configuration, in a child process
    parser.add_argument("--mini", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch is not None:
        print(json.dumps(one(args)))
        return
    rows = []
    for batch, mini in CONFIGS:
        command = [sys.executable, __file__, "--model", args.model, "--layers", str(args.layers), "--max-length",
                   str(args.max_length), "--steps", str(args.steps), "--batch", str(batch)]
        done = subprocess.run(command + (["--mini", str(mini)] if mini else []), capture_output=True, text=True,
                              check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1])
    base = rows[0]
    lines = [f"# Gradient caching: {args.model} at {args.layers} layers, max length {args.max_length}", "",
             machine_line(machine()) + f" Shipped triplets, LoRA r16, {rows[0]['dtype']}; median of {args.steps} steps "
             "after one warm-up step; each configuration in its own process, one after another.", "",
             "| batch | mini batch | s/step | peak RSS (MiB) | peak / batch 16 | s/step / (4 x batch 16's) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        mini = r["mini_batch"] or "whole batch"
        lines.append(f"| {r['batch']} | {mini} | {r['median_seconds']:.2f} | {r['peak_rss_mib']:.0f} | "
                     f"{r['peak_rss_mib'] / base['peak_rss_mib']:.2f}x | "
                     f"{r['median_seconds'] / (r['batch'] / base['batch'] * base['median_seconds']):.2f}x |")
    lines += ["", "Targets (#42): batch 64 with mini batch 16 peaks at no more than 1.15x batch 16's peak, and costs no "
              "more than 1.3 x 4 x its step time.", ""]
    write_json(RESULTS / "grad_cache_memory.json", {"model": args.model, "layers": args.layers,
                                                    "max_length": args.max_length, "rows": rows,
                                                    "machine": machine()}, overwrite=True)
    write_text(RESULTS / "grad_cache_memory.md", "\n".join(lines), overwrite=True)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
