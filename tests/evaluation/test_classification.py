from __future__ import annotations

import pytest

from l3prune.errors import L3PruneError
from l3prune.evaluation import ClassificationTask
from l3prune.evaluation.classification import undersample

WORDS = {"card": "card lost stolen blocked", "loan": "loan rate interest mortgage", "fx": "exchange currency euro dollar"}


def _csv(path, n_per_label, label_column="category", offset=0):
    lines = [f"text,{label_column}"]
    for label, words in WORDS.items():
        ws = words.split()
        lines += [f"{ws[(i + offset) % 4]} {ws[(i + offset + 1) % 4]} {i + offset},{label}" for i in range(n_per_label)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_separable_data_scores_100_and_uses_instruction_everywhere(tmp_path, hash_encoder):
    task = ClassificationTask(
        _csv(tmp_path / "train.csv", 12), _csv(tmp_path / "test.csv", 5, offset=100),
        label_column="category", instruction="Intent?", n_experiments=3,
    )
    metrics = task.evaluate(hash_encoder)
    assert metrics["accuracy"] == pytest.approx(100.0)
    assert {instr for instr, _ in hash_encoder.calls} == {"Intent?"}
    assert task.name == tmp_path.name


def test_constant_embeddings_score_at_chance(tmp_path, table_encoder):
    train, test = _csv(tmp_path / "train.csv", 8), _csv(tmp_path / "test.csv", 4, offset=50)
    import csv

    texts = [r["text"] for p in (train, test) for r in csv.DictReader(p.open())]
    enc = table_encoder({t: [1.0, 0.0] for t in texts})
    metrics = ClassificationTask(train, test, label_column="category", n_experiments=2).evaluate(enc)
    assert metrics["accuracy"] == pytest.approx(100 / 3)


def test_undersample_matches_mteb():
    labels = [str(i % 5) for i in range(60)]
    ours = undersample(labels, samples_per_label=3, n_experiments=4, seed=42)
    assert all(len(sel) == 15 and all(sum(labels[i] == lab for i in sel) == 3 for lab in set(labels)) for sel in ours)
    assert ours[0] != ours[1]  # shuffles accumulate, so runs differ
    mteb_cls = pytest.importorskip("mteb.abstasks.classification").AbsTaskClassification
    datasets = pytest.importorskip("datasets")

    class Probe(mteb_cls):
        metadata = None
        samples_per_label = 3

        def __init__(self):  # skip metadata checks: only _undersample_data is used
            self.seed = 42

    probe, ds, idxs = Probe(), datasets.Dataset.from_dict({"text": labels, "label": labels}), None
    for i, expected in enumerate(ours):
        _, idxs, selected = probe._undersample_data(ds, i, idxs)
        assert selected == expected


def test_missing_label_column_names_file_and_columns(tmp_path):
    train = _csv(tmp_path / "train.csv", 4)
    with pytest.raises(L3PruneError, match=r"train.csv.*'label'.*category"):
        ClassificationTask(train, train).load()


def test_test_label_unseen_in_train_is_an_error(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("text,label\na,x\nb,y\n")
    test = tmp_path / "test.csv"
    test.write_text("text,label\nc,z\n")
    with pytest.raises(L3PruneError, match="never occur"):
        ClassificationTask(train, test).load()
