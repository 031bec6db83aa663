"""Does pruning pay off in proportion? Encode throughput and load memory at k of L layers.

Run:  .venv/bin/python benchmarks/perf.py [--threads 2] [--parts throughput memory] [--model smollm2-135m] [--texts 512] [--repeats 3]
Writes benchmarks/results/perf.{json,md} and perf_speedup.png.

- Throughput: the same texts at every k, interleaved over repeats (k order rotates) so machine noise
  hits every configuration alike; the figure is the median of repeats; ratios are same-run.
- Memory: a fresh process per configuration loads the checkpoint straight into k layers and reports
  its peak RSS (ru_maxrss) minus its current RSS after imports; "full then prune" loads all L layers first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from _texts import mixed_texts
from _machine import machine, with_machine

from l3prune.encoder import LLMEncoder
from l3prune.loading import resolve
from l3prune.files import write_json, write_text

RESULTS = Path(__file__).parent / "results"
MEMORY_PROBE = """
import gc, importlib, re, sys, torch, transformers
from transformers import AutoConfig, AutoTokenizer
from l3prune.encoder import LLMEncoder

def kb(key):  # this process's memory figures from /proc (kB)
    return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1))

ref, k, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
model_type = AutoConfig.from_pretrained(ref).model_type
importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")  # code, not data
gc.collect()
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS: imports are not counted
before = kb("VmRSS")
if mode == "tokenizer":
    tok = AutoTokenizer.from_pretrained(ref)
    print(kb("VmHWM") - before, kb("VmRSS") - before, 0, 0)
    sys.exit()
if mode == "direct":
    enc = LLMEncoder.from_pretrained(ref, num_layers=k, device="cpu")
else:
    enc = LLMEncoder.from_pretrained(ref, device="cpu")
    enc.prune(range(k))
