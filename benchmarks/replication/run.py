"""The replication's runner: trains and evaluates the rows of ``rows.py`` at one budget, cached and resumable.

Run (in the background; safe to kill and restart, every finished configuration is cached, and a training
run resumes from its last checkpoint, every ``--save-every`` steps):
    OMP_NUM_THREADS=2 nohup .venv/bin/python benchmarks/replication/run.py --model smollm2-135m --budget paper --tier 1 > replicate.log 2>&1 &
    .venv/bin/python benchmarks/replication/run.py --budget paper --report-only   # tables and plots from what has finished
    .venv/bin/python benchmarks/replication/run.py --budget 40 --restore          # a fresh clone: seed the cache from the committed JSON
(``--report-only`` trains and evaluates nothing, but still loads the model's tokenizer and one layer, to count the
training texts longer than the max length.)

Budgets (``--budget``; any of their settings can be overridden by its flag):
- ``paper``: the paper's 1000 optimizer steps, batch 16 shipped triplets at max length 128, 300 warm-up steps
  then a constant rate, the auto dtype; L3Prune's small/large from a scan with the paper's sample (100
  batches of 64, ``scan_<model>_paper.json``, run first if missing). Rows: ``rows.PAPER``, in two tiers
  (``--tier``; tier 2 also runs the seed-42 tier-1 rows it compares with). Results: ``replicate_<model>_s1000.*``.
- ``40``: the first, committed study (40 steps x 16 at max length 64, linear decay, fp32, scan of 32 x 16).
  Rows: ``rows.FORTY_STEPS``. Results: ``replicate_<model>.*``.

``--only`` and ``--seeds`` run just some configurations; finished ones stay in the report. A configuration whose
kept layers equal an earlier one's (same seed) reuses its scores. The paper budget also evaluates the trained
full, large and small rows (seed 42) on the full suite (every text of the ten tasks), right after their quick
suite; where seed 42's model was lost before its full suite ran, the first other seed trained takes its place
there, named in the table (``wants_full_suite``).

Machines that go away: with ``--finish-by HH:MM``, a training row starts only if it is estimated to finish (with
its evaluation) by then, since a session's machine keeps no cache and a row cut off at the end is lost
(``row_time.py``); rows held back by the table's rate on a fresh machine are looked at again once rows trained
there, or a two-minute probe (``probe_rate``), have measured its own. With ``--commit``, the results files are
committed (only those paths) after every finished configuration, so a stop loses at most the row in progress.

Every trained configuration of a budget gets the same training (``--steps`` x ``--batch-size`` shipped
triplets, max length ``--train-max-length``, LoRA r16, lr 2e-4, ``--warmup`` warm-up steps, then ``--schedule``).
The evaluation is the library's quick suite (``l3prune eval --quick``: a fixed, seeded subsample of each task),
at max length ``--eval-max-length``: the full suite at every configuration would not fit on 2 CPU cores.
Throughput is measured at the end, in one process, round-robin over the depths, on the same mixed texts.
The results files are written by ``report.model_report`` after every row.

A long run should execute a frozen copy of the code, so edits to the checkout do not change it midway:
    git worktree add --detach ../run13 HEAD
    REPLICATE_ROOT=$PWD/benchmarks PYTHONPATH=../run13/src nohup .venv/bin/python ../run13/benchmarks/replication/run.py ... &
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the helpers and this study's package
from _machine import machine
from _texts import mixed_texts

from l3prune.data import load_triplets
from l3prune.encoder import LLMEncoder
from l3prune.evaluation.baselines import SentenceTransformerEncoder, minilm_path
from l3prune.evaluation.quick import quick_suite
from l3prune.evaluation import default_suite, run_suite, write_results
from l3prune.loading import resolve
from l3prune.settings import LoadOptions
from l3prune.layers import PruneSpec, target_num_layers
from l3prune.pruning.criteria import CRITERIA, get_criterion
from l3prune.training.config import build_config
from l3prune.training.run import train_to_folder

from replication import RESULTS, ROOT
from replication.report import model_report, result_stem
from replication.row_time import (MIN_LOGGED_STEPS, done_steps, measured_here, parse_finish_by, row_minutes,
                                  seconds_per_layer_step)
from replication.rows import FIELD_CRITERIA, FORTY_STEPS, FULL_SUITE_ROWS, PAPER, SEEDS, Config, configurations

CACHE = ROOT / ".cache" / "replicate"
PROBE_LAYERS = 7  # the rate probe's depth: shallow enough to take minutes, deep enough that per-step overhead is small
log = logging.getLogger("replicate")


BUDGETS = {
    "paper": {"steps": 1000, "batch_size": 16, "warmup": 300, "schedule": "constant", "train_max_length": 128,
              "dtype": "auto", "scan": "paper"},
    "40": {"steps": 40, "batch_size": 16, "warmup": 4, "schedule": "linear", "train_max_length": 64,
           "dtype": "fp32", "scan": "first"},
}
PAPER_SCAN = {"num_batches": 100, "batch_size": 64, "max_length": 128}


def scan_file(model: str, budget: str) -> Path:
    """The scan whose small/large a budget uses: the paper's sample for ``paper``, the first (32 x 16) for ``40``."""
    if BUDGETS[budget]["scan"] == "first":
        return RESULTS / f"scan_{model}.json"
    path = RESULTS / f"scan_{model}_paper.json"
    if not path.is_file():
        from l3prune.pruning.scan import scan_model

        log.info("scanning %s with the paper's sample (%s)", model, PAPER_SCAN)
        scan_model(model, RESULTS / f"scan_{model}_paper", num_batches=PAPER_SCAN["num_batches"],
                   batch_size=PAPER_SCAN["batch_size"], load=LoadOptions(max_length=PAPER_SCAN["max_length"],
                                                                          device="cpu"), overwrite=True)
    return path


