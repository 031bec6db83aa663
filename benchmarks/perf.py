"""Does pruning pay off in proportion? Encode throughput and load memory at k of L layers.

Run:  .venv/bin/python benchmarks/perf.py [--model smollm2-135m] [--texts 512] [--repeats 3]
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

sys.path.insert(0, str(Path(__file__).parent))
from _texts import mixed_texts  # noqa: E402

from l3prune.encoder import LLMEncoder  # noqa: E402
from l3prune.loading import resolve  # noqa: E402

RESULTS = Path(__file__).parent / "results"
MEMORY_PROBE = """
import resource, sys, psutil
from l3prune.encoder import LLMEncoder
ref, k, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
before = psutil.Process().memory_info().rss // 1024  # current RSS: imports can leave a higher transient peak
if mode == "direct":
    enc = LLMEncoder.from_pretrained(ref, num_layers=k, device="cpu")
else:
    enc = LLMEncoder.from_pretrained(ref, device="cpu")
    enc.prune(range(k))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
layers = sum(p.numel() * p.element_size() for p in enc.model.layers.parameters())
rest = sum(p.numel() * p.element_size() for n, p in enc.model.named_parameters() if not n.startswith("layers."))
print(peak - before, layers, rest)
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
    tokens = sum(len(ids) for ids in encoders[ks[0]]._text_ids(texts))
    return {k: {"seconds": statistics.median(t), "all_seconds": t, "texts_per_s": len(texts) / statistics.median(t),
                "tokens_per_s": tokens / statistics.median(t)} for k, t in times.items()}


def memory(ref: str, k: int, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, ref, str(k), mode], capture_output=True, text=True,
                         check=True)
    peak_kb, layer_bytes, rest_bytes = map(int, out.stdout.split()[-3:])
    return {"peak_growth_mb": peak_kb / 1024, "layer_weights_mb": layer_bytes / 2**20, "other_weights_mb": rest_bytes / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ks", default="30,21,15,8,4")
    args = parser.parse_args()
    torch.set_num_threads(2)
    ref = resolve(args.model).location  # the cached safetensors folder; conversion is not measured
    ks = [int(k) for k in args.ks.split(",")]
    total = ks[0]
    texts = mixed_texts(args.texts)

    speed = throughput(ref, ks, texts, args.batch_size, args.repeats)
    base = speed[total]["texts_per_s"]
    rows = []
    for k in ks:
        measured = speed[k]["texts_per_s"] / base
        ideal = total / k
        rows.append({"layers": k, **speed[k], "speedup": measured, "ideal": ideal, "fraction_of_ideal": measured / ideal,
                     "target_met": measured >= 0.9 * ideal})

    mem_rows = []
    for k in ks:
        direct, pruned_after = memory(ref, k, "direct"), memory(ref, k, "full_then_prune")
        full_layers = direct["layer_weights_mb"] * total / k
        bound = (k / total * full_layers + direct["other_weights_mb"]) * 1.10
        mem_rows.append({"layers": k, "direct": direct, "full_then_prune": pruned_after, "bound_mb": bound,
                         "target_met": direct["peak_growth_mb"] <= bound})

    result = {"model": args.model, "device": "cpu", "threads": torch.get_num_threads(), "texts": len(texts),
              "batch_size": args.batch_size, "repeats": args.repeats, "throughput": rows, "memory": mem_rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "perf.json").write_text(json.dumps(result, indent=2) + "\n")
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
    lines += ["", "Peak RSS growth while loading (fresh process per row; MB):", "",
              "| layers | direct load at k | full load, then prune | bound (k/L layers + embeddings + 10%) | within bound |",
              "|---|---|---|---|---|"]
    for r in result["memory"]:
        lines.append(f"| {r['layers']} | {r['direct']['peak_growth_mb']:.0f} | {r['full_then_prune']['peak_growth_mb']:.0f} | "
                     f"{r['bound_mb']:.0f} | {'yes' if r['target_met'] else 'NO'} |")
    (RESULTS / "perf.md").write_text("\n".join(lines) + "\n")


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
