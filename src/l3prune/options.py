"""Settings dataclasses read from files and flags: their field types, from real type hints.

``LoadOptions`` and ``TrainConfig`` are flat dataclasses whose fields are also recipe-file keys and CLI
flags. This module is the one place that reads their annotations (``typing.get_type_hints``, no
``eval``), checks values against them, and layers defaults < file < explicit values. It imports
nothing of l3prune but the error type, so any module may use it.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import field, fields, replace
from typing import Any

from l3prune.errors import L3PruneError


def described(default: Any, text: str, **extra: Any) -> Any:
    """A dataclass field with its help text (and optional ``choices``, ``unset`` text, ``aliases``)."""
    return field(default=default, metadata={"help": text, **extra})


def field_types(cls: type) -> dict[str, tuple[type, ...]]:
    """Python types each field accepts, e.g. ``int | None`` -> (int, NoneType); ``float`` also takes int."""
    out: dict[str, tuple[type, ...]] = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else (hint,)
        allowed: list[type] = []
        for arg in args:
            allowed.append(typing.get_origin(arg) or arg)
            if arg is float:
                allowed.append(int)
        out[name] = tuple(allowed)
    return out


def check_types(settings: Any) -> None:
    """Every field of a dataclass instance has a value of its annotated type; the message names the field."""
    for name, allowed in field_types(type(settings)).items():
        value = getattr(settings, name)
        bad = isinstance(value, bool) and bool not in allowed  # bool is an int subclass; 1 is not True
        if bad or not isinstance(value, allowed):
            names = " or ".join(dict.fromkeys("null" if t is type(None) else t.__name__ for t in allowed))
            raise L3PruneError(f"setting {name!r} must be {names}, got {value!r}")
        if isinstance(value, list) and not all(isinstance(item, str) for item in value):
            raise L3PruneError(f"setting {name!r} must be a list of strings, got {value!r}")


def check_choices(settings: Any) -> None:
    """Fields with ``choices`` in their metadata hold one of them (or None)."""
    for f in fields(settings):
        choices = f.metadata.get("choices")
        value = getattr(settings, f.name)
        if choices and value is not None and value not in choices:
            raise L3PruneError(f"{f.name} must be one of {list(choices)}, got {value!r}")


def layered(base: Any, file_values: Mapping[str, Any], overrides: Mapping[str, Any]) -> Any:
    """``base`` with the file's values for its fields, then every override that is not None (flags win).

    Override keys must be fields of ``base``; file keys of other dataclasses are left to them. YAML reads
    2e-4 (no dot) as a string, so a string where a float is allowed is read as the number it is.
    """
    cls = type(base)
    types_ = field_types(cls)
    values = {k: v for k, v in file_values.items() if k in types_}
    for key, value in overrides.items():
        if key not in types_:
            raise L3PruneError(f"unknown setting {key!r}; known settings: {sorted(types_)}")
        if value is not None:
            values[key] = value
    for key, value in values.items():
        if isinstance(value, str) and float in types_[key]:
            try:
                values[key] = float(value)
            except ValueError:
                pass  # check_types names the field
    return replace(base, **values)
