"""Encode a text file into a .npy matrix in chunks, so memory stays flat for millions of lines.

Input: ``.txt`` (one text per line), ``.jsonl``/``.ndjson`` (``{"text": ..., "instruction": ...}`` per line), ``.json``
(a list of texts or such objects) or ``.csv``/``.tsv`` (a ``text`` column, optionally ``instruction``).
The output is written beside the target and swapped in only when every row is in place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format
from tqdm.auto import tqdm

from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.files import atomic_output, check_output
from l3prune.files import iter_csv, iter_jsonl, iter_lines, loads_strict, read_text, string_field

logger = logging.getLogger(__name__)
ROW_DTYPE = np.dtype("<f4")


#: Input formats by suffix (case-insensitive): what a file of each holds.
INPUT_FORMATS = {".txt": "lines", ".text": "lines", "": "lines", ".jsonl": "jsonl", ".ndjson": "jsonl",
                 ".json": "json", ".csv": "csv", ".tsv": "csv"}


def _row_input(row, where: str, *, empty_instruction_is_none: bool = False) -> tuple[str | None, str]:
    """(instruction, text) of one JSON object or CSV row with a ``text`` and an optional ``instruction`` (a CSV
    row without one has an empty cell)."""
    if isinstance(row, str):  # a .json list may hold plain strings
        if not row.strip():
            raise L3PruneError(f"{where}: empty text; remove it or give it content")
        return None, row
    if not isinstance(row, dict):
        raise L3PruneError(f'{where}: expected a JSON object with a string field "text"')
    instruction = row.get("instruction")
    if empty_instruction_is_none and instruction == "":
        instruction = None
    if instruction is not None:
        instruction = string_field(row, "instruction", where)
    return instruction, string_field(row, "text", where)


def read_inputs(path: str | os.PathLike) -> Iterator[tuple[str | None, str]]:
    """Yield (instruction, text) per text, read by the file's format (``INPUT_FORMATS``), failing with file:line on
    an empty, mistyped or malformed entry: a JSON or CSV file is never embedded as if it were plain lines."""
    path = Path(path)
    kind = INPUT_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise L3PruneError(f"input file {path} has the suffix {path.suffix!r}; give a .txt file (one text a line), "
                           ".jsonl/.ndjson (one object with \"text\" a line), .json (a list of texts or objects) or "
                           ".csv/.tsv (with a \"text\" column)")
    if kind == "jsonl":
        for where, row in iter_jsonl(path, "input file"):
            yield _row_input(row, where)
    elif kind == "json":
        rows = loads_strict(read_text(path, "input file"), str(path))
        if not isinstance(rows, list):
            raise L3PruneError(f"{path}: a .json input must hold a list of texts or of objects with \"text\"")
        for i, row in enumerate(rows):
            yield _row_input(row, f"{path}[{i}]")
    elif kind == "csv":
        for where, row in iter_csv(path, "input file"):
            if "text" not in row:
                raise L3PruneError(f'{path}: no "text" column (columns: {sorted(row)}); name the column of texts "text"')
            yield _row_input(row, where, empty_instruction_is_none=True)
    else:
        for lineno, line in iter_lines(path, "input file"):
            if not line.strip():
                raise L3PruneError(f"{path}:{lineno}: empty text; remove the line or give it content")
            yield None, line


def count_inputs(path: str | os.PathLike) -> int:
    count = sum(1 for _ in read_inputs(path))
    if count == 0:
        raise L3PruneError(f"input file {path} is empty; give one text per line")
    return count


def check_encode_paths(input_path: str | os.PathLike, output_path: str | os.PathLike, *,
                       overwrite: bool = False) -> int:
    """Check the output path and every input line, before any model loads; return the number of texts."""
    output_path = Path(output_path)
    if output_path.suffix != ".npy":
        raise L3PruneError(f"output {output_path} must end in .npy")
    check_output(output_path, overwrite=overwrite)
    return count_inputs(input_path)


def encode_file(
    encoder: LLMEncoder | Callable[[], LLMEncoder],
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

    The paths and every line are checked in a first streaming pass, before ``encoder`` (an encoder,
    or a callable that loads one) is loaded, so bad input fails before any compute. The lines are then
    encoded ``chunk_size`` at a time and appended to a temporary ``.npy`` whose header already holds the
    final shape, swapped in at the end. Plain sequential writes, not a memory map: a map's written
    pages stay in the process's resident memory, which would grow with the output.
    """
    output_path = Path(output_path)
    total = check_encode_paths(input_path, output_path, overwrite=overwrite)
    if not isinstance(encoder, LLMEncoder):
        encoder = encoder()
    header = {"descr": npy_format.dtype_to_descr(ROW_DTYPE), "fortran_order": False, "shape": (total, encoder.hidden_size)}
    done, truncated_before = 0, encoder.collator.truncated
    with atomic_output(output_path, overwrite=overwrite) as tmp, tmp.open("wb") as out, \
            tqdm(total=total, desc="encode", unit="text", disable=total < 256) as bar:
        npy_format.write_array_header_2_0(out, header)
        for chunk in _chunks(read_inputs(input_path), chunk_size):
            items = [(ins or instruction, text) for ins, text in chunk]
            rows = encoder.encode(items, batch_size=batch_size, normalize=normalize, show_progress=False,
                                  warn_truncation=False)
            out.write(np.ascontiguousarray(rows, dtype=ROW_DTYPE).tobytes())
            done += len(items)
            bar.update(len(items))
        if done != total:  # the input changed between the two passes
            raise L3PruneError(f"{input_path} changed while it was encoded ({total} lines, then {done}); run again")
    truncated = encoder.collator.truncated - truncated_before
    if truncated:  # once, for the whole file
        logger.warning("%d of %d text(s) exceed max_length=%d tokens and were truncated", truncated, total,
                       encoder.settings.max_length)
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
