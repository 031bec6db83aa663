from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from l3prune.errors import L3PruneError
from l3prune.evaluation import RetrievalTask, read_qrels
from l3prune.evaluation._ranking import ranking_metrics


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _beir(root, qrels_lines, header=True):
    root.mkdir()
    write_jsonl(root / "corpus.jsonl", [
        {"_id": "d1", "title": "Paris", "text": "capital of France"},
        {"_id": "d2", "title": "", "text": "Berlin is in Germany"},
        {"_id": "d3", "title": "Rome", "text": "Italy capital city"},
    ])
    write_jsonl(root / "queries.jsonl", [
        {"_id": "q1", "text": "france capital"},
        {"_id": "q2", "text": "germany city"},
        {"_id": "q3", "text": "unjudged query"},
    ])
    (root / "qrels").mkdir()
    lines = (["query-id\tcorpus-id\tscore"] if header else []) + qrels_lines
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


DOC_TEXTS = {"d1": "Paris capital of France", "d2": "Berlin is in Germany", "d3": "Rome Italy capital city"}


def _vectors(assign):
    """Query/doc texts -> one-hot vectors; ``assign`` maps query text to the doc id it points at."""
    idx = {"d1": 0, "d2": 1, "d3": 2}
    table = {text: np.eye(4)[idx[d]] for d, text in DOC_TEXTS.items()}
    for query, doc in assign.items():
        table[query] = np.eye(4)[idx[doc]] + 0.01 * np.eye(4)[3]
    return table


def test_perfect_encoder_scores_100_and_a_shuffled_one_does_not(tmp_path, table_encoder):
    task = RetrievalTask(_beir(tmp_path / "toy", ["q1\td1\t1", "q2\td2\t1"]))
    perfect = task.evaluate(table_encoder(_vectors({"france capital": "d1", "germany city": "d2"})))
    assert perfect["ndcg_at_10"] == pytest.approx(100.0)
    assert perfect["recall_at_100"] == pytest.approx(100.0)
    shuffled = task.evaluate(table_encoder(_vectors({"france capital": "d3", "germany city": "d1"})))
    assert shuffled["ndcg_at_10"] < 90.0
    # Each relevant doc ties at cosine 0 with another doc; pytrec_eval's rule (higher id first) puts it 3rd.
    assert shuffled["mrr_at_10"] == pytest.approx(100 / 3)


def test_title_and_text_are_joined_and_only_queries_get_the_instruction(tmp_path, hash_encoder):
    task = RetrievalTask(_beir(tmp_path / "toy", ["q1\td1\t1"]), instruction="Find it")
    task.evaluate(hash_encoder)
    (doc_instr, docs), (query_instr, queries) = hash_encoder.calls
    assert doc_instr is None and sorted(docs) == sorted(DOC_TEXTS.values())
    assert query_instr == "Find it" and queries == ["france capital"]  # only judged queries are scored


def test_headerless_and_headered_qrels_read_the_same(tmp_path):
    lines = ["q1\td1\t2", "q1\td3\t1", "q2\td2\t1"]
    (tmp_path / "a.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(lines) + "\n")
    (tmp_path / "b.tsv").write_text("\n".join(lines) + "\n")
    (tmp_path / "c.txt").write_text("q1 0 d1 2\nq1 0 d3 1\nq2 0 d2 1\n")  # TREC layout
    expected = {"q1": {"d1": 2, "d3": 1}, "q2": {"d2": 1}}
    assert read_qrels(tmp_path / "a.tsv") == read_qrels(tmp_path / "b.tsv") == read_qrels(tmp_path / "c.txt") == expected


def test_bad_qrels_line_is_reported_with_its_number(tmp_path):
    (tmp_path / "q.tsv").write_text("q1\td1\t1\nq2\td2\tvery\n")
    with pytest.raises(L3PruneError, match=r"q.tsv:2"):
        read_qrels(tmp_path / "q.tsv")


def test_unknown_qrels_ids_are_counted_warned_and_ignored(tmp_path, hash_encoder, caplog):
    root = _beir(tmp_path / "toy", ["q1\td1\t1", "q9\td1\t1", "q2\td404\t1", "q2\td2\t1"])
    task = RetrievalTask(root)
    with caplog.at_level(logging.WARNING):
        data = task.load()
    assert data.ignored_qrels == 2
    assert "q9" in caplog.text and "d404" in caplog.text
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    assert task.describe()["ignored_qrels"] == 2


def test_missing_corpus_file_is_named(tmp_path):
    root = _beir(tmp_path / "toy", ["q1\td1\t1"])
    (root / "corpus.jsonl").unlink()
    with pytest.raises(L3PruneError, match="corpus.jsonl"):
        RetrievalTask(root).load()


def test_ndcg_matches_hand_computed_value():
    # ranking grades [0, 2, 1]; ideal [2, 1]
    # DCG = 2/log2(3) + 1/log2(4) = 1.76186; IDCG = 2 + 1/log2(3) = 2.63093
    m = ranking_metrics([np.array([0, 2, 1])], [np.array([2, 1])], ndcg_at=(10,), recall_at=(1, 2), map_at=(10,), mrr_at=(10,))
    assert m["ndcg_at_10"] == pytest.approx((2 / np.log2(3) + 0.5) / (2 + 1 / np.log2(3)))
    assert m["recall_at_1"] == 0.0 and m["recall_at_2"] == 0.5
    assert m["map_at_10"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert m["mrr_at_10"] == 0.5


def test_ranking_metrics_agree_with_pytrec_eval():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(0)
    docs = [f"d{i}" for i in range(40)]
    qrels, run = {}, {}
    for q in range(8):
        judged = rng.choice(40, size=6, replace=False)
        qrels[f"q{q}"] = {docs[j]: int(rng.integers(0, 4)) for j in judged}
        run[f"q{q}"] = {d: float(rng.normal()) for d in docs}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10", "map_cut.10"}).evaluate(run)
    ranked = [np.array([qrels[q].get(d, 0) for d in sorted(run[q], key=run[q].get, reverse=True)]) for q in qrels]
    judged = [np.array(list(qrels[q].values())) for q in qrels]
    ours = ranking_metrics(ranked, judged, ndcg_at=(10,), recall_at=(10,), map_at=(10,))
    for ours_key, ref_key in (("ndcg_at_10", "ndcg_cut_10"), ("recall_at_10", "recall_10"), ("map_at_10", "map_cut_10")):
        assert ours[ours_key] == pytest.approx(np.mean([ref[q][ref_key] for q in qrels]), abs=1e-9)