def select_layers(model: str, cache: Path, scan_path: Path, *, criteria: bool, dtype: str) -> dict:
    """Kept layers for every criterion at the two study depths, computed once and cached.

    The field criteria (which measure the full model) are computed only when ``criteria`` is asked for.
    """
    path = cache / "selections.json"
    out = json.loads(path.read_text()) if path.is_file() else None
    if out is not None and (out.get("criteria") or not criteria):
        return out
    scan = json.loads(scan_path.read_text())
    total = scan["num_layers"]
    out = {"layers": total, "small": scan["small"], "large": scan["large"], "scan_file": scan_path.name,
           "scan_settings": {k: scan["settings"][k] for k in ("num_batches", "batch_size", "max_length")},
           "criteria": {}}
    if criteria:
        depths = {"large": scan["large"], "50%": target_num_layers(total, drop_fraction=0.5)}
        encoder = LLMEncoder.from_pretrained(model, max_length=128, device="cpu", dtype=dtype)
        triplets = load_triplets(None)
        get_criterion("last")  # registers the built-ins
        for name in FIELD_CRITERIA:
            criterion = CRITERIA[name](num_texts=64, batch_size=16)  # one instance: the measurement is reused
            for label, n in depths.items():
                start = time.perf_counter()
                sel = criterion.select(encoder, n, data=triplets)
                log.info("%s at %s (%d layers): keep %s (%.1f s)", name, label, n, sel.layers, time.perf_counter() - start)
                out["criteria"].setdefault(name, {})[label] = {"num_layers": n, "kept": sel.layers, "reason": sel.reason}
    _atomic_json(path, out)
    return out


# ---------------------------------------------------------------------------- running

def _atomic_json(path: Path, value) -> None:
    write_results(value, path, overwrite=True)  # temp file, then rename


def score_key(name: str, seed: int, trained: bool) -> str:
    """The cache name of one configuration's scores: trained runs are per seed."""
    return f"{name}-s{seed}" if trained else name


