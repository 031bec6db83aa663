"""Reranking: order each query's own candidates by cosine; MAP@1000 (main) and MRR@10.

Follows MTEB 2.x, which runs reranking as retrieval restricted to the given candidates and
reports ``map_at_1000`` (every candidate list here is shorter, so it is plain MAP) and
``mrr_at_10``. Positives have grade 1, negatives 0; the query carries the instruction, the
candidates none. Queries without a positive or without a negative say nothing about ranking and
are skipped (MTEB 1's reranking evaluator did the same), with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from l3prune.errors import L3PruneError
from l3prune.files import string_field
from l3prune.evaluation._common import (
    Task,
    TextEncoder,
    as_percent,
    encode_nonempty,
    encode_texts,
    l2_normalize,
    read_records,
    require_columns,
)
from l3prune.evaluation._ranking import rank, ranking_metrics

logger = logging.getLogger(__name__)

RERANKING_INSTRUCTION = "Given a query, retrieve relevant passages that answer the query"


@dataclass
class RerankingInstance:
    query: str
    candidates: list[str]
    grades: np.ndarray  # (n_candidates,) 1 = positive, 0 = negative


@dataclass
class RerankingTask(Task):
    """A .jsonl file of ``{query, positive: [...], negative: [...]}``."""

    path: str | Path
    name: str = ""
    instruction: str | None = RERANKING_INSTRUCTION

    task_type: ClassVar[str] = "reranking"
    main_metric: ClassVar[str] = "map_at_1000"
    _data: list[RerankingInstance] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name = self.name or Path(self.path).stem

    def load(self) -> list[RerankingInstance]:
        if self._data is not None:
            return self._data
        rows = read_records(self.path, f"reranking file for {self.name}")
        require_columns(rows, ("query", "positive", "negative"), self.path)
        instances, skipped, empty = [], 0, []
        for row, at in zip(rows, rows.where):
            query = string_field(row, "query", at)  # a query with no text is a broken row: an error
            pos, neg = row["positive"], row["negative"]
            if not isinstance(pos, list) or not isinstance(neg, list):
                raise L3PruneError(f"{at}: 'positive' and 'negative' must be lists of texts")
            for side, items in (("positive", pos), ("negative", neg)):
                for item in items:
                    if not isinstance(item, str):
                        got = "null" if item is None else type(item).__name__
                        raise L3PruneError(f"{at}: every item of {side!r} must be a string, got {got}")
            if not pos or not neg:
                skipped += 1
                continue
            candidates = pos + neg
            empty += [f"{at.rsplit(':', 1)[-1]}" for text in candidates if not text.strip()]
            grades = np.array([1] * len(pos) + [0] * len(neg))
            instances.append(RerankingInstance(query, candidates, grades))
        if skipped:
            logger.warning("%s: skipped %d queries with no positive or no negative candidate", self.name, skipped)
        if empty:
            logger.warning("%s: %d empty candidate(s) (lines %s) are kept but ranked last, as nothing can match "
                           "them", self.name, len(empty), ", ".join(sorted(set(empty), key=int)[:5]))
        if not instances:
            raise L3PruneError(f"{self.path}: no query has both a positive and a negative candidate")
        self._data = instances
        return instances

    def num_texts(self) -> int:
        return sum(1 + len(inst.candidates) for inst in self.load())

    def sample_texts(self, n: int) -> list[str]:
        return [inst.query for inst in self.load()[:n]]

    def evaluate(
        self, encoder: TextEncoder, *, batch_size: int = 32, progress: bool | None = None
    ) -> dict[str, float]:
        data = self.load()
        query_emb = l2_normalize(
            encode_texts(encoder, [d.query for d in data], self.instruction, batch_size=batch_size, progress=progress)
        )
        # One encode call for all candidates keeps batches full; the cache removes repeats.
        flat = [text for d in data for text in d.candidates]
        cand_emb, empty = encode_nonempty(encoder, flat, batch_size=batch_size, progress=progress)
        cand_emb = l2_normalize(cand_emb)
        ranked, judged, start = [], [], 0
        for q, inst in zip(query_emb, data):
            n = len(inst.candidates)
            scores = np.where(empty[start : start + n], -np.inf, cand_emb[start : start + n] @ q)  # (n_candidates,)
            start += n
            # Equal scores: the later candidate first, a fixed rule standing in for pytrec_eval's id order.
            order = rank(scores, np.arange(n), n)
            ranked.append(inst.grades[order])
            judged.append(inst.grades)
        metrics = ranking_metrics(ranked, judged, map_at=(1000,), mrr_at=(10,))
        return as_percent(metrics)
