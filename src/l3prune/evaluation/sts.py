"""Semantic textual similarity: Spearman correlation of cosine similarity with gold scores.

Follows MTEB 2.x (``AbsTaskSTS``): both sentences of a pair are encoded the same way
(symmetric task, so the instruction goes on both sides, as LLM2Vec evaluates), and the main
score is ``cosine_spearman`` x 100.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics.pairwise import paired_euclidean_distances, paired_manhattan_distances

from l3prune.errors import L3PruneError
from l3prune.evaluation._common import (
    Task,
    TextEncoder,
    encode_texts,
    paired_cosine,
    read_records,
    require_columns,
)

logger = logging.getLogger(__name__)

STS_INSTRUCTION = "Retrieve semantically similar text"


@dataclass
class STSData:
    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray  # (n,) gold similarity


@dataclass
class STSTask(Task):
    """Pairs ``{sentence1, sentence2, score}`` from a .jsonl/.csv/.tsv file; any score scale."""

    path: str | Path
    name: str = ""
    instruction: str | None = STS_INSTRUCTION
    limit: int | None = None  # keep the first n pairs (quick checks); None = all
    columns: tuple[str, str, str] = ("sentence1", "sentence2", "score")

    task_type: ClassVar[str] = "sts"
    main_metric: ClassVar[str] = "cosine_spearman"
    _data: STSData | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name = self.name or Path(self.path).stem

    def load(self) -> STSData:
        if self._data is None:
            rows = read_records(self.path, f"STS file for {self.name}")
            require_columns(rows, self.columns, self.path)
            if self.limit is not None:
                rows = rows[: self.limit]
            c1, c2, cs = self.columns
            try:
                scores = np.array([float(r[cs]) for r in rows], dtype=np.float64)
            except (TypeError, ValueError):
                raise L3PruneError(f"{self.path}: column {cs!r} must hold numbers") from None
            if len(rows) < 2:
                raise L3PruneError(f"{self.path}: need at least 2 pairs to compute a correlation")
            self._data = STSData([str(r[c1]) for r in rows], [str(r[c2]) for r in rows], scores)
        return self._data

    def num_texts(self) -> int:
        return 2 * len(self.load().scores)

    def sample_texts(self, n: int) -> list[str]:
        return self.load().sentences1[:n]

    def evaluate(
        self, encoder: TextEncoder, *, batch_size: int = 32, progress: bool | None = None
    ) -> dict[str, float]:
        data = self.load()
        emb1 = encode_texts(encoder, data.sentences1, self.instruction, batch_size=batch_size, progress=progress)
        emb2 = encode_texts(encoder, data.sentences2, self.instruction, batch_size=batch_size, progress=progress)
        return sts_metrics(emb1, emb2, data.scores)


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
