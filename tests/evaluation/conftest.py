"""Fake encoders for hermetic evaluation tests: deterministic, instant, and they record every call."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest


class HashEncoder:
    """Hashed bag of words: texts sharing words get similar vectors. Ignores the instruction but records it."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls: list[tuple[str | None, list[str]]] = []

    def encode(self, texts, *, instruction=None, batch_size=32, normalize=False, show_progress=None):
        self.calls.append((instruction, list(texts)))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = zlib.crc32(word.encode())
                out[i, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


class TableEncoder:
    """Looks each text up in a dict of vectors, so cosines in a test are known exactly."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = {k: np.asarray(v, dtype=np.float32) for k, v in table.items()}
        self.calls: list[tuple[str | None, list[str]]] = []

    def encode(self, texts, *, instruction=None, batch_size=32, normalize=False, show_progress=None):
        self.calls.append((instruction, list(texts)))
        return np.stack([self.table[t] for t in texts])


@pytest.fixture
def hash_encoder() -> HashEncoder:
    return HashEncoder()


@pytest.fixture
def table_encoder() -> type[TableEncoder]:
    """The class, so a test can build one from its own vectors."""
    return TableEncoder


def write_jsonl(path, rows) -> None:
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def jsonl():
    """Helper: write rows to a .jsonl file and return its path."""

    def _write(path, rows):
        write_jsonl(path, rows)
        return path

    return _write
