"""The default evaluation suite on the shipped data, task selection by name, and result files.

The suite leaves out everything the contamination rules forbid (STS-B dev, SNLI, MRPC train;
see ``resources/README.md``). STS-B dev is still available, by name, for tuning decisions.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from l3prune.errors import L3PruneError
from l3prune.evaluation._common import Task, TextEncoder
from l3prune.evaluation.cache import CachedEncoder
from l3prune.evaluation.classification import ClassificationTask
from l3prune.evaluation.clustering import ClusteringTask
from l3prune.evaluation.instructions import INSTRUCTIONS
from l3prune.evaluation.pair_classification import PairClassificationTask
from l3prune.evaluation.reranking import RerankingTask
from l3prune.evaluation.retrieval import RetrievalTask
from l3prune.evaluation.sts import STSTask
from l3prune.resources import resource_path
from l3prune.safe_write import check_output, write_json
from l3prune.textfile import iter_jsonl, iter_lines

logger = logging.getLogger(__name__)


def _eval(*parts: str) -> Path:
    return resource_path("eval", *parts)


def _sts(name: str, file: str) -> Callable[[], Task]:
    return lambda: STSTask(_eval("sts", file), name=name, instruction=INSTRUCTIONS[name])


# Named tasks on the shipped data; each call builds a fresh task (data loads lazily).
TASKS: dict[str, Callable[[], Task]] = {
    "STSBenchmark": _sts("STSBenchmark", "STSBenchmark.test.jsonl"),
    "SICK-R": _sts("SICK-R", "SICK-R.test.jsonl"),
    "STS13": _sts("STS13", "STS13.test.jsonl"),
    "STS15": _sts("STS15", "STS15.test.jsonl"),
    "STS16": _sts("STS16", "STS16.test.jsonl"),
    "STSBenchmark-dev": _sts("STSBenchmark-dev", "STSBenchmark.dev.jsonl"),
    "msmarco_5k": lambda: RetrievalTask(
        _eval("retrieval", "msmarco_5k"), name="msmarco_5k", instruction=INSTRUCTIONS["msmarco_5k"]
    ),
    "Banking77Classification": lambda: ClassificationTask(
        _eval("classification", "banking77", "train.csv"),
        _eval("classification", "banking77", "test.csv"),
        name="Banking77Classification",
        instruction=INSTRUCTIONS["Banking77Classification"],
        label_column="category",
    ),
    "Banking77Clustering": lambda: ClusteringTask(
        _eval("classification", "banking77", "test.csv"),
        name="Banking77Clustering",
        instruction=INSTRUCTIONS["Banking77Clustering"],
        label_column="category",
    ),
    "MRPC": lambda: PairClassificationTask(
        _eval("pair_classification", "mrpc_test.jsonl"), name="MRPC", instruction=INSTRUCTIONS["MRPC"]
    ),
    "WikiQA": lambda: RerankingTask(
        _eval("reranking", "wikiqa_test.jsonl"), name="WikiQA", instruction=INSTRUCTIONS["WikiQA"]
    ),
}

GROUPS: dict[str, list[str]] = {
    "sts": ["STSBenchmark", "SICK-R", "STS13", "STS15", "STS16"],
    "retrieval": ["msmarco_5k"],
    "classification": ["Banking77Classification"],
    "clustering": ["Banking77Clustering"],
    "pair_classification": ["MRPC"],
    "reranking": ["WikiQA"],
    "dev": ["STSBenchmark-dev"],
}
_REPORTED_GROUPS = ("sts", "retrieval", "classification", "clustering", "pair_classification", "reranking")
GROUPS["all"] = [name for group in _REPORTED_GROUPS for name in GROUPS[group]]

NOTES = {
    "SICK-R": "SICK was built from Flickr8k/MSRvid captions; "
    "the shipped Flickr8k training triplets overlap it slightly.",
    "STSBenchmark-dev": "dev split: for tuning decisions, not for reporting.",
}


def default_suite() -> list[Task]:
    """The ten reported tasks: five STS, msmarco_5k, Banking77 (classification and clustering), MRPC, WikiQA."""
    return [TASKS[name]() for name in GROUPS["all"]]


def valid_task_names() -> list[str]:
    """Every name ``select_tasks`` accepts besides a path."""
    return sorted(GROUPS) + list(TASKS)


def select_tasks(spec: str | Sequence[str]) -> list[Task]:
    """Tasks from names: groups (``sts``, ``all``, ``dev``...), task names (``STS13``), ``kind:path`` or a path.

    Names match case-insensitively; a comma-separated string is split. Duplicates are dropped.
    """
    entries = [spec] if isinstance(spec, str) else list(spec)
    items = [part.strip() for entry in entries for part in str(entry).split(",") if part.strip()]
    if not items:
        raise L3PruneError(f"no tasks selected; choose from {valid_task_names()} or give a dataset path")
    by_lower = {n.lower(): n for n in TASKS}
    groups_lower = {g.lower(): g for g in GROUPS}
    tasks: dict[str, Task] = {}
    for item in items:
        key = item.lower()
        if key in groups_lower:
            for name in GROUPS[groups_lower[key]]:
                tasks.setdefault(name, TASKS[name]())
        elif key in by_lower:
            tasks.setdefault(by_lower[key], TASKS[by_lower[key]]())
        else:
            kind, _, rest = item.partition(":")
            if rest and kind.lower() in _BUILDERS:
                task = task_from_path(rest, kind=kind.lower())
            elif Path(item).expanduser().exists():
                task = task_from_path(item)
            else:
                raise L3PruneError(
                    f"unknown task {item!r}; choose from {valid_task_names()}, "
                    f"or give a dataset path (optionally as kind:path with kind in {sorted(_BUILDERS)})"
                )
            tasks.setdefault(task.name, task)
    return list(tasks.values())


def _label_column(columns: Sequence[str], path: Path) -> str:
    for candidate in ("label", "category"):
        if candidate in columns:
            return candidate
    raise L3PruneError(
        f"{path}: no 'label' or 'category' column (found {list(columns)}); build the task in Python "
        "with label_column=... to use another name"
    )


def _columns(path: Path) -> list[str]:
    """Column names from a file's header (csv/tsv) or first object (jsonl), without reading it all."""
    if path.suffix.lower() in {".csv", ".tsv"}:
        for _, line in iter_lines(path, "dataset file"):
            return next(csv.reader([line], delimiter="\t" if path.suffix.lower() == ".tsv" else ","), [])
        return []
    for where, row in iter_jsonl(path, "dataset file"):
        if not isinstance(row, dict):
            raise L3PruneError(f"{where}: expected a JSON object per line, got {type(row).__name__}")
        return list(row)
    return []


