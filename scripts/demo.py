"""The main job, scan -> prune -> train -> evaluate -> export, on SmolLM2-135M and the shipped data.

Run: make demo   (or: .venv/bin/python scripts/demo.py)
Budgets are cut so it ends in minutes on 2 CPU cores; each step prints the CLI command that does the
same at full size. The numbers are a smoke test of the pipeline, not quality figures.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import transformers

from l3prune.data import load_triplets
from l3prune.encoder import LLMEncoder
from l3prune.evaluation.sts import STSTask
from l3prune.export import export_sentence_transformers
from l3prune.pruning.scan import scan_layers
from l3prune.resources import resource_path
from l3prune.settings import LoadOptions
from l3prune.training import build_config, train_to_folder

OUT = Path("demo_out")
MODEL = "smollm2-135m"
MAX_LENGTH = 64
PAIRS = [
    ("A man is playing a guitar.", "Someone is playing an instrument."),
    ("A man is playing a guitar.", "The central bank raised interest rates again."),
]


def step(title: str, command: str) -> None:
    print(f"\n== {title}\n   $ {command}", flush=True)


def stsb(encoder) -> float:
    task = STSTask(resource_path("eval", "sts", "STSBenchmark.test.jsonl"), name="STSBenchmark", limit=300)
    return task.evaluate(encoder, batch_size=32, progress=False)[task.main_metric]


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)  # its bf16-on-CPU warning: see docs/export.md
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    start = time.perf_counter()

    step("info (the GGUF is converted once, then cached)", f"l3prune info {MODEL}")
    full = LLMEncoder.from_pretrained(MODEL, device="cpu", max_length=MAX_LENGTH)
    print(f"   {full.num_layers} layers, {full.num_parameters / 1e6:.1f}M parameters, hidden {full.hidden_size}, "
          f"pooling {full.settings.pooling}")

    step("scan: per-layer contrastive loss in one pass (demo: 6 batches of 8; paper: 100 of 64)",
         f"l3prune scan {MODEL} --out {OUT}/scan")
    profile = scan_layers(full, load_triplets(None), num_batches=6, batch_size=8, show_progress=False)
    paths = profile.save(OUT / "scan")
    print(f"   small = {profile.small} layers, large = {profile.large} layers; plot: {paths['png']}")

    # The demo trains `small`, whatever depth the scan gives it, so that training takes seconds, not minutes
    # (`large` is nearly the whole model here).
    step(f"prune to 'small' ({profile.small} of {full.num_layers} layers; 'large' would keep {profile.large})",
         f"l3prune prune {MODEL} --config small --out {OUT}/small")
    pruned = full.prune(range(profile.small), criterion="l3prune",
                        reason=f"small configuration of the demo scan ({profile.small} layers)")
    pruned.save(OUT / "small")

    step("train: contrastive LoRA (demo: 60 steps of batch 8; paper: 1000 of 64)",
         f"l3prune train {MODEL} --config small --out {OUT}/trained")
    config = build_config(steps=60, batch_size=8, warmup_steps=6, save_every=0)
    train_to_folder(OUT / "small", OUT / "trained", config, load=LoadOptions(max_length=MAX_LENGTH, device="cpu"),
                    run_dir=OUT / "run")
    trained = LLMEncoder.from_pretrained(OUT / "trained", device="cpu")

    step("evaluate: STS-B test Spearman x100 (demo: first 300 pairs)", f"l3prune eval {OUT}/trained --tasks sts")
    untrained = LLMEncoder.from_pretrained(OUT / "small", device="cpu")
    for name, enc in (("full, untrained", LLMEncoder.from_pretrained(MODEL, device="cpu", max_length=MAX_LENGTH)),
                      ("small, untrained", untrained), ("small, trained", trained)):
        print(f"   {name:<18} {enc.num_layers:>2} layers  {enc.num_parameters / 1e6:6.1f}M params  "
              f"STS-B {stsb(enc):5.1f}")

    step("export and reload with stock sentence-transformers", f"l3prune export {OUT}/trained --out {OUT}/st")
    export_sentence_transformers(trained, OUT / "st")
    from sentence_transformers import SentenceTransformer

    texts = [t for pair in PAIRS for t in pair]
    # Trained with dtype auto (bf16 on this CPU), the folder holds bf16 weights: both loaders compared in
    # fp32 (exact up to 1e-4) and as saved, in bf16 (equal up to bf16 rounding, which batching changes).
    fp32 = LLMEncoder.from_pretrained(OUT / "trained", device="cpu", dtype="fp32")
    st32 = SentenceTransformer(str(OUT / "st"), device="cpu", model_kwargs={"torch_dtype": torch.float32})
    st = SentenceTransformer(str(OUT / "st"), device="cpu")
    for label, native, model in (("fp32", fp32, st32), (f"as saved, {trained.info()['dtype']}", trained, st)):
        ours, theirs = native.encode(texts, normalize=True), model.encode(texts, normalize_embeddings=True)
        worst = float(np.min(np.sum(ours * theirs, axis=1)))
        print(f"   worst cosine(native, sentence-transformers), {label}: {worst:.6f}")
    for i, (a, b) in enumerate(PAIRS):
        print(f"   cos = {float(theirs[2 * i] @ theirs[2 * i + 1]):.3f}  {a} | {b}")
    print(f"\nDone in {time.perf_counter() - start:.0f}s. Outputs in {OUT}/: scan.*, small/, trained/, run/ (loss log and "
          "curve), st/ (sentence-transformers).")


if __name__ == "__main__":
    main()
