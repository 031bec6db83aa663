"""Reading user text files the same way everywhere: UTF-8, rows = the lines a user sees, errors with file:line.

Lines end at ``\\n`` only (one trailing ``\\r`` is stripped, for Windows files): Python's default
universal newlines would also split at a lone ``\\r`` inside a line and give more rows than lines.
Bad bytes, a missing file, a folder or a device become one ``L3PruneError`` naming the file.
"""

from __future__ import annotations

import csv
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from l3prune.errors import L3PruneError
from l3prune.files.strict_json import loads_strict


def require_input_file(path: str | os.PathLike, what: str = "input file") -> Path:
    """``path`` as a Path if it is an existing regular file; otherwise an error that says what it is."""
    p = Path(path).expanduser()
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        if p.is_symlink():
            raise L3PruneError(f"{what} {p} is a symbolic link to {os.readlink(p)}, which does not exist; fix the "
                               "link or pass the file itself") from None
        raise L3PruneError(f"{what} {p} does not exist; check the path") from None
    except OSError as exc:
        raise L3PruneError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise L3PruneError(f"{what} {p} is a folder; pass a file")
    if not stat.S_ISREG(mode):
        raise L3PruneError(f"{what} {p} is not a regular file (a device or pipe); pass a file")
    if not os.access(p, os.R_OK):
        raise L3PruneError(f"{what} {p} is not readable; check its permissions")
    return p


def iter_lines(path: str | os.PathLike, what: str = "input file") -> Iterator[tuple[int, str]]:
    """(line number, line without its line ending) for every line of a UTF-8 text file; a leading BOM is dropped.

    Each line is decoded on its own, so a bad byte is reported at its own line.
    """
    p = require_input_file(path, what)
    with p.open("rb") as handle:
        for lineno, raw in enumerate(handle, 1):  # binary lines end at b"\n" only
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise L3PruneError(f"{p}:{lineno}: not UTF-8 text ({exc.reason} at byte {exc.start} of the line); "
                                   "save the file as UTF-8") from None
            if lineno == 1:
                line = line.removeprefix("\ufeff")  # a UTF-8 byte order mark is not text
            yield lineno, line.removesuffix("\n").removesuffix("\r")


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The whole file as text (a leading BOM dropped), with the same checks as :func:`iter_lines`."""
    p = require_input_file(path, what)
    data = p.read_bytes()
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise L3PruneError(f"{p}:{line}: not UTF-8 text ({exc.reason}); save the file as UTF-8") from None


def iter_jsonl(path: str | os.PathLike, what: str = "input file") -> Iterator[tuple[str, Any]]:
    """(``file:line``, parsed value) for every non-blank line of a JSON Lines file; NaN/Infinity are refused."""
    for lineno, line in iter_lines(path, what):
        if not line.strip():
            continue
        where = f"{Path(path)}:{lineno}"
        yield where, loads_strict(line, where, "; write one JSON object per line", whole_file=False)


def iter_csv(path: str | os.PathLike, what: str = "input file") -> Iterator[tuple[str, dict[str, str]]]:
    """(``file:line``, row) for every row of a .csv or .tsv file with a header line; a quoted field may span lines
    (its newlines are kept), and ``line`` is where its row starts."""
    p = Path(path)
    delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
    lines = (line + "\n" for _, line in iter_lines(p, what))
    reader = csv.DictReader(lines, delimiter=delimiter)
    try:
        reader.fieldnames  # noqa: B018 - reads the header, so that line_num counts from it
        start = reader.line_num + 1
        for row in reader:
            where = f"{p}:{start}"
            if None in row:
                raise L3PruneError(f"{where}: more fields than the header has columns")
            yield where, row
            start = reader.line_num + 1
    except csv.Error as exc:
        raise L3PruneError(f"{p}:{reader.line_num or 1}: malformed CSV ({exc})") from None


def string_field(row: dict[str, Any], name: str, where: str, *, allow_empty: bool = False) -> str:
    """``row[name]`` if it is a string (non-blank unless ``allow_empty``); else an error naming file:line and field."""
    if name not in row:
        raise L3PruneError(f"{where}: missing field {name!r}")
    value = row[name]
    if not isinstance(value, str):
        got = "null" if value is None else type(value).__name__
        raise L3PruneError(f"{where}: field {name!r} must be a string, got {got}")
    if not allow_empty and not value.strip():
        raise L3PruneError(f"{where}: field {name!r} is empty; give it text or remove the line")
    return value


def number_field(row: dict[str, Any], name: str, where: str) -> float:
    """``row[name]`` as a finite number: a JSON number, or a numeric string (CSV); never NaN, inf or a bool."""
    if name not in row:
        raise L3PruneError(f"{where}: missing field {name!r}")
    value = row[name]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        got = "null" if value is None else type(value).__name__
        raise L3PruneError(f"{where}: field {name!r} must be a number, got {got}")
    try:
        number = float(value)
    except ValueError:
        raise L3PruneError(f"{where}: field {name!r} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise L3PruneError(f"{where}: field {name!r} is {value!r}; give a finite number")
    return number
