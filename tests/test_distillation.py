"""Prune, then distil: the two distillation terms, the teacher cache, and training with a teacher."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from l3prune.cli import main
from l3prune.data import load_triplets
from l3prune.errors import L3PruneError
from l3prune.layers import PruneSpec
from l3prune.losses import DistillationLoss, embedding_distillation_loss, similarity_distillation_loss
from l3prune.settings import LoadOptions
from l3prune.testing import CORPUS, tiny_encoder
from l3prune.training import TrainConfig, build_config, train_to_folder
from l3prune.training.config import DISTILL_LOSSES
from l3prune.training.teacher import teacher_cache_dir, teacher_table, triplet_texts

LOAD = LoadOptions(max_length=24, device="cpu", dtype="fp32")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("L3PRUNE_CACHE", str(tmp_path / "cache"))


def rows(n: int, source: str, offset: int = 0) -> list[dict]:
    return [{"query": f"{CORPUS[i % 8]} {i + offset}", "positive": f"{CORPUS[(i + 1) % 8]} {i + offset}",
             "negative": CORPUS[(i + 4) % 8], "source": source, "instruction": "Retrieve a related sentence"}
            for i in range(n)]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "toy.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows(16, "a") + rows(8, "b")))
    return path


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> Path:
    return tiny_encoder("llama", 3, seed=0).save(tmp_path_factory.mktemp("student") / "tiny")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> Path:
    """A teacher of the student's dimension (64): another tiny model, as a trained full model would be."""
    return tiny_encoder("llama", 4, seed=1).save(tmp_path_factory.mktemp("teacher") / "tiny")


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_the_loss_names_the_terms_the_recipe_offers():
    assert DistillationLoss.KINDS == DISTILL_LOSSES


@pytest.mark.parametrize("kind", DISTILL_LOSSES)
def test_the_term_is_zero_when_the_student_is_the_teacher(kind):
    torch.manual_seed(0)
    q, p, n = (torch.randn(6, 16) for _ in range(3))
    assert DistillationLoss(kind, temperature=0.05)((q, p, n), (q, p, n)).item() == pytest.approx(0, abs=1e-6)
    assert DistillationLoss(kind, temperature=0.05)((q, p, n), (p, n, q)).item() > 1e-3


def test_the_embedding_term_is_the_cosine_distance_and_refuses_other_dimensions():
    s, t = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    assert embedding_distillation_loss(s, t).item() == pytest.approx(((1 - 2 ** -0.5) + 2) / 2)
    with pytest.raises(L3PruneError, match="similarity term"):
        embedding_distillation_loss(torch.randn(3, 4), torch.randn(3, 5))


def test_the_similarity_term_is_dimension_free_and_matches_a_hand_computed_kl():
    torch.manual_seed(1)
    sq, sc, tq, tc = torch.randn(3, 8), torch.randn(6, 8), torch.randn(3, 20), torch.randn(6, 20)
    got = similarity_distillation_loss(sq, sc, tq, tc, temperature=0.1)

    def probs(q, c):
        q, c = torch.nn.functional.normalize(q, dim=-1), torch.nn.functional.normalize(c, dim=-1)
        return torch.softmax(q @ c.T / 0.1, dim=-1)

    teacher, student = probs(tq, tc), probs(sq, sc)
    expected = (teacher * (teacher.log() - student.log())).sum(-1).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradients_reach_the_student_only(teacher_dir, data_file):
    triplets = load_triplets(data_file)
    table = teacher_table(str(teacher_dir), triplets, load=LOAD)
    student = tuple(torch.randn(4, 64, requires_grad=True) for _ in range(3))
    teacher = table.lookup([0, 1, 2, 3])
    DistillationLoss("similarity", temperature=0.05)(student, teacher).backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in student)
    assert not table.embeddings.requires_grad and all(t.grad is None and not t.requires_grad for t in teacher)


def test_the_teacher_table_holds_each_distinct_text_once_with_its_instruction(data_file):
    triplets = load_triplets(data_file)
    texts, index = triplet_texts(triplets)
    assert len(texts) == len(set(texts)) < 3 * len(triplets)  # negatives repeat
    for t, (q, p, n) in zip(triplets, index):
        assert texts[q] == (t.query_instruction, t.query) and texts[p] == (t.doc_instruction, t.positive)
        assert texts[n] == (t.doc_instruction, t.negative)


