"""Supervised contrastive training of a (pruned) encoder: the paper's recipe, resumable and DDP-ready.

The names load on first use (PEP 562): the command line reads ``TrainConfig``'s fields for its flags
without importing the training loop, and with it torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from l3prune.lazy import lazy_exports

if TYPE_CHECKING:
    from l3prune.training.config import TrainConfig, build_config, build_load_options, read_recipe
    from l3prune.training.loop import NonFiniteLossError, Trainer, WarmupSchedule
    from l3prune.training.run import train_encoder, train_to_folder

#: Each public name and the module that defines it.
_HOMES = {
    "TrainConfig": "l3prune.training.config", "build_config": "l3prune.training.config",
    "build_load_options": "l3prune.training.config", "read_recipe": "l3prune.training.config",
    "NonFiniteLossError": "l3prune.training.loop", "Trainer": "l3prune.training.loop",
    "WarmupSchedule": "l3prune.training.loop",
    "train_encoder": "l3prune.training.run", "train_to_folder": "l3prune.training.run",
}

__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