def score_file(cfg: Config, cache: Path) -> Path:
    """Where one configuration's quick-suite scores are cached; the row is finished when it exists."""
    return cache / "scores" / f"{score_key(cfg.name, cfg.seed, cfg.trained)}.json"


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def run_config(cfg: Config, model: str, args, tasks, cache: Path) -> dict:
    key = score_key(cfg.name, cfg.seed, cfg.trained)
    path = score_file(cfg, cache)
    if path.is_file():
        return json.loads(path.read_text())
    log.info("=== %s (%s layers, %s)", key, "n/a" if cfg.layers is None else len(cfg.layers),
             "trained" if cfg.trained else "untrained")
    info = {"config": cfg.name, "family": cfg.family, "seed": cfg.seed, "trained": cfg.trained, "note": cfg.note,
            **cfg.extra, "machine": machine()}  # where the row ran: AMX or not changes its minutes, not its scores
    start = time.perf_counter()
    if cfg.family == "minilm":
        encoder = SentenceTransformerEncoder("minilm")
        params = sum(p.numel() for p in encoder.model.parameters())
        saved = sum(p.stat().st_size for p in minilm_path().glob("*.safetensors"))
        info.update(num_layers=6)
    else:
        ref = resolve(model).location
        if cfg.trained:
            out = cache / "models" / key
            info["command"] = train_command(cfg, model, args, out)
            if not out.is_dir():
                config = build_config(steps=args.steps, batch_size=args.batch_size, warmup_steps=args.warmup,
                                      schedule=args.schedule, seed=cfg.seed, save_every=args.save_every,
                                      finetune=cfg.extra.get("finetune", "lora"))
                load = LoadOptions(max_length=args.train_max_length, dtype=args.dtype, device="cpu",
                                   pooling=cfg.extra.get("pooling"))
                prune = PruneSpec(layers=cfg.layers) if len(cfg.layers) < args.total_layers else PruneSpec()
                train_to_folder(ref, out, config, load=load, prune=prune, run_dir=cache / "runs" / key, resume=True)
            encoder = LLMEncoder.from_pretrained(out, max_length=args.eval_max_length, dtype=args.dtype, device="cpu")
            saved = _folder_bytes(out)
            summary = json.loads((out / "training.json").read_text())
            info["training"] = {**summary["config"], **(summary.get("load") or {})}
        else:
            encoder = LLMEncoder.from_pretrained(ref, max_length=args.eval_max_length, dtype=args.dtype, device="cpu")
            if len(cfg.layers) < encoder.num_layers:
                encoder.prune(cfg.layers, criterion=cfg.family, reason=f"study configuration {cfg.name}")
            with tempfile.TemporaryDirectory(dir=cache) as tmp:
                encoder.save(Path(tmp) / "enc", overwrite=True)
                saved = _folder_bytes(Path(tmp) / "enc")
        params = sum(p.numel() for p in encoder.model.parameters())
        info.update(num_layers=len(cfg.layers), kept_layers=cfg.layers, eval_dtype=encoder.info()["dtype"])
    info.update(parameters=params, saved_bytes=saved)
    result = run_suite(encoder, tasks, model_id=key, batch_size=args.eval_batch_size, info=info)
    result["config_seconds"] = round(time.perf_counter() - start, 1)
    _atomic_json(path, result)
    log.info("%s: average %.2f (%.0f s)", key, result["average_main_score"], result["config_seconds"])
    return result


def wants_full_suite(cfg: Config, args, cache: Path) -> bool:
    """Seed 42 of full, large and small goes on the full suite. A row whose seed-42 model is gone from the cache
    (lost with a machine before its full suite ran: SmolLM2's full) takes the first other seed trained, rather
    than retraining seed 42 for hours; the full-suite table names that seed."""
    if args.budget == "40" or not cfg.trained or cfg.name not in FULL_SUITE_ROWS:
        return False
    if cfg.seed == SEEDS[0]:
        return True
    if (cache / "models" / score_key(cfg.name, SEEDS[0], True)).is_dir():
        return False  # seed 42's own full suite can still run
    return not any(json.loads(p.read_text())["info"]["config"] == cfg.name
                   for p in (cache / "full-suite").glob("*.json"))


