"""Is bf16 training correct, not just fast? The same run in fp32 and in the auto dtype, compared.

Run (in the background; each run is resumable and each finished part is kept):
    OMP_NUM_THREADS=2 nohup .venv/bin/python benchmarks/investigations/bf16_training_check.py > bf16_check.log 2>&1 &

Both runs: SmolLM2-135M at its first ``--layers`` layers, the shipped triplets, ``--steps`` steps of
``--batch-size`` at max length ``--max-length``, LoRA r16/alpha 32/dropout 0.05, lr 2e-4, the same seed, so
the same batches in the same order. Then the quick suite (``l3prune eval --quick``) on each trained
encoder, each loaded in the dtype it was trained in. Writes benchmarks/investigations/results/bf16_training_check.{json,md}
and bf16_training_loss.png (both loss curves on one plot, with a moving average).

A one-off investigation: its committed results come from commit c8e3d8a, and it has not been rerun since.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import torch

from l3prune.encoder import LLMEncoder
from l3prune.evaluation import run_suite
from l3prune.evaluation.quick import QUICK_SIZES, quick_suite
from l3prune.layers import PruneSpec
from l3prune.devices import default_dtype, dtype_name
from l3prune.loading import resolve
from l3prune.settings import LoadOptions
from l3prune.files import atomic_output, write_json, write_text
from l3prune.training import build_config, train_to_folder

RESULTS = Path(__file__).parent / "results"
CACHE = Path(__file__).parent / ".cache" / "bf16_check"
log = logging.getLogger("bf16_check")


def train(args, dtype: str) -> Path:
    out = CACHE / f"{dtype}-L{args.layers}-s{args.steps}"
    if not out.is_dir():
        config = build_config(steps=args.steps, batch_size=args.batch_size, warmup_steps=args.warmup, seed=args.seed,
                              save_every=25)
        start = time.perf_counter()
        train_to_folder(resolve(args.model).location, out, config, prune=PruneSpec(num_layers=args.layers),
                        load=LoadOptions(max_length=args.max_length, dtype=dtype, device="cpu"),
                        run_dir=CACHE / f"{out.name}.run", resume=True)
        log.info("%s: trained in %.0f s", dtype, time.perf_counter() - start)
    return out


def evaluate(folder: Path, dtype: str, args) -> dict:
    path = CACHE / f"{folder.name}.quick.json"
    if path.is_file():
        return json.loads(path.read_text())
    encoder = LLMEncoder.from_pretrained(folder, load=LoadOptions(max_length=128, dtype=dtype, device="cpu"))
    result = run_suite(encoder, quick_suite(), model_id=folder.name, batch_size=32, info=encoder.info())
    write_json(path, result, overwrite=True)
    return result


def plot(curves: dict[str, list[dict]], path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for (name, rows), color in zip(curves.items(), ("tab:blue", "tab:orange")):
        steps, losses = [r["step"] for r in rows], [r["loss"] for r in rows]
        window = 10
        smooth = [statistics.mean(losses[max(0, i - window + 1): i + 1]) for i in range(len(losses))]
        ax.plot(steps, losses, color=color, alpha=0.25, lw=0.8)
        ax.plot(steps, smooth, color=color, lw=1.8, label=f"{name} (moving average of {window})")
    ax.set_xlabel("step")
    ax.set_ylabel("contrastive loss")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_output(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=120, format="png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--layers", type=int, default=15)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(2)
    auto = dtype_name(default_dtype("cpu"))
    runs = {}
    for dtype in ("fp32", "auto"):
        folder = train(args, dtype)
        summary = json.loads((folder / "training.json").read_text())
        rows = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
        result = evaluate(folder, summary["dtype"], args)
        runs[dtype] = {"resolved": summary["dtype"], "final_loss": summary["final_loss"],
                       "seconds_per_step": statistics.median(r["seconds"] for r in rows),
                       "loss": [r["loss"] for r in rows], "quick_average": result["average_main_score"],
                       "quick_scores": {t: v["main_score"] for t, v in result["tasks"].items()}}
    diffs = [a - b for a, b in zip(runs["auto"]["loss"], runs["fp32"]["loss"])]
    late = slice(len(diffs) // 2, None)
    payload = {"model": args.model, "layers": args.layers, "steps": args.steps, "batch_size": args.batch_size,
               "max_length": args.max_length, "warmup": args.warmup, "seed": args.seed, "auto_means": auto,
               "quick_sizes": QUICK_SIZES, "runs": runs,
               "mean_abs_loss_difference": statistics.mean(abs(d) for d in diffs),
               "mean_loss_difference_second_half": statistics.mean(diffs[late]),
               "quick_average_difference": runs["auto"]["quick_average"] - runs["fp32"]["quick_average"]}
    write_json(RESULTS / "bf16_training_check.json", payload, overwrite=True)
    plot({f"fp32 ({runs['fp32']['seconds_per_step']:.2f} s/step)": _rows(runs["fp32"]),
          f"auto = {runs['auto']['resolved']} ({runs['auto']['seconds_per_step']:.2f} s/step)": _rows(runs["auto"])},
         RESULTS / "bf16_training_loss.png",
         f"{args.model}, {args.layers} layers: {args.steps} steps x {args.batch_size} triplets, max length "
         f"{args.max_length}, seed {args.seed}")
    lines = [f"# bf16 training check: fp32 vs auto ({auto}), {args.model} at {args.layers} layers", "",
             f"{args.steps} steps x {args.batch_size} shipped triplets, max length {args.max_length}, LoRA r16/alpha "
             f"32/dropout 0.05, lr 2e-4, {args.warmup} warm-up steps then linear decay, seed {args.seed} (same batches). "
             "Quick suite (`l3prune eval --quick`) at max length 128, each model in its training dtype "
             "(benchmarks/investigations/bf16_training_check.py).", "",
             "| run | s/step (median) | final loss | quick-suite average |", "|---|---:|---:|---:|"]
    for name, r in runs.items():
        lines.append(f"| {name} ({r['resolved']}) | {r['seconds_per_step']:.2f} | {r['final_loss']:.4f} | "
                     f"{r['quick_average']:.2f} |")
    lines += ["", f"- Quick-suite average, auto minus fp32: **{payload['quick_average_difference']:+.2f}** points "
              "(the issue asks for within 0.5).",
              f"- Loss per step, auto minus fp32: mean absolute difference {payload['mean_abs_loss_difference']:.4f}; "
              f"mean difference over the second half {payload['mean_loss_difference_second_half']:+.4f}.",
              "", "![loss curves](bf16_training_loss.png)"]
    write_text(RESULTS / "bf16_training_check.md", "\n".join(lines) + "\n", overwrite=True)
    print("\n".join(lines))


def _rows(run: dict) -> list[dict]:
    return [{"step": i + 1, "loss": loss} for i, loss in enumerate(run["loss"])]


if __name__ == "__main__":
    main()
