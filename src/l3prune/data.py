"""Training and scan data: (query, positive, negative) triplets, their instructions, and how they are batched.

The paper trains on the public E5 mix in LLM2Vec's "echo-data" layout (one ``<dataset>.jsonl`` per
dataset) with one task instruction per dataset, and draws every batch from a single dataset so that
in-batch negatives are of the same kind as the positive. This module reads that layout and our own
jsonl files into :class:`Triplet` objects and provides :class:`SourceBatchSampler`, a deterministic,
resumable, rank-aware batch order.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from l3prune.errors import L3PruneError
from l3prune.resources import default_train_files
from l3prune.files import iter_jsonl, loads_strict, read_text, require_input_file

logger = logging.getLogger(__name__)

_NLI = "Given a premise, retrieve a hypothesis that is entailed by the premise"
_WIKI_QA = "Given a question, retrieve Wikipedia passages that answer the question"
_QUORA = "Given a question, retrieve questions that are semantically equivalent to the given question"

#: The per-dataset instructions of the E5 mix, as LLM2Vec's ``E5Data`` loader (used by the paper) has them.
#: The echo-data release splits allnli and quora_duplicates in two files with different instructions;
#: the unsplit names are accepted too and take the first split's instruction.
E5_INSTRUCTIONS: dict[str, str] = {
    "allnli": _NLI,
    "allnli_split1": _NLI,
    "allnli_split2": "Retrieve semantically similar text",
    "dureader": "Given a Chinese search query, retrieve web passages that answer the question",
    "eli5_question_answer": "Provided a user question, retrieve the highest voted answers on Reddit ELI5 forum",
    "fever": "Given a claim, retrieve documents that support or refute the claim",
    "hotpot_qa": "Given a multi-hop question, retrieve documents that can help answer the question",
    "miracl": _WIKI_QA,
    "mrtydi": _WIKI_QA,
    "msmarco_passage": "Given a web search query, retrieve relevant passages that answer the query",
    "msmarco_document": "Given a web search query, retrieve relevant documents that answer the query",
    "nq": _WIKI_QA,
    "quora_duplicates": _QUORA,
    "quora_duplicates_split1": _QUORA,
    "quora_duplicates_split2": "Find questions that have the same meaning as the input question",
    "squad": "Retrieve Wikipedia passages that answer the question",
    "t2ranking": "Given a Chinese search query, retrieve web passages that answer the question",
    "trivia_qa": "Retrieve Wikipedia passages that answer the question",
}

#: Instructions for the sources of the triplet files shipped with the package (``resources/train``).
SHIPPED_INSTRUCTIONS: dict[str, str] = {
    "snli_dev": _NLI,
    "snli_test": _NLI,
    "flickr8k_train": "Given an image caption, retrieve other captions of the same image",
    "mrpc_train": "Retrieve sentences that are paraphrases of the given sentence",
    "wikiqa_train": "Given a question, retrieve Wikipedia sentences that answer the question",
}

#: Sources whose positives and negatives are the same kind of text as the query, so that (as in
#: LLM2Vec's E5 loader) both sides get the instruction.
SYMMETRIC_SOURCES: frozenset[str] = frozenset(
    {
        "allnli_split2",
        "quora_duplicates",
        "quora_duplicates_split1",
        "quora_duplicates_split2",
        "flickr8k_train",
        "mrpc_train",
    }
)

# echo-data ships allnli/quora_duplicates as "<name>_split1/2"; LLM2Vec batches both splits together.
_E5_SPLIT = re.compile(r"^(?P<base>[a-z0-9_]+)_split\d+$")


@dataclass(frozen=True)
class Triplet:
    """One training example. ``doc_instruction`` is set only for symmetric tasks."""

    query: str
    positive: str
    negative: str
    source: str
    query_instruction: str | None = None
    doc_instruction: str | None = None


def instruction_for(source: str) -> tuple[str | None, str | None]:
    """(query instruction, document instruction) of a known source; (None, None) for an unknown one."""
    instruction = E5_INSTRUCTIONS.get(source) or SHIPPED_INSTRUCTIONS.get(source)
    if instruction is None:
        return None, None
    return instruction, instruction if source in SYMMETRIC_SOURCES else None


def _optional_text(record: dict[str, Any], name: str, where: str, *, required: bool = False) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise L3PruneError(f"{where}: field {name!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        fix = "give it text" if required else "give it text or leave the field out"
        raise L3PruneError(f"{where}: field {name!r} is empty; {fix}")
    return value


def _required_text(record: dict[str, Any], name: str, where: str) -> str:
    if name not in record:
        raise L3PruneError(f"{where}: missing field {name!r}; every line needs query, positive and negative")
    if record[name] is None:
        raise L3PruneError(f"{where}: field {name!r} must be a string, got null")
    return _optional_text(record, name, where, required=True)


def _to_triplet(record: Any, where: str, default_source: str) -> Triplet:
    if not isinstance(record, dict):
        raise L3PruneError(
            f"{where}: expected a JSON object with query, positive and negative, got {type(record).__name__}"
        )
    return Triplet(
        query=_required_text(record, "query", where),
        positive=_required_text(record, "positive", where),
        negative=_required_text(record, "negative", where),
        source=_optional_text(record, "source", where) or default_source,
        query_instruction=_optional_text(record, "instruction", where),
    )


def read_triplets(path: str | Path) -> list[Triplet]:
    """Read one ``.jsonl`` (one object per line) or ``.json`` (a list of objects) triplet file.

    Each object needs ``query``, ``positive`` and ``negative``; ``instruction`` (for the query) and
    ``source`` (default: the file stem) are optional. No instruction table is applied here: see
    :func:`load_triplets`.
    """
    path = require_input_file(path, "triplet file")
    triplets: list[Triplet] = []
    if path.suffix == ".jsonl":
        triplets = [_to_triplet(record, where, path.stem) for where, record in iter_jsonl(path, "triplet file")]
    elif path.suffix == ".json":
        records = loads_strict(read_text(path, "triplet file"), str(path),
                               "; fix it, or write one object per line as .jsonl")
        if not isinstance(records, list):
            raise L3PruneError(f"{path}: a .json triplet file must hold a list of objects (or use .jsonl)")
        triplets = [_to_triplet(record, f"{path}[{i}]", path.stem) for i, record in enumerate(records)]
    else:
        raise L3PruneError(f"{path}: unsupported extension {path.suffix!r}; use .jsonl (or a .json list)")
    if not triplets:
        raise L3PruneError(f"{path}: no triplets; every line needs query, positive and negative")
    return triplets


def _with_instructions(triplet: Triplet) -> Triplet:
    """Fill the instructions of a known source (unless the file gave one) and merge E5 split names."""
    if triplet.query_instruction is None:
        query_instruction, doc_instruction = instruction_for(triplet.source)
        triplet = replace(triplet, query_instruction=query_instruction, doc_instruction=doc_instruction)
    return _merge_split(triplet)


def _merge_split(triplet: Triplet) -> Triplet:
    match = _E5_SPLIT.match(triplet.source)
    if match and match["base"] in E5_INSTRUCTIONS:
        return replace(triplet, source=match["base"])
    return triplet


def _expand(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise L3PruneError(f"folder {path} holds no .jsonl files; pass a folder of <dataset>.jsonl triplet files")
        return files
    if path.exists():
        return [require_input_file(path, "training data")]
    raise L3PruneError(f"training data {path} does not exist; pass a .jsonl file or a folder of them")


def load_triplets(
    paths: Sequence[str | Path] | str | Path | None = None, *, instructions: bool = True
) -> list[Triplet]:
    """Load triplets from files and folders (a folder means every ``*.jsonl`` in it, e.g. echo-data).

    With ``instructions``, a line's own ``instruction`` wins; otherwise known sources (the E5
    datasets and the shipped files) get theirs from the tables above, and symmetric ones get it on
    both sides. Without it, every instruction is dropped. ``None`` loads the shipped files.
    """
    if paths is None:
        files = default_train_files()
    else:
        if isinstance(paths, (str, Path)):
            paths = [paths]
        if not paths:
            raise L3PruneError("no training data given; pass at least one .jsonl file or folder")
        files = [file for path in paths for file in _expand(Path(path))]
    triplets = [triplet for file in files for triplet in read_triplets(file)]
    if instructions:
        triplets = [_with_instructions(triplet) for triplet in triplets]
    else:
        triplets = [_merge_split(replace(t, query_instruction=None, doc_instruction=None)) for t in triplets]
    counts = Counter(triplet.source for triplet in triplets)
    logger.info("loaded %d triplets from %d files: %s", len(triplets), len(files), dict(sorted(counts.items())))
    uninstructed = sorted({t.source for t in triplets if t.query_instruction is None}) if instructions else []
    if uninstructed:
        logger.info("no instruction known for sources %s; add an 'instruction' field to set one", uninstructed)
    return triplets


class SourceBatchSampler:
    """Deterministic, resumable batches of triplet indices, each batch from a single source.

    ``batch_size`` is the GLOBAL batch size. Epoch ``e`` shuffles every source with the seed
    ``(seed, e)``, cuts it into full batches (the tail is dropped), and shuffles all batches
    together, so sources interleave randomly in proportion to their size. Step ``s`` is batch
    ``s % len(self)`` of epoch ``s // len(self)``: any step can be recomputed, so a resumed run sees
    exactly the batches an uninterrupted run would. With ``world_size > 1`` each rank gets the
    contiguous slice ``[rank * b, (rank + 1) * b)`` of the global batch, ``b = batch_size // world_size``,
    so concatenating the ranks' slices in rank order gives the single-process batch.
    """

    def __init__(
        self,
        triplets: Sequence[Triplet],
        batch_size: int,
        *,
        seed: int = 0,
        world_size: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1:
            raise L3PruneError(f"batch size must be at least 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise L3PruneError(f"rank {rank} is not in 0..{world_size - 1}; check world_size and rank")
        if batch_size % world_size:
            raise L3PruneError(
                f"batch size {batch_size} does not split evenly over {world_size} ranks; "
                f"use a multiple of {world_size}"
            )
        if seed < 0:
            raise L3PruneError(f"seed must be non-negative, got {seed}")
        if not triplets:
            raise L3PruneError("no triplets to batch; load some training data first")
        members: dict[str, list[int]] = {}
        for index, triplet in enumerate(triplets):
            members.setdefault(triplet.source, []).append(index)
        usable = {name: idx for name, idx in members.items() if len(idx) >= batch_size}
        if not usable:
            largest = max(members, key=lambda name: len(members[name]))
            raise L3PruneError(
                f"batch size {batch_size} is larger than the largest source ({largest}, "
                f"{len(members[largest])} triplets); every batch comes from one source, so lower --batch-size"
            )
        for name in sorted(set(members) - set(usable)):
            logger.warning(
                "skipping source %s: %d triplets are fewer than one batch of %d",
                name, len(members[name]), batch_size,
            )
        self.batch_size = batch_size
        self.seed = seed
        self.world_size = world_size
        self.rank = rank
        self.local_batch_size = batch_size // world_size
        self._sources = {name: np.asarray(usable[name]) for name in sorted(usable)}
        self._num_batches = sum(len(idx) // batch_size for idx in self._sources.values())
        self._cached: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        """Global batches per epoch."""
        return self._num_batches

    def epoch_plan(self, epoch: int) -> np.ndarray:
        """All global batches of an epoch, in order: shape (len(self), batch_size)."""
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        rng = np.random.default_rng([self.seed, epoch])
        blocks = []
        for indices in self._sources.values():
            full = len(indices) // self.batch_size * self.batch_size
            blocks.append(rng.permutation(indices)[:full].reshape(-1, self.batch_size))  # (n_s, batch)
        plan = np.concatenate(blocks)[rng.permutation(self._num_batches)]  # (len, batch)
        self._cached = (epoch, plan)
        return plan

    def batch_at(self, step: int) -> list[int]:
        """This rank's triplet indices for a global step (0-based; continues across epochs)."""
        if step < 0:
            raise L3PruneError(f"step must be non-negative, got {step}")
        epoch, position = divmod(step, self._num_batches)
        start = self.rank * self.local_batch_size
        return self.epoch_plan(epoch)[position, start : start + self.local_batch_size].tolist()

    def global_batch_at(self, step: int) -> list[int]:
        """Every rank's triplet indices for a global step, in rank order (the single-process batch)."""
        if step < 0:
            raise L3PruneError(f"step must be non-negative, got {step}")
        epoch, position = divmod(step, self._num_batches)
        return self.epoch_plan(epoch)[position].tolist()

    def iter_from(self, step: int = 0) -> Iterator[list[int]]:
        """Endless batches starting at ``step``; resuming at ``k`` repeats an uninterrupted run from ``k``."""
        while True:
            yield self.batch_at(step)
            step += 1