def run_full_suite(cfg: Config, args, cache: Path) -> dict | None:
    """The whole default suite (every text of the ten tasks) for one trained row, from its saved model; cached.

    Runs after the row's quick suite; ``None`` when the trained model is not in the cache (a restored row).
    """
    key = score_key(cfg.name, cfg.seed, cfg.trained)
    path = cache / "full-suite" / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    folder = cache / "models" / key
    if not folder.is_dir():
        log.warning("no trained model for %s in the cache; its full-suite row is skipped", key)
        return None
    log.info("=== %s: the full suite", key)
    start = time.perf_counter()
    encoder = LLMEncoder.from_pretrained(folder, max_length=args.eval_max_length, dtype=args.dtype, device="cpu")
    info = {"config": cfg.name, "seed": cfg.seed, "num_layers": len(cfg.layers), "suite": "full",
            "eval_dtype": encoder.info()["dtype"], "eval_max_length": args.eval_max_length}
    progress = cache / "full-suite-progress" / f"{key}.json"  # a stopped full suite resumes after its last task
    result = run_suite(encoder, default_suite(), model_id=key, batch_size=args.eval_batch_size, info=info,
                       progress_file=progress)
    # Recorded after the suite, not in the info its progress file must match: the load changes between sessions.
    result["info"]["machine"] = machine()
    result["config_seconds"] = round(time.perf_counter() - start, 1)
    _atomic_json(path, result)
    progress.unlink(missing_ok=True)
    log.info("%s, full suite: average %.2f (%.0f s)", key, result["average_main_score"], result["config_seconds"])
    return result


def scored_earlier(configs: list[Config], model: str, args, cache: Path) -> list[dict]:
    """The rows of ``configs`` that an earlier run already scored (read from the cache, nothing is run).

    A partial report is written after every configuration, before the loop reaches the later ones; it adds
    these, so a row finished by an earlier run never drops out of the committed results in between.
    """
    return [run_config(c, model, args, None, cache) for c in configs if score_file(c, cache).is_file()]


def report_so_far(model: str, results: list[dict], later: list[Config], sel: dict, args, cache: Path) -> list[Path]:
    """The report written after each configuration, so that a stopped run has committed every finished row.

    It holds this run's rows, the ``later`` ones an earlier run scored, and the throughput an earlier run
    measured: a partial report without it would commit the results with their speed columns emptied.
    """
    rows = results + scored_earlier(later, model, args, cache)
    return model_report(model, rows, saved_throughput(cache), sel, args, cache)


def fits(cfg: Config, args, cache: Path) -> bool:
    """Whether a training row is estimated to finish before ``--finish-by``; says why when it is not started."""
    rate, source = seconds_per_layer_step(args.model, cache / "runs")
    key = score_key(cfg.name, cfg.seed, cfg.trained)
    need = row_minutes(model=args.model, layers=len(cfg.layers), steps=args.steps,
                       done_steps=done_steps(cache / "runs" / key), seconds_per_layer=rate,
                       full_suite=wants_full_suite(cfg, args, cache))
    left = (args.finish_by - datetime.datetime.now()).total_seconds() / 60
    if need > left:
        log.warning("%s is not started: it needs about %.0f min (%.2f s per step and layer, from %s) and %.0f min "
                    "are left before %s", key, need, rate, source, left, args.finish_by.strftime("%H:%M"))
        return False
    log.info("%s: about %.0f min (%.2f s per step and layer, from %s); %.0f min left", key, need, rate, source, left)
    return True


