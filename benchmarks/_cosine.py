"""The row-by-row cosine the benchmarks compare two embeddings of the same texts with."""

from __future__ import annotations

import numpy as np


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine between row i of ``a`` and row i of ``b``, for every i."""
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
