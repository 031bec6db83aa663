"""Supervised contrastive training of a (pruned) encoder: the paper's recipe, resumable and DDP-ready."""

from __future__ import annotations

from l3prune.training.config import TrainConfig, build_config, build_load_options, read_recipe
from l3prune.training.loop import NonFiniteLossError, Trainer, WarmupSchedule
from l3prune.training.run import train_encoder, train_to_folder

__all__ = [
    "NonFiniteLossError",
    "TrainConfig",
    "Trainer",
    "WarmupSchedule",
    "build_config",
    "build_load_options",
    "read_recipe",
    "train_encoder",
    "train_to_folder",
]