def train_command(cfg: Config, model: str, args, out: Path) -> str:
    """The ``l3prune train`` command that trains this row exactly as this script does."""
    layers = cfg.layers or []
    size = "" if len(layers) == args.total_layers else (
        f" --num-layers {len(layers)}" if layers == list(range(len(layers))) else f" --layers {' '.join(map(str, layers))}")
    extra = "".join(f" --{key} {value}" for key, value in sorted(cfg.extra.items()))
    return (f"l3prune train {model}{size}{extra} --steps {args.steps} --batch-size {args.batch_size} --max-length "
            f"{args.train_max_length} --warmup-steps {args.warmup} --schedule {args.schedule} --seed {cfg.seed} "
            f"--dtype {args.dtype} --save-every {args.save_every} --device cpu --out {out.name}")


def throughput_file(cache: Path) -> Path:
    """Where this budget's throughput measurement is kept (one file: every depth measured in one run)."""
    return cache / "throughput.json"


def saved_throughput(cache: Path) -> dict | None:
    """The throughput an earlier run measured (or ``restore_cache`` seeded from the committed results)."""
    path = throughput_file(cache)
    return json.loads(path.read_text()) if path.is_file() else None


def measure_throughput(model: str, depths: list[int], args, cache: Path) -> dict:
    """Sentences/s at each depth on the same texts, round-robin in one process (only ratios are comparable).

    A saved measurement that covers every asked depth is reused (tier 1 after tier 2 asks for fewer); otherwise
    the saved depths are measured again with the new ones, so one file's figures always come from one run.
    """
    saved = saved_throughput(cache)
    if saved:
        have = {int(k) for k in saved["texts_per_s"] if k != "minilm"}
        if set(depths) <= have:
            return saved
        depths = sorted(have | set(depths), reverse=True)
    texts = mixed_texts(args.speed_texts)
    ref = resolve(model).location
    encoders = {k: LLMEncoder.from_pretrained(ref, num_layers=k, max_length=args.eval_max_length, dtype=args.dtype,
                                              device="cpu") for k in depths}
    encoders["minilm"] = SentenceTransformerEncoder("minilm")
    for enc in encoders.values():
        enc.encode(texts[:32], batch_size=args.eval_batch_size)
    times: dict = {k: [] for k in encoders}
    order = list(encoders)
    for rep in range(args.speed_repeats):
        for k in order[rep % len(order):] + order[: rep % len(order)]:
            start = time.perf_counter()
            encoders[k].encode(texts, batch_size=args.eval_batch_size)
            times[k].append(time.perf_counter() - start)
    out = {"texts": len(texts), "batch_size": args.eval_batch_size, "repeats": args.speed_repeats,
           "dtype": encoders[depths[0]].info()["dtype"],
           "threads": torch.get_num_threads(), "machine": machine(),
           "texts_per_s": {str(k): len(texts) / statistics.median(t) for k, t in times.items()}}
    _atomic_json(throughput_file(cache), out)
    return out


def truncation(model: str, max_length: int) -> dict:
    """How many shipped training texts (with their instruction and special tokens) are cut by ``max_length``."""
    encoder = LLMEncoder.from_pretrained(model, num_layers=1, device="cpu")
    triplets = load_triplets(None)
    pairs = [(t.query_instruction, t.query) for t in triplets] + [(t.doc_instruction, x) for t in triplets
                                                                   for x in (t.positive, t.negative)]
    over = sum(1 for n in encoder.collator.token_lengths(pairs) if n > max_length)
    return {"max_length": max_length, "texts": len(pairs), "truncated": over, "fraction": over / len(pairs)}


