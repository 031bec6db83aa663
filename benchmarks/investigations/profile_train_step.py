"""Where a training step's time goes: torch.profiler's top operators for one dtype and depth.

Run (2 threads, the real SmolLM2-135M, batch 16 triplets of the shipped data at max length 64):
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/investigations/profile_train_step.py --dtype fp32 --label before_fp32
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/investigations/profile_train_step.py --dtype bf16 --label before_bf16

Writes benchmarks/investigations/results/profile_train_step_<label>.md: seconds per step (median of --steps after
--warmup steps, outside the profiler) and the profiler's top operators by self CPU time over
--profile-steps further steps. The steps are exactly ``l3prune train``'s (``Trainer.train_step``).

A one-off investigation: its committed results come from commits ad3156e (profile_train_step_after_bf16.json,
profile_train_step_after_bf16.md); 6bfb2aa (profile_train_step_before_bf16.json); 8d2627e
(profile_train_step_before_bf16.md); fa5e682 (profile_train_step_before_quiet_bf16.json,
profile_train_step_before_quiet_bf16.md, profile_train_step_before_quiet_fp32.json,
profile_train_step_before_quiet_fp32.md); 4c4202f (profile_train_step_wip_bf16.json,
profile_train_step_wip_bf16.md); not rerun since.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the helpers (_machine, ...) are in benchmarks/
from _machine import machine, with_machine

from l3prune.data import load_triplets
from l3prune.encoder import LLMEncoder
from l3prune.files import write_json, write_text
from l3prune.training import TrainConfig, Trainer

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="bf16")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4, help="timed steps (median reported)")
    parser.add_argument("--profile-steps", type=int, default=2)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--label", required=True)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    encoder = LLMEncoder.from_pretrained(args.model, num_layers=args.layers, max_length=args.max_length,
                                         dtype=args.dtype, device="cpu")
    config = TrainConfig(steps=10**6, batch_size=args.batch_size, warmup_steps=0)
    trainer = Trainer(encoder, load_triplets(None), config)
    for _ in range(args.warmup):
        trainer.train_step()
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        trainer.train_step()
        seconds.append(time.perf_counter() - start)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        for _ in range(args.profile_steps):
            trainer.train_step()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=60)
    total_self = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e6 / args.profile_steps
    head = (f"# Training step profile: {args.label}\n\n{args.model} at {args.layers} layers, {args.dtype}, batch "
            f"{args.batch_size} triplets, max length {args.max_length}, {torch.get_num_threads()} threads, "
            f"torch {torch.__version__}.\n\nSeconds per step (outside the profiler, after {args.warmup} warm-up "
            f"steps): median {statistics.median(seconds):.2f} of {[round(s, 2) for s in seconds]}. "
            f"Profiled {args.profile_steps} steps; self CPU time summed over operators: {total_self:.2f} s per step.\n")
    out = RESULTS / f"profile_train_step_{args.label}.md"
    facts = machine()
    write_text(out, with_machine(head + "\n```\n" + table + "\n```\n", facts), overwrite=True)
    print(head)
    print(table)
    write_json(RESULTS / f"profile_train_step_{args.label}.json",
               {"label": args.label, "layers": args.layers, "dtype": args.dtype, "batch_size": args.batch_size,
                "max_length": args.max_length, "threads": torch.get_num_threads(), "machine": facts,
                "seconds": seconds, "median_s_per_step": statistics.median(seconds)}, overwrite=True)


if __name__ == "__main__":
    main()
