"""The main job on the bundled default (SmolLM2-135M, shipped data), in minutes on 2 CPU cores.

Run: make demo   (or: .venv/bin/python scripts/demo.py)
Each step prints the CLI command that does the same thing.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import transformers

from l3prune.encoder import LLMEncoder
from l3prune.pruning.commands import prune_to_folder

OUT = Path("demo_out")
MODEL = "smollm2-135m"
PAIRS = [
    ("A man is playing a guitar.", "Someone is playing an instrument."),
    ("How do I reset my card PIN?", "I forgot the PIN of my bank card."),
    ("A man is playing a guitar.", "The central bank raised interest rates again."),
    ("Two dogs run across a field.", "Stock prices fell sharply today."),
]


def step(title: str, command: str) -> None:
    print(f"\n== {title}\n   $ {command}")


def similarities(encoder: LLMEncoder) -> list[float]:
    emb = encoder.encode([t for pair in PAIRS for t in pair], normalize=True)
    return [float(emb[2 * i] @ emb[2 * i + 1]) for i in range(len(PAIRS))]


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.glob("*.safetensors")) / 1e6


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()

    step("info: the full model (the GGUF is converted once, then cached)", f"l3prune info {MODEL}")
    start = time.perf_counter()
    full = LLMEncoder.from_pretrained(MODEL, device="cpu")
    print(f"   loaded in {time.perf_counter() - start:.1f}s: {full.num_layers} layers, "
          f"{full.num_parameters / 1e6:.1f}M parameters, hidden {full.hidden_size}, pooling {full.settings.pooling}")
    full.save(OUT / "full")

    step("prune: the paper's '30% pruned' (keep int(30 * 0.7) = 21 layers)",
         f"l3prune prune {MODEL} --drop-fraction 0.3 --out {OUT}/pruned")
    prune_to_folder(MODEL, OUT / "pruned", drop_fraction=0.3, device="cpu")
    pruned = LLMEncoder.from_pretrained(OUT / "pruned", device="cpu")
    print(f"   kept layers {pruned.settings.kept_layers[0]}..{pruned.settings.kept_layers[-1]} "
          f"({pruned.settings.pruning['reason']})")

    step("encode: cosine similarity of sentence pairs, before and after pruning (untrained)",
         f"l3prune encode {OUT}/pruned --input texts.txt --output emb.npy")
    before, after = similarities(full), similarities(pruned)
    print(f"   {'pair':<72} {'full':>6} {'pruned':>7}")
    for (a, b), x, y in zip(PAIRS, before, after):
        print(f"   {a + ' | ' + b:<72.72} {x:6.3f} {y:7.3f}")

    print("\n== size")
    print(f"   {'':<10} {'layers':>6} {'params':>9} {'saved MB':>9}")
    for name, enc in (("full", full), ("pruned", pruned)):
        print(f"   {name:<10} {enc.num_layers:>6} {enc.num_parameters / 1e6:>8.1f}M {folder_mb(OUT / name):>9.0f}")
    ratio = pruned.num_parameters / full.num_parameters
    print(f"   pruned/full parameters: {ratio:.2f} (layers {pruned.num_layers / full.num_layers:.2f}; "
          "embeddings are not pruned)")
    print(f"\nOutputs are in {OUT}/. Untrained similarities are only a sanity check: training recovers quality.")


if __name__ == "__main__":
    main()
