"""What a stock sentence-transformers export of the paper's pooling would cost, had we shipped one.

Run:  OMP_NUM_THREADS=2 .venv/bin/python benchmarks/investigations/stock_pooling_gap.py [--model smollm2-135m] [--layers 30 28 7]
          [--trained FOLDER ...]
Writes benchmarks/investigations/results/stock_pooling_gap.{json,md}.

With an instruction, the paper's ``weighted_mean`` gives a text's tokens the weights 1..n. Stock ST 6
``Pooling("weightedmean", include_prompt=False)`` counts from the first token of prompt + text, so the same
tokens get p+1..p+n; that is l3prune's ``weighted_mean_from_instruction``. This script embeds the same texts,
with one instruction, both ways on the same model (each depth untrained, and each ``--trained`` l3prune folder
as saved) and reports the cosine between the two embeddings of each text: the error a silent stock export of ``weighted_mean`` would carry, which is why
``l3prune export`` writes its own pooling module for it instead. It then exports the
``weighted_mean_from_instruction`` encoder at the first depth and loads it in stock sentence-transformers
(no ``trust_remote_code``), to show that this pooling is exactly what stock computes.

A one-off investigation: its committed results come from commit 76a6198, and it has not been rerun since.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the helpers (_machine, ...) are in benchmarks/
from _cosine import row_cosines
from _texts import mixed_texts, sts_sentences
from _machine import machine, with_machine
from _st import offline_sentence_transformer

from l3prune.encoder import LLMEncoder
from l3prune.export import export_sentence_transformers
from l3prune.files import write_json, write_text

RESULTS = Path(__file__).parent / "results"
INSTRUCTION = "Retrieve semantically similar text."


def summary(values: np.ndarray) -> dict:
    return {"mean": round(float(values.mean()), 6), "worst": round(float(values.min()), 6), "texts": int(values.size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--layers", type=int, nargs="+", default=[30, 28, 7],
                        help="depths to compare (SmolLM2's full, L3Prune large and small)")
    parser.add_argument("--trained", nargs="*", default=[], help="trained l3prune folders to compare as well")
    parser.add_argument("--texts", type=int, default=128)
    args = parser.parse_args()
    SentenceTransformer = offline_sentence_transformer()

    texts = mixed_texts(args.texts)
    sentences = set(sts_sentences())
    long = np.array([t not in sentences for t in texts])  # the MS MARCO passages
    rows = []
    stock_check = None
    jobs = [(f"{args.model}, untrained", args.model, depth) for depth in args.layers]
    jobs += [(f"{Path(folder).name}, trained", folder, None) for folder in args.trained]
    for label, reference, depth in jobs:
        encoders = {pooling: LLMEncoder.from_pretrained(reference, num_layers=depth, pooling=pooling, dtype="fp32",
                                                        device="cpu")
                    for pooling in ("weighted_mean", "weighted_mean_from_instruction")}
        embedded = {pooling: enc.encode(texts, instruction=INSTRUCTION, batch_size=32)
                    for pooling, enc in encoders.items()}
        cos = row_cosines(embedded["weighted_mean"], embedded["weighted_mean_from_instruction"])
        depth = encoders["weighted_mean"].num_layers
        rows.append({"model": label, "layers": depth, "all": summary(cos), "short": summary(cos[~long]),
                     "long": summary(cos[long])})
        logging.info("%s, %d layers: mean cosine %.4f, worst %.4f", label, depth, cos.mean(), cos.min())
        if stock_check is None:
            native = encoders["weighted_mean_from_instruction"]
            with tempfile.TemporaryDirectory() as tmp:
                folder = export_sentence_transformers(native, Path(tmp) / "st", prompts={"query": INSTRUCTION},
                                                      require_stock=True)
                module = json.loads((folder / "modules.json").read_text())[1]["type"]
                st = SentenceTransformer(str(folder), device="cpu")
                from_st = st.encode(texts, prompt_name="query", batch_size=32)
            stock_check = {"layers": depth, "st_pooling_module": module,
                           **summary(row_cosines(embedded["weighted_mean_from_instruction"], from_st))}
            logging.info("stock ST on the export: worst cosine %.6f", stock_check["worst"])

    result = {"model": args.model, "instruction": INSTRUCTION, "texts": len(texts),
              "long_texts": int(long.sum()), "dtype": "fp32", "machine": machine(),
              "weighted_mean_vs_from_instruction": rows, "stock_export_of_from_instruction": stock_check}
    RESULTS.mkdir(exist_ok=True)
    write_json(RESULTS / "stock_pooling_gap.json", result, overwrite=True)
    table = [f"| {r['model']} | {r['layers']} | {r['all']['mean']:.4f} | {r['all']['worst']:.4f} | "
             f"{r['short']['mean']:.4f} | {r['long']['mean']:.4f} |" for r in rows]
    write_text(RESULTS / "stock_pooling_gap.md", with_machine("\n".join([
        "# Paper's weighted mean against stock ST's weighted mean (fp32)",
        "",
        f"{len(texts)} texts ({len(texts) - int(long.sum())} STS-B sentences, {int(long.sum())} MS MARCO passages), "
        f"instruction \"{INSTRUCTION}\", cosine between each text's `weighted_mean` (weights 1..n over the text) "
        "and `weighted_mean_from_instruction` (weights p+1..p+n, what stock `weightedmean` with "
        "`include_prompt=False` computes):",
        "",
        "| model | layers | mean cosine | worst | mean, sentences | mean, passages |",
        "|---|---|---|---|---|---|",
        *table,
        "",
        f"Stock sentence-transformers on the `weighted_mean_from_instruction` export ({stock_check['layers']} layers, "
        f"module `{stock_check['st_pooling_module']}`, no `trust_remote_code`) against the native encoder: worst "
        f"cosine {stock_check['worst']:.6f} (mean {stock_check['mean']:.6f}).",
    ]), result["machine"]), overwrite=True)
    logging.info("wrote %s", RESULTS / "stock_pooling_gap.md")


if __name__ == "__main__":
    main()
