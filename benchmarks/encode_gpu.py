"""GPU encode speed and memory at several depths of a randomly initialised Llama-3-8B-shape model (SPEED ONLY).

Run (on a GPU machine; nothing is downloaded, the weights are random):
    .venv/bin/python benchmarks/encode_gpu.py                         # 32, 25 and 8 layers, bf16, ST at 8 layers
Smoke test anywhere:
    .venv/bin/python benchmarks/encode_gpu.py --device cpu --config tiny --texts 16 --length 32 --out /tmp/gpu_smoke

Writes benchmarks/results/encode_gpu_speed_only.{json,md}. For each depth, one at a time (an 8B model's
depths do not fit together): tokens/s of ``LLMEncoder.encode`` on texts of exactly ``--length`` tokens,
peak GPU memory, and the achieved fraction of the GPU's bf16 peak, counting forward FLOPs as
2 x (non-embedding parameters) x tokens (attention's own FLOPs left out, as the issue defines it).
At the ``--st-layers`` depths the same model is exported and encoded by stock sentence-transformers
on the same texts and batch size. Random weights: these figures say nothing about quality.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from _machine import machine, with_machine
from train_step_time import RANDOM_CONFIGS, word_tokenizer

from l3prune.encoder import LLMEncoder
from l3prune.settings import EncoderSettings
from l3prune.export import export_sentence_transformers
from l3prune.files import write_json, write_text

RESULTS = Path(__file__).parent / "results"
CONFIGS = RANDOM_CONFIGS
BF16_PEAK_TFLOPS = 790.0  # H100/H200 SXM dense bf16, as the issue states


def build(config_name: str, num_layers: int, device: str, dtype: torch.dtype, length: int) -> LLMEncoder:
    from transformers import AutoModel, LlamaConfig

    config = LlamaConfig(**{**CONFIGS[config_name], "num_hidden_layers": num_layers})
    with torch.device(device):
        model = AutoModel.from_config(config, dtype=dtype).eval()
    return LLMEncoder(model, word_tokenizer(), EncoderSettings(base_model=f"random {config_name}", max_length=length))


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str, repeats: int) -> list[float]:
    fn()  # warm-up: kernels, allocator
    out = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - start)
    return out


def st_seconds(encoder: LLMEncoder, texts: list[str], args) -> tuple[list[float], float]:
    """Stock sentence-transformers on the exported folder: (seconds per repeat, worst cosine to native)."""
    from sentence_transformers import SentenceTransformer

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        folder = export_sentence_transformers(encoder, Path(tmp) / "st")
        st = SentenceTransformer(str(folder), device=args.device, model_kwargs={"dtype": encoder.model.dtype})
        seconds = timed(lambda: st.encode(texts, batch_size=args.batch_size, convert_to_tensor=True), args.device,
                        args.repeats)
        ours = encoder.encode(texts[:64], batch_size=args.batch_size, normalize=True, convert_to="torch")
        theirs = st.encode(texts[:64], batch_size=args.batch_size, normalize_embeddings=True, convert_to_tensor=True)
        worst = float((ours * theirs.float().cpu()).sum(-1).min())
        del st
    return seconds, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="llama3-8b")
    parser.add_argument("--layers", type=int, nargs="+", default=[32, 25, 8])
    parser.add_argument("--st-layers", type=int, nargs="*", default=[8], help="depths also run through sentence-transformers")
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--length", type=int, default=512, help="tokens per text")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--tmp", help="folder for the temporary export (default: the system's)")
    parser.add_argument("--out", help="output prefix (default: benchmarks/results/encode_gpu_speed_only)")
    args = parser.parse_args()
    cuda = torch.device(args.device).type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here; run on a GPU machine, or pass --device cpu --config tiny for a smoke test")
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    texts = [" ".join(["w"] * args.length)] * args.texts
    rows = []
    for n in args.layers:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        encoder = build(args.config, n, args.device, dtype, args.length)
        tokens = args.texts * encoder.collator.tokenize(texts[:1])["input_ids"].shape[1]
        seconds = timed(lambda: encoder.encode(texts, batch_size=args.batch_size, convert_to="torch"), args.device,
                        args.repeats)
        median = statistics.median(seconds)
        body = sum(p.numel() for name, p in encoder.model.named_parameters() if not name.startswith("embed_tokens"))
        row = {"layers": n, "seconds": seconds, "tokens_per_s": tokens / median,
               "non_embedding_parameters": body,
               "fraction_of_bf16_peak": 2 * body * tokens / median / (BF16_PEAK_TFLOPS * 1e12)}
        if cuda:
            row["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        if n in args.st_layers:
            st, worst = st_seconds(encoder, texts, args)
            row.update(st_seconds=st, st_tokens_per_s=tokens / statistics.median(st), native_over_st=statistics.median(st) / median,
                       worst_cosine_native_vs_st=worst)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "seconds"}), flush=True)
        del encoder
        gc.collect()
    device = torch.cuda.get_device_name() if cuda else "CPU"
    result = {"speed_only": True, "config": args.config, "dtype": args.dtype, "device": device, "texts": args.texts,
              "length": args.length, "batch_size": args.batch_size, "repeats": args.repeats, "torch": torch.__version__,
              "machine": machine(), "rows": rows}
    out = Path(args.out or RESULTS / "encode_gpu_speed_only")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out.with_suffix(".json"), result, overwrite=True)
    full = max(rows, key=lambda r: r["layers"])
    lines = [f"# Encode speed vs depth, random {args.config} ({args.dtype}) on {device} (SPEED ONLY: random weights)", "",
             f"{args.texts} texts of {args.length} tokens, batch {args.batch_size}, median of {args.repeats} after a warm-up.",
             "", "| layers | tokens/s | speed-up | ideal | peak memory (GiB) | fraction of bf16 peak | vs stock ST |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        mem = f"{r['peak_memory_gib']:.1f}" if "peak_memory_gib" in r else "n/a"
        st = f"{r['native_over_st']:.2f}x (worst cos {r['worst_cosine_native_vs_st']:.4f})" if "native_over_st" in r else ""
        lines.append(f"| {r['layers']} | {r['tokens_per_s']:.0f} | {r['tokens_per_s'] / full['tokens_per_s']:.2f}x | "
                     f"{full['layers'] / r['layers']:.2f}x | {mem} | {r['fraction_of_bf16_peak']:.1%} | {st} |")
    write_text(out.with_suffix(".md"), with_machine("\n".join(lines), result["machine"]), overwrite=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
