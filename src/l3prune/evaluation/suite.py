"""Run a list of tasks on an encoder through one shared embedding cache, with a cost estimate per task.

The tasks come from ``registry`` (named, shipped) or ``selection`` (names, groups, paths); the results
are plain JSON-ready dicts that ``results`` formats and writes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from l3prune.errors import L3PruneError
from l3prune.evaluation._common import Task, TextEncoder
from l3prune.evaluation.cache import CachedEncoder
from l3prune.evaluation.registry import NOTES, valid_task_names
from l3prune.files import dumps, write_json

logger = logging.getLogger(__name__)


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
    progress_file: str | Path | None = None,
) -> dict[str, Any]:
    """Run ``tasks`` on ``encoder`` through one shared embedding cache; return plain, JSON-ready results.

    ``info`` (e.g. kept layers, training steps and batch size) is stored as is, so every score
    file says what produced it.

    With ``progress_file``, the results so far are written there (whole, atomically) after each task, and a
    task already scored there by a run of the same model id, batch size and info is not run again: a full
    suite stopped after hours loses at most one task. The caller removes the file once the results are kept.
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
    earlier = _read_progress(Path(progress_file), results) if progress_file is not None else None
    done: dict[str, Any] = {}
    seconds_before = 0.0
    if earlier is not None:
        results["started_at"], seconds_before = earlier["started_at"], earlier.get("total_seconds", 0.0)
        done = {t.name: earlier["tasks"][t.name] for t in tasks
                if t.name in earlier["tasks"] and _same_task(earlier["tasks"][t.name], t)}
        if done:
            results["resumed_tasks"] = list(done)
            logger.info("resuming from %s: %s already scored", progress_file, ", ".join(done))
    start_all = time.perf_counter()
    for task in tqdm(tasks, desc="tasks", unit="task", disable=None if progress is None else not progress):
        if task.name in done:
            results["tasks"][task.name] = done[task.name]
            continue
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
        if progress_file is not None:
            write_json(progress_file, {**results, "total_seconds": round(seconds_before + time.perf_counter()
                                                                         - start_all, 3)}, overwrite=True)
    results["average_main_score"] = float(np.mean([t["main_score"] for t in results["tasks"].values()]))
    results["total_seconds"] = round(seconds_before + time.perf_counter() - start_all, 3)
    return results


_TASK_KEYS = ("type", "main_metric", "instruction", "path")


def _same_task(entry: Mapping[str, Any], task: Task) -> bool:
    """Whether a saved task entry scored this task: same type, metric, instruction and data file."""
    described = task.describe()
    return all(entry.get(key) == described.get(key) for key in _TASK_KEYS)


def _read_progress(path: Path, results: Mapping[str, Any]) -> dict[str, Any] | None:
    """The saved progress of an earlier run of the same model id, batch size and info; None when there is none.

    A file from another run is refused rather than mixed in, so no result holds scores of two models.
    """
    if not path.is_file():
        return None
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        earlier = None  # unreadable: refused below, like a file of the wrong shape
    if not isinstance(earlier, dict) or not isinstance(earlier.get("tasks"), dict) or "started_at" not in earlier:
        raise L3PruneError(f"cannot resume from {path}: it is not the progress file of an evaluation; "
                           "delete it to start over")
    mine = json.loads(dumps(dict(results["info"])))  # as JSON would give it back
    for key, ours, theirs in (("model id", results["model_id"], earlier.get("model_id")),
                              ("batch size", results["batch_size"], earlier.get("batch_size")),
                              ("info", mine, earlier.get("info"))):
        if ours != theirs:
            raise L3PruneError(f"cannot resume from {path}: it was written with {key} {theirs!r}, this run has "
                               f"{ours!r}; delete it to start over, or run with the same settings")
    return earlier


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
