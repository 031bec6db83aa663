"""Does training help? STS-B dev Spearman (cosine, x100) of trained encoders against their untrained pruned start.

    .venv/bin/python benchmarks/investigations/stsb_dev_check.py \
        --pair "21 layers=/work/runs/smollm2-21-trained" --pair "large=/work/runs/smollm2-large-trained"

For each ``LABEL=FOLDER`` the untrained baseline is the same base model pruned to the same original
layers (read from the trained folder's ``l3prune.json``), so only the training differs. Uses
``l3prune.evaluation.STSTask`` (MTEB protocol: the STS instruction on both sides). STS-B dev is our
tuning split; never train on it. Writes ``benchmarks/investigations/results/train_stsb_dev.{json,md}``.

A one-off investigation: its committed results come from commits c11b966 (train_stsb_dev.json); da567c8
(train_stsb_dev.md); not rerun since.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from l3prune.encoder import LLMEncoder
from l3prune.evaluation import STSTask
from l3prune.resources import resource_path
from l3prune.files import write_json, write_text

RESULTS = Path(__file__).parent / "results"


def spearman(encoder: LLMEncoder, task: STSTask, batch_size: int) -> tuple[float, float]:
    start = time.perf_counter()
    score = task.evaluate(encoder, batch_size=batch_size, progress=False)["cosine_spearman"]
    return score, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", action="append", required=True, help="LABEL=TRAINED_FOLDER (repeatable)")
    parser.add_argument("--limit", type=int, help="first N pairs only (quick look); default all 1,500")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default=str(RESULTS / "train_stsb_dev"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.manual_seed(0)
    task = STSTask(resource_path("eval", "sts", "STSBenchmark.dev.jsonl"), limit=args.limit)
    rows = []
    for pair in args.pair:
        label, folder = pair.split("=", 1)
        trained = LLMEncoder.from_pretrained(folder, device="cpu")
        training = json.loads((Path(folder) / "training.json").read_text())
        s = trained.settings
        untrained = LLMEncoder.from_pretrained(s.base_model, layers=s.kept_layers, max_length=s.max_length,
                                               pooling=s.pooling, device="cpu")
        before, t_before = spearman(untrained, task, args.batch_size)
        after, t_after = spearman(trained, task, args.batch_size)
        del untrained
        cfg = training["config"]
        rows.append({"label": label, "folder": folder, "base_model": s.base_model, "kept_layers": s.kept_layers,
                     "pruning": s.pruning, "steps": training["steps_run"], "batch_size": cfg["batch_size"],
                     "max_length": cfg["max_length"], "learning_rate": cfg["learning_rate"],
                     "warmup_steps": cfg["warmup_steps"], "final_loss": training["final_loss"],
                     "spearman_untrained": round(before, 2), "spearman_trained": round(after, 2),
                     "eval_seconds": round(t_before + t_after, 1)})
        logging.info("%s: %.2f -> %.2f", label, before, after)
    result = {"task": "STSBenchmark dev", "pairs": len(task.load().scores), "metric": "cosine Spearman x100",
              "instruction": task.instruction, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out.with_suffix(".json"), result, overwrite=True)
    lines = [f"# STS-B dev ({result['pairs']} pairs), cosine Spearman x100: untrained pruned vs trained", "",
             "| model | layers kept | steps x batch | max length | untrained | trained |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {len(r['kept_layers'])} of {r['base_model']} | {r['steps']} x {r['batch_size']} "
                     f"| {r['max_length']} | {r['spearman_untrained']:.2f} | {r['spearman_trained']:.2f} |")
    lines += ["", "Trained on the shipped triplets (SNLI dev/test, Flickr8k, MRPC train, WikiQA train; no STS data), "
              "CPU fp32, LoRA r16, seed 42. STS-B dev is a tuning split: report STS-B test from the suite."]
    write_text(out.with_suffix(".md"), "\n".join(lines) + "\n", overwrite=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
