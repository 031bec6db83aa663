"""Ranking metrics shared by retrieval and reranking, defined as trec_eval / pytrec_eval (which MTEB calls).

- nDCG@k: gain = graded relevance, discount log2(rank + 1); the ideal ranking uses every judged
  document of the query.
- recall@k, MAP@k and MRR@k count a document as relevant when its grade is >= 1.
- MAP@k divides by the number of relevant judged documents, not by min(k, R), as ``map_cut`` does.
- Ties in score are broken by document id, descending, as pytrec_eval does, so results do not depend
  on corpus order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rank(scores: np.ndarray, tie_key: np.ndarray, top_k: int) -> np.ndarray:
    """Indices of the ``top_k`` best scores, best first; equal scores ordered by ``tie_key`` descending."""
    n = len(scores)
    if top_k < n:
        # Partition first so a large corpus is not fully sorted; ties at the cut are vanishingly rare.
        candidates = np.argpartition(-scores, top_k - 1)[:top_k]
    else:
        candidates = np.arange(n)
    order = np.lexsort((-tie_key[candidates], -scores[candidates]))
    return candidates[order][:top_k]


def ranking_metrics(
    ranked_grades: Sequence[np.ndarray],
    judged_grades: Sequence[np.ndarray],
    *,
    ndcg_at: Sequence[int] = (),
    recall_at: Sequence[int] = (),
    map_at: Sequence[int] = (),
    mrr_at: Sequence[int] = (),
) -> dict[str, float]:
    """Mean per-query metrics in 0..1.

    ``ranked_grades[q]`` holds the grade of each returned document in rank order (0 when unjudged);
    ``judged_grades[q]`` holds the grades of every judged document of query q.
    """
    if len(ranked_grades) != len(judged_grades) or not ranked_grades:
        raise ValueError("need one ranked list and one judged list per query, and at least one query")
    sums: dict[str, float] = {}
    for ranked, judged in zip(ranked_grades, judged_grades):
        gains = np.clip(np.asarray(ranked, dtype=np.float64), 0, None)
        judged = np.asarray(judged, dtype=np.float64)
        hits = gains >= 1
        num_rel = int((judged >= 1).sum())
        discounts = 1.0 / np.log2(np.arange(2, len(gains) + 2))
        ideal = np.sort(np.clip(judged, 0, None))[::-1]
        ideal_discounts = 1.0 / np.log2(np.arange(2, len(ideal) + 2))
        for k in ndcg_at:
            idcg = float((ideal[:k] * ideal_discounts[:k]).sum())
            dcg = float((gains[:k] * discounts[:k]).sum())
            _add(sums, f"ndcg_at_{k}", dcg / idcg if idcg > 0 else 0.0)
        for k in recall_at:
            _add(sums, f"recall_at_{k}", hits[:k].sum() / num_rel if num_rel else 0.0)
        for k in map_at:
            h = hits[:k]
            precision = np.cumsum(h) / np.arange(1, len(h) + 1)
            _add(sums, f"map_at_{k}", float(precision[h].sum()) / num_rel if num_rel else 0.0)
        for k in mrr_at:
            first = np.flatnonzero(hits[:k])
            _add(sums, f"mrr_at_{k}", 1.0 / (first[0] + 1) if len(first) else 0.0)
    n = len(ranked_grades)
    return {key: value / n for key, value in sums.items()}


def _add(sums: dict[str, float], key: str, value: float) -> None:
    sums[key] = sums.get(key, 0.0) + float(value)
