"""The named tasks on the shipped data, their groups and notes: the one task registry.

Each entry builds its task from files named by their path under the shipped ``eval`` data; the quick
suite (``l3prune.evaluation.quick``) builds the same entries from its subsample by passing another
``locate``. The suite leaves out everything the contamination rules forbid (STS-B dev, SNLI, MRPC train;
see ``resources/README.md``). STS-B dev is still available, by name, for tuning decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from l3prune.evaluation._common import Task
from l3prune.evaluation.classification import ClassificationTask
from l3prune.evaluation.clustering import ClusteringTask
from l3prune.evaluation.instructions import INSTRUCTIONS
from l3prune.evaluation.pair_classification import PairClassificationTask
from l3prune.evaluation.reranking import RerankingTask
from l3prune.evaluation.retrieval import RetrievalTask
from l3prune.evaluation.sts import STSTask
from l3prune.resources import resource_path

#: Where a task's file is, given its path parts under the shipped ``eval`` data.
Locate = Callable[..., Path]


def shipped(*parts: str) -> Path:
    """A file of the shipped evaluation data."""
    return resource_path("eval", *parts)


def _sts(name: str, file: str) -> Callable[[Locate], Task]:
    return lambda locate: STSTask(locate("sts", file), name=name, instruction=INSTRUCTIONS[name])


# Named tasks; each call builds a fresh task (data loads lazily).
TASKS: dict[str, Callable[[Locate], Task]] = {
    "STSBenchmark": _sts("STSBenchmark", "STSBenchmark.test.jsonl"),
    "SICK-R": _sts("SICK-R", "SICK-R.test.jsonl"),
    "STS13": _sts("STS13", "STS13.test.jsonl"),
    "STS15": _sts("STS15", "STS15.test.jsonl"),
    "STS16": _sts("STS16", "STS16.test.jsonl"),
    "STSBenchmark-dev": _sts("STSBenchmark-dev", "STSBenchmark.dev.jsonl"),
    "msmarco_5k": lambda locate: RetrievalTask(
        locate("retrieval", "msmarco_5k"), name="msmarco_5k", instruction=INSTRUCTIONS["msmarco_5k"]
    ),
    "Banking77Classification": lambda locate: ClassificationTask(
        locate("classification", "banking77", "train.csv"),
        locate("classification", "banking77", "test.csv"),
        name="Banking77Classification",
        instruction=INSTRUCTIONS["Banking77Classification"],
        label_column="category",
    ),
    "Banking77Clustering": lambda locate: ClusteringTask(
        locate("classification", "banking77", "test.csv"),
        name="Banking77Clustering",
        instruction=INSTRUCTIONS["Banking77Clustering"],
        label_column="category",
    ),
    "MRPC": lambda locate: PairClassificationTask(
        locate("pair_classification", "mrpc_test.jsonl"), name="MRPC", instruction=INSTRUCTIONS["MRPC"]
    ),
    "WikiQA": lambda locate: RerankingTask(
        locate("reranking", "wikiqa_test.jsonl"), name="WikiQA", instruction=INSTRUCTIONS["WikiQA"]
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


def build_task(name: str, locate: Locate = shipped) -> Task:
    """The registry's task ``name``, reading its files through ``locate`` (default: the shipped data)."""
    return TASKS[name](locate)


def default_suite() -> list[Task]:
    """The ten reported tasks: five STS, msmarco_5k, Banking77 (classification and clustering), MRPC, WikiQA."""
    return [build_task(name) for name in GROUPS["all"]]


def valid_task_names() -> list[str]:
    """Every name ``select_tasks`` accepts besides a path."""
    return sorted(GROUPS) + list(TASKS)
