"""Settings as plain data, without torch: the command line builds its flags from these fields and checks
them before any model code is imported, so ``l3prune --help`` and a mistyped flag answer in a fraction of a second.

- The mechanics every settings dataclass shares: field types from real type hints (``typing.get_type_hints``, no
  ``eval``), type and choice checks, and defaults < file < explicit values (``layered``). ``LoadOptions`` and
  ``TrainConfig`` are flat dataclasses whose fields are also recipe-file keys and CLI flags.
- ``LoadOptions``: how every command loads a model (pooling, max length, dtype, device).
- The pooling modes' names.
- ``EncoderSettings``: how a saved encoder tokenizes and pools, read from and written to ``l3prune.json``.
"""

from __future__ import annotations

import json
import reprlib
import string
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from l3prune.errors import L3PruneError
from l3prune.files import dumps, reject_nan_constant

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


def _short(value: Any) -> str:
    """A value as a message shows it: bounded, however large or deeply nested it is (a YAML alias bomb)."""
    return reprlib.repr(value)


def _list_items(hint: Any) -> type | None:
    """``X`` of a ``list[X]`` (possibly ``| None``) hint, else None."""
    for arg in (typing.get_args(hint) if typing.get_origin(hint) in (types.UnionType, typing.Union) else (hint,)):
        if typing.get_origin(arg) is list and typing.get_args(arg):
            return typing.get_args(arg)[0]
    return None


def check_types(settings: Any) -> None:
    """Every field of a dataclass instance has a value of its annotated type (list items too); the message names
    the field and shows the value bounded."""
    hints = typing.get_type_hints(type(settings))
    for name, allowed in field_types(type(settings)).items():
        value = getattr(settings, name)
        bad = isinstance(value, bool) and bool not in allowed  # bool is an int subclass; 1 is not True
        if bad or not isinstance(value, allowed):
            names = " or ".join(dict.fromkeys("null" if t is type(None) else t.__name__ for t in allowed))
            raise L3PruneError(f"setting {name!r} must be {names}, got {_short(value)}")
        item = _list_items(hints[name])
        if isinstance(value, list) and item is not None and not all(
                isinstance(v, item) and not (isinstance(v, bool) and item is not bool) for v in value):
            raise L3PruneError(f"setting {name!r} must be a list of {item.__name__}s, got {_short(value)}")


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


POOLING_MODES = ("mean", "weighted_mean", "weighted_mean_from_instruction", "last_token", "eos", "bos")


def check_pooling(mode: str) -> str:
    if mode not in POOLING_MODES:
        raise L3PruneError(f"unknown pooling {mode!r}; choose from {list(POOLING_MODES)}")
    return mode


#: The dtype names every command accepts; ``auto`` picks bf16 where the hardware multiplies it natively,
#: else fp32 (``devices.default_dtype``), and ``devices.DTYPES`` maps the others to torch dtypes.
DTYPE_NAMES = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class LoadOptions:
    """How a command loads a model, shared by every command: each field is also a flag (``--max-length``).

    ``pooling`` and ``max_length`` left as None keep the model's saved setting (weighted_mean and 512 for a
    model l3prune has not saved).
    """

    pooling: str | None = described(None, "override the pooling", choices=POOLING_MODES,
                                    unset="the model's saved setting, else weighted_mean")
    max_length: int | None = described(None, "maximum tokens per text (longer texts are truncated)",
                                       unset="the model's saved setting, else 512")
    dtype: str = described("auto", "weights dtype; auto = bf16 on GPUs that support it and on CPUs with AMX or "
                                   "AVX512-BF16, else fp32",
                           choices=DTYPE_NAMES)
    device: str | None = described(None, "e.g. cpu, cuda, cuda:1", unset="cuda if available")

    def validate(self) -> LoadOptions:
        """Check every value; messages name the setting and the fix."""
        check_types(self)
        check_choices(self)  # pooling and dtype among their names
        if self.max_length is not None and self.max_length < 2:
            raise L3PruneError(f"max_length must be an integer >= 2, got {self.max_length!r}")
        return self


SETTINGS_FILE = "l3prune.json"


@dataclass
class EncoderSettings:
    """How the encoder tokenizes and pools, plus where its layers came from; saved as ``l3prune.json``."""

    pooling: str = "weighted_mean"
    max_length: int = 512
    padding_side: str = "left"
    instruction_template: str = "{instruction}\n"
    base_model: str | None = None
    original_num_layers: int | None = None
    kept_layers: list[int] | None = None  # indices into the original model
    pruning: dict = field(default_factory=dict)  # criterion and reason, recorded by whoever pruned
    dtype: str | None = None  # the weights' dtype when last loaded or saved (a record: loading resolves it anew)

    def validate(self) -> EncoderSettings:
        """Check every field, as ``l3prune.json`` may have been edited by hand; messages name the field."""
        check_types(self)
        LoadOptions(pooling=self.pooling, max_length=self.max_length).validate()
        if self.padding_side not in ("left", "right"):
            raise L3PruneError(f"padding_side must be 'left' or 'right', got {_short(self.padding_side)}")
        _check_template(self.instruction_template)
        if self.original_num_layers is not None and self.original_num_layers < 1:
            raise L3PruneError(f"original_num_layers must be at least 1, got {self.original_num_layers}")
        if self.kept_layers is not None and (not self.kept_layers or min(self.kept_layers) < 0
                                             or len(set(self.kept_layers)) != len(self.kept_layers)):
            raise L3PruneError(f"kept_layers must be distinct layer indices >= 0, got {_short(self.kept_layers)}")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.pruning.items()):
            raise L3PruneError(f"pruning must map names to strings (criterion, reason), got {_short(self.pruning)}")
        return self

    @classmethod
    def read(cls, folder: str | Path) -> EncoderSettings | None:
        """The settings saved in ``folder``, or None for a folder l3prune has not saved (a plain model)."""
        file = Path(folder) / SETTINGS_FILE
        if not file.is_file():
            return None
        try:
            values = json.loads(file.read_text(encoding="utf-8"), parse_constant=reject_nan_constant)
            if not isinstance(values, dict):
                raise TypeError("expected a JSON object of settings")
            return cls(**values).validate()
        except (ValueError, TypeError, RecursionError, L3PruneError) as exc:  # bad JSON/UTF-8, unknown keys, values
            raise L3PruneError(f"{file} is not a valid l3prune settings file: {exc}; fix it or save the encoder "
                               "again") from None

    def write(self, folder: str | Path) -> Path:
        """Write ``l3prune.json`` into ``folder`` as is (the caller's ``atomic_output`` makes it safe)."""
        file = Path(folder) / SETTINGS_FILE
        file.write_text(dumps(asdict(self)) + "\n", encoding="utf-8")
        return file


def _check_template(template: str) -> None:
    """An instruction template holds exactly one plain ``{instruction}``: no other field, no format spec (a
    ``{instruction:>2000000000}`` would pad every instruction to gigabytes)."""
    try:
        fields_ = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                   if name is not None]
    except ValueError as exc:
        raise L3PruneError(f"instruction_template {_short(template)} is not a valid template ({exc})") from None
    if fields_ != [("instruction", "", None)]:
        raise L3PruneError(f"instruction_template must hold exactly one plain '{{instruction}}' (no other field, no "
                           f"format spec or conversion), got {_short(template)}")
