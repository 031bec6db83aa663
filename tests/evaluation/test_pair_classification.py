from __future__ import annotations

import math

import numpy as np
import pytest

from l3prune.errors import L3PruneError
from l3prune.evaluation import PairClassificationTask
from l3prune.evaluation.pair_classification import best_accuracy_and_f1


def _rows():
    return [
        {"sentence1": "a", "sentence2": "a1", "label": 1},
        {"sentence1": "b", "sentence2": "b1", "label": 0},
        {"sentence1": "c", "sentence2": "c1", "label": 1},
        {"sentence1": "d", "sentence2": "d1", "label": 0},
    ]


def _unit(deg):
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def test_average_precision_matches_hand_computed_value(tmp_path, jsonl, table_encoder):
    # cosines by angle: a 0 deg (1.0, pos), b 30 (0.87, neg), c 60 (0.5, pos), d 90 (0.0, neg)
    # AP = (1/1 + 2/3) / 2 = 0.8333; best accuracy 3/4 (cut after a or after c); best F1 = 0.8 (cut after c)
    table = {"a": _unit(0), "b": _unit(0), "c": _unit(0), "d": _unit(0),
             "a1": _unit(0), "b1": _unit(30), "c1": _unit(60), "d1": _unit(90)}
    enc = table_encoder(table)
    metrics = PairClassificationTask(jsonl(tmp_path / "p.jsonl", _rows()), instruction="Same?").evaluate(enc)
    assert metrics["cosine_ap"] == pytest.approx(100 * 5 / 6)
    assert metrics["cosine_accuracy"] == pytest.approx(75.0)
    assert metrics["cosine_f1"] == pytest.approx(80.0)
    assert metrics["max_ap"] >= metrics["cosine_ap"]
    assert [instr for instr, _ in enc.calls] == ["Same?", "Same?"]  # symmetric task


def test_threshold_never_splits_tied_scores():
    scores = np.array([0.9, 0.5, 0.5, 0.1])
    labels = np.array([1, 1, 0, 0])
    # Cutting between the tied pair would give 100% accuracy; allowed cuts give 3/4 at best.
    accuracy, f1 = best_accuracy_and_f1(scores, labels)
    assert accuracy == pytest.approx(0.75)
    assert f1 == pytest.approx(0.8)


def test_labels_must_be_binary(tmp_path, jsonl):
    rows = _rows()
    rows[0]["label"] = 2
    with pytest.raises(L3PruneError, match=r":1: field 'label' is 2; labels are 0 or 1"):
        PairClassificationTask(jsonl(tmp_path / "p.jsonl", rows)).load()


def test_missing_label_column(tmp_path, jsonl):
    rows = [{"sentence1": "a", "sentence2": "b", "is_para": 1}]
    with pytest.raises(L3PruneError, match=r"'label'"):
        PairClassificationTask(jsonl(tmp_path / "p.jsonl", rows)).load()
