"""Strict JSON, read and written the same way everywhere: NaN and Infinity are never JSON, in either direction."""

from __future__ import annotations

import json
import os
from typing import Any

from l3prune.errors import L3PruneError


def loads_strict(text: str, where: str, hint: str = "", *, whole_file: bool = True) -> Any:
    """Parse JSON text, refusing NaN/Infinity; errors name ``where`` (plus the line, for a whole file)."""
    try:
        return json.loads(text, parse_constant=reject_nan_constant)
    except json.JSONDecodeError as exc:
        line = f":{exc.lineno}" if whole_file else ""
        raise L3PruneError(f"{where}{line}: invalid JSON ({exc.msg}){hint}") from None
    except ValueError as exc:
        raise L3PruneError(f"{where}: {exc}") from None
    except RecursionError:
        raise L3PruneError(f"{where}: JSON nested too deeply to read; flatten it") from None


def reject_nan_constant(name: str) -> float:
    """``parse_constant`` for ``json.loads``: NaN and Infinity are not JSON, so a file holding them is refused."""
    raise ValueError(f"{name} is not a valid JSON value; give a finite number")


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """Strict JSON text (``allow_nan=False``): a NaN or inf is an error, never a bare ``NaN`` in the file."""
    try:
        return json.dumps(value, indent=indent, ensure_ascii=False, allow_nan=False, default=_plain)
    except ValueError as exc:
        raise L3PruneError(f"refusing to write JSON with a NaN or infinite value ({exc}); check the inputs that "
                           "produced it") from None


def _plain(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item"):  # numpy and torch scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
