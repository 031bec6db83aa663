"""What STS and pair classification share: rows of two sentences and a target, both sides encoded alike.

The two tasks differ only in how the target column is read (a score or a 0/1 label) and in the
metric; the file reading, the optional ``limit`` and the symmetric encoding live here once.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from l3prune.evaluation._common import Records, Task, TextEncoder, encode_texts, read_records, require_columns, texts_of


@dataclass
class PairData:
    sentences1: list[str]
    sentences2: list[str]
    targets: np.ndarray  # (n,) gold score (STS) or 0/1 label (pair classification)


@dataclass
class SentencePairTask(Task):
    """``{sentence1, sentence2, <target>}`` rows from a .jsonl/.csv/.tsv file; the instruction goes on both sides."""

    path: str | Path
    name: str = ""
    instruction: str | None = None
    limit: int | None = None  # keep the first n pairs (quick checks); None = all
    columns: tuple[str, str, str] = ("sentence1", "sentence2", "target")

    file_kind: ClassVar[str] = "pairs file"
    _data: PairData | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name = self.name or Path(self.path).stem

    @abstractmethod
    def parse_targets(self, rows: Records) -> np.ndarray:
        """The target column as an array; raises ``L3PruneError`` naming file:line on a bad value."""

    @abstractmethod
    def metrics(self, emb1: np.ndarray, emb2: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        """All metrics (x100) from the two sides' embeddings."""

    def load(self) -> PairData:
        if self._data is None:
            rows = read_records(self.path, f"{self.file_kind} for {self.name}")
            require_columns(rows, self.columns, self.path)
            rows = rows.head(self.limit)
            c1, c2, _ = self.columns
            sentences1, sentences2 = texts_of(rows, c1), texts_of(rows, c2)  # user-controlled: empty is an error
            self._data = PairData(sentences1, sentences2, self.parse_targets(rows))
        return self._data

    def num_texts(self) -> int:
        return 2 * len(self.load().targets)

    def sample_texts(self, n: int) -> list[str]:
        return self.load().sentences1[:n]

    def evaluate(
        self, encoder: TextEncoder, *, batch_size: int = 32, progress: bool | None = None
    ) -> dict[str, float]:
        data = self.load()
        emb1 = encode_texts(encoder, data.sentences1, self.instruction, batch_size=batch_size, progress=progress)
        emb2 = encode_texts(encoder, data.sentences2, self.instruction, batch_size=batch_size, progress=progress)
        return self.metrics(emb1, emb2, data.targets)
