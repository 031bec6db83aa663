"""l3prune: turn a decoder LLM into a small, fast text encoder."""

from __future__ import annotations

from l3prune.errors import L3PruneError

__all__ = ["L3PruneError"]
