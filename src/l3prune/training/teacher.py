"""The teacher of a distilled run: loaded and fingerprinted once, its embeddings of every training text computed
once and cached on disk, so that a student's step costs what it costs without a teacher.

A teacher is an l3prune encoder folder (typically the trained full model; an exported folder is one too), a
stock sentence-transformers folder, or ``minilm``. The cache is keyed by the teacher's fingerprint (a hash of its
files), the texts with their instructions, the max length and the dtype; a file that does not match its key,
or whose bytes do not match the hash it was written with, is rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from l3prune.data import Triplet
from l3prune.devices import dtype_name
from l3prune.errors import L3PruneError
from l3prune.files import atomic_output, dumps
from l3prune.loading import cache_dir, resolve
from l3prune.settings import LoadOptions

logger = logging.getLogger(__name__)

TextKey = tuple[str | None, str]  # (instruction, text)


@dataclass
class Teacher:
    """A loaded teacher: ``encode`` maps (instruction, text) pairs to float32 embeddings."""

    reference: str
    kind: str  # "l3prune" or "sentence-transformers"
    fingerprint: str
    dim: int
    max_length: int
    dtype: str
    model: object

    def encode(self, pairs: Sequence[TextKey], *, batch_size: int = 32) -> np.ndarray:
        if self.kind == "l3prune":
            return self.model.encode(list(pairs), batch_size=batch_size, show_progress=True)
        # Stock sentence-transformers models (MiniLM) were trained without instructions: the text alone.
        return self.model.encode([text for _, text in pairs], batch_size=batch_size, show_progress=True)

    def describe(self) -> dict:
        return {"reference": self.reference, "kind": self.kind, "fingerprint": self.fingerprint, "dim": self.dim,
                "max_length": self.max_length, "dtype": self.dtype}


def _folder_of(reference: str) -> Path:
    from l3prune.evaluation.baselines import BASELINES

    if reference in BASELINES:
        return BASELINES[reference]()
    location = Path(resolve(reference).location)
    if not location.is_dir():
        raise L3PruneError(f"teacher {reference!r} is not a local folder; l3prune distils from a local encoder folder, "
                           "a sentence-transformers folder or 'minilm'")
    return location


def fingerprint(folder: Path) -> str:
    """A hash of every file in the folder (names and bytes): a changed or retrained teacher is another teacher."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def load_teacher(reference: str, *, load: LoadOptions) -> Teacher:
    """Load and fingerprint a teacher on ``load.device``: an l3prune folder natively (its own pooling, max length
    ``load.max_length`` if given), a stock sentence-transformers folder or ``minilm`` with sentence-transformers."""
    from l3prune.encoder import LLMEncoder
    from l3prune.evaluation.baselines import BASELINES, SentenceTransformerEncoder, is_sentence_transformers

    try:
        folder = _folder_of(reference)
        if reference in BASELINES or is_sentence_transformers(folder):
            model = SentenceTransformerEncoder(reference if reference in BASELINES else str(folder), device=load.device)
            st = model.model
            dim = int(st.get_sentence_embedding_dimension())
            return Teacher(reference, "sentence-transformers", fingerprint(folder), dim, int(st.max_seq_length),
                           dtype_name(next(st.parameters()).dtype), model)
        encoder = LLMEncoder.from_pretrained(folder, load=LoadOptions(max_length=load.max_length, dtype=load.dtype,
                                                                      device=load.device))
    except L3PruneError as exc:
        raise L3PruneError(f"could not load the teacher {reference!r}: {exc}") from None
    return Teacher(reference, "l3prune", fingerprint(folder), encoder.hidden_size, encoder.settings.max_length,
                   dtype_name(encoder.dtype), encoder)


