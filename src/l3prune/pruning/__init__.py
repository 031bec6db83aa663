"""Depth pruning: keep a chosen set of decoder layers."""

from __future__ import annotations

from l3prune.pruning.apply import keep_layers, layers_to_keep

__all__ = ["keep_layers", "layers_to_keep"]