def commit(paths: list[Path], message: str) -> None:
    """Commit just these files (other staged changes stay staged); a failure is logged, never fatal."""
    import subprocess

    repo = RESULTS.parent.parent
    files = [str(p.relative_to(repo)) for p in paths if p.exists()]
    try:
        subprocess.run(["git", "-C", str(repo), "add", "--", *files], check=True, capture_output=True)
        if subprocess.run(["git", "-C", str(repo), "diff", "--cached", "--quiet", "--", *files]).returncode == 0:
            log.info("results unchanged since the last commit; nothing to commit")
            return
        subprocess.run(["git", "-C", str(repo), "commit", "-m", message, "--", *files], check=True,
                       capture_output=True)
    except subprocess.CalledProcessError as exc:
        why = (exc.stderr or exc.stdout or b"").decode(errors="replace").strip()[:200]
        log.warning("could not commit the results (%s); they are written, commit them by hand", why)


def cache_dir(args) -> Path:
    """One folder per budget (the first study's name is kept, so its cache stays valid)."""
    if args.budget == "40" and (args.steps, args.train_max_length, args.warmup, args.schedule, args.dtype) == (
            40, 64, 4, "linear", "fp32"):
        return CACHE / args.model / f"s{args.steps}b{args.batch_size}"
    return CACHE / args.model / (f"s{args.steps}b{args.batch_size}-L{args.train_max_length}-w{args.warmup}-"
                                 f"{args.schedule}-{args.dtype}")


def selections_dir(args) -> Path:
    return CACHE / args.model if BUDGETS[args.budget]["scan"] == "first" else CACHE / args.model / "paper-scan"


def restore_cache(model: str, cache: Path, args) -> int:
    """Seed the cache from the committed results JSON so a fresh clone resumes, not recomputes.

    Only runs whose budget equals the committed one are restored (the cache folder is keyed by budget).
    """
    committed = RESULTS / f"{result_stem(model, args)}.json"
    if not committed.is_file():  # a model's first run: nothing committed yet, so nothing to seed
        log.warning("nothing to restore: %s does not exist; starting from an empty cache", committed)
        return 0
    payload = json.loads(committed.read_text())
    budget = payload["budget"]
    if (budget["steps"], budget["batch_size"]) != (args.steps, args.batch_size):
        raise SystemExit(f"the committed runs used {budget['steps']} steps x batch {budget['batch_size']}; "
                         f"pass --steps {budget['steps']} --batch-size {budget['batch_size']} to restore them")
    if not (selections_dir(args) / "selections.json").is_file():
        _atomic_json(selections_dir(args) / "selections.json", payload["selections"])
    restored = 0
    for run in payload["runs"]:
        info = run["info"]
        if run["model_id"] != score_key(info["config"], info["seed"], info["trained"]):
            continue  # a row that reused another configuration's scores; rebuilt from its layers on the run
        path = cache / "scores" / f"{run['model_id']}.json"
        if not path.is_file():
            _atomic_json(path, run)
            restored += 1
    for run in payload.get("full_suite", []):
        path = cache / "full-suite" / f"{run['model_id']}.json"
        if not path.is_file():
            _atomic_json(path, run)
            restored += 1
    if payload.get("throughput") and not throughput_file(cache).is_file():
        _atomic_json(throughput_file(cache), payload["throughput"])
    return restored


