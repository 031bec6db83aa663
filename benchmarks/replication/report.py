"""The replication's reports: each model's results table, and the paper's claims against both models.

Run (any time, from the committed results; rows not run yet show as pending; nothing is trained or loaded):
    .venv/bin/python benchmarks/replication/report.py
Reads benchmarks/results/replicate_<model>_s1000.json (the paper budget) for SmolLM2-135M and Gemma-3-270M,
and replicate_smollm2-135m.json (the 40-step study). Writes benchmarks/results/replication_paper_vs_ours.{md,json},
the same report into docs/replication.md, and the pooling sentence into docs/export.md, each between its two
markers (a page without them is left as it is). The verdicts' rules are in ``claims.py``.

Each model's own results (``replicate_<model><suffix>.*``, ``model_report``) are written by ``run.py`` after
every row, and again from the cache by ``run.py --report-only``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the helpers and this study's package
from _machine import machine_line

from l3prune.evaluation import write_results
from l3prune.evaluation.quick import QUICK_SIZES
from l3prune.files import write_json, write_text

from replication import RESULTS
from replication.claims import (MODELS, MODEST, NEGLIGIBLE, PAPER_POOLING, POOLING_DEPTHS, STOCK_POOLINGS,
                                Claim, avg_text, claims, noise_word, pooling_cost, pooling_deltas, rows_of,
                                seed_noise, stock_with_instruction)
from replication.figures import keep_loss_curves, loss_plot, pareto_plot
from replication.rows import FULL_SUITE_ROWS, SEEDS

SUBSAMPLE = QUICK_SIZES  # the library's quick suite: the same seeded subsample for every configuration
log = logging.getLogger("replicate")


# ---------------------------------------------------------------------------- each model's results

TASK_ORDER = ["STSBenchmark", "SICK-R", "STS13", "STS15", "STS16", "msmarco_5k", "Banking77Classification",
              "Banking77Clustering", "MRPC", "WikiQA"]
SHORT = {"STSBenchmark": "STS-B", "msmarco_5k": "MSM", "Banking77Classification": "B77-cls",
         "Banking77Clustering": "B77-clu"}


# Settings a row changes besides its layers (``Config.extra``): such a row is a variant of the row with the same
# layers, not a point of the quality-versus-depth curve.
VARIANT_KEYS = ("pooling", "finetune")


def summarise(results: list[dict], speed: dict | None, full_params: int) -> list[dict]:
    """One row per configuration (seeds averaged, their spread kept)."""
    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(r["info"]["config"], []).append(r)
    full = groups.get("full", [])
    full_avg = statistics.mean(r["average_main_score"] for r in full) if full else None
    full_key = str(max(int(x) for x in speed["texts_per_s"] if x != "minilm")) if speed else None
    rows = []
    for name, rs in groups.items():
        info = rs[0]["info"]
        avgs = [r["average_main_score"] for r in rs]
        k = info["num_layers"]
        speed_key = "minilm" if info["family"] == "minilm" else str(k)
        tps = speed["texts_per_s"].get(speed_key) if speed else None
        rows.append({
            "config": name, "family": info["family"], "trained": info["trained"], "layers": k,
            "kept_layers": info.get("kept_layers"), "variant": {key: info[key] for key in VARIANT_KEYS if key in info},
            "parameters": info["parameters"],
            "params_pct": 100 * info["parameters"] / full_params, "saved_mb": info["saved_bytes"] / 2**20,
            "seeds": [r["info"]["seed"] for r in rs] if info["trained"] else [],
            "scores": {t: statistics.mean(r["tasks"][t]["main_score"] for r in rs) for t in TASK_ORDER},
            "average": statistics.mean(avgs), "average_per_seed": avgs,
            "seed_std": statistics.stdev(avgs) if len(avgs) > 1 else None,
            "delta_vs_full": None if full_avg is None else statistics.mean(avgs) - full_avg,
            "texts_per_s": tps,
            "speedup": tps / speed["texts_per_s"][full_key] if tps else None,
        })
    return rows


def model_markdown(rows: list[dict], meta: dict) -> str:
    head = ["config", "layers", "params %", "MB"] + [SHORT.get(t, t) for t in TASK_ORDER] + [
        "avg", "± seeds", "Δ vs full", "sent/s", "speed-up"]
    lines = [f"# Replication on {meta['model']}: pruning criteria at one training budget", "",
             meta["budget_text"], "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        seeds = f"{r['seed_std']:.2f} (n={len(r['seeds'])})" if r["seed_std"] is not None else ""
        delta = f"{r['delta_vs_full']:+.2f}" if r["delta_vs_full"] is not None else ""
        tps = f"{r['texts_per_s']:.1f}" if r["texts_per_s"] else ""
        sp = f"{r['speedup']:.2f}x" if r["speedup"] else ""
        cells = [r["config"], str(r["layers"]), f"{r['params_pct']:.0f}", f"{r['saved_mb']:.0f}"]
        cells += [f"{r['scores'][t]:.1f}" for t in TASK_ORDER] + [f"**{r['average']:.2f}**", seeds, delta, tps, sp]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Kept layers (0-based) of the pruned configurations:", ""]
    for r in rows:
        if r["kept_layers"] is not None and r["layers"] < meta["layers"]:
            lines.append(f"- {r['config']}: {compact(r['kept_layers'])}")
    lines += full_suite_markdown(meta.get("full_suite", []))
    return "\n".join(lines) + "\n"


def throughput_text(speed: dict | None, args) -> str:
    """How the speed column was measured, with the machine where the measurement recorded it."""
    if not speed:
        return "Throughput: not measured yet."
    text = (f"Throughput: {speed['texts']} mixed texts, batch {args.eval_batch_size}, median of {args.speed_repeats}, "
            f"one process, {speed['threads']} threads, dtype {speed.get('dtype', 'fp32')}.")
    if "machine" in speed:  # measured before 2026-12-02: not recorded
        text += " " + machine_line(speed["machine"], label="Throughput machine")
    return text


def full_suite_rows(cache: Path) -> list[dict]:
    """The full-suite results of this budget (trained full/large/small, seed 42 unless its model was lost), in
    FULL_SUITE_ROWS order, then by seed."""
    found = [json.loads(p.read_text()) for p in sorted((cache / "full-suite").glob("*.json"))]
    return sorted(found, key=lambda r: (FULL_SUITE_ROWS.index(r["info"]["config"]), SEEDS.index(r["info"]["seed"])))


def full_suite_markdown(full_suite: list[dict]) -> list[str]:
    """The full-suite table, with all-MiniLM-L6-v2 and the untrained model from eval_baselines_full.json."""
    if not full_suite:
        return []
    head = ["config", "layers"] + [SHORT.get(t, t) for t in TASK_ORDER] + ["avg", "minutes"]
    lines = ["", "## The full suite (every text of the ten tasks; seed 42 unless marked)", "",
             f"Max length {full_suite[0]['info']['eval_max_length']}, dtype {full_suite[0]['info']['eval_dtype']}. "
             "all-MiniLM-L6-v2 and the untrained model: `eval_baselines_full.md` (fp32).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = [(r["info"]["config"] + ("" if r["info"]["seed"] == SEEDS[0] else f" (seed {r['info']['seed']})"),
             str(r["info"]["num_layers"]), r, f"{r['config_seconds'] / 60:.0f}") for r in full_suite]
    baselines = RESULTS / "eval_baselines_full.json"
    if baselines.is_file():
        rows += [(name, "", r, "") for name, r in json.loads(baselines.read_text())["rows"].items()]
    for name, layers, r, minutes in rows:
        cells = [name, layers] + [f"{r['tasks'][t]['main_score']:.1f}" if t in r["tasks"] else "" for t in TASK_ORDER]
        lines.append("| " + " | ".join(cells + [f"**{r['average_main_score']:.2f}**", minutes]) + " |")
    return lines


def compact(layers: list[int]) -> str:
    runs, out = [], []
    for x in layers:
        if runs and x == runs[-1][1] + 1:
            runs[-1][1] = x
        else:
            runs.append([x, x])
    for a, b in runs:
        out.append(f"{a}-{b}" if a != b else str(a))
    return ", ".join(out)


def result_stem(model: str, args) -> str:
    """``replicate_<model>`` for the first (40-step) study, ``replicate_<model>_s<steps>`` for the others."""
    return f"replicate_{model}" if args.budget == "40" else f"replicate_{model}_s{args.steps}"


def model_report(model: str, results: list[dict], speed: dict | None, sel: dict, args, cache: Path) -> list[Path]:
    """One model's results at one budget: ``replicate_<model><suffix>.{json,md}``, the Pareto plot and (paper budget)
    the kept loss curves and their plot; empty before the trained full model, every row's reference, has landed."""
    full_params = next((r["info"]["parameters"] for r in results if r["info"]["family"] == "full"), None)
    if full_params is None:
        log.info("no full-model result yet; no report")
        return []
    rows = summarise(results, speed, full_params)
    schedule = "then linear decay" if args.schedule == "linear" else "then a constant rate"
    trunc = args.truncation
    budget = (f"Training (every trained row): {args.steps} steps x batch {args.batch_size} shipped triplets "
              f"(= {args.steps * args.batch_size} triplets), max length {args.train_max_length} "
              f"({trunc['truncated']} of {trunc['texts']} training texts, {100 * trunc['fraction']:.2f}%, are longer and "
              f"truncated), LoRA r16/alpha 32/dropout 0.05 on all projections, lr 2e-4 with {args.warmup} warm-up steps "
              f"{schedule}, dtype {args.dtype} on the CPU, seeds {list(SEEDS)} where listed"
              + ("; each row's exact command is in the JSON (info.command). "
                 if any("command" in r["info"] for r in results) else ". ")
              + f"Evaluation: the quick suite (`l3prune eval --quick`: the default suite's ten tasks on seeded subsamples, {SUBSAMPLE}), "
              f"max length {args.eval_max_length}, batch {args.eval_batch_size}, dtype {args.dtype}; main score x100 per task (STS Spearman, "
              f"msmarco nDCG@10 over the subsampled corpus, Banking77 accuracy and V-measure, MRPC max AP, WikiQA MAP). "
              f"L3Prune small/large from the scan in {sel.get('scan_file', f'scan_{model}.json')} ({sel['scan_settings']}). "
              f"Field criteria: 64 calibration texts. {throughput_text(speed, args)} "
              "Δ vs full: against the mean of the trained full model's seeds.")
    full_suite = full_suite_rows(cache)
    meta = {"model": model, "layers": sel["layers"], "budget_text": budget, "full_suite": full_suite}
    payload = {"model": model, "budget": {"name": args.budget, "steps": args.steps, "batch_size": args.batch_size,
                                          "train_max_length": args.train_max_length, "warmup_steps": args.warmup,
                                          "schedule": args.schedule, "dtype": args.dtype,
                                          "eval_max_length": args.eval_max_length, "subsample": SUBSAMPLE,
                                          "seeds": list(SEEDS), "truncation": trunc},
               "selections": sel, "throughput": speed, "rows": rows, "runs": results, "full_suite": full_suite,
               "description": budget}
    stem = RESULTS / result_stem(model, args)
    write_results(payload, stem.with_suffix(".json"), overwrite=True)  # temp file, then rename
    md = stem.with_name(stem.name + ".md")
    write_text(md, model_markdown(rows, meta), overwrite=True)
    png = stem.with_name(stem.name + "_pareto.png")
    pareto_plot(rows, png, f"{model}: average score vs size and speed ({args.steps} steps)")
    written = [stem.with_suffix(".json"), md, png]
    if args.budget != "40":
        kept = stem.with_name(stem.name + "_loss_curves.json")
        curves = keep_loss_curves(results, cache, kept, seed=SEEDS[0])
        loss = stem.with_name(stem.name + "_loss.png")
        loss_plot(results, curves, loss, f"{model}: training loss, {args.steps} steps x {args.batch_size}, seed {SEEDS[0]}",
                  seed=SEEDS[0])
        written += [kept, loss]
    log.info("wrote %s", md)
    return written


