"""Which layers does each depth-pruning criterion keep? L3Prune and the field's criteria, side by side.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/criteria_layers.py [--models smollm2-135m gemma3-270m]
          [--num-batches 32 --batch-size 16 --max-length 128 --calibration-texts 64]
Writes benchmarks/results/scan_<model>.{json,csv,png} (the L3Prune layer profile) and
benchmarks/results/criteria_layers.{json,md} (kept layers at 50% and 25% of depth, n = int(L * (1 - p))).

The paper scans 100 batches of 64 triplets at max_length 512; on 2 shared CPU cores that takes too long,
so the default sample here is smaller and is stated in both outputs. A scan whose JSON already exists
with the same settings is reused (pass --rescan to redo it). Results are written after every model.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from l3prune.data import load_triplets
from l3prune.encoder import LLMEncoder
from l3prune.layers import target_num_layers
from l3prune.pruning.criteria import CRITERIA, get_criterion
from l3prune.pruning.profile import LayerProfile
from l3prune.pruning.scan import scan_layers
from l3prune.files import write_json, write_text

RESULTS = Path(__file__).parent / "results"
FRACTIONS = {"50%": 0.5, "25%": 0.75}  # share of depth kept -> drop fraction
DATA_DRIVEN = ("block_influence", "angular", "perplexity", "taylor")


def scan(encoder: LLMEncoder, model: str, triplets, args) -> LayerProfile:
    prefix = RESULTS / f"scan_{model}"
    wanted = {"num_batches": args.num_batches, "batch_size": args.batch_size, "max_length": args.max_length}
    json_path = prefix.with_suffix(".json")
    if json_path.is_file() and not args.rescan:
        profile = LayerProfile.load(json_path)
        if all(profile.settings.get(k) == v for k, v in wanted.items()):
            logging.info("reusing %s", json_path)
            return profile
    profile = scan_layers(encoder, triplets, num_batches=args.num_batches, batch_size=args.batch_size)
    profile.model = model
    profile.settings["data"] = "shipped triplets"
    profile.save(prefix, overwrite=True)
    return profile


def run_model(model: str, triplets, args) -> dict:
    encoder = LLMEncoder.from_pretrained(model, max_length=args.max_length, device="cpu", dtype=torch.float32)
    total = encoder.num_layers
    profile = scan(encoder, model, triplets, args)
    chosen = {"last": get_criterion("last")}  # also registers the built-in criteria
    chosen["l3prune"] = CRITERIA["l3prune"](profile=profile)
    chosen.update({name: CRITERIA[name](num_texts=args.calibration_texts, batch_size=16) for name in DATA_DRIVEN})
    out = {"layers": total, "scan": {"small": profile.small, "large": profile.large,
                                     "seconds": profile.settings.get("seconds")}, "criteria": {}}
    for config in ("small", "large"):
        sel = chosen["l3prune"].select(encoder, None, config=config, data=triplets)
        out["criteria"][f"l3prune:{config}"] = {"kept": sel.layers, "reason": sel.reason}
    for name, criterion in chosen.items():
        for label, fraction in FRACTIONS.items():
            n = target_num_layers(total, drop_fraction=fraction)
            start = time.perf_counter()
            sel = criterion.select(encoder, n, data=triplets)
            seconds = round(time.perf_counter() - start, 1)
            logging.info("%s %s %s: keep %s (%.1fs)", model, name, label, sel.layers, seconds)
            out["criteria"].setdefault(name, {})[label] = {
                "num_layers": n, "kept": sel.layers, "dropped": sorted(set(range(total)) - set(sel.layers)),
                "reason": sel.reason, "scores": sel.scores, "seconds": seconds,
            }
    return out


def compact(layers: list[int]) -> str:
    """[0, 1, 2, 5, 6] -> '0-2, 5-6'."""
    runs, start = [], None
    for i, x in enumerate(layers):
        start = x if start is None else start
        if i + 1 == len(layers) or layers[i + 1] != x + 1:
            runs.append(f"{start}" if start == x else f"{start}-{x}")
            start = None
    return ", ".join(runs)


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        "# Layers kept by each depth-pruning criterion",
        "",
        f"Kept layer indices (0-based, into the original model) at 50% and 25% of depth, n = int(L * (1 - p)). "
        f"L3Prune scan: {s['num_batches']} batches of {s['batch_size']} shipped triplets, max_length "
        f"{s['max_length']} (the paper uses 100 x 64 at 512; smaller here to run on 2 CPU cores). "
        f"Calibration criteria: {s['calibration_texts']} texts drawn from the same triplets. fp32, CPU.",
        "",
    ]
    models = list(result["models"])
    header = "| criterion | " + " | ".join(f"{m} {label}" for m in models for label in FRACTIONS) + " |"
    lines += [header, "|" + "---|" * (1 + len(models) * len(FRACTIONS))]
    for name in ("last", *DATA_DRIVEN):
        cells = [compact(result["models"][m]["criteria"][name][label]["kept"]) for m in models for label in FRACTIONS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for config in ("small", "large"):  # L3Prune picks its own depth; the size columns do not apply
        cells = [f"{compact(kept)} ({len(kept)})" for m in models
                 for kept in [result["models"][m]["criteria"][f"l3prune:{config}"]["kept"]] for _ in FRACTIONS]
        lines.append(f"| l3prune --config {config} | " + " | ".join(cells) + " |")
    lines += ["", "L3Prune's own picks from the scan (keep the first k layers):", "",
              "| model | layers | small | large | scan seconds |", "|---|---|---|---|---|"]
    for m in models:
        r = result["models"][m]
        lines.append(f"| {m} | {r['layers']} | {r['scan']['small']} | {r['scan']['large']} | {r['scan']['seconds']} |")
    lines += ["", "The `l3prune` rows are its scan configurations, whatever the size column (the number of layers "
              "is in brackets); given a numeric size, `l3prune` keeps the first n layers exactly like `last`. "
              "`angular` drops one contiguous block; `taylor` protects the first 4 and last 2 blocks while it can. "
              "Criterion seconds (first size includes the measurement; the second reuses it):", "",
              "| model | " + " | ".join(DATA_DRIVEN) + " |", "|---|" + "---|" * len(DATA_DRIVEN)]
    for m in models:
        c = result["models"][m]["criteria"]
        lines.append(f"| {m} | " + " | ".join(str(sum(c[n][lab]["seconds"] for lab in FRACTIONS)) for n in DATA_DRIVEN) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--num-batches", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--calibration-texts", type=int, default=64)
    parser.add_argument("--rescan", action="store_true", help="rescan even if a matching scan JSON exists")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.manual_seed(0)
    RESULTS.mkdir(parents=True, exist_ok=True)
    triplets = load_triplets(None)
    result = {"settings": {"num_batches": args.num_batches, "batch_size": args.batch_size,
                           "max_length": args.max_length, "calibration_texts": args.calibration_texts,
                           "sizes": {k: f"keep int(L * {1 - v:g})" for k, v in FRACTIONS.items()},
                           "data": "shipped triplets (l3prune.data.load_triplets(None))",
                           "dtype": "float32", "device": "cpu", "threads": torch.get_num_threads()},
              "models": {}}
    for model in args.models:
        result["models"][model] = run_model(model, triplets, args)
        write_json(RESULTS / "criteria_layers.json", result, overwrite=True)
        write_text(RESULTS / "criteria_layers.md", markdown(result), overwrite=True)


if __name__ == "__main__":
    main()
