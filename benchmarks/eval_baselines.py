"""What would a user pick instead? all-MiniLM-L6-v2 against SmolLM2-135M, untrained, at full depth and at L3Prune's `large`.

Run (in the background; each row is cached in the JSON, so a stopped run resumes):
    OMP_NUM_THREADS=2 nohup .venv/bin/python benchmarks/eval_baselines.py > eval_baselines.log 2>&1 &
    .venv/bin/python benchmarks/eval_baselines.py --suite full      # the whole default suite (about 30 min a SmolLM2 row)

Writes benchmarks/results/eval_baselines_<suite>.{json,md}. Every row runs the same tasks through
``run_suite`` exactly as ``l3prune eval`` does (quick suite: ``l3prune eval MODEL --quick``), at batch 32
and max length 512 for the LLM rows (MiniLM keeps its own 256). `large` is the depth from the committed
scan (benchmarks/results/scan_smollm2-135m.json).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import torch

from l3prune.encoder import LLMEncoder
from l3prune.evaluation import SentenceTransformerEncoder, default_suite, run_suite
from l3prune.evaluation.quick import QUICK_SIZES, quick_suite
from l3prune.evaluation import format_table, write_results
from l3prune.files import write_text

RESULTS = Path(__file__).parent / "results"
SHORT = {"STSBenchmark": "STS-B", "msmarco_5k": "MSM nDCG@10", "Banking77Classification": "B77 acc",
         "Banking77Clustering": "B77 V", "MRPC": "MRPC AP", "WikiQA": "WikiQA MAP"}
log = logging.getLogger("eval_baselines")


def rows_to_run(large: int) -> dict[str, dict]:
    return {
        "all-MiniLM-L6-v2": {"kind": "minilm"},
        "SmolLM2-135M, 30 layers, untrained": {"kind": "llm", "num_layers": None},
        f"SmolLM2-135M, {large} layers (L3Prune large), untrained": {"kind": "llm", "num_layers": large},
    }


def encoder_for(spec: dict):
    if spec["kind"] == "minilm":
        return SentenceTransformerEncoder("minilm", device="cpu")
    return LLMEncoder.from_pretrained("smollm2-135m", num_layers=spec["num_layers"], device="cpu")


def markdown(payload: dict, expected: list[str]) -> str:
    rows = payload["rows"]
    tasks = list(next(iter(rows.values()))["tasks"])
    head = ["model", "params (M)"] + [SHORT.get(t, t) for t in tasks] + ["average", "minutes"]
    lines = [f"# all-MiniLM-L6-v2 vs SmolLM2-135M, {payload['suite']} suite", "", payload["description"], "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        cells = [name, f"{r['info']['parameters'] / 1e6:.1f}"]
        cells += [f"{r['tasks'][t]['main_score']:.2f}" for t in tasks]
        cells += [f"**{r['average_main_score']:.2f}**", f"{r['total_seconds'] / 60:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    missing = [name for name in expected if name not in rows]
    if missing:
        lines += ["", f"Not run yet: {', '.join(missing)} (rerun this script to add them; finished rows are kept)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=["quick", "full"], default="quick")
    parser.add_argument("--only", nargs="*", help="row names to run (default: all three)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    large = json.loads((RESULTS / "scan_smollm2-135m.json").read_text())["large"]
    path = RESULTS / f"eval_baselines_{args.suite}.json"
    description = (f"Suite: {'the quick suite (seeded subsamples, sizes ' + str(QUICK_SIZES) + ')' if args.suite == 'quick' else 'the full default suite'}; "
                   "main score x100 per task (STS Spearman, msmarco_5k nDCG@10, Banking77 accuracy / V-measure, "
                   "MRPC max AP, WikiQA MAP). Batch 32, CPU fp32, "
                   f"{torch.get_num_threads()} threads; LLM rows at max length 512, weighted-mean pooling, the "
                   f"paper's per-task instructions. `large` = {large} layers from the committed scan.")
    payload = json.loads(path.read_text()) if path.is_file() else {"suite": args.suite, "rows": {}}
    payload["description"] = description
    for name, spec in rows_to_run(large).items():
        if name in payload["rows"] or (args.only and name not in args.only):
            continue
        encoder = encoder_for(spec)
        tasks = quick_suite() if args.suite == "quick" else default_suite()
        info = {"parameters": sum(p.numel() for p in encoder.model.parameters()), **spec}
        log.info("=== %s", name)
        result = run_suite(encoder, tasks, model_id=name, batch_size=32, info=info)
        print(format_table(result), flush=True)
        payload["rows"][name] = result
        write_results(payload, path, overwrite=True)  # after every row: a stopped run keeps what finished
    if payload["rows"]:
        write_text(RESULTS / f"eval_baselines_{args.suite}.md", markdown(payload, list(rows_to_run(large))), overwrite=True)


if __name__ == "__main__":
    main()
