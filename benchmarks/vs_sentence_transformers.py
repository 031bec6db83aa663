"""Is the exported folder as fast under stock sentence-transformers as the native encoder?

Run:  .venv/bin/python benchmarks/vs_sentence_transformers.py [--model smollm2-135m] [--texts 256] [--repeats 3] [--threads N]
Writes benchmarks/results/vs_sentence_transformers.{json,md}.

Both encoders live in one process and share the weights' folder: the native ``LLMEncoder`` and
``SentenceTransformer`` on its ``l3prune export``. They embed the same mixed short/long texts at the
same batch size, alternating which goes first in each repeat; the figure is the median of repeats.
Each runs in fp32 and in bf16 (native ``dtype="bf16"``; sentence-transformers through
``model_kwargs={"torch_dtype": torch.bfloat16}``). The run also reports the worst cosine between the
embeddings of a text (parity at full depth, and bf16 against fp32). In bf16 the two loaders pad a batch
differently (native left, ST right), and bf16 rounding depends on the padded shape, so it also compares
them one text at a time (no padding) and the native encoder against itself at batch 1: the parity gap that
is batching, not a difference in the computation.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _cosine import row_cosines
from _texts import mixed_texts
from _machine import machine, with_machine
from _st import offline_sentence_transformer

from l3prune.encoder import LLMEncoder
from l3prune.export import export_sentence_transformers
from l3prune.files import write_json, write_text

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's); 1 is steadier on a shared CPU")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    SentenceTransformer = offline_sentence_transformer()

    texts = mixed_texts(args.texts)
    native = LLMEncoder.from_pretrained(args.model, device="cpu", dtype="fp32")
    native_bf16 = LLMEncoder.from_pretrained(args.model, device="cpu", dtype="bf16")
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_sentence_transformers(native, Path(tmp) / "st")  # fp32 weights
        pooling_module = json.loads((folder / "modules.json").read_text())[1]["type"]
        remote = not pooling_module.startswith("sentence_")
        st = SentenceTransformer(str(folder), device="cpu", trust_remote_code=remote)
        st_bf16 = SentenceTransformer(str(folder), device="cpu", trust_remote_code=remote,
                                      model_kwargs={"torch_dtype": torch.bfloat16})
    runners = {
        "l3prune (native), fp32": lambda: native.encode(texts, batch_size=args.batch_size),
        "sentence-transformers (export), fp32": lambda: st.encode(texts, batch_size=args.batch_size),
        "l3prune (native), bf16": lambda: native_bf16.encode(texts, batch_size=args.batch_size),
        "sentence-transformers (export), bf16 via model_kwargs": lambda: st_bf16.encode(texts, batch_size=args.batch_size),
    }
    for run in runners.values():  # warm-up: allocator and kernels
        run()
    load_before = os.getloadavg()[0]
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    outputs: dict[str, np.ndarray] = {}
    names = list(runners)
    for rep in range(args.repeats):
        for name in names if rep % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            outputs[name] = runners[name]()
            seconds[name].append(time.perf_counter() - start)
            logging.info("repeat %d %s: %.1f s", rep, name, seconds[name][-1])

    def worst(a: str, b: str) -> float:
        return float(row_cosines(outputs[a], outputs[b]).min())

    few = texts[:32]  # one text at a time: no padding, so no batch-shape rounding
    unbatched = {"native_bf16": native_bf16.encode(few, batch_size=1), "st_bf16": st_bf16.encode(few, batch_size=1)}
    outputs["native bf16, batch 1"], outputs["st bf16, batch 1"] = unbatched["native_bf16"], unbatched["st_bf16"]
    outputs["native bf16, first 32"] = outputs[names[2]][:32]

    result = {
        "model": args.model, "layers": native.num_layers, "pooling": native.settings.pooling,
        "st_pooling_module": pooling_module, "texts": len(texts), "batch_size": args.batch_size,
        "repeats": args.repeats, "torch_threads": torch.get_num_threads(), "machine": machine(),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "min_cosine_native_vs_st": worst(names[0], names[1]),
        "min_cosine_native_vs_st_bf16": worst(names[2], names[3]),
        "min_cosine_bf16_vs_fp32_native": worst(names[0], names[2]),
        "min_cosine_native_vs_st_bf16_batch1": worst("native bf16, batch 1", "st bf16, batch 1"),
        "min_cosine_native_bf16_batch1_vs_batched": worst("native bf16, batch 1", "native bf16, first 32"),
        "encoders": {name: {"seconds": [round(s, 2) for s in times],
                            "sentences_per_s": round(len(texts) / statistics.median(times), 1)}
                     for name, times in seconds.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    write_json(RESULTS / "vs_sentence_transformers.json", result, overwrite=True)
    rows = [f"| {name} | {r['sentences_per_s']} | {', '.join(map(str, r['seconds']))} |"
            for name, r in result["encoders"].items()]
    write_text(RESULTS / "vs_sentence_transformers.md", with_machine("\n".join([
        f"# Native encoder vs stock sentence-transformers ({args.model}, {native.num_layers} layers, CPU)",
        "",
        f"{len(texts)} mixed short/long texts, batch {args.batch_size}, {torch.get_num_threads()} torch threads, "
        f"same process, order alternating over {args.repeats} repeats; median. Load average "
        f"{result['load_average'][0]} -> {result['load_average'][1]}.",
        "",
        "| Encoder | Sentences/s | Seconds per repeat |",
        "|---|---|---|",
        *rows,
        "",
        f"ST pooling module: `{pooling_module}`. Worst cosine over the texts: native vs ST, fp32 "
        f"{result['min_cosine_native_vs_st']:.6f}; native vs ST, both bf16 {result['min_cosine_native_vs_st_bf16']:.6f}; "
        f"native bf16 vs native fp32 {result['min_cosine_bf16_vs_fp32_native']:.6f}.",
        "",
        f"Where the bf16 gap comes from (first 32 texts): native vs ST, both bf16 and one text at a time (no padding) "
        f"{result['min_cosine_native_vs_st_bf16_batch1']:.6f}; the native encoder against itself, batch 1 vs batch "
        f"{args.batch_size}, {result['min_cosine_native_bf16_batch1_vs_batched']:.6f}. The two loaders compute the same "
        "thing; what differs in batches is the padding (native left, ST right), and bf16 rounding depends on the "
        "padded shape.",
    ]), result["machine"]), overwrite=True)
    logging.info("wrote %s", RESULTS / "vs_sentence_transformers.md")


if __name__ == "__main__":
    main()
