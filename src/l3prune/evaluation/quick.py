"""The quick suite: the default suite's ten tasks on fixed, seeded subsamples of the shipped data.

The full suite has about 56,000 texts (before repeated texts hit the cache), which takes SmolLM2-135M
36 minutes on 2 CPU cores; the quick suite has about 4,150 and takes a few minutes. Its scores are for comparing
configurations side by side (every model sees the same sample), not for comparison with published
MTEB numbers, which need the full suite.

The subsamples are plain files of the same formats as the shipped ones, written once under
``folder``; the tasks are the registry's own entries (``l3prune.evaluation.registry``), built from those
files instead of the shipped ones, so nothing here is special-cased.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
from pathlib import Path

from l3prune.errors import L3PruneError
from l3prune.evaluation._common import Task
from l3prune.evaluation.classification import ClassificationTask
from l3prune.evaluation.registry import GROUPS, Locate, build_task, shipped
from l3prune.evaluation.selection import select_tasks
from l3prune.loading import cache_dir
from l3prune.resources import resource_path
from l3prune.files import EVERYTHING, atomic_output, dumps

#: Items kept per task (seed 0): STS/MRPC pairs, MS MARCO documents (all 50 queries stay), Banking77
#: test texts (also the clustering set), WikiQA queries. Banking77 classification keeps MTEB's protocol
#: (8 training texts per label per experiment) with 1 experiment instead of 10.
QUICK_SIZES = {"sts_pairs": 150, "msmarco_docs": 300, "banking77_test": 400, "banking77_experiments": 1,
               "mrpc_pairs": 200, "wikiqa_queries": 50}
STS_FILES = {"STSBenchmark": "STSBenchmark.test.jsonl", "SICK-R": "SICK-R.test.jsonl", "STS13": "STS13.test.jsonl",
             "STS15": "STS15.test.jsonl", "STS16": "STS16.test.jsonl"}
_VERSION = 1  # bump when the sampling changes, so an old sample folder is not reused


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.writelines(dumps(r, indent=None) + "\n" for r in rows)


def _write_samples(folder: Path) -> None:
    """Write every subsample file under ``folder``; one fresh ``Random(0)`` per file, so files are independent."""
    rng = lambda: random.Random(0)  # noqa: E731
    size = QUICK_SIZES
    for file in STS_FILES.values():
        rows = _jsonl(resource_path("eval", "sts", file))
        _write_jsonl(folder / "sts" / file, rng().sample(rows, min(size["sts_pairs"], len(rows))))

    src = resource_path("eval", "retrieval", "msmarco_5k")
    corpus = rng().sample(_jsonl(src / "corpus.jsonl"), size["msmarco_docs"])
    kept_ids = {str(r["_id"]) for r in corpus}
    dst = folder / "msmarco_sub"
    _write_jsonl(dst / "corpus.jsonl", corpus)
    shutil.copy2(src / "queries.jsonl", dst / "queries.jsonl")
    (dst / "qrels").mkdir(parents=True, exist_ok=True)
    with (src / "qrels" / "test.tsv").open(encoding="utf-8") as f, (dst / "qrels" / "test.tsv").open("w") as g:
        g.writelines(line for line in f if line.split("\t")[1].strip() in kept_ids)  # judgements of kept docs

    with resource_path("eval", "classification", "banking77", "test.csv").open(encoding="utf-8", newline="") as f:
        test_rows = list(csv.DictReader(f))
    test_rows = rng().sample(test_rows, min(size["banking77_test"], len(test_rows)))
    (folder / "banking77").mkdir(parents=True, exist_ok=True)
    with (folder / "banking77" / "test.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "category"])
        writer.writeheader()
        writer.writerows(test_rows)

    rows = _jsonl(resource_path("eval", "pair_classification", "mrpc_test.jsonl"))
    _write_jsonl(folder / "mrpc_test.jsonl", rng().sample(rows, min(size["mrpc_pairs"], len(rows))))
    rows = _jsonl(resource_path("eval", "reranking", "wikiqa_test.jsonl"))
    _write_jsonl(folder / "wikiqa_test.jsonl", rng().sample(rows, min(size["wikiqa_queries"], len(rows))))


def quick_suite_folder(folder: str | os.PathLike | None = None) -> Path:
    """The folder of subsample files, written once (beside the target, then swapped in)."""
    target = Path(folder) if folder is not None else cache_dir() / f"quick-suite-v{_VERSION}"
    if (target / "wikiqa_test.jsonl").is_file():  # written last, and the folder appears whole
        return target
    with atomic_output(target, overwrite=True, kind="folder", owned=EVERYTHING) as tmp:  # a cache of ours
        _write_samples(tmp)
    return target


def quick_locator(root: Path) -> Locate:
    """Where the quick sample keeps each shipped file (Banking77's training set is not subsampled)."""
    moved = {("retrieval", "msmarco_5k"): root / "msmarco_sub",
             ("classification", "banking77", "test.csv"): root / "banking77" / "test.csv",
             ("pair_classification", "mrpc_test.jsonl"): root / "mrpc_test.jsonl",
             ("reranking", "wikiqa_test.jsonl"): root / "wikiqa_test.jsonl"}
    moved.update({("sts", file): root / "sts" / file for file in STS_FILES.values()})
    return lambda *parts: moved.get(parts) or shipped(*parts)


def quick_suite(folder: str | os.PathLike | None = None) -> list[Task]:
    """The ten reported tasks on the quick subsamples (see ``QUICK_SIZES``), in the default suite's order."""
    locate = quick_locator(quick_suite_folder(folder))
    tasks = [build_task(name, locate) for name in GROUPS["all"]]
    for task in tasks:
        if isinstance(task, ClassificationTask):
            task.n_experiments = QUICK_SIZES["banking77_experiments"]
    return tasks


def select_quick_tasks(spec: str | list[str], folder: str | os.PathLike | None = None) -> list[Task]:
    """The quick versions of the tasks ``select_tasks(spec)`` names (groups, names); an error for anything else."""
    wanted = {t.name for t in select_tasks(spec)}
    tasks = quick_suite(folder)
    missing = wanted - {t.name for t in tasks}
    if missing:
        raise L3PruneError(f"--quick covers the ten reported shipped tasks only, not {sorted(missing)}; "
                           "drop --quick to evaluate them")
    return [t for t in tasks if t.name in wanted]
