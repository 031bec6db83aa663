"""Semantic textual similarity: Spearman correlation of cosine similarity with gold scores.

Follows MTEB 2.x (``AbsTaskSTS``): both sentences of a pair are encoded the same way
(symmetric task, so the instruction goes on both sides, as LLM2Vec evaluates), and the main
score is ``cosine_spearman`` x 100.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics.pairwise import paired_euclidean_distances, paired_manhattan_distances

from l3prune.errors import L3PruneError
from l3prune.files import number_field
from l3prune.evaluation._common import Records, paired_cosine
from l3prune.evaluation._pairs import SentencePairTask

logger = logging.getLogger(__name__)

STS_INSTRUCTION = "Retrieve semantically similar text"


@dataclass
class STSTask(SentencePairTask):
    """Pairs ``{sentence1, sentence2, score}`` from a .jsonl/.csv/.tsv file; any score scale."""

    instruction: str | None = STS_INSTRUCTION
    columns: tuple[str, str, str] = ("sentence1", "sentence2", "score")

    task_type: ClassVar[str] = "sts"
    main_metric: ClassVar[str] = "cosine_spearman"
    file_kind: ClassVar[str] = "STS file"

    def parse_targets(self, rows: Records) -> np.ndarray:
        column = self.columns[2]
        scores = np.array([number_field(row, column, at) for row, at in zip(rows, rows.where)], dtype=np.float64)
        if len(scores) < 2:
            raise L3PruneError(f"{self.path}: need at least 2 pairs to compute a correlation")
        if np.ptp(scores) == 0:
            raise L3PruneError(f"{self.path}: every {column!r} is {scores[0]:g}; a correlation needs different scores")
        return scores

    def metrics(self, emb1: np.ndarray, emb2: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return sts_metrics(emb1, emb2, targets)


def sts_metrics(emb1: np.ndarray, emb2: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Correlations (x100) of gold scores with cosine and with negated L1/L2 distances, as MTEB reports."""
    predictions = {
        "cosine": paired_cosine(emb1, emb2),
        "manhattan": -paired_manhattan_distances(emb1, emb2),
        "euclidean": -paired_euclidean_distances(emb1, emb2),
    }
    out: dict[str, float] = {}
    for name, pred in predictions.items():
        if np.ptp(pred) == 0:
            logger.warning("all %s similarities are equal; correlation is undefined, reported as 0", name)
            out[f"{name}_spearman"] = out[f"{name}_pearson"] = 0.0
            continue
        out[f"{name}_spearman"] = 100.0 * float(spearmanr(pred, gold)[0])
        out[f"{name}_pearson"] = 100.0 * float(pearsonr(pred, gold)[0])
    return out
