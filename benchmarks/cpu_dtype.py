"""fp32 against the ``auto`` dtype on this CPU, side by side: encode, scan and a training step, with the
share of the bare matmul rate each one reaches.

Run (2 threads, the real SmolLM2-135M; about 10 minutes):
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/cpu_dtype.py

Everything runs in this one process at one thread count, fp32 and auto interleaved, so the ratios are
same-run ones. Model FLOP/s count the useful work only: real tokens (padding is waste), the linear
layers (2 FLOPs per weight per token) plus attention (4 * tokens^2 * width per layer and text, forward);
a training step counts forward plus the input-gradient backward (2x forward; the frozen weights get no
gradient, the LoRA adapters' share is under 1%). Each figure is divided by the bare matmul rate of the
same dtype measured here (``matmul_rate.matmul_gflops``, a 2048 x 576 x 1536 product, SmolLM2's MLP).
Writes benchmarks/results/cpu_dtype.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from _machine import machine, with_machine
from matmul_rate import matmul_gflops

from l3prune.data import load_triplets
from l3prune.encoder import LLMEncoder
from l3prune.devices import default_dtype, dtype_name
from l3prune.loading import resolve
from l3prune.pruning.scan import scan_layers
from l3prune.resources import resource_path
from l3prune.files import write_json, write_text
from l3prune.training import TrainConfig, Trainer
from l3prune.training.loop import triplet_texts

RESULTS = Path(__file__).parent / "results"
TARGETS = {"train": 3.0, "encode": 2.5}  # issue 12: speed-up of auto over fp32 on this machine


def sts_sentences(n: int) -> list[str]:
    rows = [json.loads(line) for line in resource_path("eval", "sts", "STSBenchmark.test.jsonl").open()]
    return [text for row in rows for text in (row["sentence1"], row["sentence2"])][:n]


def linear_weights(encoder: LLMEncoder) -> int:
    """Weights that multiply every token: the decoder layers' matrices (embeddings are a lookup)."""
    return sum(p.numel() for name, p in encoder.model.named_parameters() if ".layers." in f".{name}" and p.dim() == 2)