# ---------------------------------------------------------------------------- the paper's claims, both models

def load(model: str, stem: str = "_s1000") -> dict | None:
    path = RESULTS / f"replicate_{model}{stem}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def pooling_table(rows: dict, noise: float | None) -> list[str]:
    """Each pooling at L3Prune's two depths against the paper's weighting at the same depth; empty before any ran."""
    deltas = pooling_deltas(rows)
    if not deltas:
        return []
    depths = {d: f"`{label}`" + (f" ({rows[d]['layers']} layers)" if d in rows else "") for d, label in POOLING_DEPTHS.items()}
    head = ["pooling", "stock ST, with an instruction"] + [f"{depths[d]}: {col}" for d in POOLING_DEPTHS
                                                           for col in ("average", "Δ vs weighted_mean")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for pooling in (PAPER_POOLING, *STOCK_POOLINGS):
        cells = [f"`{pooling}`" + (" (the paper's)" if pooling == PAPER_POOLING else ""),
                 "yes" if stock_with_instruction(pooling) else "no: needs `trust_remote_code`"]
        for depth in POOLING_DEPTHS:
            name = depth if pooling == PAPER_POOLING else f"{depth}-{pooling}"
            if name not in rows:
                cells += ["pending", ""]
                continue
            d = deltas.get((pooling, depth))
            cells += [avg_text(rows[name]) + (f" (n={len(rows[name]['seeds'])})" if len(rows[name]["seeds"]) > 1 else ""),
                      "reference" if d is None else f"{d:+.2f}, {noise_word(d, noise)}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def by_row_table(payloads: dict[str, dict | None]) -> list[str]:
    """Every configuration of the paper budget, both models side by side: average ± seeds and Δ vs full."""
    rows = {m: rows_of(p) for m, p in payloads.items()}
    names = list(dict.fromkeys(n for r in rows.values() for n in r))
    head = ["configuration"] + [f"{MODELS[m]}: {col}" for m in MODELS for col in ("layers", "average", "Δ vs full", "noise")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        cells = [name]
        for m in MODELS:
            r = rows[m].get(name)
            if r is None:
                cells += ["", "", "", ""]
                continue
            d = r["delta_vs_full"]
            inside = "" if d is None or name == "full" or not r["trained"] else noise_word(d, seed_noise(rows[m]))
            cells += [str(r["layers"]), avg_text(r) + (f" (n={len(r['seeds'])})" if len(r["seeds"]) > 1 else ""),
                      "" if d is None else f"{d:+.2f}", inside]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def budget_table(short: dict | None, paper: dict | None) -> list[str]:
    """Every row of both budgets (SmolLM2), the 40-step study's first: what the paper's budget changed.
    A dash marks a configuration one budget did not run (yet)."""
    a, b = rows_of(short), rows_of(paper)
    lines = ["| configuration | layers | 40 steps | 1000 steps | change |", "|---|---|---|---|---|"]
    for n in dict.fromkeys([*a, *b]):
        layers = (a.get(n) or b[n])["layers"]
        change = f"{b[n]['average'] - a[n]['average']:+.2f}" if n in a and n in b else ""
        lines.append(f"| {n} | {layers} | {avg_text(a[n]) if n in a else '—'} | {avg_text(b[n]) if n in b else '—'} "
                     f"| {change} |")
    return lines


def sections(claim_list: list[Claim], payloads: dict, short: dict | None, *, level: str, figures: str) -> list[str]:
    """The report's body: claims, every row, the two budgets and the figures; ``level`` is the heading's
    ``#``s and ``figures`` the path from the document to benchmarks/results/ (docs/replication.md and the
    results page share this text)."""
    verdict_cols = [f"{MODELS[m]}" for m in MODELS]
    lines = ["| claim | paper | " + " | ".join(verdict_cols) + " | verdict |", "|---|---|" + "---|" * len(MODELS) + "---|"]
    for c in claim_list:
        cells = [c.cells[m].figure or c.cells[m].verdict for m in MODELS]
        verdict = "<br>".join(f"{MODELS[m]}: **{c.cells[m].verdict}**" + (f", because {c.cells[m].why}" if c.cells[m].why else "")
                              for m in MODELS)
        lines.append(f"| {c.name} | {c.paper} | " + " | ".join(cells) + f" | {verdict} |")
    lines += ["", f"Rules: a loss is negligible at most {NEGLIGIBLE} point (our threshold; the paper states none) and "
              f"modest at most {MODEST} (the paper's own loss for `small`); a difference is inside seed noise when "
              "it is under twice the largest seed standard deviation of full, large and small on that model, and a "
              "claim that one choice beats another is undecided while the margin is inside it. "
              "Parameter shares are compared only when within 15 points of the paper's.", "",
              f"{level} Every row", "", "Quick-suite average (x100) over seeds, ± their standard deviation; "
              "Δ against the trained full model of the same LLM.", "", *by_row_table(payloads), ""]
    smol = rows_of(payloads.get("smollm2-135m"))
    smol_noise = seed_noise(smol)
    table = pooling_table(smol, smol_noise)
    if table:
        lines += [f"{level} Pooling: what a stock-loadable export costs", "",
                  "SmolLM2, seed 42 unless n says otherwise: each pooling trained and evaluated at L3Prune's two depths, "
                  "Δ against the paper's `weighted_mean` at the same depth, judged against SmolLM2's seed noise. "
                  "\"Stock ST\" is whether stock sentence-transformers computes the pooling exactly, so that the export "
                  "loads without `trust_remote_code` (with an instruction, on a tokenizer that adds no special tokens, "
                  "as SmolLM2's; from the exporter's own rule).", "", *table, "",
                  pooling_cost(smol, smol_noise, (payloads.get("smollm2-135m") or {}).get("budget")), ""]
    if short and payloads.get("smollm2-135m"):
        lines += [f"{level} SmolLM2 at both budgets: 40 steps and 1000", "",
                  "The 40-step study (`replicate_smollm2-135m.json`: batch 16, max length 64, linear decay, fp32) "
                  "kept as a second budget beside the paper's; a dash marks a configuration that budget has not run (the "
                  "40-step study dropped 25% where the paper budget drops 30%, and compared the criteria at 28 and 15 "
                  "layers):", "",
                  *budget_table(short, payloads["smollm2-135m"]), ""]
    shown = [(f"replicate_{m}_s1000_{kind}.png", f"{MODELS[m]}: {caption}")
             for kind, caption in (("pareto", "quality against parameters and against measured throughput, "
                                              "with all-MiniLM-L6-v2"),
                                   ("loss", "training loss of every trained row"))
             for m in MODELS if (RESULTS / f"replicate_{m}_s1000_{kind}.png").is_file()]
    if shown:
        lines += [f"{level} Figures", ""]
        for name, caption in shown:
            lines += [f"![{caption}]({figures}{name})", ""]
    return lines


def markdown(claim_list: list[Claim], payloads: dict, short: dict | None) -> str:
    lines = ["# The paper's claims against our measurements (1000 training steps)", "",
             "Generated by `benchmarks/replication/report.py` from `replicate_<model>_s1000.json`; "
             "the budget, data and exact command of every row are in those files. Averages are the quick suite's "
             "ten tasks (x100).", "", *sections(claim_list, payloads, short, level="##", figures="")]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- the pages that show it

# The report, in docs/replication.md, and the pooling sentence, in docs/export.md: regenerated with every row, so
# that no figure there is typed by hand. Never the README: it links to these pages.
REPORT_START = "<!-- replication report: generated by benchmarks/replication/report.py, do not edit by hand -->"
REPORT_END = "<!-- replication report: end -->"
POOLING_START = "<!-- pooling cost: generated by benchmarks/replication/report.py, do not edit by hand -->"
POOLING_END = "<!-- pooling cost: end -->"


def with_report(page: str, block: str, start: str = REPORT_START, end: str = REPORT_END) -> str | None:
    """``page`` with the text between its two markers replaced by ``block``; None without the markers."""
    once = page.count(start) == 1 and page.count(end) == 1
    if not once or page.index(start) > page.index(end):
        return None
    head, rest = page.split(start)
    return head + start + "\n" + block.strip("\n") + "\n" + end + rest.split(end, 1)[1]


def write_between(path: Path, block: str, start: str = REPORT_START, end: str = REPORT_END) -> None:
    """Put ``block`` between ``path``'s two markers, atomically (a temporary file, then a rename)."""
    text = with_report(path.read_text(encoding="utf-8"), block, start, end) if path.is_file() else None
    if text is None:
        print(f"note: {path} has no '{start}' markers; it was left as it is")
        return
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # no options: --help only
    payloads = {m: load(m) for m in MODELS}
    short = load("smollm2-135m", "")
    claim_list = claims(payloads)
    out = RESULTS / "replication_paper_vs_ours"
    write_json(out.with_suffix(".json"),
               {"rules": {"negligible": NEGLIGIBLE, "modest": MODEST, "noise": "2 x the largest seed std of full/large/small"},
                "claims": [{"name": c.name, "paper": c.paper, "cells": {m: asdict(x) for m, x in c.cells.items()}}
                           for c in claim_list]}, overwrite=True)
    write_text(out.with_suffix(".md"), markdown(claim_list, payloads, short), overwrite=True)
    docs = RESULTS.parent.parent / "docs"
    write_between(docs / "replication.md", "\n".join(sections(claim_list, payloads, short, level="###",
                                                              figures="../benchmarks/results/")))
    smol_payload = payloads["smollm2-135m"]
    smol = rows_of(smol_payload)
    write_between(docs / "export.md", pooling_cost(smol, seed_noise(smol), smol_payload and smol_payload.get("budget")),
                  POOLING_START, POOLING_END)
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
