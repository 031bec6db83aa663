"""How much padding each loader's batching adds: native sorts by token count, sentence-transformers by characters.

Run:  .venv/bin/python benchmarks/investigations/sort_padding.py [--model smollm2-135m] [--texts 256] [--batch-size 32]
Writes benchmarks/investigations/results/sort_padding.{json,md}.

Both loaders sort a call's texts longest first and pad each batch to its longest text, so the padding a call
computes on depends only on the sort key. The native ``LLMEncoder.encode`` sorts by token count; stock
sentence-transformers 6 sorts by character count (``_input_length``). This script batches the same texts (the
ones ``vs_sentence_transformers.py`` times) exactly as each loader does, tokenizes every batch with that
loader's own tokenizer call, and counts the positions each padded batch holds against the real tokens. No
forward pass runs: this is the part of the speed gap that comes from batching alone.

A one-off investigation: its committed results come from commit 21cea5c, and it has not been rerun since.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the helpers (_machine, ...) are in benchmarks/
from _texts import mixed_texts
from _machine import machine, with_machine
from _st import offline_sentence_transformer

from l3prune.encoder import LLMEncoder
from l3prune.tokenization import longest_first_batches
from l3prune.export import export_sentence_transformers
from l3prune.files import write_json, write_text

RESULTS = Path(__file__).parent / "results"


def native_positions(encoder: LLMEncoder, texts: list[str], batch_size: int) -> tuple[int, int]:
    """(padded positions, real tokens) of ``encode``'s batches: sorted by token count, longest first."""
    ids = encoder._text_ids(texts)
    padded = real = 0
    for idx in longest_first_batches(ids, batch_size):
        mask = encoder.collator.collate([ids[i] for i in idx], [None] * len(idx))["attention_mask"]
        padded, real = padded + mask.numel(), real + int(mask.sum())
    return padded, real


def st_positions(st, texts: list[str], batch_size: int) -> tuple[int, int]:
    """(padded positions, real tokens) of ``SentenceTransformer.encode``'s batches, sorted its way."""
    order = np.argsort([-st._input_length(t) for t in texts])
    if st._can_flatten_inputs():  # ST's own branch for unpadded kernels; kept so the count follows ST
        order = st._interleave_sorted_indices(order)
    padded = real = 0
    for start in range(0, len(order), batch_size):
        mask = st.preprocess([texts[i] for i in order[start : start + batch_size]])["attention_mask"]
        padded, real = padded + mask.numel(), real + int(mask.sum())
    return padded, real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    SentenceTransformer = offline_sentence_transformer()

    texts = mixed_texts(args.texts)
    native = LLMEncoder.from_pretrained(args.model, num_layers=1, device="cpu")  # the tokenizer is what counts
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_sentence_transformers(native, Path(tmp) / "st")
        st = SentenceTransformer(str(folder), device="cpu", trust_remote_code=True)  # our module: made here
    counts = {"native (token count)": native_positions(native, texts, args.batch_size),
              "sentence-transformers (characters)": st_positions(st, texts, args.batch_size)}
    reals = {real for _, real in counts.values()}
    if len(reals) != 1:
        raise SystemExit(f"the loaders tokenized different texts ({sorted(reals)} real tokens): not comparable")
    (real,) = reals
    native_padded = counts["native (token count)"][0]
    result = {"model": args.model, "texts": len(texts), "batch_size": args.batch_size, "max_length":
              native.settings.max_length, "real_tokens": real, "machine": machine(),
              "loaders": {name: {"positions": padded, "padding_fraction": round(1 - real / padded, 4),
                                 "positions_over_native": round(padded / native_padded, 4)}
                          for name, (padded, _) in counts.items()}}
    RESULTS.mkdir(exist_ok=True)
    write_json(RESULTS / "sort_padding.json", result, overwrite=True)
    rows = [f"| {name} | {r['positions']} | {100 * r['padding_fraction']:.1f}% | {r['positions_over_native']:.3f}x |"
            for name, r in result["loaders"].items()]
    write_text(RESULTS / "sort_padding.md", with_machine("\n".join([
        f"# Padding from each loader's sort ({args.model} tokenizer)",
        "",
        f"{len(texts)} mixed texts (the ones `vs_sentence_transformers.py` times), batch {args.batch_size}, "
        f"max length {native.settings.max_length}, {real} real tokens. Positions = the sum over batches of "
        "batch size x widest text.",
        "",
        "| loader (sort key) | positions | padding | positions against native |",
        "|---|---|---|---|",
        *rows,
    ]), result["machine"]), overwrite=True)
    logging.info("wrote %s", RESULTS / "sort_padding.md")


if __name__ == "__main__":
    main()
