"""l3prune: turn a decoder LLM into a small, fast text encoder.

The public names load on first use (PEP 562), so that ``import l3prune.cli`` and ``l3prune --help`` do not
pay for importing torch and transformers (seconds) before they are needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from l3prune.lazy import lazy_exports

if TYPE_CHECKING:
    from l3prune.encoder import LLMEncoder
    from l3prune.errors import L3PruneError
    from l3prune.layers import PruneSpec, keep_layers, layers_to_keep
    from l3prune.loading import ModelSource, resolve
    from l3prune.settings import EncoderSettings, LoadOptions

#: Each public name and the module that defines it.
_HOMES = {
    "EncoderSettings": "l3prune.settings", "LLMEncoder": "l3prune.encoder", "L3PruneError": "l3prune.errors",
    "LoadOptions": "l3prune.settings", "ModelSource": "l3prune.loading", "PruneSpec": "l3prune.layers",
    "keep_layers": "l3prune.layers", "layers_to_keep": "l3prune.layers", "resolve": "l3prune.loading",
}

__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
