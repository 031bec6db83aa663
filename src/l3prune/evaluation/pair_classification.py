"""Pair classification (e.g. paraphrase or not): average precision of a similarity threshold.

Follows MTEB 2.x (``AbsTaskPairClassification``): both sides are encoded alike (symmetric task,
instruction on both, as LLM2Vec evaluates); each pair is scored by cosine, dot product and
negated Manhattan / Euclidean distance; the main score ``max_ap`` is the best average precision
over those scorers. ``cosine_ap`` is listed too, and for unit-norm embeddings all agree.
Accuracy and F1 are at the best threshold, which never splits tied scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn.metrics import average_precision_score
from sklearn.metrics.pairwise import paired_euclidean_distances, paired_manhattan_distances

from l3prune.errors import L3PruneError
from l3prune.files import number_field
from l3prune.evaluation._common import Records, as_percent, paired_cosine
from l3prune.evaluation._pairs import SentencePairTask


PAIR_INSTRUCTION = "Retrieve semantically similar text"


@dataclass
class PairClassificationTask(SentencePairTask):
    """Pairs ``{sentence1, sentence2, label}`` (label 1 = same meaning, 0 = not)."""

    instruction: str | None = PAIR_INSTRUCTION
    columns: tuple[str, str, str] = ("sentence1", "sentence2", "label")

    task_type: ClassVar[str] = "pair_classification"
    main_metric: ClassVar[str] = "max_ap"
    file_kind: ClassVar[str] = "pair classification file"

    def parse_targets(self, rows: Records) -> np.ndarray:
        column = self.columns[2]
        labels = []
        for row, at in zip(rows, rows.where):
            value = number_field(row, column, at)
            if value not in (0, 1):
                raise L3PruneError(f"{at}: field {column!r} is {row[column]!r}; labels are 0 or 1")
            labels.append(int(value))
        labels = np.array(labels)
        if not set(np.unique(labels)) <= {0, 1} or len(np.unique(labels)) < 2:
            raise L3PruneError(
                f"{self.path}: labels must be 0 and 1 with both present; found {sorted(set(labels.tolist()))}"
            )
        return labels

    def metrics(self, emb1: np.ndarray, emb2: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return pair_metrics(emb1, emb2, targets)


def pair_metrics(emb1: np.ndarray, emb2: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AP, best accuracy and best F1 for each scorer (higher = more similar), and their maxima (x100)."""
    scorers = {
        "cosine": paired_cosine(emb1, emb2),
        "dot": np.einsum("ij,ij->i", emb1.astype(np.float64), emb2.astype(np.float64)),
        "manhattan": -paired_manhattan_distances(emb1, emb2),
        "euclidean": -paired_euclidean_distances(emb1, emb2),
    }
    out: dict[str, float] = {}
    for name, scores in scorers.items():
        out[f"{name}_ap"] = float(average_precision_score(labels, scores))
        out[f"{name}_accuracy"], out[f"{name}_f1"] = best_accuracy_and_f1(scores, labels)
    for metric in ("ap", "accuracy", "f1"):
        out[f"max_{metric}"] = max(out[f"{name}_{metric}"] for name in scorers)
    return as_percent(out)


def best_accuracy_and_f1(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Best accuracy and best F1 over thresholds "pairs scoring above t are positive".

    A threshold may only fall between two different scores, so tied pairs are always labelled
    alike and their order cannot leak into the metric (MTEB's rule).
    """
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(np.int64)
    n, total_pos = len(y), int(y.sum())
    tp = np.cumsum(y)[:-1]  # positives among the top i+1 pairs, cut after position i
    predicted = np.arange(1, n)
    valid = s[:-1] != s[1:]
    if not valid.any():
        return 0.0, 0.0
    fp = predicted - tp
    accuracy = (tp + (n - total_pos - fp)) / n
    f1 = np.where(tp > 0, 2 * tp / (predicted + total_pos), 0.0)
    return float(accuracy[valid].max()), float(f1[valid].max())
