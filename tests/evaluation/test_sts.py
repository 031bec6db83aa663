from __future__ import annotations

import math

import numpy as np
import pytest

from l3prune.errors import L3PruneError
from l3prune.evaluation import STSTask


def _angle(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def test_spearman_matches_hand_computed_value(tmp_path, jsonl, table_encoder):
    # cosines 1.0, 0.5, -1.0 (ranks 3, 2, 1) against gold 5, 1, 3 (ranks 3, 1, 2):
    # rho = 1 - 6 * (0 + 1 + 1) / (3 * 8) = 0.5
    rows = [
        {"sentence1": "a", "sentence2": "a2", "score": 5},
        {"sentence1": "b", "sentence2": "b2", "score": 1},
        {"sentence1": "c", "sentence2": "c2", "score": 3},
    ]
    enc = table_encoder({"a": _angle(0), "a2": _angle(0), "b": _angle(0), "b2": _angle(60),
                         "c": _angle(0), "c2": _angle(180)})
    metrics = STSTask(jsonl(tmp_path / "toy.jsonl", rows)).evaluate(enc)
    assert metrics["cosine_spearman"] == pytest.approx(50.0)
    assert set(metrics) >= {"cosine_pearson", "euclidean_spearman", "manhattan_spearman"}


def test_instruction_goes_on_both_sides_and_name_defaults_to_stem(tmp_path, jsonl, hash_encoder):
    rows = [{"sentence1": f"x {i}", "sentence2": f"y {i}", "score": i} for i in range(5)]
    task = STSTask(jsonl(tmp_path / "STS99.test.jsonl", rows), instruction="Do it")
    task.evaluate(hash_encoder)
    assert [instr for instr, _ in hash_encoder.calls] == ["Do it", "Do it"]
    assert task.name == "STS99.test"


def test_limit_keeps_first_pairs(tmp_path, jsonl):
    rows = [{"sentence1": f"x {i}", "sentence2": "y", "score": i} for i in range(10)]
    task = STSTask(jsonl(tmp_path / "t.jsonl", rows), limit=4)
    assert task.num_texts() == 8
    assert task.load().targets.tolist() == [0, 1, 2, 3]


def test_missing_file_names_it(tmp_path):
    with pytest.raises(L3PruneError, match="nope.jsonl"):
        STSTask(tmp_path / "nope.jsonl").load()


def test_missing_column_lists_available(tmp_path, jsonl):
    path = jsonl(tmp_path / "t.jsonl", [{"sentence1": "a", "sentence2": "b", "similarity": 1}] * 3)
    with pytest.raises(L3PruneError, match=r"missing column.*'score'.*similarity"):
        STSTask(path).load()


def test_csv_with_custom_columns(tmp_path, hash_encoder):
    path = tmp_path / "pairs.csv"
    path.write_text("left,right,gold\ncat sat,cat sat,5\ncat sat,dog ran,0\nred car,red bus,3\n", encoding="utf-8")
    metrics = STSTask(path, columns=("left", "right", "gold")).evaluate(hash_encoder)
    assert np.isfinite(metrics["cosine_spearman"])