def run_rows(configs: list[Config], this_run: set, args, tasks, sel: dict, cache: Path) -> tuple[list[dict], int, int]:
    """One pass over ``configs``: run (or read from the cache) this run's rows, report and commit after each.

    Returns (the rows, how many training rows ``--finish-by`` did not start, how many rows were trained).
    """
    results, done_layers, skipped, trained = [], {}, 0, 0
    for index, cfg in enumerate(configs):
        scores = score_file(cfg, cache)
        not_this_run = ((args.only and cfg.name not in args.only)
                        or (args.seeds and cfg.trained and cfg.seed not in args.seeds)
                        or (cfg.name, cfg.seed) not in this_run)
        if not_this_run:
            if scores.is_file():
                results.append(run_config(cfg, args.model, args, tasks, cache))  # finished earlier: report it
            continue
        key = (tuple(cfg.layers or ()), cfg.trained, cfg.seed, cfg.family == "minilm", json.dumps(cfg.extra, sort_keys=True))
        if key in done_layers and cfg.family != "minilm":
            same = done_layers[key]
            log.info("%s keeps the same layers as %s; reusing its scores", cfg.name, same["info"]["config"])
            clone = json.loads(json.dumps(same))
            clone["info"].update(config=cfg.name, family=cfg.family, note=f"same layers as {same['info']['config']}")
            results.append(clone)
            continue
        if args.report_only and not scores.is_file():
            continue
        fresh = not scores.is_file()
        if fresh and cfg.trained and args.finish_by and not args.report_only and not fits(cfg, args, cache):
            skipped += 1
            continue
        result = run_config(cfg, args.model, args, tasks, cache)
        trained += fresh and cfg.trained
        done_layers[key] = result
        results.append(result)
        if not args.report_only:
            if fresh:  # a partial report after every row scored now, for a run that is stopped (main reports all)
                written = report_so_far(args.model, results, configs[index + 1:], sel, args, cache)
                if args.commit and written:
                    commit(written, f"replicate {args.model}, {args.steps} steps: {result['model_id']} "
                                    f"(average {result['average_main_score']:.2f})")
            full_file = cache / "full-suite" / f"{result['model_id']}.json"
            if wants_full_suite(cfg, args, cache) and not full_file.is_file() and run_full_suite(cfg, args, cache):
                written = report_so_far(args.model, results, configs[index + 1:], sel, args, cache)
                if args.commit and written:
                    commit(written, f"replicate {args.model}, {args.steps} steps: {result['model_id']} on the full suite")
    return results, skipped, trained


def run_every_row(configs: list[Config], this_run: set, args, tasks, sel: dict, cache: Path) -> list[dict]:
    """``run_rows``, then once more if ``--finish-by`` held back rows and this machine has since measured its rate.

    A fresh machine has no training log of its own, so the first pass judges the long rows by the table's
    rate, measured on a slow machine; the rows it trains measure this machine's rate, by which a held-back
    row may fit after all (a 28-layer row was once held back at 0.30 s per layer-step on a machine that then
    measured 0.16). When the first pass trained nothing and this machine has no log, ``probe_rate`` measures it.
    """
    results, skipped, trained = run_rows(configs, this_run, args, tasks, sel, cache)
    probed = bool(skipped and not trained and not measured_here(cache / "runs"))
    if probed:
        probe_rate(args, cache)
    if skipped and (trained or probed):
        log.info("%d rows were not started; looking again with this machine's measured rate", skipped)
        results, _, _ = run_rows(configs, this_run, args, tasks, sel, cache)
    return results


