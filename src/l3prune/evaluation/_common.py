"""Pieces every task file shares: the encoder protocol, file reading, encoding and cosine.

Kept in one place so the task files hold only their own protocol and metric, not copies of
file parsing or shape checks.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from l3prune.errors import L3PruneError
from l3prune.files import iter_csv, iter_jsonl, require_input_file, string_field

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
            "path": portable_path(getattr(self, "path", "")),
        }


def portable_path(path: str | Path | None) -> str:
    """A data path as a result file records it, so committed results do not carry one machine's absolute paths:
    relative to the working folder when inside it; else, for data shipped inside the package, as
    ``l3prune/...`` (the same wherever the package is installed); else under ``~`` in the home folder."""
    if not path:
        return ""
    absolute = Path(path).expanduser().absolute()
    package = Path(__file__).resolve().parent.parent  # .../l3prune
    for base, prefix in ((Path.cwd(), ""), (package, "l3prune/"), (Path.home(), "~/")):
        if absolute.is_relative_to(base):
            return prefix + str(absolute.relative_to(base))
    return str(absolute)


def require_file(path: str | Path, what: str) -> Path:
    """Resolve ``path`` and fail with a message naming it when it is missing, a folder or a device."""
    return require_input_file(path, what)


class Records(list):
    """Rows of a data file as dicts, with ``where[i]``, the ``file:line`` row i came from (for messages)."""

    def __init__(self, rows: list[dict[str, Any]], where: list[str]) -> None:
        super().__init__(rows)
        self.where = where

    def head(self, n: int | None) -> Records:
        return self if n is None else Records(self[:n], self.where[:n])


def read_records(path: str | Path, what: str = "data file") -> Records:
    """Rows of a ``.jsonl`` (one object a line), ``.csv`` or ``.tsv`` file as dicts."""
    p = require_file(path, what)
    suffix = p.suffix.lower()
    rows: list[dict[str, Any]] = []
    where: list[str] = []
    if suffix in {".jsonl", ".json"}:
        for at, row in iter_jsonl(p, what):
            if not isinstance(row, dict):
                raise L3PruneError(f"{at}: expected a JSON object per line, got {type(row).__name__}")
            rows.append(row)
            where.append(at)
    elif suffix in {".csv", ".tsv"}:
        for at, row in iter_csv(p, what):
            rows.append(row)
            where.append(at)
    else:
        raise L3PruneError(f"{p}: unsupported file type {suffix!r}; use .jsonl, .csv or .tsv")
    if not rows:
        raise L3PruneError(f"{p} has no rows")
    return Records(rows, where)


def texts_of(rows: Records, column: str) -> list[str]:
    """Column ``column`` of every row, each a non-empty string (texts the user controls: an error names file:line)."""
    return [string_field(row, column, at) for row, at in zip(rows, rows.where)]


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
    texts = list(texts)
    out = encoder.encode(texts, instruction=instruction, batch_size=batch_size, normalize=False, show_progress=progress)
    emb = np.asarray(out, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(texts):
        raise L3PruneError(
            f"encoder returned shape {emb.shape} for {len(texts)} texts; it must return (len(texts), dim)"
        )
    if not np.isfinite(emb).all():
        raise L3PruneError("encoder returned NaN or inf embeddings; check the model dtype (try float32)")
    return emb


def encode_nonempty(encoder: TextEncoder, texts: Sequence[str], *, batch_size: int, progress: bool | None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Embed the documents that have text; an empty one (public corpora hold a few) gets a zero row.

    Returns the ``(len(texts), dim)`` embeddings and the ``(len(texts),)`` mask of empty documents, which
    the ranking tasks score -inf: kept in the corpus, as MTEB keeps them, but retrieved by no query.
    """
    empty = np.array([not t.strip() for t in texts], dtype=bool)
    keep = [t for t, e in zip(texts, empty) if not e]
    if not keep:
        raise L3PruneError("every document is empty; nothing can be retrieved")
    emb = encode_texts(encoder, keep, None, batch_size=batch_size, progress=progress)
    out = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
    out[~empty] = emb
    return out, empty


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
