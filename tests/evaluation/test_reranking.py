from __future__ import annotations

import logging

import numpy as np
import pytest

from l3prune.errors import L3PruneError
from l3prune.evaluation import RerankingTask


def test_map_and_mrr_match_hand_computed_values(tmp_path, jsonl, table_encoder, caplog):
    rows = [
        # q1: positive ranked 2nd of 3 -> AP 1/2, RR 1/2
        {"query": "q1", "positive": ["p1"], "negative": ["n1", "n2"]},
        # q2: positives ranked 1st and 3rd -> AP (1 + 2/3) / 2 = 5/6, RR 1
        {"query": "q2", "positive": ["p2", "p3"], "negative": ["n3"]},
        # q3: no negative -> skipped
        {"query": "q3", "positive": ["p4"], "negative": []},
    ]
    e = np.eye(3)
    table = {"q1": e[0], "p1": 0.5 * e[0] + e[1], "n1": e[0], "n2": e[1],
             "q2": e[0], "p2": e[0], "n3": e[0] + 0.5 * e[1], "p3": e[2]}
    enc = table_encoder(table)
    task = RerankingTask(jsonl(tmp_path / "r.jsonl", rows), instruction="Rank")
    with caplog.at_level(logging.WARNING):
        metrics = task.evaluate(enc)
    assert "skipped 1" in caplog.text
    assert metrics["map_at_1000"] == pytest.approx(100 * (0.5 + 5 / 6) / 2)
    assert metrics["mrr_at_10"] == pytest.approx(100 * (0.5 + 1) / 2)
    (query_instr, queries), (doc_instr, _) = enc.calls
    assert query_instr == "Rank" and queries == ["q1", "q2"] and doc_instr is None


def test_candidates_must_be_lists(tmp_path, jsonl):
    path = jsonl(tmp_path / "r.jsonl", [{"query": "q", "positive": "p", "negative": ["n"]}])
    with pytest.raises(L3PruneError, match="must be lists"):
        RerankingTask(path).load()
