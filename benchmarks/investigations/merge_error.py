"""How much does merging trained LoRA adapters into bf16 weights change the embeddings? Measured on real ones.

Run (after benchmarks/investigations/bf16_training_check.py, whose bf16 run's final checkpoint holds trained adapters):
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/investigations/merge_error.py

SmolLM2-135M at the check's 15 layers in bf16, its 200-step LoRA adapters (fp32) loaded from the checkpoint.
The reference is the unmerged model (adapters applied on the fly, in fp32). Compared with it, on 256
STS-B test sentences: l3prune's merge (weight + delta in fp32, then one rounding to bf16), a naive merge
(delta rounded to bf16 first, then added in bf16), and the merge kept in fp32 (no rounding: what an fp32
export of the same adapters would hold). Writes benchmarks/investigations/results/merge_error.{json,md}.

A one-off investigation: its committed results come from commit 4a81b9b, and it has not been rerun since.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch
from peft.tuners.lora import LoraLayer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the helpers (_machine, ...) are in benchmarks/
from _cosine import row_cosines

from l3prune.encoder import LLMEncoder
from l3prune.resources import resource_path
from l3prune.files import write_json, write_text
from l3prune.training import TrainConfig
from l3prune.training.adapters import load_trainable_state, merge_trained, prepare_trainable
from l3prune.training.checkpoint import list_checkpoints, load_checkpoint

RESULTS = Path(__file__).parent / "results"
RUN = Path(__file__).parent / ".cache" / "bf16_check" / "auto-L15-s200.run"


def cosines(a: np.ndarray, b: np.ndarray) -> dict:
    c = row_cosines(a, b)
    return {"mean": float(c.mean()), "worst": float(c.min())}


def naive_merge(encoder: LLMEncoder) -> LLMEncoder:
    """Round each delta to bf16 first, then add in bf16 (two roundings)."""
    with torch.no_grad():
        for module in encoder.model.modules():
            if isinstance(module, LoraLayer):
                base = module.get_base_layer()
                base.weight += module.get_delta_weight("default").to(base.weight.dtype)
                module.scaling["default"] = 0.0  # the adapter's path now adds nothing
    return encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=RUN)
    parser.add_argument("--layers", type=int, default=15)
    parser.add_argument("--texts", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = [json.loads(line) for line in resource_path("eval", "sts", "STSBenchmark.test.jsonl").open()]
    texts = [r["sentence1"] for r in rows][: args.texts]
    step, path = list_checkpoints(args.run / "checkpoints")[-1]
    state = load_checkpoint(path)

    def adapted(dtype: str) -> LLMEncoder:
        enc = LLMEncoder.from_pretrained("smollm2-135m", num_layers=args.layers, max_length=64, dtype=dtype,
                                         device="cpu")
        prepare_trainable(enc, TrainConfig(lora_dropout=0.0))
        load_trainable_state(enc.model, state["trainable"])
        return enc.eval()

    bf16 = adapted("bf16")
    reference = bf16.encode(texts, batch_size=32)  # unmerged: fp32 adapters on the fly
    ours = merge_trained(copy.deepcopy(bf16)).encode(texts, batch_size=32)
    naive = naive_merge(copy.deepcopy(bf16)).encode(texts, batch_size=32)
    kept = merge_trained(adapted("fp32")).encode(texts, batch_size=32)  # merged and kept in fp32
    result = {"checkpoint": str(path.relative_to(Path(__file__).parents[2])), "step": step,
              "layers": args.layers, "texts": len(texts),
              "l3prune_merge_vs_unmerged": cosines(ours, reference),
              "naive_bf16_merge_vs_unmerged": cosines(naive, reference),
              "fp32_merge_vs_unmerged_bf16": cosines(kept, reference)}
    write_json(RESULTS / "merge_error.json", result, overwrite=True)
    lines = ["# Merge error on real adapters", "",
             f"SmolLM2-135M at {args.layers} layers, bf16 base, the 200-step LoRA adapters of the bf16 training check "
             f"(step {step}), {len(texts)} STS-B test sentences. Cosine to the unmerged model "
             "(benchmarks/investigations/merge_error.py):", "",
             "| merged weights | mean cosine | worst cosine |", "|---|---:|---:|"]
    for label, key in (("l3prune: weight + delta in fp32, one rounding to bf16", "l3prune_merge_vs_unmerged"),
                       ("naive: delta rounded to bf16, added in bf16", "naive_bf16_merge_vs_unmerged"),
                       ("kept in fp32 (fp32 base + delta)", "fp32_merge_vs_unmerged_bf16")):
        lines.append(f"| {label} | {result[key]['mean']:.6f} | {result[key]['worst']:.6f} |")
    write_text(RESULTS / "merge_error.md", "\n".join(lines) + "\n", overwrite=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
