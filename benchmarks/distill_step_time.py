"""What a teacher costs a student's training step: the same student, steps with and without the distillation
term, interleaved in one process (the teacher's embeddings come from its cache, as in a study).

Run (after one distilled run has cached the teacher's embeddings, e.g. benchmarks/distill.py's minilm-sim-7):
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/distill_step_time.py --model smollm2-135m --layers 7 --teacher minilm
Writes benchmarks/results/distill_step_time.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from _machine import machine, machine_line

from l3prune.data import load_triplets
from l3prune.encoder import LLMEncoder
from l3prune.files import write_json, write_text
from l3prune.settings import LoadOptions
from l3prune.training import Trainer, build_config
from l3prune.training.teacher import teacher_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--layers", type=int, default=7)
    parser.add_argument("--teacher", default="minilm")
    parser.add_argument("--steps", type=int, default=20, help="measured steps of each kind (after 3 warm-up steps)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    triplets = load_triplets(None)
    load = LoadOptions(max_length=args.max_length, device="cpu")
    table = teacher_table(args.teacher, triplets, load=load)
    trainers = {}
    for kind, extra in (("plain", {}), ("distilled", {"teacher": args.teacher})):
        config = build_config(steps=1000, batch_size=args.batch_size, warmup_steps=300, schedule="constant", **extra)
        encoder = LLMEncoder.from_pretrained(args.model, num_layers=args.layers, load=load)
        trainers[kind] = Trainer(encoder, triplets, config, teacher=table if extra else None)
    seconds: dict[str, list[float]] = {kind: [] for kind in trainers}
    for step in range(3 + args.steps):  # interleaved: both kinds meet the same machine state
        for kind, trainer in trainers.items():
            row = trainer.train_step()
            if step >= 3:
                seconds[kind].append(row["seconds"])
    median = {kind: statistics.median(values) for kind, values in seconds.items()}
    ratio = median["distilled"] / median["plain"]
    result = {"model": args.model, "layers": args.layers, "teacher": table.info, "batch_size": args.batch_size,
              "max_length": args.max_length, "steps": args.steps, "median_seconds": median, "ratio": ratio,
              "seconds": seconds, "machine": machine()}
    lines = [f"# What a teacher costs a training step: {args.model} at {args.layers} layers", "",
             f"{machine_line(result['machine'])} Batch {args.batch_size} triplets, max length {args.max_length}, LoRA r16, "
             f"{args.steps} steps of each kind after 3 warm-up steps, interleaved in one process; teacher "
             f"{args.teacher} ({table.info['texts']} cached embeddings of dimension {table.dim}).", "",
             "| step | median s/step |", "|---|---|",
             f"| plain | {median['plain']:.3f} |", f"| with the teacher's term | {median['distilled']:.3f} |", "",
             f"Ratio: **{ratio:.3f}x** (target: at most 1.1x).", ""]
    stem = "distill_step_time"
    results = Path(__file__).resolve().parent / "results"
    write_json(results / f"{stem}.json", result, overwrite=True)
    write_text(results / f"{stem}.md", "\n".join(lines), overwrite=True)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
