"""What does the one-pass scan cost against one plain forward pass, and save over rerunning per depth?

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scan_cost.py [--model smollm2-135m] [--num-batches 2 --batch-size 16 --max-length 128]
Writes benchmarks/results/scan_cost.{json,md}.

Both approaches score the same batches of shipped triplets. The scan runs the full model once per batch
side with ``output_hidden_states`` (``l3prune.pruning.scan.scan_layers``). The naive approach, for each
k = 1..L, takes a copy of the model pruned to its first k layers and encodes the same batches (the scan is
timed again before every fifth depth, so both see the same machine load); its copy
time is reported apart from its forward time, and only forward time enters the ratio. On a shared
machine wall-clock time swings with other jobs, so the ratio is taken on process CPU time (run with
OMP_NUM_THREADS=1 so it is not inflated by idle thread spinning); wall-clock seconds are reported too.
The per-depth losses of the two must agree (the scan's correctness contract, here on real weights).
"One plain forward pass" is the full model encoding the same batches (last layer pooled, same loss), timed
next to every interleaved scan: the target is scan <= 1.15x plain.
"""

from __future__ import annotations

import argparse
import copy
import logging
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from _machine import machine, with_machine

from l3prune.data import load_triplets
from l3prune.encoder import LLMEncoder
from l3prune.losses import contrastive_loss_per_example
from l3prune.pruning.scan import scan_layers, scan_sampler, triplet_features
from l3prune.files import write_json, write_text

RESULTS = Path(__file__).parent / "results"


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    """(wall, cpu) seconds since ``start``."""
    now = clock()
    return now[0] - start[0], now[1] - start[1]


def scan_once(encoder: LLMEncoder, triplets, num_batches: int, batch_size: int):
    """One scan over the sample; (profile, (wall, cpu) seconds)."""
    start = clock()
    profile = scan_layers(encoder, triplets, num_batches=num_batches, batch_size=batch_size, show_progress=False)
    return profile, since(start)


@torch.inference_mode()
def plain_once(encoder: LLMEncoder, batches) -> tuple[float, float]:
    """One ordinary forward pass of the full model over the sample (pooled last layer + loss); (wall, cpu)."""
    start = clock()
    for b in batches:
        contrastive_loss_per_example(*(encoder(f) for f in triplet_features(encoder, b))).mean()
    return since(start)


