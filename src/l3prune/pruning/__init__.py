"""Depth pruning: criteria choose which layers to keep (``criteria``), the scan profiles every depth
(``scan``), and ``commands`` loads a model pruned by a ``PruneSpec`` and runs ``l3prune prune``. The removal
itself is ``l3prune.layers``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from l3prune.lazy import lazy_exports

if TYPE_CHECKING:
    from l3prune.pruning.commands import load_pruned, prune_encoder, prune_to_folder, select_without_model

_HOMES = {name: "l3prune.pruning.commands"
          for name in ("load_pruned", "prune_encoder", "prune_to_folder", "select_without_model")}

__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
