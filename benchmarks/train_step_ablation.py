"""What each training-step change buys: seconds per step with each one switched off, side by side.

Run (2 threads, real SmolLM2-135M, shipped triplets, batch 16 at max length 64):
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/train_step_ablation.py --layers 30

Every variant runs ``l3prune train``'s own step (``Trainer.train_step``) in this one process, one after
the other, on a freshly loaded model (same seed, same batches); the median of ``--steps`` timed steps
after ``--warmup`` is reported. The changes, each switched off by patching it back to the old code:
- ``packed dropout``: LoRA dropout masks from 16-bit lanes instead of ``bernoulli_`` (training/dropout.py);
- ``math attention``: the math SDPA kernel instead of the CPU flash kernel for bf16 training;
- ``one forward``: queries, positives and negatives in one forward instead of three.
Writes benchmarks/results/train_step_ablation.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import torch

from l3prune.data import load_triplets
from l3prune.encoder import LLMEncoder
from l3prune.safe_write import write_json
from l3prune.training import TrainConfig, Trainer
from l3prune.training import adapters, loop

RESULTS = Path(__file__).parent / "results"
CHANGES = ("packed dropout", "math attention", "one forward")


def three_forwards(self, batch):
    queries, positives, negatives = loop.triplet_texts(batch)
    return self.embed(queries), self.embed(positives), self.embed(negatives)


@contextlib.contextmanager
def switched_off(changes: set[str]):
    saved = (adapters.use_packed_dropout, Trainer._attention, Trainer.embed_triplets)
    if "packed dropout" in changes:
        adapters.use_packed_dropout = lambda model: 0
    if "math attention" in changes:
        Trainer._attention = lambda self: contextlib.nullcontext()
    if "one forward" in changes:
        Trainer.embed_triplets = three_forwards
    try:
        yield
    finally:
        adapters.use_packed_dropout, Trainer._attention, Trainer.embed_triplets = saved


def time_steps(args, dtype: str, off: set[str]) -> list[float]:
    with switched_off(off):
        encoder = LLMEncoder.from_pretrained(args.model, num_layers=args.layers, max_length=args.max_length,
                                             dtype=dtype, device="cpu")
        config = TrainConfig(steps=10**6, batch_size=args.batch_size, warmup_steps=0)
        trainer = Trainer(encoder, load_triplets(None), config)
        for _ in range(args.warmup):
            trainer.train_step()
        seconds = []
        for _ in range(args.steps):
            start = time.perf_counter()
            trainer.train_step()
            seconds.append(round(time.perf_counter() - start, 3))
    return seconds


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
    variants = [("bf16", "all changes", set()), *[("bf16", f"without {c}", {c}) for c in CHANGES],
                ("bf16", "none of the changes", set(CHANGES)), ("fp32", "none of the changes", set(CHANGES)),
                ("fp32", "all changes", {"math attention"})]  # math attention applies to bf16 only
    rows = []
    for dtype, name, off in variants:
        seconds = time_steps(args, dtype, off)
        rows.append({"dtype": dtype, "variant": name, "off": sorted(off), "seconds": seconds,
                     "median_s_per_step": statistics.median(seconds)})
        print(f"{dtype} {name}: median {rows[-1]['median_s_per_step']:.2f} s of {seconds}", flush=True)
    base = next(r["median_s_per_step"] for r in rows if r["dtype"] == "fp32" and r["variant"] == "none of the changes")
    payload = {"model": args.model, "layers": args.layers, "batch_size": args.batch_size, "max_length": args.max_length,
               "threads": torch.get_num_threads(), "warmup": args.warmup, "torch": torch.__version__, "rows": rows}
    write_json(RESULTS / "train_step_ablation.json", payload, overwrite=True)
    lines = [f"# Training step: what each change buys ({args.model}, {args.layers} layers)", "",
             f"Batch {args.batch_size} triplets, max length {args.max_length}, {payload['threads']} threads, "
             f"LoRA r16 on all projections, median of {args.steps} steps after {args.warmup} warm-up steps, "
             "all variants in one process (benchmarks/train_step_ablation.py).", "",
             "| dtype | variant | s/step | speed-up vs fp32 before | steps (s) |", "|---|---|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['dtype']} | {r['variant']} | {r['median_s_per_step']:.2f} | "
                     f"{base / r['median_s_per_step']:.2f}x | {r['seconds']} |")
    (RESULTS / "train_step_ablation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
