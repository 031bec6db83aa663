"""Encode a text file into a .npy matrix in chunks, so memory stays flat for millions of lines.

Input: ``.txt`` (one text per line) or ``.jsonl`` (``{"text": ..., "instruction": ...}`` per line).
The output is written to a temporary file and renamed only when every row is in place.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format
from tqdm.auto import tqdm

from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError

logger = logging.getLogger(__name__)
ROW_DTYPE = np.dtype("<f4")


def read_inputs(path: str | os.PathLike) -> Iterator[tuple[str | None, str]]:
    """Yield (instruction, text) per line, failing with file:line on an empty or malformed line."""
    path = Path(path)
    if not path.is_file():
        raise L3PruneError(f"input file {path} does not exist")
    is_jsonl = path.suffix == ".jsonl"
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if is_jsonl:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise L3PruneError(f"{path}:{lineno}: invalid JSON ({exc.msg}); one object per line") from None
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    raise L3PruneError(f'{path}:{lineno}: needs a string field "text"')
                instruction, text = row.get("instruction"), row["text"]
            else:
                instruction, text = None, line
            if not text.strip():
                raise L3PruneError(f"{path}:{lineno}: empty text; remove the line or give it content")
            yield instruction, text


def count_inputs(path: str | os.PathLike) -> int:
    count = sum(1 for _ in read_inputs(path))
    if count == 0:
        raise L3PruneError(f"input file {path} is empty; give one text per line")
    return count


def encode_file(
    encoder: LLMEncoder,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    instruction: str | None = None,
    batch_size: int = 32,
    normalize: bool = False,
    chunk_size: int = 4096,
    overwrite: bool = False,
) -> Path:
    """Encode every line of ``input_path`` into ``output_path`` (.npy, float32, one row per line).

    The file is validated in a first streaming pass (so bad input fails before any compute), then
    encoded ``chunk_size`` lines at a time and appended to a temporary ``.npy`` whose header already
    holds the final shape. Plain sequential writes, not a memory map: a map's written pages stay in
    the process's resident memory, which would grow with the output.
    """
    output_path = Path(output_path)
    if output_path.suffix != ".npy":
        raise L3PruneError(f"output {output_path} must end in .npy")
    if output_path.exists() and not overwrite:
        raise L3PruneError(f"{output_path} already exists; choose another --output or pass --overwrite")
    total = count_inputs(input_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(f".{output_path.name}.tmp{os.getpid()}.npy")
    header = {"descr": npy_format.dtype_to_descr(ROW_DTYPE), "fortran_order": False, "shape": (total, encoder.hidden_size)}
    try:
        done = 0
        with tmp.open("wb") as out, tqdm(total=total, desc="encode", unit="text", disable=total < 256) as bar:
            npy_format.write_array_header_2_0(out, header)
            for chunk in _chunks(read_inputs(input_path), chunk_size):
                items = [(ins or instruction, text) for ins, text in chunk]
                rows = encoder.encode(items, batch_size=batch_size, normalize=normalize, show_progress=False)
                out.write(np.ascontiguousarray(rows, dtype=ROW_DTYPE).tobytes())
                done += len(items)
                bar.update(len(items))
        if done != total:  # the input changed between the two passes
            raise L3PruneError(f"{input_path} changed while it was encoded ({total} lines, then {done}); run again")
        tmp.replace(output_path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("wrote %d embeddings of size %d to %s", total, encoder.hidden_size, output_path)
    return output_path


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
