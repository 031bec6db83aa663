from __future__ import annotations

import numpy as np
import pytest

from l3prune.evaluation import CachedEncoder


def test_each_text_and_instruction_is_encoded_once(hash_encoder):
    cached = CachedEncoder(hash_encoder, "hash")
    first = cached.encode(["a b", "c d", "a b"], instruction="I")
    again = cached.encode(["c d", "a b"], instruction="I")
    other = cached.encode(["a b"], instruction=None)  # another instruction is another key
    assert [texts for _, texts in hash_encoder.calls] == [["a b", "c d"], ["a b"]]
    assert np.array_equal(first[1], again[0]) and np.array_equal(first[0], first[2])
    assert other.shape == (1, hash_encoder.dim)
    assert (cached.encoded, cached.hits) == (3, 3)


def test_normalize_is_applied_on_the_way_out(hash_encoder):
    cached = CachedEncoder(hash_encoder, "hash")
    raw = cached.encode(["one two three three"])
    unit = cached.encode(["one two three three"], normalize=True)
    assert np.linalg.norm(raw[0]) > 1.5
    assert np.linalg.norm(unit[0]) == pytest.approx(1.0, abs=1e-6)
    assert len(hash_encoder.calls) == 1
