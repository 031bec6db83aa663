"""l3prune: turn a decoder LLM into a small, fast text encoder.

The public names load on first use (PEP 562), so that ``import l3prune.cli`` and ``l3prune --help`` do not
pay for importing torch and transformers (seconds) before they are needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from l3prune.lazy import lazy_exports

if TYPE_CHECKING:
    from l3prune.encoder import EncoderSettings, LLMEncoder
    from l3prune.errors import L3PruneError
    from l3prune.layers import PruneSpec, keep_layers, layers_to_keep

#: Each public name and the module that defines it.
_HOMES = {
    "EncoderSettings": "l3prune.encoder", "LLMEncoder": "l3prune.encoder", "L3PruneError": "l3prune.errors",
    "PruneSpec": "l3prune.layers", "keep_layers": "l3prune.layers", "layers_to_keep": "l3prune.layers",
}

__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
