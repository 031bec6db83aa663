"""The paper's baseline: keep the first n layers and drop the top ones. Needs no model, so commands
load only those layers (``plan``)."""

from __future__ import annotations

from l3prune.errors import L3PruneError
from l3prune.pruning.criteria import Selection, register


@register("last")
class KeepFirst:
    configurations: tuple[str, ...] = ()

    def plan(self, total: int, num_layers: int | None, *, configuration: str | None = None) -> Selection:
        if num_layers is None:
            raise L3PruneError("criterion 'last' needs a size: --num-layers or --drop-fraction")
        return Selection(list(range(num_layers)), f"first {num_layers} of {total} layers")

    def select(self, encoder, num_layers, *, configuration=None, data=None) -> Selection:
        return self.plan(encoder.num_layers, num_layers)
