"""The training recipe: one flat dataclass whose defaults are the paper's, overridable by a file and by flags.

Precedence is defaults < recipe file (YAML or JSON) < explicit overrides (the CLI's flags). Keeping the
recipe flat means a file key, a dataclass field and a flag are the same name (``lora_r`` = ``--lora-r``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import types
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from l3prune.errors import L3PruneError
from l3prune.textfile import read_text, reject_nan_constant
from l3prune.pooling import check_pooling

logger = logging.getLogger(__name__)

SCHEDULES = ("linear", "constant")
FINETUNE_METHODS = ("lora", "full")
TRAIN_DTYPES = ("fp32", "bf16")
LOG_FORMATS = ("jsonl", "csv")

#: Settings that change how a run is executed or recorded but not what it computes; a resumed run may
#: change them (every other setting must match the interrupted run).
RUN_ONLY = frozenset({"device", "save_every", "keep_checkpoints"})


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass
class TrainConfig:
    """Everything that decides a training run except the model and the output folder.

    Defaults follow the paper (LLM2Vec's supervised recipe): LoRA r=16/alpha=32/dropout 0.05, lr 2e-4,
    300 warm-up steps then linear decay, 1000 steps, global batch 64, max length 512, AdamW without
    weight decay, gradient clipping at 1.0 (the Hugging Face Trainer's default), seed 42.
    """

    data: list[str] | None = field(default=None, metadata=_help(
        "training triplet files or folders (.jsonl, E5/echo-data layout); default: the shipped data"))
    instructions: bool = field(default=True, metadata=_help("give known sources their task instructions"))
    steps: int = field(default=1000, metadata=_help("optimizer steps"))
    batch_size: int = field(default=64, metadata=_help("GLOBAL batch size (triplets per step over all ranks)"))
    max_length: int = field(default=512, metadata=_help("maximum tokens per text"))
    pooling: str | None = field(default=None, metadata=_help("pooling (default: the model's setting)"))
    learning_rate: float = field(default=2e-4, metadata=_help("peak learning rate"))
    warmup_steps: int = field(default=300, metadata=_help("linear warm-up steps (clamped to --steps)"))
    schedule: str = field(default="linear", metadata=_help(
        "after warm-up: linear decay to 0 at the last step, or constant", choices=SCHEDULES))
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay"))
    max_grad_norm: float | None = field(default=1.0, metadata=_help("clip gradients to this norm; null = no clipping"))
    loss_scale: float = field(default=50.0, metadata=_help("cosine similarity scale of the InfoNCE loss (1/temperature)"))
    finetune: str = field(default="lora", metadata=_help("train LoRA adapters or all weights", choices=FINETUNE_METHODS))
    lora_r: int = field(default=16, metadata=_help("LoRA rank"))
    lora_alpha: float = field(default=32.0, metadata=_help("LoRA alpha"))
    lora_dropout: float = field(default=0.05, metadata=_help("LoRA dropout"))
    lora_targets: list[str] | None = field(default=None, metadata=_help(
        "module names LoRA adapts (default: the architecture's attention and MLP projections)"))
    gradient_checkpointing: bool = field(default=False, metadata=_help("recompute activations to save memory"))
    dtype: str | None = field(default=None, metadata=_help(
        "weights dtype (default: bf16 on GPUs that support it, else fp32)", choices=TRAIN_DTYPES))
    device: str | None = field(default=None, metadata=_help("cpu, cuda, cuda:1 (default: cuda if available)"))
    seed: int = field(default=42, metadata=_help("seed of the batch order, LoRA init and dropout"))
    save_every: int = field(default=200, metadata=_help("checkpoint every N steps (0 = only at the end)"))
    keep_checkpoints: int = field(default=1, metadata=_help("how many recent checkpoints to keep"))
    log_format: str = field(default="jsonl", metadata=_help("loss log format", choices=LOG_FORMATS))

    def validate(self) -> TrainConfig:
        """Check every value; messages name the setting and the fix."""
        _check_types(self)
        for name in ("steps", "batch_size", "lora_r", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise L3PruneError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "save_every", "seed"):
            if getattr(self, name) < 0:
                raise L3PruneError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.max_length < 2:
            raise L3PruneError(f"max_length must be at least 2, got {self.max_length}")
        for name in ("learning_rate", "loss_scale", "lora_alpha"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise L3PruneError(f"{name} must be a positive number, got {value}")
        if not (0 <= self.weight_decay < 1):
            raise L3PruneError(f"weight_decay must be in [0, 1), got {self.weight_decay}")
        if not (0 <= self.lora_dropout < 1):
            raise L3PruneError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise L3PruneError(f"max_grad_norm must be positive (or null for no clipping), got {self.max_grad_norm}")
        for f in fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value is not None and value not in choices:
                raise L3PruneError(f"{f.name} must be one of {list(choices)}, got {value!r}")
        if self.pooling is not None:
            check_pooling(self.pooling)
        if self.data is not None and not self.data:
            raise L3PruneError("data is an empty list; give at least one file or folder, or leave it out")
        return self

    @property
    def effective_warmup(self) -> int:
        """Warm-up steps actually used: a warm-up longer than the run is clamped to the run."""
        return min(self.warmup_steps, self.steps)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML or JSON mapping of settings; unknown keys are an error naming the key."""
    path = Path(path)
    text = read_text(path, "recipe file")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise L3PruneError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    elif path.suffix == ".json":
        try:
            values = json.loads(text, parse_constant=reject_nan_constant)
        except json.JSONDecodeError as exc:
            raise L3PruneError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        except ValueError as exc:
            raise L3PruneError(f"{path}: {exc}") from None
    else:
        raise L3PruneError(f"{path}: recipe files must be .yaml, .yml or .json, got {path.suffix!r}")
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise L3PruneError(f"{path}: a recipe must be a mapping of setting: value, got {type(values).__name__}")
    known = {f.name for f in fields(TrainConfig)}
    for key in values:
        if key not in known:
            raise L3PruneError(f"{path}: unknown setting {key!r}; known settings: {sorted(known)}")
    return values


def build_config(recipe: str | os.PathLike | None = None, **overrides: Any) -> TrainConfig:
    """Defaults, then the recipe file, then every override that is not None (flags win)."""
    values = read_recipe(recipe) if recipe is not None else {}
    known = {f.name for f in fields(TrainConfig)}
    for key, value in overrides.items():
        if key not in known:
            raise L3PruneError(f"unknown setting {key!r}; known settings: {sorted(known)}")
        if value is not None:
            values[key] = value
    if isinstance(values.get("data"), (str, os.PathLike)):
        values["data"] = [values["data"]]
    if isinstance(values.get("data"), (list, tuple)):  # paths as strings; other types fail in validate()
        values["data"] = [os.fspath(p) if isinstance(p, os.PathLike) else p for p in values["data"]]
    for f in fields(TrainConfig):  # YAML reads 2e-4 (no dot) as a string; accept it as the number it is
        if isinstance(values.get(f.name), str) and float in _allowed(f.type):
            try:
                values[f.name] = float(values[f.name])
            except ValueError:
                pass  # validate() names the field
    config = replace(TrainConfig(), **values).validate()
    if config.warmup_steps > config.steps:
        logger.warning("warm-up of %d steps is longer than the run; clamping it to %d steps",
                       config.warmup_steps, config.steps)
    return config


def config_differences(saved: dict[str, Any], current: TrainConfig) -> list[str]:
    """Settings (outside ``RUN_ONLY``) whose value differs from a saved run's, as 'key: saved -> now'."""
    now = current.to_dict()
    return [f"{key}: {saved.get(key)!r} -> {now[key]!r}" for key in now
            if key not in RUN_ONLY and saved.get(key) != now[key]]


# ----------------------------------------------------------------------------- type checks
def _allowed(annotation: str) -> tuple[type, ...]:
    """Python types a field accepts, from its (string) annotation; ``int`` is fine where ``float`` is."""
    hint = eval(annotation, {"list": list, "str": str, "int": int, "float": float, "bool": bool})  # noqa: S307
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    out: list[type] = []
    for arg in args:
        origin = typing.get_origin(arg) or arg
        out.append(type(None) if arg is type(None) else origin)
        if arg is float:
            out.append(int)
    return tuple(out)


def _check_types(config: TrainConfig) -> None:
    for f in fields(config):
        value = getattr(config, f.name)
        allowed = _allowed(f.type)
        bad = isinstance(value, bool) and bool not in allowed  # bool is an int subclass; 1 is not True
        if bad or not isinstance(value, allowed):
            names = " or ".join(dict.fromkeys("null" if t is type(None) else t.__name__ for t in allowed))
            raise L3PruneError(f"setting {f.name!r} must be {names}, got {value!r}")
        if isinstance(value, list) and not all(isinstance(item, str) for item in value):
            raise L3PruneError(f"setting {f.name!r} must be a list of strings, got {value!r}")
