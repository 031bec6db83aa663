"""What each training-step change buys: seconds per step with each one switched off, side by side.

Run (2 threads, real SmolLM2-135M, shipped triplets, batch 16 at max length 64):
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/investigations/train_step_ablation.py --layers 30

Every variant runs ``l3prune train``'s own step (``Trainer.train_step``) on its own copy of the model, all
in this one process and interleaved (every variant takes step k, on the same batch, before any takes
step k + 1), so drifts of this shared machine hit all of them alike; the median of ``--steps`` timed
steps after ``--warmup`` is reported. The changes, each switched off by patching the old code back in:
- ``packed dropout``: LoRA dropout masks from 16-bit lanes instead of ``bernoulli_`` (training/dropout.py);
- ``bf16 autocast``: adapters computed in bf16 from their fp32 weights, instead of peft casting every
  adapter input to fp32;
- ``math attention``: the math SDPA kernel instead of the CPU flash kernel for bf16 training;
- ``one forward``: queries, positives and negatives in one forward instead of three.
Writes benchmarks/investigations/results/train_step_ablation.{json,md}.

A one-off investigation: its committed results come from commit ad3156e, and it has not been rerun since.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import types
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the helpers (_machine, ...) are in benchmarks/
from _interleaved import interleaved_step_seconds
from _machine import machine, with_machine

from l3prune.data import load_triplets
from l3prune.encoder import LLMEncoder
from l3prune.files import write_json, write_text
from l3prune.training import TrainConfig, Trainer
from l3prune.training import adapters, loop

RESULTS = Path(__file__).parent / "results"
CHANGES = ("packed dropout", "bf16 autocast", "math attention", "one forward")


def three_forwards(self, batch):
    queries, positives, negatives = loop.triplet_texts(batch)
    return self.embed(queries), self.embed(positives), self.embed(negatives)


def precision_without(off: set[str]):
    """``Trainer._precision`` with the switched-off changes removed (the old code: no autocast, peft casts
    each adapter input to fp32; the flash attention kernel)."""
    def precision(self, width):
        stack = contextlib.ExitStack()
        if self.encoder.dtype == torch.bfloat16:
            if "bf16 autocast" not in off:
                from peft.helpers import disable_input_dtype_casting

                stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
                stack.enter_context(disable_input_dtype_casting(self.encoder.model))
            if "math attention" not in off and width <= loop.MATH_ATTENTION_MAX_LENGTH:
                stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
        return stack
    return precision


def build(args, dtype: str, off: set[str]) -> Trainer:
    encoder = LLMEncoder.from_pretrained(args.model, num_layers=args.layers, max_length=args.max_length,
                                         dtype=dtype, device="cpu")
    saved = adapters.use_packed_dropout
    if "packed dropout" in off:
        adapters.use_packed_dropout = lambda model: 0
    try:
        trainer = Trainer(encoder, load_triplets(None), TrainConfig(steps=10**6, batch_size=args.batch_size,
                                                                    warmup_steps=0))
    finally:
        adapters.use_packed_dropout = saved
    trainer._precision = types.MethodType(precision_without(off), trainer)
    if "one forward" in off:
        trainer.embed_triplets = types.MethodType(three_forwards, trainer)
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    groups = [  # three live models at a time (each holds ~2 GB after a step); "all changes" is in every group
        [("bf16", "all changes", set()), ("bf16", "none of the changes", set(CHANGES)),
         ("fp32", "none of the changes", set(CHANGES))],
        [("bf16", "all changes", set()), *[("bf16", f"without {c}", {c}) for c in CHANGES[:2]]],
        [("bf16", "all changes", set()), *[("bf16", f"without {c}", {c}) for c in CHANGES[2:]]],
        [("bf16", "all changes", set()), ("fp32", "all changes", set())],  # autocast/math apply to bf16 only
    ]
    rows = []
    for number, variants in enumerate(groups, 1):
        trainers = [build(args, dtype, off) for dtype, _, off in variants]
        seconds = interleaved_step_seconds(trainers, args.warmup, args.steps, label=f"group {number} ")
        reference = statistics.median(seconds[0])
        for (dtype, name, off), secs in zip(variants, seconds):
            rows.append({"group": number, "dtype": dtype, "variant": name, "off": sorted(off), "seconds": secs,
                         "median_s_per_step": statistics.median(secs),
                         "vs_all_changes_in_group": statistics.median(secs) / reference})
        del trainers
    base = next(r["median_s_per_step"] for r in rows if r["dtype"] == "fp32" and r["variant"] == "none of the changes")
    payload = {"model": args.model, "layers": args.layers, "batch_size": args.batch_size, "max_length": args.max_length,
               "threads": torch.get_num_threads(), "warmup": args.warmup, "torch": torch.__version__, "machine": machine(),
               "rows": rows}
    write_json(RESULTS / "train_step_ablation.json", payload, overwrite=True)
    lines = [f"# Training step: what each change buys ({args.model}, {args.layers} layers)", "",
             f"Batch {args.batch_size} triplets, max length {args.max_length}, {payload['threads']} threads, "
             f"LoRA r16 on all projections; median of {args.steps} steps after {args.warmup} warm-up steps. Each group "
             "runs its variants interleaved in one process on the same batches; 'all changes' is in every group, and "
             "'x all' compares with it in the same group (benchmarks/investigations/train_step_ablation.py).", "",
             "| group | dtype | variant | s/step | x all changes (same group) | vs fp32 before | steps (s) |",
             "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['group']} | {r['dtype']} | {r['variant']} | {r['median_s_per_step']:.2f} | "
                     f"{r['vs_all_changes_in_group']:.2f} | {base / r['median_s_per_step']:.2f}x | {r['seconds']} |")
    write_text(RESULTS / "train_step_ablation.md", with_machine("\n".join(lines), payload["machine"]), overwrite=True)


if __name__ == "__main__":
    main()
