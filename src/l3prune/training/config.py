"""The training recipe: one flat dataclass whose defaults are the paper's, overridable by a file and by flags.

Precedence is defaults < recipe file (YAML or JSON) < explicit overrides (the CLI's flags). Keeping the
recipe flat means a file key, a dataclass field and a flag are the same name (``lora_r`` = ``--lora-r``).
``TrainConfig`` holds training settings only; how the model loads (pooling, max length, dtype, device)
is ``l3prune.settings.LoadOptions``, which a recipe file may also set (``build_load_options``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from l3prune.errors import L3PruneError
from l3prune.settings import LoadOptions
from l3prune.settings import check_choices, check_types, described, layered
from l3prune.files import loads_strict, read_text

logger = logging.getLogger(__name__)

SCHEDULES = ("linear", "constant")
FINETUNE_METHODS = ("lora", "full")
#: Load dtypes training accepts: fp16 weights would need loss scaling, which l3prune does not do.
TRAIN_DTYPES = ("auto", "fp32", "bf16")
#: The paper trains at 512 tokens; the other load options default as in every command.
TRAIN_LOAD = LoadOptions(max_length=512)
LOG_FORMATS = ("jsonl", "csv")
#: A recipe is a short mapping; anything larger is refused before it is parsed.
MAX_RECIPE_CHARS = 100_000
#: The distillation terms of ``losses.DistillationLoss`` (named here too, so ``--help`` needs no torch).
DISTILL_LOSSES = ("embedding", "similarity")

#: Settings that change how a run is executed or recorded but not what it computes; a resumed run may
#: change them (every other setting must match the interrupted run).
RUN_ONLY = frozenset({"device", "save_every", "keep_checkpoints"})


@dataclass
class TrainConfig:
    """Everything that decides a training run except the model and the output folder.

    Defaults follow the paper (LLM2Vec's supervised recipe): LoRA r=16/alpha=32/dropout 0.05, lr 2e-4,
    300 warm-up steps then linear decay, 1000 steps, global batch 64 (and max length 512: ``TRAIN_LOAD``), AdamW without
    weight decay, gradient clipping at 1.0 (the Hugging Face Trainer's default), seed 42.
    """

    data: list[str] | None = described(
        None,
        "training triplet files or folders (.jsonl, E5/echo-data layout); default: the shipped data")
    instructions: bool = described(True, "give known sources their task instructions")
    steps: int = described(1000, "optimizer steps")
    batch_size: int = described(64, "GLOBAL contrastive batch: triplets per step over all ranks; each query is scored "
                                    "against all their positives and negatives")
    mini_batch_size: int | None = described(
        None, "triplets per forward pass: embed the batch in pieces with gradient caching (GradCache), the same "
              "gradient at a piece's memory; --batch-size stays the contrastive batch", unset="the whole batch")
    mask_duplicates: bool = described(
        False, "drop from a query's softmax any candidate whose text is that query's own positive (a false "
               "negative, frequent in large batches)")
    learning_rate: float = described(2e-4, "peak learning rate", aliases=("--lr",))
    warmup_steps: int = described(300, "linear warm-up steps (clamped to --steps)")
    schedule: str = described(
        "linear",
        "after warm-up: linear decay to 0 at the last step, or constant", choices=SCHEDULES)
    weight_decay: float = described(0.0, "AdamW weight decay")
    max_grad_norm: float | None = described(1.0, "clip gradients to this norm; null = no clipping")
    loss_scale: float = described(50.0, "cosine similarity scale of the InfoNCE loss (1/temperature)")
    teacher: str | None = described(
        None, "distil from this encoder: an l3prune folder, a sentence-transformers folder or 'minilm'; its "
              "embeddings of the training texts are computed once and cached")
    distill_loss: str = described(
        "similarity", "distillation term: 'similarity' (KL between each query's softmax over the batch's candidates, "
                      "any teacher) or 'embedding' (cosine distance to the teacher's embedding, equal dimensions)",
        choices=DISTILL_LOSSES)
    distill_weight: float = described(1.0, "weight of the distillation term added to the contrastive loss "
                                           "(0 = plain training)")
    distill_temperature: float = described(0.05, "temperature of the similarity term's softmax")
    distill_only: bool = described(False, "train on the distillation term alone (needs --teacher)")
    finetune: str = described("lora", "train LoRA adapters or all weights", choices=FINETUNE_METHODS)
    lora_r: int = described(16, "LoRA rank")
    lora_alpha: float = described(32.0, "LoRA alpha")
    lora_dropout: float = described(0.05, "LoRA dropout")
    lora_targets: list[str] | None = described(
        None,
        "module names LoRA adapts (default: the architecture's attention and MLP projections)")
    gradient_checkpointing: bool = described(False, "recompute activations to save memory")
    seed: int = described(42, "seed of the batch order, LoRA init and dropout")
    save_every: int = described(200, "checkpoint every N steps (0 = only at the end)")
    keep_checkpoints: int = described(1, "how many recent checkpoints to keep")
    log_format: str = described("jsonl", "loss log format", choices=LOG_FORMATS)

    def validate(self) -> TrainConfig:
        """Check every value; messages name the setting and the fix."""
        check_types(self)
        for name in ("steps", "batch_size", "lora_r", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise L3PruneError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "save_every", "seed"):
            if getattr(self, name) < 0:
                raise L3PruneError(f"{name} must be non-negative, got {getattr(self, name)}")
        for name in ("learning_rate", "loss_scale", "lora_alpha"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise L3PruneError(f"{name} must be a positive number, got {value}")
        if self.learning_rate > 1:
            raise L3PruneError(f"learning_rate {self.learning_rate:g} would diverge at once (AdamW steps are about the "
                               "learning rate in size); the paper uses 2e-4")
        if not (0 <= self.weight_decay < 1):
            raise L3PruneError(f"weight_decay must be in [0, 1), got {self.weight_decay}")
        if not (0 <= self.lora_dropout < 1):
            raise L3PruneError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise L3PruneError(f"max_grad_norm must be positive (or null for no clipping), got {self.max_grad_norm}")
        check_choices(self)
        if self.data is not None and not self.data:
            raise L3PruneError("data is an empty list; give at least one file or folder, or leave it out")
        self._check_distillation()
        if self.mini_batch_size is not None and self.mini_batch_size < 1:
            raise L3PruneError(f"mini_batch_size must be at least 1 (triplets per forward pass), got "
                               f"{self.mini_batch_size}")
        if self.mini_batch_size is not None and self.mini_batch_size >= self.batch_size:
            logger.warning("mini_batch_size %d is not smaller than the batch (%d triplets): it has no effect; the "
                           "whole batch is embedded as without it", self.mini_batch_size, self.batch_size)
        return self

    def _check_distillation(self) -> None:
        if not (math.isfinite(self.distill_weight) and self.distill_weight >= 0):
            raise L3PruneError(f"distill_weight must be a finite number >= 0 (0 = no distillation), got "
                               f"{self.distill_weight}")
        if not (math.isfinite(self.distill_temperature) and self.distill_temperature > 0):
            raise L3PruneError(f"distill_temperature must be a positive number, got {self.distill_temperature}")
        if self.teacher is not None and not self.teacher.strip():
            raise L3PruneError("teacher is empty; give an encoder folder, a sentence-transformers folder or 'minilm'")
        if self.distill_only and self.teacher is None:
            raise L3PruneError("distill_only trains on the distillation term alone, which needs a teacher; add "
                               "--teacher REF (an encoder folder, a sentence-transformers folder or 'minilm')")
        if self.distill_only and self.distill_weight == 0:
            raise L3PruneError("distill_only with distill_weight 0 would train on nothing; give a positive weight")

    @property
    def distills(self) -> bool:
        """Whether a teacher takes part in the loss (a teacher with weight 0 is exactly plain training)."""
        return self.teacher is not None and self.distill_weight > 0

    @property
    def effective_warmup(self) -> int:
        """Warm-up steps actually used: a warm-up longer than the run is clamped to the run."""
        return min(self.warmup_steps, self.steps)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML or JSON mapping of settings (training settings and load options); unknown keys are an
    error naming the key."""
    path = Path(path)
    text = read_text(path, "recipe file")
    if len(text) > MAX_RECIPE_CHARS:
        raise L3PruneError(f"{path}: {len(text):,} characters is too large for a recipe (at most {MAX_RECIPE_CHARS:,}); "
                           "a recipe is a short mapping of setting: value")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            alias = next((t for t in yaml.scan(text) if isinstance(t, yaml.AliasToken)), None)
            if alias is not None:  # a flat recipe needs none, and nested aliases expand exponentially (a bomb)
                raise L3PruneError(f"{path}:{alias.start_mark.line + 1}: a YAML alias (*{alias.value}); recipes are "
                                   "flat settings: write the value out")
            values = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise L3PruneError(f"{path}: invalid YAML: {' '.join(str(exc).split())[:300]}") from None
    elif path.suffix == ".json":
        values = loads_strict(text, str(path))
    else:
        raise L3PruneError(f"{path}: recipe files must be .yaml, .yml or .json, got {path.suffix!r}")
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise L3PruneError(f"{path}: a recipe must be a mapping of setting: value, got {type(values).__name__}")
    known = {f.name for f in fields(TrainConfig)} | {f.name for f in fields(LoadOptions)}
    for key in values:
        if key not in known:
            raise L3PruneError(f"{path}: unknown setting {key!r}; known settings: {sorted(known)}")
    return values


def _recipe_values(recipe: str | os.PathLike | Mapping[str, Any] | None) -> Mapping[str, Any]:
    if recipe is None:
        return {}
    return recipe if isinstance(recipe, Mapping) else read_recipe(recipe)


def build_config(recipe: str | os.PathLike | Mapping[str, Any] | None = None, **overrides: Any) -> TrainConfig:
    """Defaults, then the recipe (a file, or its values from ``read_recipe``), then every override that is
    not None (flags win). The recipe's load options are for ``build_load_options``."""
    values = dict(_recipe_values(recipe))
    if isinstance(values.get("data"), (str, os.PathLike)):
        values["data"] = [values["data"]]
    if isinstance(values.get("data"), (list, tuple)):  # paths as strings; other types fail in validate()
        values["data"] = [os.fspath(p) if isinstance(p, os.PathLike) else p for p in values["data"]]
    config = layered(TrainConfig(), values, overrides).validate()
    if config.warmup_steps > config.steps:
        logger.warning("warm-up of %d steps is longer than the run; clamping it to %d steps",
                       config.warmup_steps, config.steps)
    return config


def build_load_options(recipe: str | os.PathLike | Mapping[str, Any] | None = None, **overrides: Any) -> LoadOptions:
    """How training loads the model: ``TRAIN_LOAD``, then the recipe's load options, then overrides."""
    return check_train_load(layered(TRAIN_LOAD, _recipe_values(recipe), overrides))


def check_train_load(load: LoadOptions, finetune: str = "lora") -> LoadOptions:
    """Validate load options for training, which takes every dtype but fp16.

    Full fine-tuning updates the weights themselves, so it trains in fp32: ``auto`` means fp32 there, and
    an explicit bf16 is refused (LoRA keeps its adapters, optimizer state and loss in fp32 on bf16 weights).
    """
    load.validate()
    if load.dtype not in TRAIN_DTYPES:
        raise L3PruneError(f"dtype must be one of {list(TRAIN_DTYPES)} for training, got {load.dtype!r} "
                           "(fp16 weights would need loss scaling)")
    if finetune == "full" and load.dtype == "bf16":
        raise L3PruneError("full fine-tuning in bf16 would update bf16 weights directly, and bf16 rounds away any "
                           "update smaller than about 1/256 of a weight; use dtype 'fp32' (or 'auto', which means "
                           "fp32 for full fine-tuning), or LoRA, whose adapters stay fp32 on bf16 weights")
    if finetune == "full" and load.dtype == "auto":
        logger.info("full fine-tuning trains in fp32 (dtype auto); bf16 would round small updates away")
        return replace(load, dtype="fp32")
    return load
