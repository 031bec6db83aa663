"""Evaluation: MTEB-protocol tasks on local data, the default suite, and an MTEB 2.x adapter.

One task type per module (sts, retrieval, classification, clustering, pair_classification, reranking);
``registry`` names the shipped tasks, ``selection`` turns names, groups and paths into tasks, ``quick``
builds the registry's tasks on fixed subsamples, ``suite`` runs tasks and ``results`` formats and writes.
"""

from __future__ import annotations

from typing import Any

from l3prune.evaluation._common import Task, TextEncoder
from l3prune.evaluation.baselines import BASELINES, SentenceTransformerEncoder, minilm_path
from l3prune.evaluation.cache import CachedEncoder
from l3prune.evaluation.classification import ClassificationTask
from l3prune.evaluation.clustering import ClusteringTask
from l3prune.evaluation.instructions import INSTRUCTIONS, instruction_for
from l3prune.evaluation.pair_classification import PairClassificationTask
from l3prune.evaluation.reranking import RerankingTask
from l3prune.evaluation.retrieval import RetrievalTask, read_qrels
from l3prune.evaluation.sts import STSTask
from l3prune.evaluation.registry import GROUPS, TASKS, build_task, default_suite, valid_task_names
from l3prune.evaluation.results import format_table, write_results
from l3prune.evaluation.selection import select_tasks, task_from_path
from l3prune.evaluation.suite import run_suite

__all__ = [
    "BASELINES",
    "GROUPS",
    "INSTRUCTIONS",
    "CachedEncoder",
    "ClassificationTask",
    "ClusteringTask",
    "MTEBEncoder",
    "PairClassificationTask",
    "RerankingTask",
    "RetrievalTask",
    "STSTask",
    "TASKS",
    "SentenceTransformerEncoder",
    "Task",
    "TextEncoder",
    "build_task",
    "default_suite",
    "format_table",
    "instruction_for",
    "minilm_path",
    "read_qrels",
    "run_suite",
    "select_tasks",
    "task_from_path",
    "valid_task_names",
    "write_results",
]


def __getattr__(name: str) -> Any:
    # mteb is an optional dependency: import the adapter only when it is asked for.
    if name == "MTEBEncoder":
        from l3prune.evaluation.mteb_adapter import MTEBEncoder

        return MTEBEncoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
