"""Where a training step's memory goes: every tensor autograd saves for the backward pass, by kind.

Run (real SmolLM2-135M, shipped triplets, batch 16 at max length 64):
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/investigations/train_step_memory.py --dtype bf16 --label after

One process, ``l3prune train``'s own step. ``torch.autograd.graph.saved_tensors_hooks`` sees each tensor
saved during the forward pass (the activations the backward pass needs), and the table groups them by
dtype and by their last dimension (576 = hidden size, 1536 = MLP width, 64 = attention scores at max
length 64, ...). Peak resident memory (``ru_maxrss``) is reported for the whole process, with the model's
own weights beside it. Writes benchmarks/investigations/results/train_step_memory_<label>.{json,md}.

A one-off investigation: its committed results come from commit 4c4202f, and it has not been rerun since.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import Counter
from pathlib import Path

import torch

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
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4, help="steps to run; the largest step's saved tensors are reported")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--label", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    encoder = LLMEncoder.from_pretrained(args.model, num_layers=args.layers, max_length=args.max_length,
                                         dtype=args.dtype, device="cpu")
    weights = sum(p.numel() * p.element_size() for p in encoder.model.parameters())
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    trainer = Trainer(encoder, load_triplets(None), TrainConfig(steps=10**6, batch_size=args.batch_size, warmup_steps=0))
    largest: tuple[int, Counter, Counter, int] = (0, Counter(), Counter(), 0)
    seconds = []
    for step in range(args.steps):
        by_kind: Counter = Counter()
        count: Counter = Counter()
        seen: set[int] = set()

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            key = tensor.untyped_storage().data_ptr()
            if key not in seen:  # a storage saved twice (e.g. a weight) is counted once
                seen.add(key)
                kind = f"{str(tensor.dtype).removeprefix('torch.')}, last dim {tensor.shape[-1] if tensor.dim() else 1}"
                by_kind[kind] += tensor.untyped_storage().nbytes()
                count[kind] += 1
            return tensor

        start = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            trainer.train_step()
        seconds.append(round(time.perf_counter() - start, 2))
        total = sum(by_kind.values())
        if total > largest[0]:
            largest = (total, by_kind, count, step)
    total, by_kind, count, step = largest
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rows = [{"kind": k, "tensors": count[k], "bytes": b} for k, b in by_kind.most_common()]
    payload = {"model": args.model, "layers": args.layers, "dtype": args.dtype, "batch_size": args.batch_size,
               "max_length": args.max_length, "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": machine(),
               "seconds": seconds, "weights_bytes": weights, "rss_after_load_bytes": rss_loaded, "peak_rss_bytes": rss,
               "largest_step": step, "saved_for_backward_bytes": total, "saved": rows}
    write_json(RESULTS / f"train_step_memory_{args.label}.json", payload, overwrite=True)
    gib = 1 << 30
    lines = [f"# Training step memory: {args.label}", "",
             f"{args.model} at {args.layers} layers, {args.dtype}, batch {args.batch_size} triplets, max length "
             f"{args.max_length}, {payload['threads']} threads, torch {torch.__version__} "
             "(benchmarks/investigations/train_step_memory.py).", "",
             f"- Peak resident memory of the process: **{rss / gib:.2f} GiB** (after loading: {rss_loaded / gib:.2f} GiB; "
             f"the weights themselves: {weights / gib:.2f} GiB).",
             f"- Saved for the backward pass in the largest of {args.steps} steps (step {step}): "
             f"**{total / gib:.2f} GiB**.", f"- Seconds per step: {seconds}.", "",
             "| saved tensors (dtype, last dimension) | count | GiB |", "|---|---:|---:|"]
    lines += [f"| {r['kind']} | {r['tensors']} | {r['bytes'] / gib:.3f} |" for r in rows[:15]]
    write_text(RESULTS / f"train_step_memory_{args.label}.md", with_machine("\n".join(lines), payload["machine"]),
               overwrite=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
