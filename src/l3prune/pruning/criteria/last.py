"""The paper's baseline: keep the first n layers and drop the top ones."""

from __future__ import annotations

from l3prune.errors import L3PruneError
from l3prune.pruning.criteria import Selection, register


@register("last")
class KeepFirst:
    configs: tuple[str, ...] = ()

    def select(self, encoder, num_layers, *, config=None, data=None) -> Selection:
        if num_layers is None:
            raise L3PruneError("criterion 'last' needs a size: --num-layers or --drop-fraction")
        return Selection(list(range(num_layers)), f"first {num_layers} of {encoder.num_layers} layers")
