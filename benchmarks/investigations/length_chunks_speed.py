"""Seconds per training step with the batch in length-sorted chunks against one padded pass, side by side.

Run (2 threads, the paper's working point: batch 16 shipped triplets at max length 128, the auto dtype):
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/investigations/length_chunks_speed.py --model smollm2-135m --layers 30

Both variants run ``Trainer.train_step`` on their own copy of the model in one process, interleaved (each takes
step k, on the same batch, before either takes k + 1), so drifts of this shared machine hit both alike. The
"one padded pass" variant patches the previous ``embed_triplets`` back in. Also counts the tokens each variant
pushes through the model. Writes benchmarks/investigations/results/length_chunks_speed_<model>.{json,md}.

A one-off investigation: its committed results come from commit 282328d, and it has not been rerun since.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the helpers (_machine, ...) are in benchmarks/
from _interleaved import interleaved_step_seconds
from _machine import machine, with_machine

from l3prune.data import load_triplets
from l3prune.encoder import LLMEncoder
from l3prune.files import write_json, write_text
from l3prune.training import TrainConfig, Trainer
from l3prune.training.length_chunks import TRAIN_CHUNKS, length_sorted_chunks
from l3prune.training.loop import triplet_texts

RESULTS = Path(__file__).parent / "results"


def one_padded_pass(self, batch):
    queries, positives, negatives = triplet_texts(batch)
    return self.embed(queries + positives + negatives).split(len(batch))


def tokens(trainer: Trainer, step: int) -> tuple[int, int, int]:
    """(one padded pass, length-sorted chunks, real) tokens of the batch of ``step``."""
    batch = [trainer.triplets[i] for i in trainer.sampler.batch_at(step)]
    queries, positives, negatives = triplet_texts(batch)
    features = trainer.encoder.collator.tokenize(queries + positives + negatives)
    parts = length_sorted_chunks(features, TRAIN_CHUNKS, trainer.encoder.settings.padding_side)
    return (features["input_ids"].numel(), sum(c["input_ids"].numel() for _, c in parts),
            int(features["attention_mask"].sum()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants = ["length-sorted chunks", "one padded pass"]
    trainers = []
    for name in variants:
        encoder = LLMEncoder.from_pretrained(args.model, num_layers=args.layers, max_length=args.max_length,
                                             dtype="auto", device="cpu")
        trainer = Trainer(encoder, load_triplets(None), TrainConfig(steps=10**6, batch_size=args.batch_size,
                                                                    warmup_steps=0))
        if name == "one padded pass":
            trainer.embed_triplets = types.MethodType(one_padded_pass, trainer)
        trainers.append(trainer)
    seconds = interleaved_step_seconds(trainers, args.warmup, args.steps)
    counted = [tokens(trainers[0], step) for step in range(args.warmup, args.warmup + args.steps)]
    padded, chunked, real = (sum(c[k] for c in counted) for k in range(3))
    medians = [statistics.median(s) for s in seconds]
    payload = {"model": args.model, "layers": args.layers, "batch_size": args.batch_size,
               "max_length": args.max_length, "dtype": str(trainers[0].encoder.dtype).replace("torch.", ""),
               "threads": torch.get_num_threads(), "warmup": args.warmup, "chunks": TRAIN_CHUNKS,
               "torch": torch.__version__, "machine": machine(),
               "tokens": {"one_padded_pass": padded, "length_sorted_chunks": chunked, "real": real},
               "rows": [{"variant": v, "seconds": s, "median_s_per_step": m} for v, s, m in zip(variants, seconds, medians)],
               "speedup": medians[1] / medians[0]}
    stem = RESULTS / f"length_chunks_speed_{args.model}"
    write_json(stem.with_suffix(".json"), payload, overwrite=True)
    lines = [f"# Training step: length-sorted chunks against one padded pass ({args.model}, {args.layers} layers)", "",
             f"Batch {args.batch_size} shipped triplets, max length {args.max_length}, {payload['dtype']}, "
             f"{payload['threads']} threads, LoRA r16 on all projections, {TRAIN_CHUNKS} chunks; median of {args.steps} "
             f"steps after {args.warmup} warm-up steps, both variants interleaved in one process on the same batches "
             "(benchmarks/investigations/length_chunks_speed.py).", "",
             "| variant | s/step | tokens through the model | steps (s) |", "|---|---:|---:|---|"]
    for v, s, m, n in zip(variants, seconds, medians, (chunked, padded)):
        lines.append(f"| {v} | {m:.2f} | {n} ({100 * n / padded:.0f}%) | {s} |")
    lines += ["", f"Real (unpadded) tokens: {real} ({100 * real / padded:.0f}% of one padded pass). "
              f"Speed-up: **{payload['speedup']:.2f}x**."]
    write_text(stem.with_suffix(".md"), with_machine("\n".join(lines), payload["machine"]), overwrite=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