def probe_rate(args, cache: Path) -> None:
    """Train a few steps at a small depth, so that a fresh machine judges its long rows by its own rate.

    Without it, a fresh machine whose queue holds only long rows judges them all by the table's slow rate and
    trains nothing (2026-12-02: every row held back at 0.30 s per layer-step on a machine that then trained at
    0.26). The probe's log stays in ``runs/`` beside the real rows' logs, which pool with it; its model is
    thrown away. It costs about 50 steps at ``PROBE_LAYERS`` layers: one to three minutes.
    """
    steps = MIN_LOGGED_STEPS + 1  # step 1 warms up and is not counted
    run_dir = cache / "runs" / "rate-probe"
    log.info("this machine has not trained yet: measuring its rate (%d steps at %d layers)", steps, PROBE_LAYERS)
    shutil.rmtree(run_dir, ignore_errors=True)
    config = build_config(steps=steps, batch_size=args.batch_size, warmup_steps=0, schedule=args.schedule,
                          seed=SEEDS[0], save_every=steps)
    load = LoadOptions(max_length=args.train_max_length, dtype=args.dtype, device="cpu")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        train_to_folder(resolve(args.model).location, Path(tmp) / "probe", config, load=load,
                        prune=PruneSpec(layers=list(range(PROBE_LAYERS))), run_dir=run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="paper",
                        help="a preset of the training settings below (see the module docstring)")
    parser.add_argument("--tier", choices=["1", "2"], default="1", help="which rows (paper budget)")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--schedule", choices=["linear", "constant"])
    parser.add_argument("--train-max-length", type=int)
    parser.add_argument("--dtype", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--save-every", type=int, default=50, help="checkpoint every this many steps")
    parser.add_argument("--eval-max-length", type=int, default=128)
    parser.add_argument("--eval-batch-size", type=int, default=32)
    parser.add_argument("--speed-texts", type=int, default=256)
    parser.add_argument("--speed-repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="run just these configuration names")
    parser.add_argument("--seeds", nargs="*", type=int,
                        help="run the trained rows of just these seeds (untrained rows always run); the report "
                             "still shows every finished row")
    parser.add_argument("--report-only", action="store_true", help="write the report from cached results")
    parser.add_argument("--no-throughput", action="store_true",
                        help="skip the throughput measurement (for a second process running other configurations)")
    parser.add_argument("--restore", action="store_true",
                        help="seed the cache from the committed results JSON, then continue")
    parser.add_argument("--finish-by", metavar="TIME",
                        help="HH:MM or an ISO date-time: start a training row only if it is estimated to finish, "
                             "evaluation included, before then (a machine that goes away takes its cache with it)")
    parser.add_argument("--commit", action="store_true",
                        help="git-commit the results files (only them) after every finished configuration")
    args = parser.parse_args()
    os.chdir(ROOT.parent)  # result files record data paths relative to the working folder: the results' checkout
    try:
        args.finish_by = parse_finish_by(args.finish_by) if args.finish_by else None
    except ValueError as exc:
        parser.error(str(exc))
    for key, value in BUDGETS[args.budget].items():
        if key != "scan" and getattr(args, key) is None:
            setattr(args, key, value)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    cache = cache_dir(args)
    if args.restore:
        log.info("restored %d finished configurations from the committed results", restore_cache(args.model, cache, args))
    sel = select_layers(args.model, selections_dir(args), scan_file(args.model, args.budget),
                        criteria=args.budget == "40" or args.tier == "2", dtype=args.dtype)
    if args.commit and BUDGETS[args.budget]["scan"] == "paper":
        scan = scan_file(args.model, args.budget)
        commit([scan.with_suffix(ext) for ext in (".json", ".csv", ".png")],
               f"scan {args.model} with the paper's sample ({PAPER_SCAN}): small = {sel['small']}, large = {sel['large']}")
    args.total_layers = sel["layers"]
    args.truncation = truncation(args.model, args.train_max_length)
    if args.budget == "40":
        configs = selected = configurations(FORTY_STEPS, sel, args.model)
    else:
        # This run works on its tier (tier 2 also on the seed-42 tier-1 rows, the reference of its comparisons),
        # but its report rewrites the one file that holds every row of the budget, so it reports every finished
        # row of both tiers: a row finished by another run is never dropped from the committed results.
        tier1, tier2 = (configurations(PAPER, sel, args.model, tier) for tier in ("1", "2"))
        selected = tier1 if args.tier == "1" else [c for c in tier1 if c.seed == SEEDS[0]] + tier2
        configs = tier1 + tier2
    this_run = {(c.name, c.seed) for c in selected}
    tasks = None if args.report_only else quick_suite(CACHE / args.model / "quick-suite")
    results = run_every_row(configs, this_run, args, tasks, sel, cache)
    speed = None
    if (not args.report_only and not args.no_throughput) or throughput_file(cache).is_file():
        depths = sorted({len(c.layers) for c in selected if c.layers}, reverse=True)
        speed = measure_throughput(args.model, depths, args, cache)
    written = model_report(args.model, results, speed, sel, args, cache)
    if args.commit and written and not args.report_only:
        commit(written, f"replicate {args.model}, {args.steps} steps: throughput and report")


if __name__ == "__main__":
    main()