@torch.inference_mode()
def naive(encoder: LLMEncoder, batches, rescan) -> tuple[list[float], tuple[float, float], float, list]:
    """Mean loss per depth from L pruned copies, with a scan timed before every 5th depth (same load).

    Returns (losses, forward (wall, cpu) seconds, copy wall seconds, the interleaved scans' (wall, cpu)).
    """
    losses, wall, cpu, copy_s, scans = [], 0.0, 0.0, 0.0, []
    for k in tqdm(range(1, encoder.num_layers + 1), desc="naive: one model per depth", unit="depth"):
        if k % 5 == 1:
            scans.append(rescan()[1])
        start = time.perf_counter()
        pruned = copy.deepcopy(encoder).prune(list(range(k)))
        copy_s += time.perf_counter() - start
        start = clock()
        per_batch = [contrastive_loss_per_example(*(pruned(f) for f in triplet_features(pruned, b))).mean()
                     for b in batches]
        w, c = since(start)
        wall, cpu = wall + w, cpu + c
        losses.append(float(torch.stack(per_batch).mean()))
        del pruned
    return losses, (wall, cpu), copy_s, scans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--num-batches", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    triplets = load_triplets(None)
    encoder = LLMEncoder.from_pretrained(args.model, max_length=args.max_length, device="cpu", dtype=torch.float32)
    sampler, num_batches = scan_sampler(triplets, num_batches=args.num_batches, batch_size=args.batch_size)
    batches = [[triplets[i] for i in sampler.batch_at(step)] for step in range(num_batches)]

    def rescan():
        return scan_once(encoder, triplets, num_batches, args.batch_size)

    plains = []

    def rescan_and_plain():
        plains.append(plain_once(encoder, batches))
        return rescan()

    profile, _ = rescan()  # warm-up, and the losses to compare
    plain_once(encoder, batches)  # warm-up
    naive_losses, (naive_wall, naive_cpu), copy_s, scans = naive(encoder, batches, rescan_and_plain)
    scan_wall = sum(w for w, _ in scans) / len(scans)
    scan_cpu = sum(c for _, c in scans) / len(scans)
    plain_wall = sum(w for w, _ in plains) / len(plains)
    plain_cpu = sum(c for _, c in plains) / len(plains)
    diff = max(abs(a - b) for a, b in zip(profile.loss_mean, naive_losses))
    L = encoder.num_layers
    result = {
        "model": args.model, "layers": L, "device": "cpu", "dtype": "float32", "threads": torch.get_num_threads(),
        "machine": machine(),
        "sample": {"num_batches": num_batches, "batch_size": args.batch_size, "max_length": args.max_length,
                   "texts": 3 * num_batches * args.batch_size, "data": "shipped triplets"},
        "scan_timings": "mean of scans interleaved with the naive depths (before depths 1, 6, 11, ...)",
        "scan_repeats": len(scans),
        "scan_cpu_seconds": round(scan_cpu, 2),
        "naive_forward_cpu_seconds": round(naive_cpu, 2),
        "naive_over_scan_cpu": round(naive_cpu / scan_cpu, 2),
        "plain_forward_cpu_seconds": round(plain_cpu, 2),
        "plain_forward_wall_seconds": round(plain_wall, 2),
        "scan_over_plain_cpu": round(scan_cpu / plain_cpu, 3),
        "scan_over_plain_wall": round(scan_wall / plain_wall, 3),
        "scan_target_met": scan_cpu / plain_cpu <= 1.15,
        "scan_wall_seconds": round(scan_wall, 2),
        "naive_forward_wall_seconds": round(naive_wall, 2),
        "naive_over_scan_wall": round(naive_wall / scan_wall, 2),
        "naive_copy_wall_seconds": round(copy_s, 2),
        "expected_ratio_layer_work": round((L + 1) / 2, 1),  # sum_k k / L layer-passes vs 1
        "max_abs_loss_difference": diff,
        "small": profile.small, "large": profile.large,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS / "scan_cost.json", result, overwrite=True)
    md = [
        f"# Scan cost: one pass vs a model per depth ({args.model}, {L} layers)",
        "",
        f"Sample: {num_batches} batches of {args.batch_size} shipped triplets ({result['sample']['texts']} texts), "
        f"max_length {args.max_length}, fp32 on CPU ({result['threads']} threads, a shared machine: absolute "
        "seconds are noisy; CPU seconds much less so).",
        "",
        "| approach | forward passes over the sample | CPU seconds | wall seconds |",
        "|---|---|---|---|",
        f"| one plain forward pass (full model, last layer pooled) | 1 | {result['plain_forward_cpu_seconds']} | "
        f"{result['plain_forward_wall_seconds']} |",
        f"| scan (`output_hidden_states`, one pass) | 1 | {result['scan_cpu_seconds']} | {result['scan_wall_seconds']} |",
        f"| naive (prune to k, rerun, k = 1..{L}) | {L} (of growing depth) | {result['naive_forward_cpu_seconds']} | "
        f"{result['naive_forward_wall_seconds']} (+ {result['naive_copy_wall_seconds']} copying models) |",
        "",
        f"Naive / scan = **{result['naive_over_scan_cpu']}x** in CPU time ({result['naive_over_scan_wall']}x wall clock; "
        f"layer work alone predicts (L + 1) / 2 = "
        f"{result['expected_ratio_layer_work']}x; embedding, pooling and loss costs move it a little). "
        f"Largest per-depth loss difference between the two: {diff:.2e}.",
        "",
        f"Scan / one plain forward pass = **{result['scan_over_plain_cpu']}x** in CPU time "
        f"({result['scan_over_plain_wall']}x wall clock; target <= 1.15x: "
        f"{'met' if result['scan_target_met'] else 'NOT met'}). The scan's extra work is the final norm, pooling "
        "and loss at every depth instead of once; the layers run once either way.",
    ]
    write_text(RESULTS / "scan_cost.md", with_machine("\n".join(md), result["machine"]), overwrite=True)
    logging.info("CPU: scan %.1fs, naive %.1fs (%.1fx); max diff %.2e", scan_cpu, naive_cpu, naive_cpu / scan_cpu, diff)


if __name__ == "__main__":
    main()