def _classification_from_dir(path: Path) -> Task:
    files = {p.stem: p for p in sorted(path.iterdir()) if p.suffix.lower() in {".csv", ".tsv", ".jsonl"}}
    if "train" not in files or "test" not in files:
        raise L3PruneError(f"{path}: a classification folder needs train and test files (.csv/.tsv/.jsonl)")
    label = _label_column(_columns(files["test"]), files["test"])
    return ClassificationTask(files["train"], files["test"], name=path.name, label_column=label)


def _clustering_from_file(path: Path) -> Task:
    return ClusteringTask(path, label_column=_label_column(_columns(path), path))


_BUILDERS: dict[str, Callable[[Path], Task]] = {
    "sts": lambda p: STSTask(p),
    "retrieval": lambda p: RetrievalTask(p),
    "classification": _classification_from_dir,
    "clustering": _clustering_from_file,
    "pair_classification": lambda p: PairClassificationTask(p),
    "reranking": lambda p: RerankingTask(p),
}


def task_from_path(path: str | Path, kind: str | None = None) -> Task:
    """A task for a dataset on disk; ``kind`` is guessed from the layout or columns when not given."""
    p = Path(path).expanduser()
    if not p.exists():
        raise L3PruneError(f"dataset path not found: {p}")
    if kind is None:
        if p.is_dir():
            kind = "retrieval" if (p / "corpus.jsonl").exists() else "classification"
        else:
            cols = set(_columns(p))
            if {"query", "positive", "negative"} <= cols:
                kind = "reranking"
            elif {"sentence1", "sentence2", "score"} <= cols:
                kind = "sts"
            elif {"sentence1", "sentence2", "label"} <= cols:
                kind = "pair_classification"
            elif "text" in cols and cols & {"label", "category"}:
                kind = "clustering"
            else:
                raise L3PruneError(
                    f"{p}: cannot tell the task type from columns {sorted(cols)}; "
                    f"prefix the path with one of {sorted(_BUILDERS)}, e.g. sts:{p}"
                )
    if kind not in _BUILDERS:
        raise L3PruneError(f"unknown task kind {kind!r}; choose from {sorted(_BUILDERS)}")
    return _BUILDERS[kind](p)


def check_tasks(tasks: Sequence[Task]) -> None:
    """Read every task's data now (tasks load lazily), so a bad file fails before any model loads."""
    for task in tasks:
        task.num_texts()