def forward_flops(encoder: LLMEncoder, lengths: list[int]) -> float:
    cfg = encoder.model.config
    width = cfg.num_attention_heads * getattr(cfg, "head_dim", cfg.hidden_size // cfg.num_attention_heads)
    attention = sum(4 * n * n * width for n in lengths) * encoder.num_layers
    return 2 * linear_weights(encoder) * sum(lengths) + attention


def encode_part(ref: str, depths: list[int], texts: list[str], batch_size: int, repeats: int, dtypes) -> list[dict]:
    rows = []
    for k in depths:
        encoders = {d: LLMEncoder.from_pretrained(ref, num_layers=k, dtype=d, device="cpu") for d in dtypes}
        lengths = encoders[dtypes[0]].collator.token_lengths(texts)
        for enc in encoders.values():
            enc.encode(texts[:64], batch_size=batch_size)  # warm-up: kernels for these shapes
        times: dict[str, list[float]] = {d: [] for d in dtypes}
        for rep in range(repeats):
            for d in dtypes if rep % 2 == 0 else dtypes[::-1]:
                start = time.perf_counter()
                encoders[d].encode(texts, batch_size=batch_size)
                times[d].append(time.perf_counter() - start)
        flops = forward_flops(encoders[dtypes[0]], lengths)
        for d in dtypes:
            s = statistics.median(times[d])
            rows.append({"layers": k, "dtype": d, "resolved": dtype_name(encoders[d].dtype), "seconds": times[d],
                         "texts_per_s": len(texts) / s, "model_gflops": flops / s / 1e9})
            print(f"encode {k} layers {d}: {len(texts) / s:.1f} texts/s", flush=True)
    return rows


def scan_part(ref: str, num_batches: int, batch_size: int, dtypes) -> list[dict]:
    triplets = load_triplets(None)
    rows = []
    for d in dtypes:
        encoder = LLMEncoder.from_pretrained(ref, dtype=d, device="cpu", max_length=128)
        scan_layers(encoder, triplets, num_batches=1, batch_size=batch_size, show_progress=False)  # warm-up
        start = time.perf_counter()
        scan_layers(encoder, triplets, num_batches=num_batches, batch_size=batch_size, show_progress=False)
        rows.append({"dtype": d, "resolved": dtype_name(encoder.dtype), "num_batches": num_batches,
                     "batch_size": batch_size, "seconds": time.perf_counter() - start})
        print(f"scan {d}: {rows[-1]['seconds']:.1f} s", flush=True)
    return rows


def train_part(ref: str, depths: list[int], batch_size: int, max_length: int, warmup: int, steps: int,
               dtypes) -> list[dict]:
    triplets = load_triplets(None)
    rows = []
    for k in depths:
        trainers = {}
        for d in dtypes:
            encoder = LLMEncoder.from_pretrained(ref, num_layers=k, dtype=d, device="cpu", max_length=max_length)
            trainers[d] = Trainer(encoder, triplets, TrainConfig(steps=10**6, batch_size=batch_size, warmup_steps=0))
        times: dict[str, list[float]] = {d: [] for d in dtypes}
        flops: list[float] = []
        for step in range(warmup + steps):
            for d in dtypes:  # the same batch for both, one after the other
                start = time.perf_counter()
                trainers[d].train_step()
                if step >= warmup:
                    times[d].append(time.perf_counter() - start)
            if step >= warmup:
                trainer = trainers[dtypes[0]]
                batch = [triplets[i] for i in trainer.sampler.batch_at(step)]
                texts = [t for side in triplet_texts(batch) for t in side]
                lengths = trainer.encoder.collator.tokenize(texts)["attention_mask"].sum(1).tolist()
                flops.append(3 * forward_flops(trainer.encoder, lengths))
        for d in dtypes:
            rows.append({"layers": k, "dtype": d, "resolved": dtype_name(trainers[d].encoder.dtype),
                         "seconds": times[d], "s_per_step": statistics.median(times[d]),
                         "model_gflops": statistics.median(f / t for f, t in zip(flops, times[d])) / 1e9})
            print(f"train {k} layers {d}: {rows[-1]['s_per_step']:.2f} s/step", flush=True)
        del trainers
    return rows


def markdown(result: dict) -> str:
    auto = result["auto_means"]
    peak = result["matmul_gflops"]
    lines = [f"# fp32 vs auto ({auto}) on this CPU: {result['model']}, {result['threads']} threads", "",
             f"One process, torch {result['torch']}, fp32 and auto interleaved (benchmarks/cpu_dtype.py). Bare "
             f"2048x576x1536 matmul here: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s "
             f"({peak['bf16'] / peak['fp32']:.2f}x).", "",
             "| what | fp32 | auto | auto / fp32 | target | fp32 share of its matmul rate | auto share of its matmul rate |",
             "|---|---:|---:|---:|---:|---:|---:|"]

    def pair(rows, key, k=None):
        sel = {r["dtype"]: r for r in rows if k is None or r["layers"] == k}
        return sel["fp32"], sel["auto"]

    for k in result["depths"]:
        f, a = pair(result["encode"], "texts_per_s", k)
        lines.append(f"| encode, {k} layers (texts/s) | {f['texts_per_s']:.1f} | {a['texts_per_s']:.1f} | "
                     f"{a['texts_per_s'] / f['texts_per_s']:.2f}x | {TARGETS['encode']}x | "
                     f"{f['model_gflops'] / peak['fp32']:.0%} | {a['model_gflops'] / peak[a['resolved']]:.0%} |")
    f, a = pair(result["scan"], "seconds")
    lines.append(f"| scan, 30 layers, {f['num_batches']} batches of {f['batch_size']} (s) | {f['seconds']:.1f} | "
                 f"{a['seconds']:.1f} | {f['seconds'] / a['seconds']:.2f}x | | | |")
    for k in result["depths"]:
        f, a = pair(result["train"], "s_per_step", k)
        lines.append(f"| train, {k} layers (s/step) | {f['s_per_step']:.2f} | {a['s_per_step']:.2f} | "
                     f"{f['s_per_step'] / a['s_per_step']:.2f}x | {TARGETS['train'] if k == 30 else ''}"
                     f"{'x' if k == 30 else ''} | {f['model_gflops'] / peak['fp32']:.0%} | "
                     f"{a['model_gflops'] / peak[a['resolved']]:.0%} |")
    s = result["settings"]
    lines += ["", f"Encode: {s['texts']} STS-B test sentences, batch {s['encode_batch']}, median of {s['repeats']}. "
              f"Train: the shipped triplets, batch {s['train_batch']} triplets at max length {s['max_length']}, LoRA "
              f"r16, median of {s['steps']} steps after {s['warmup']}. Scan: max length 128."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--depths", default="30,15,7")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--encode-batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scan-batches", type=int, default=8)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ref = resolve(args.model).location
    depths = [int(k) for k in args.depths.split(",")]
    dtypes = ("fp32", "auto")
    peak = {name: matmul_gflops(dt) for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    result = {"model": args.model, "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": machine(),
              "auto_means": dtype_name(default_dtype("cpu")), "depths": depths, "matmul_gflops": peak,
              "settings": {"texts": args.texts, "encode_batch": args.encode_batch, "repeats": args.repeats,
                           "train_batch": args.train_batch, "max_length": args.max_length, "warmup": args.warmup,
                           "steps": args.steps}}
    result["encode"] = encode_part(ref, depths, sts_sentences(args.texts), args.encode_batch, args.repeats, dtypes)
    result["scan"] = scan_part(ref, args.scan_batches, 64, dtypes)
    result["train"] = train_part(ref, depths, args.train_batch, args.max_length, args.warmup, args.steps, dtypes)
    write_json(RESULTS / "cpu_dtype.json", result, overwrite=True)
    text = markdown(result)
    write_text(RESULTS / "cpu_dtype.md", with_machine(text, result["machine"]), overwrite=True)
    print(text)


if __name__ == "__main__":
    main()