gc.collect()
with torch.inference_mode():  # touch one value per 4 KiB page of every weight: memory-mapped weights become resident
    for p in enc.model.parameters():
        float(p.reshape(-1)[:: 4096 // p.element_size()].sum())
peak, after = kb("VmHWM"), kb("VmRSS")
layers = sum(p.numel() * p.element_size() for p in enc.model.layers.parameters())
rest = sum(p.numel() * p.element_size() for n, p in enc.model.named_parameters() if not n.startswith("layers."))
print(peak - before, after - before, layers, rest)
"""


def throughput(ref: str, ks: list[int], texts: list[str], batch_size: int, repeats: int) -> dict[int, dict]:
    encoders = {k: LLMEncoder.from_pretrained(ref, num_layers=k, device="cpu") for k in ks}
    for enc in encoders.values():  # warm-up: allocator and kernels
        enc.encode(texts[:64], batch_size=batch_size)
    times: dict[int, list[float]] = {k: [] for k in ks}
    for rep in range(repeats):
        order = ks[rep % len(ks):] + ks[: rep % len(ks)]
        for k in order:
            start = time.perf_counter()
            encoders[k].encode(texts, batch_size=batch_size)
            times[k].append(time.perf_counter() - start)
    tokens = sum(encoders[ks[0]].collator.token_lengths(texts))
    return {k: {"seconds": statistics.median(t), "all_seconds": t, "texts_per_s": len(texts) / statistics.median(t),
                "tokens_per_s": tokens / statistics.median(t)} for k, t in times.items()}


def memory(ref: str, k: int, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, ref, str(k), mode], capture_output=True, text=True,
                         check=True)
    peak_kb, after_kb, layer_bytes, rest_bytes = map(int, out.stdout.split()[-4:])
    return {"peak_growth_mb": peak_kb / 1024, "resident_after_mb": after_kb / 1024,
            "layer_weights_mb": layer_bytes / 2**20, "other_weights_mb": rest_bytes / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ks", default="30,21,15,8,4")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 when another job shares the CPU)")
    parser.add_argument("--parts", nargs="+", choices=["throughput", "memory"], default=["throughput", "memory"],
                        help="re-measure only these parts (the others are kept from the committed perf.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ref = resolve(args.model).location  # the cached safetensors folder; conversion is not measured
    ks = [int(k) for k in args.ks.split(",")]
    total = ks[0]
    texts = mixed_texts(args.texts)

    previous = json.loads((RESULTS / "perf.json").read_text()) if (RESULTS / "perf.json").is_file() else {}
    if "throughput" in args.parts or "throughput" not in previous:
        speed = throughput(ref, ks, texts, args.batch_size, args.repeats)
        base = speed[total]["texts_per_s"]
        rows = []
        for k in ks:
            measured = speed[k]["texts_per_s"] / base
            ideal = total / k
            rows.append({"layers": k, **speed[k], "speedup": measured, "ideal": ideal,
                         "fraction_of_ideal": measured / ideal, "target_met": measured >= 0.9 * ideal})
        run_info = {"threads": torch.get_num_threads(), "texts": len(texts), "batch_size": args.batch_size,
                    "repeats": args.repeats, "machine": machine()}
    else:  # keep the committed throughput rows; only memory is re-measured
        rows = previous["throughput"]
        run_info = {key: previous[key] for key in ("threads", "texts", "batch_size", "repeats")}
        if "machine" in previous:  # recorded from 2026-12-02 on
            run_info["machine"] = previous["machine"]

    mem_rows = []
    tokenizer_mb = statistics.median(memory(ref, 0, "tokenizer")["peak_growth_mb"] for _ in range(3))
    for k in ks:
        direct, pruned_after = memory(ref, k, "direct"), memory(ref, k, "full_then_prune")
        full_layers = direct["layer_weights_mb"] * total / k
        bound = (k / total * full_layers + direct["other_weights_mb"]) * 1.10
        weights_peak = direct["peak_growth_mb"] - tokenizer_mb
        mem_rows.append({"layers": k, "direct": direct, "full_then_prune": pruned_after, "bound_mb": bound,
                         "tokenizer_mb": tokenizer_mb, "direct_minus_tokenizer_mb": weights_peak,
                         "target_met": weights_peak <= bound, "target_met_with_tokenizer": direct["peak_growth_mb"] <= bound})

    result = {"model": args.model, "device": "cpu", **run_info, "throughput": rows, "memory": mem_rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS / "perf.json", result, overwrite=True)
    write_markdown(result)
    plot(rows)


def write_markdown(result: dict) -> None:
    lines = [f"# Encode speed and load memory vs layers kept ({result['model']}, CPU, {result['threads']} threads)", "",
             f"{result['texts']} mixed texts (75% STS-B sentences, 25% MS MARCO passages), batch {result['batch_size']}, "
             f"median of {result['repeats']} interleaved repeats. Same-run ratios.", "",
             "| layers | texts/s | tokens/s | speed-up | ideal L/k | measured/ideal | >= 0.9 ideal |",
             "|---|---|---|---|---|---|---|"]
    for r in result["throughput"]:
        lines.append(f"| {r['layers']} | {r['texts_per_s']:.1f} | {r['tokens_per_s']:.0f} | {r['speedup']:.2f}x | "
                     f"{r['ideal']:.2f}x | {r['fraction_of_ideal']:.2f} | {'yes' if r['target_met'] else 'NO'} |")
    tok = result["memory"][0]["tokenizer_mb"]
    lines += ["", "Peak RSS growth while loading (fresh process per cell; MB). The bound covers weights only; the "
              f"tokenizer alone adds {tok:.0f} MB (its own fresh process), shown apart:", "",
              "| layers | direct load at k | ... minus tokenizer | resident after load | full load, then prune | "
              "bound (k/L layers + embeddings + 10%) | weights within bound | whole load within bound |",
              "|---|---|---|---|---|---|---|---|"]
    for r in result["memory"]:
        lines.append(f"| {r['layers']} | {r['direct']['peak_growth_mb']:.0f} | {r['direct_minus_tokenizer_mb']:.0f} | "
                     f"{r['direct']['resident_after_mb']:.0f} | {r['full_then_prune']['peak_growth_mb']:.0f} | "
                     f"{r['bound_mb']:.0f} | {'yes' if r['target_met'] else 'NO'} | "
                     f"{'yes' if r['target_met_with_tokenizer'] else 'NO'} |")
    text = "\n".join(lines) + "\n"
    if "machine" in result:  # the machine of the throughput run (not recorded before 2026-12-02)
        text = with_machine(text, result["machine"])
    write_text(RESULTS / "perf.md", text, overwrite=True)


def plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ks = [r["layers"] for r in rows]
    ax.plot(ks, [r["ideal"] for r in rows], "--", color="grey", label="ideal L/k")
    ax.plot(ks, [0.9 * r["ideal"] for r in rows], ":", color="grey", label="target 0.9 x L/k")
    ax.plot(ks, [r["speedup"] for r in rows], "o-", color="C0", label="measured")
    ax.set_xlabel("layers kept (k)")
    ax.set_ylabel("encode speed-up vs full model")
    ax.set_title("Encode throughput vs depth (same run)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / "perf_speedup.png", dpi=120)


if __name__ == "__main__":
    main()