def run_suite(
    encoder: TextEncoder,
    tasks: Sequence[Task],
    *,
    model_id: str,
    batch_size: int = 32,
    progress: bool | None = None,
    info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``tasks`` on ``encoder`` through one shared embedding cache; return plain, JSON-ready results.

    ``info`` (e.g. kept layers, training steps and batch size) is stored as is, so every score
    file says what produced it.
    """
    if not tasks:
        raise L3PruneError(f"no tasks to run; choose from {valid_task_names()}")
    if batch_size < 1:
        raise L3PruneError(f"batch_size must be at least 1, got {batch_size}")
    cached = encoder if isinstance(encoder, CachedEncoder) else CachedEncoder(encoder, model_id)
    results: dict[str, Any] = {
        "model_id": model_id,
        "batch_size": batch_size,
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "info": dict(info or {}),
        "tasks": {},
    }
    start_all = time.perf_counter()
    for task in tqdm(tasks, desc="tasks", unit="task", disable=None if progress is None else not progress):
        start = time.perf_counter()
        before = (cached.encoded, cached.hits, cached.encode_seconds)
        n_texts = task.num_texts()
        _log_estimate(cached, task, n_texts, batch_size)
        metrics = task.evaluate(cached, batch_size=batch_size, progress=progress)
        seconds = time.perf_counter() - start
        entry = {
            **task.describe(),
            "main_score": metrics[task.main_metric],
            "metrics": metrics,
            "num_texts": n_texts,
            "encoded_texts": cached.encoded - before[0],
            "cache_hits": cached.hits - before[1],
            "encode_seconds": round(cached.encode_seconds - before[2], 3),
            "seconds": round(seconds, 3),
        }
        if task.name in NOTES:
            entry["note"] = NOTES[task.name]
        results["tasks"][task.name] = entry
        logger.info("%s: %s = %.2f (%.1f s)", task.name, task.main_metric, entry["main_score"], seconds)
    results["average_main_score"] = float(np.mean([t["main_score"] for t in results["tasks"].values()]))
    results["total_seconds"] = round(time.perf_counter() - start_all, 3)
    return results


def _log_estimate(cached: CachedEncoder, task: Task, n_texts: int, batch_size: int) -> None:
    """Time a batch of the task's own texts (kept in the cache, so not wasted) and log the expected cost.

    Two batches are encoded and only the second is timed, so one-off warm-up (first call, lazy
    kernels) does not inflate the estimate.
    """
    sample = task.sample_texts(2 * batch_size)
    warmup, timed = sample[:batch_size], sample[batch_size:]
    cached.encode(warmup, instruction=task.instruction, batch_size=batch_size)
    encoded, seconds = cached.encoded, cached.encode_seconds
    cached.encode(timed, instruction=task.instruction, batch_size=batch_size)
    new = cached.encoded - encoded
    if new:
        rate = new / max(cached.encode_seconds - seconds, 1e-9)
    elif cached.encoded:
        rate = cached.encoded / max(cached.encode_seconds, 1e-9)
    else:
        rate = 0.0
    eta = f"~{n_texts / rate:.0f} s at {rate:.0f} texts/s, less cache hits" if rate else "time unknown"
    logger.info("%s (%s): %d texts to encode, %s", task.name, task.task_type, n_texts, eta)


def format_table(results: dict[str, Any]) -> str:
    """A Markdown table of main scores, text counts and times, with notes underneath."""
    lines = [
        f"Model: `{results['model_id']}` (batch size {results['batch_size']})",
        "",
        "| Task | Type | Metric | Score | Texts | Seconds |",
        "|---|---|---|---:|---:|---:|",
    ]
    notes = []
    for name, t in results["tasks"].items():
        mark = ""
        if "note" in t:
            notes.append(f"{len(notes) + 1}. {name}: {t['note']}")
            mark = f" [{len(notes)}]"
        lines.append(
            f"| {name}{mark} | {t['type']} | {t['main_metric']} | {t['main_score']:.2f} "
            f"| {t['num_texts']} | {t['seconds']:.1f} |"
        )
    lines.append(f"| **Average** | | | **{results['average_main_score']:.2f}** | | {results['total_seconds']:.1f} |")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def check_results_path(path: str | Path, *, overwrite: bool = False) -> Path:
    """A results path must be a ``.json`` file that may be written (``safe_write`` rules); checked before a run."""
    out = Path(path).expanduser()
    if out.suffix.lower() != ".json":
        raise L3PruneError(f"results file {out} must end in .json")
    return check_output(out, overwrite=overwrite)


def write_results(results: dict[str, Any], path: str | Path, *, overwrite: bool = False) -> Path:
    """Write results as strict JSON (no NaN), beside the target then swapped in; never over another kind of file."""
    return write_json(check_results_path(path, overwrite=overwrite), results, overwrite=overwrite)
