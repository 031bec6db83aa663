"""l3prune: turn a decoder LLM into a small, fast text encoder."""

from __future__ import annotations

from l3prune.encoder import EncoderSettings, LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.layers import PruneSpec, keep_layers, layers_to_keep

__all__ = ["EncoderSettings", "L3PruneError", "LLMEncoder", "PruneSpec", "keep_layers", "layers_to_keep"]
