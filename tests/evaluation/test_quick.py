from __future__ import annotations

import csv
import json

from l3prune.evaluation import run_suite
from l3prune.evaluation.quick import QUICK_SIZES, quick_suite, quick_suite_folder

REPORTED = ["STSBenchmark", "SICK-R", "STS13", "STS15", "STS16", "msmarco_5k", "Banking77Classification",
            "Banking77Clustering", "MRPC", "WikiQA"]


def _lines(path):
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_quick_suite_is_the_reported_ten_on_fixed_subsamples(tmp_path):
    tasks = quick_suite(tmp_path / "q")
    assert [t.name for t in tasks] == REPORTED
    root = tmp_path / "q"
    assert len(_lines(root / "sts" / "SICK-R.test.jsonl")) == QUICK_SIZES["sts_pairs"]
    assert len(_lines(root / "msmarco_sub" / "corpus.jsonl")) == QUICK_SIZES["msmarco_docs"]
    assert len(_lines(root / "mrpc_test.jsonl")) == QUICK_SIZES["mrpc_pairs"]
    assert len(_lines(root / "wikiqa_test.jsonl")) == QUICK_SIZES["wikiqa_queries"]
    with (root / "banking77" / "test.csv").open(newline="") as f:
        assert len(list(csv.DictReader(f))) == QUICK_SIZES["banking77_test"]
    docs = {json.loads(line)["_id"] for line in _lines(root / "msmarco_sub" / "corpus.jsonl")}
    judged = {line.split("\t")[1] for line in _lines(root / "msmarco_sub" / "qrels" / "test.tsv")}
    assert judged and judged <= docs  # qrels keep only the sampled documents' judgements
    assert all(t.instruction for t in tasks)


def test_quick_sample_is_the_same_every_time_and_not_a_prefix(tmp_path):
    a, b = quick_suite_folder(tmp_path / "a"), quick_suite_folder(tmp_path / "b")
    for rel in ("sts/STS15.test.jsonl", "msmarco_sub/corpus.jsonl", "banking77/test.csv", "wikiqa_test.jsonl"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    from l3prune.resources import resource_path

    first = _lines(resource_path("eval", "sts", "STS15.test.jsonl"))[: QUICK_SIZES["sts_pairs"]]
    assert _lines(a / "sts" / "STS15.test.jsonl") != first  # a seeded sample, not the head of the file
    assert not list(tmp_path.glob(".*"))  # no temporary folder left behind


def test_quick_suite_runs_end_to_end(tmp_path, hash_encoder):
    results = run_suite(hash_encoder, quick_suite(tmp_path / "q"), model_id="hash", progress=False)
    assert list(results["tasks"]) == REPORTED
    assert results["tasks"]["STS13"]["num_texts"] == 2 * QUICK_SIZES["sts_pairs"]
    assert all(-100 <= t["main_score"] <= 100 for t in results["tasks"].values())