class TeacherTable:
    """The teacher's embedding of every distinct training text, and each triplet's rows in it."""

    def __init__(self, embeddings: np.ndarray, rows: np.ndarray, info: dict):
        self.embeddings = torch.from_numpy(embeddings)  # (texts, dim) float32
        self.rows = rows  # (triplets, 3): the rows of each triplet's query, positive and negative
        self.info = info

    @property
    def dim(self) -> int:
        return self.embeddings.shape[1]

    def lookup(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The teacher's query, positive and negative embeddings of these triplets: (b, dim) each."""
        rows = self.rows[np.asarray(indices)]  # (b, 3)
        return tuple(self.embeddings[torch.from_numpy(rows[:, k])] for k in range(3))  # type: ignore[return-value]


def triplet_texts(triplets: Sequence[Triplet]) -> tuple[list[TextKey], np.ndarray]:
    """The distinct (instruction, text) pairs of the triplets, in first-seen order, and each triplet's rows."""
    index: dict[TextKey, int] = {}
    rows = np.empty((len(triplets), 3), dtype=np.int64)
    for i, t in enumerate(triplets):
        for k, key in enumerate(((t.query_instruction, t.query), (t.doc_instruction, t.positive),
                                 (t.doc_instruction, t.negative))):
            rows[i, k] = index.setdefault(key, len(index))
    return list(index), rows


def cache_key(teacher: Teacher, texts: Sequence[TextKey]) -> str:
    """What the teacher's embeddings depend on: the teacher, the texts with their instructions, max length, dtype."""
    digest = hashlib.sha256(dumps(teacher.describe(), indent=None).encode())
    for instruction, text in texts:
        digest.update(dumps([instruction, text], indent=None).encode() + b"\n")
    return digest.hexdigest()[:24]


def teacher_cache_dir() -> Path:
    return cache_dir() / "teacher"


def _read_cached(folder: Path, key: str, count: int) -> np.ndarray | None:
    """The cached embeddings if they are whole and are this key's; None (with the reason logged) otherwise."""
    meta_file, array_file = folder / f"{key}.json", folder / f"{key}.npy"
    if not meta_file.is_file() or not array_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        data = array_file.read_bytes()
        if meta.get("cache_key") != key or meta.get("sha256") != hashlib.sha256(data).hexdigest():
            raise ValueError("its key or checksum does not match")
        embeddings = np.load(io.BytesIO(data), allow_pickle=False)  # the bytes just checked, not a second read
        if embeddings.shape != (count, meta["dim"]) or embeddings.dtype != np.float32:
            raise ValueError(f"its shape {embeddings.shape} is not ({count}, {meta['dim']})")
    except (ValueError, KeyError, TypeError, OSError) as exc:
        logger.warning("teacher cache %s is stale or corrupt (%s); computing it again", array_file, exc)
        return None
    return embeddings


def teacher_table(teacher_ref: str, triplets: Sequence[Triplet], *, load: LoadOptions, batch_size: int = 32,
                  folder: Path | None = None, student_dim: int | None = None) -> TeacherTable:
    """Load the teacher and return its embeddings of every training text: from the cache when it holds this
    exact key, else computed once (with a progress bar) and cached. With ``student_dim`` (the embedding term),
    a teacher of another dimension is refused as soon as it has loaded."""
    texts, rows = triplet_texts(triplets)
    teacher = load_teacher(teacher_ref, load=load)
    if student_dim is not None and teacher.dim != student_dim:
        raise L3PruneError(f"the embedding distillation term needs the teacher's dimension to be the student's, but "
                           f"teacher {teacher_ref!r} gives {teacher.dim} and the student {student_dim}; use "
                           "--distill-loss similarity, which works with a teacher of any dimension")
    key = cache_key(teacher, texts)
    folder = folder or teacher_cache_dir()
    info = {**teacher.describe(), "cache_key": key, "texts": len(texts)}
    embeddings = _read_cached(folder, key, len(texts))
    if embeddings is not None:
        logger.info("teacher %s: %d embeddings from the cache (%s)", teacher_ref, len(texts), key)
        return TeacherTable(embeddings, rows, {**info, "cached": True})
    for stale in (folder / f"{key}.npy", folder / f"{key}.json"):  # ours, and not to be trusted: replaced below
        stale.unlink(missing_ok=True)
    logger.info("teacher %s: embedding %d distinct training texts once", teacher_ref, len(texts))
    start = time.perf_counter()
    with torch.inference_mode():
        embeddings = np.ascontiguousarray(teacher.encode(texts, batch_size=batch_size), dtype=np.float32)
    if not np.isfinite(embeddings).all():
        raise L3PruneError(f"the teacher {teacher_ref!r} gave non-finite embeddings; check its weights")
    seconds = time.perf_counter() - start
    buffer = io.BytesIO()
    np.save(buffer, embeddings, allow_pickle=False)
    with atomic_output(folder / f"{key}.npy", overwrite=True) as tmp:
        tmp.write_bytes(buffer.getvalue())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()  # of the bytes written, without reading them back
    meta = {**info, "sha256": digest, "seconds": round(seconds, 1)}
    with atomic_output(folder / f"{key}.json", overwrite=True) as tmp:
        tmp.write_text(dumps(meta) + "\n", encoding="utf-8")
    logger.info("teacher %s: %d texts in %.0f s, cached as %s", teacher_ref, len(texts), seconds, key)
    return TeacherTable(embeddings, rows, {**info, "cached": False, "seconds": round(seconds, 1)})