def test_the_cache_is_reused_and_invalidated_by_data_teacher_and_max_length(teacher_dir, student_dir, data_file,
                                                                             tmp_path):
    triplets = load_triplets(data_file)
    first = teacher_table(str(teacher_dir), triplets, load=LOAD)
    again = teacher_table(str(teacher_dir), triplets, load=LOAD)
    assert not first.info["cached"] and again.info["cached"] and again.info["cache_key"] == first.info["cache_key"]
    assert torch.equal(first.embeddings, again.embeddings)
    other_data = tmp_path / "other.jsonl"
    other_data.write_text("".join(json.dumps(r) + "\n" for r in rows(16, "a", offset=100)))
    variants = [
        teacher_table(str(teacher_dir), load_triplets(other_data), load=LOAD),  # other texts
        teacher_table(str(student_dir), triplets, load=LOAD),  # another teacher
        teacher_table(str(teacher_dir), triplets, load=LoadOptions(max_length=20, device="cpu", dtype="fp32")),
        teacher_table(str(teacher_dir), load_triplets(data_file, instructions=False), load=LOAD),
    ]
    keys = {first.info["cache_key"], *(v.info["cache_key"] for v in variants)}
    assert len(keys) == 5 and not any(v.info["cached"] for v in variants)


def test_a_corrupt_or_mismatched_cache_is_rebuilt_not_trusted(teacher_dir, data_file, caplog):
    triplets = load_triplets(data_file)
    first = teacher_table(str(teacher_dir), triplets, load=LOAD)
    key = first.info["cache_key"]
    array = teacher_cache_dir() / f"{key}.npy"
    np.save(array, np.zeros((first.embeddings.shape[0], first.dim), dtype=np.float32))  # same shape, wrong bytes
    rebuilt = teacher_table(str(teacher_dir), triplets, load=LOAD)
    assert not rebuilt.info["cached"] and torch.equal(rebuilt.embeddings, first.embeddings)
    assert "stale or corrupt" in caplog.text
    (teacher_cache_dir() / f"{key}.json").write_text("{not json")
    assert not teacher_table(str(teacher_dir), triplets, load=LOAD).info["cached"]


def test_weight_zero_is_exactly_plain_training(tmp_path, student_dir, teacher_dir, data_file):
    plain = build_config(steps=3, batch_size=4, warmup_steps=1, data=[str(data_file)])
    silent = build_config(steps=3, batch_size=4, warmup_steps=1, data=[str(data_file)], teacher=str(teacher_dir),
                          distill_weight=0.0)
    train_to_folder(student_dir, tmp_path / "plain", plain, load=LOAD, prune=PruneSpec(num_layers=2))
    train_to_folder(student_dir, tmp_path / "silent", silent, load=LOAD, prune=PruneSpec(num_layers=2))
    a, b = weights(tmp_path / "plain"), weights(tmp_path / "silent")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", DISTILL_LOSSES)
def test_a_teacher_changes_training_and_is_recorded(tmp_path, student_dir, teacher_dir, data_file, kind):
    plain = build_config(steps=3, batch_size=4, warmup_steps=1, data=[str(data_file)])
    taught = build_config(steps=3, batch_size=4, warmup_steps=1, data=[str(data_file)], teacher=str(teacher_dir),
                          distill_loss=kind)
    train_to_folder(student_dir, tmp_path / "plain", plain, load=LOAD, prune=PruneSpec(num_layers=2))
    train_to_folder(student_dir, tmp_path / "taught", taught, load=LOAD, prune=PruneSpec(num_layers=2))
    a, b = weights(tmp_path / "plain"), weights(tmp_path / "taught")
    assert any(not torch.equal(a[k], b[k]) for k in a)
    record = json.loads((tmp_path / "taught" / "training.json").read_text())
    assert record["config"]["teacher"] == str(teacher_dir) and record["config"]["distill_loss"] == kind
    assert record["teacher"]["kind"] == "l3prune" and len(record["teacher"]["fingerprint"]) == 16
    log = [json.loads(line) for line in (tmp_path / "taught" / "train_log.jsonl").read_text().splitlines()]
    assert all("distill" in row and row["distill"] >= 0 for row in log)


