"""Task selection: names and groups from the registry, or a dataset on disk whose kind is guessed."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

from l3prune.errors import L3PruneError
from l3prune.evaluation._common import Task
from l3prune.evaluation.classification import ClassificationTask
from l3prune.evaluation.clustering import ClusteringTask
from l3prune.evaluation.pair_classification import PairClassificationTask
from l3prune.evaluation.registry import GROUPS, TASKS, build_task, valid_task_names
from l3prune.evaluation.reranking import RerankingTask
from l3prune.evaluation.retrieval import RetrievalTask
from l3prune.evaluation.sts import STSTask
from l3prune.files import iter_jsonl, iter_lines


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
                tasks.setdefault(name, build_task(name))
        elif key in by_lower:
            tasks.setdefault(by_lower[key], build_task(by_lower[key]))
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
