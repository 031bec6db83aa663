"""The old home of ``L3PrunePooling``, kept because folders exported before it moved name
``l3prune.st_pooling.L3PrunePooling`` in their ``modules.json``; new exports name ``l3prune.export.st_pooling``."""

from __future__ import annotations

from l3prune.export.st_pooling import ST_TO_L3PRUNE, L3PrunePooling

__all__ = ["ST_TO_L3PRUNE", "L3PrunePooling"]
