"""Layer surgery, below everything that loads or prunes: how many layers, which ones, and the removal.

``PruneSpec`` is the one description of "which layers" that ``LLMEncoder.from_pretrained``, ``prune``,
``train`` and the CLI all take: a size, as ``num_layers`` or as ``drop_fraction`` (never one number with two
meanings), explicit layer indices, or an L3Prune configuration, plus the criterion that picks the layers. ``truncate_config`` shrinks a config before loading, so dropped blocks are never
allocated; ``keep_layers`` removes blocks from a loaded model. Both shrink the config's per-layer lists
through ``shrink_config``, the one place that knows about them.

Imports only ``architectures`` and ``errors``: ``loading``, ``encoder`` and ``pruning`` all build on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from l3prune.architectures import arch_spec, decoder_layers
from l3prune.errors import L3PruneError


def target_num_layers(total: int, *, num_layers: int | None = None, drop_fraction: float | None = None) -> int:
    """The paper's n = int(L * (1 - p)), or ``num_layers`` itself; exactly one of the two must be given."""
    if (num_layers is None) == (drop_fraction is None):
        raise L3PruneError("give exactly one of num_layers or drop_fraction")
    if drop_fraction is not None:
        if not (isinstance(drop_fraction, (int, float)) and 0 <= drop_fraction < 1) or math.isnan(drop_fraction):
            raise L3PruneError(f"drop_fraction must be in [0, 1), got {drop_fraction!r} (0.3 drops 30% of the layers)")
        # floor with a tolerance: in floats 30 * (1 - 0.8) is 5.999..., and dropping 80% of 30 keeps 6
        num_layers = math.floor(total * (1 - drop_fraction) + 1e-9)
        if num_layers < 1:
            raise L3PruneError(f"drop_fraction {drop_fraction} leaves no layer of {total}; use a smaller fraction")
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or not 1 <= num_layers <= total:
        raise L3PruneError(f"num_layers must be an integer in 1..{total}, got {num_layers!r}")
    return num_layers


def layers_to_keep(
    total: int,
    *,
    num_layers: int | None = None,
    drop_fraction: float | None = None,
    layers: Sequence[int] | None = None,
) -> list[int]:
    """Sorted original indices to keep: the first n layers, or an explicit set checked for range and repeats."""
    if layers is not None:
        if num_layers is not None or drop_fraction is not None:
            raise L3PruneError("give either explicit layers or a size (num_layers / drop_fraction), not both")
        keep = sorted(int(i) for i in layers)
        if not keep:
            raise L3PruneError("the set of layers to keep is empty")
        if len(set(keep)) != len(keep):
            raise L3PruneError(f"layer indices repeat in {list(layers)}")
        if keep[0] < 0 or keep[-1] >= total:
            raise L3PruneError(f"layer indices must be in 0..{total - 1}, got {list(layers)}")
        return keep
    return list(range(target_num_layers(total, num_layers=num_layers, drop_fraction=drop_fraction)))


def is_prefix(keep: Sequence[int]) -> bool:
    """True for the first n layers (0, 1, ..., n - 1): a set that loads without allocating the rest."""
    return list(keep) == list(range(len(keep)))


def shrink_config(model_config, keep: Sequence[int]):
    """Set a model config's ``num_hidden_layers`` to ``len(keep)`` and keep only those entries of every per-layer
    list."""
    model_config.num_hidden_layers = len(keep)
    for name in arch_spec(model_config.model_type).per_layer_config:
        values = getattr(model_config, name, None)
        if isinstance(values, (list, tuple)):
            setattr(model_config, name, [values[i] for i in keep if i < len(values)])
    return model_config


def truncate_config(model_config, num_layers: int):
    """Shrink a model config to its first ``num_layers`` layers (before loading: the rest are never allocated)."""
    return shrink_config(model_config, range(num_layers))


def keep_layers(base_model: nn.Module, keep: Sequence[int]) -> nn.Module:
    """Remove every decoder layer not in ``keep`` (current indices), in place, and fix the config.

    The config's ``num_hidden_layers`` and per-layer lists shrink with the layers, and each kept
    block's ``layer_idx`` is renumbered so caches and per-layer attention types still line up.
    """
    spec = arch_spec(base_model.config.model_type)
    layers = decoder_layers(base_model)
    keep = layers_to_keep(len(layers), layers=keep)
    setattr(base_model, spec.layers, nn.ModuleList(layers[i] for i in keep))
    shrink_config(base_model.config, keep)
    for new_idx, block in enumerate(getattr(base_model, spec.layers)):
        for module in block.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_idx
    return base_model


@dataclass(frozen=True)
class PruneSpec:
    """Which layers to keep: at most one of a size (``num_layers`` or ``drop_fraction``), explicit ``layers``
    (indices into the model as loaded) or an L3Prune ``configuration`` ("small" or "large", the CLI's ``--config``), and the ``criterion``
    that chooses the layers for a size. An empty spec keeps every layer.

    Mutual exclusion is checked on construction; everything that needs the model's layer count is
    checked by :meth:`check`, from the config alone, before any weights load.
    """

    num_layers: int | None = None
    drop_fraction: float | None = None
    layers: tuple[int, ...] | None = None
    configuration: str | None = None
    criterion: str | None = None  # default: see criterion_name

    def __post_init__(self) -> None:
        given = [name for name in ("num_layers", "drop_fraction", "layers", "configuration") if getattr(self, name) is not None]
        if len(given) > 1:
            raise L3PruneError(f"give one of num_layers, drop_fraction, layers or configuration, not {' and '.join(given)}")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers))

    @property
    def given(self) -> bool:
        """True when the spec removes something (or may: a size can also be the whole model)."""
        return any(getattr(self, name) is not None for name in ("num_layers", "drop_fraction", "layers", "configuration"))

    @property
    def criterion_name(self) -> str:
        """The criterion, defaulting to ``l3prune`` for a configuration, ``manual`` for explicit layers,
        else ``last`` (keep the first n)."""
        if self.criterion is not None:
            return self.criterion
        return "l3prune" if self.configuration is not None else "manual" if self.layers is not None else "last"

    def size(self, total: int) -> int | None:
        """How many layers a ``num_layers``/``drop_fraction`` spec keeps of ``total`` (checked); else None."""
        if self.num_layers is None and self.drop_fraction is None:
            return None
        return target_num_layers(total, num_layers=self.num_layers, drop_fraction=self.drop_fraction)

    def check(self, total: int) -> PruneSpec:
        """Fail now, with the fix in the message, if this spec cannot apply to a model of ``total`` layers."""
        self.size(total)
        if self.layers is not None:
            layers_to_keep(total, layers=self.layers)
        return self

    def fixed_layers(self, total: int) -> list[int] | None:
        """The kept indices when they follow from the spec alone, with no criterion consulted: explicit layers,
        or the first n of a size under the default criterion (what ``LLMEncoder.from_source`` loads). None for an
        empty spec; an error for any other criterion (``pruning.select_without_model`` asks the criterion)."""
        if self.layers is not None:
            return layers_to_keep(total, layers=self.layers)
        if self.configuration is None and self.criterion in (None, "last") and self.size(total) is not None:
            return list(range(self.size(total)))
        if self.given:
            raise L3PruneError(f"criterion {self.criterion_name!r} chooses layers by measuring the model; "
                               "load with l3prune.pruning.load_pruned instead")
        return None