def test_distill_only_trains_on_the_teacher_alone(tmp_path, student_dir, teacher_dir, data_file):
    config = build_config(steps=2, batch_size=4, warmup_steps=1, data=[str(data_file)], teacher=str(teacher_dir),
                          distill_only=True)
    train_to_folder(student_dir, tmp_path / "only", config, load=LOAD, prune=PruneSpec(num_layers=2))
    log = [json.loads(line) for line in (tmp_path / "only" / "train_log.jsonl").read_text().splitlines()]
    assert all(row["loss"] == pytest.approx(row["distill"]) for row in log)


def test_resuming_a_distilled_run_gives_the_uninterrupted_weights(tmp_path, student_dir, teacher_dir, data_file,
                                                                  monkeypatch):
    from l3prune.training import loop

    config = build_config(steps=4, batch_size=4, warmup_steps=1, save_every=2, data=[str(data_file)],
                          teacher=str(teacher_dir))
    train_to_folder(student_dir, tmp_path / "clean", config, load=LOAD, prune=PruneSpec(num_layers=2))
    step = loop.Trainer.train_step

    def stop_after_three(self):
        if self.step == 3:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(loop.Trainer, "train_step", stop_after_three)
    with pytest.raises(KeyboardInterrupt):
        train_to_folder(student_dir, tmp_path / "stopped", config, load=LOAD, prune=PruneSpec(num_layers=2))
    monkeypatch.setattr(loop.Trainer, "train_step", step)
    train_to_folder(student_dir, tmp_path / "stopped", config, load=LOAD, prune=PruneSpec(num_layers=2),
                    resume=True)
    a, b = weights(tmp_path / "clean"), weights(tmp_path / "stopped")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_a_stock_sentence_transformers_teacher_of_another_dimension_teaches_by_similarity(tmp_path, student_dir,
                                                                                       data_file):
    from l3prune.export import export_sentence_transformers

    stock = export_sentence_transformers(tiny_encoder("qwen3", 2, seed=3, pooling="mean"), tmp_path / "st")
    (stock / "l3prune.json").unlink()  # a plain sentence-transformers folder
    table = teacher_table(str(stock), load_triplets(data_file), load=LOAD)
    assert table.info["kind"] == "sentence-transformers" and table.dim == 64
    config = build_config(steps=2, batch_size=4, warmup_steps=1, data=[str(data_file)], teacher=str(stock))
    assert train_to_folder(student_dir, tmp_path / "out", config, load=LOAD, prune=PruneSpec(num_layers=2))


def _fails(capsys, args, *expected) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and "Traceback" not in err, err
    for text in expected:
        assert text in err, err
    return err


def test_bad_distillation_input_is_one_line_before_any_training(tmp_path, student_dir, data_file, capsys):
    base = ["train", str(student_dir), "--num-layers", "2", "--data", str(data_file), "--steps", "2", "--batch-size",
            "4", "--max-length", "24", "--dtype", "fp32", "--device", "cpu"]
    out = tmp_path / "out"
    _fails(capsys, [*base, "--out", str(out), "--teacher", str(tmp_path / "missing")], "teacher", "missing")
    _fails(capsys, [*base, "--out", str(out), "--teacher", "minilm", "--distill-loss", "embedding"],
           "384", "64", "--distill-loss similarity")
    _fails(capsys, [*base, "--out", str(out), "--teacher", "minilm", "--distill-weight", "-1"], "distill_weight")
    _fails(capsys, [*base, "--out", str(out), "--teacher", "minilm", "--distill-weight", "nan"], "distill_weight")
    _fails(capsys, [*base, "--out", str(out), "--distill-only"], "--teacher")
    assert not out.exists() and not (tmp_path / "out.run").exists()


def test_train_config_defaults_keep_plain_training():
    config = TrainConfig().validate()
    assert config.teacher is None and not config.distills
