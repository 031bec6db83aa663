"""Pieces every task file shares: the encoder protocol, file reading, encoding and cosine.

Kept in one place so the task files hold only their own protocol and metric, not copies of
file parsing or shape checks.
"""

from __future__ import annotations

import csv
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from l3prune.errors import L3PruneError

logger = logging.getLogger(__name__)


@runtime_checkable
class TextEncoder(Protocol):
    """What every task needs from a model: texts in, one float32 row per text out.

    ``instruction`` is attended to but not pooled (see ``LLMEncoder``); encoders that cannot use
    it may ignore it, but must say so in their docs.
    """

    def encode(
        self,
        texts: list[str],
        *,
        instruction: str | None = None,
        batch_size: int = 32,
        normalize: bool = False,
        show_progress: bool | None = None,
    ) -> np.ndarray: ...


class Task(ABC):
    """One evaluation dataset plus the protocol that scores it.

    Subclasses are dataclasses that read their data lazily from a path, so building the
    default suite costs nothing until a task runs.
    """

    task_type: ClassVar[str]
    main_metric: ClassVar[str]
    name: str
    instruction: str | None

    @abstractmethod
    def num_texts(self) -> int:
        """How many texts the task sends to the encoder (before de-duplication), for time estimates."""

    @abstractmethod
    def sample_texts(self, n: int) -> list[str]:
        """Up to ``n`` texts the task encodes with ``self.instruction``, for timing a first batch."""

    @abstractmethod
    def evaluate(
        self, encoder: TextEncoder, *, batch_size: int = 32, progress: bool | None = None
    ) -> dict[str, float]:
        """All metrics (x100, as MTEB leaderboards print them); ``self.main_metric`` among them."""

    def describe(self) -> dict[str, Any]:
        """Plain-data summary stored next to the scores, so a result file says what was run."""
        return {
            "type": self.task_type,
            "main_metric": self.main_metric,
            "instruction": self.instruction,
            "path": str(getattr(self, "path", "")),
        }


def require_file(path: str | Path, what: str) -> Path:
    """Resolve ``path`` and fail with a message naming it when it is missing."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise L3PruneError(f"{what} not found: {p} (check the path, or pass a file that exists)")
    return p


def read_records(path: str | Path, what: str = "data file") -> list[dict[str, Any]]:
    """Rows of a ``.jsonl`` (one object a line), ``.csv`` or ``.tsv`` file as dicts."""
    p = require_file(path, what)
    suffix = p.suffix.lower()
    if suffix in {".jsonl", ".json"}:
        rows: list[dict[str, Any]] = []
        with p.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise L3PruneError(
                        f"{p}:{lineno}: not valid JSON ({err.msg}); expected one object per line"
                    ) from None
                if not isinstance(row, dict):
                    raise L3PruneError(f"{p}:{lineno}: expected a JSON object per line, got {type(row).__name__}")
                rows.append(row)
    elif suffix in {".csv", ".tsv"}:
        with p.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ","))
    else:
        raise L3PruneError(f"{p}: unsupported file type {suffix!r}; use .jsonl, .csv or .tsv")
    if not rows:
        raise L3PruneError(f"{p} has no rows")
    return rows


def require_columns(rows: Sequence[dict[str, Any]], columns: Iterable[str], path: str | Path) -> None:
    """Fail early, naming the file, the missing columns and those that exist."""
    available = set(rows[0])
    missing = [c for c in columns if c not in available]
    if missing:
        raise L3PruneError(
            f"{path}: missing column(s) {missing}; available: {sorted(available)}. "
            "Rename the column in the file or pass its name to the task."
        )


def encode_texts(
    encoder: TextEncoder,
    texts: Sequence[str],
    instruction: str | None,
    *,
    batch_size: int,
    progress: bool | None,
) -> np.ndarray:
    """Encode and check the encoder kept its promise: a float32 ``(len(texts), dim)`` array."""
    texts = [str(t) for t in texts]
    out = encoder.encode(texts, instruction=instruction, batch_size=batch_size, normalize=False, show_progress=progress)
    emb = np.asarray(out, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(texts):
        raise L3PruneError(
            f"encoder returned shape {emb.shape} for {len(texts)} texts; it must return (len(texts), dim)"
        )
    if not np.isfinite(emb).all():
        raise L3PruneError("encoder returned NaN or inf embeddings; check the model dtype (try float32)")
    return emb


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Unit rows; a zero row stays zero instead of turning into NaN."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def paired_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of row i of ``a`` with row i of ``b``, shape (n,); float64 so equal pairs tie exactly."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return np.sum(l2_normalize(a64) * l2_normalize(b64), axis=1)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of every row of ``a`` with every row of ``b``, shape (len(a), len(b))."""
    return l2_normalize(a) @ l2_normalize(b).T


def as_percent(metrics: dict[str, float]) -> dict[str, float]:
    """Scale 0-1 metrics to 0-100 (the unit MTEB tables and the paper use)."""
    return {k: float(100.0 * v) for k, v in metrics.items()}
