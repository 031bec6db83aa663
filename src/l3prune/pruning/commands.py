"""``l3prune prune``: choose layers with a criterion, remove the rest, save the smaller encoder."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.pruning.apply import target_num_layers
from l3prune.pruning.criteria import get_criterion
from l3prune.safe_write import check_output

logger = logging.getLogger(__name__)


def prune_encoder(
    encoder: LLMEncoder,
    *,
    criterion: str = "last",
    num_layers: int | None = None,
    drop_fraction: float | None = None,
    layers: Sequence[int] | None = None,
    config: str | None = None,
    data: Sequence[str | os.PathLike] | None = None,
) -> LLMEncoder:
    """Prune ``encoder`` in place by one size specification and record the criterion's reason."""
    given = [x is not None for x in (num_layers, drop_fraction, layers, config)]
    if sum(given) != 1:
        raise L3PruneError("give exactly one of num_layers, drop_fraction, layers or config")
    if layers is not None:
        return encoder.prune(layers, criterion="manual", reason=f"layers {list(layers)} chosen by the user")
    chosen = get_criterion(criterion)
    if config is not None and config not in chosen.configs:
        raise L3PruneError(
            f"criterion {criterion!r} has no configuration {config!r}"
            + (f"; it offers {list(chosen.configs)}" if chosen.configs else "; give --num-layers or --drop-fraction")
        )
    n = None if config is not None else target_num_layers(encoder.num_layers, num_layers=num_layers,
                                                           drop_fraction=drop_fraction)
    triplets = None
    if data is not None or getattr(chosen, "needs_data", False):
        from l3prune.data import load_triplets

        triplets = load_triplets(data)
    selection = chosen.select(encoder, n, config=config, data=triplets)
    logger.info("criterion %s keeps layers %s (%s)", criterion, selection.layers, selection.reason)
    return encoder.prune(selection.layers, criterion=criterion, reason=selection.reason)


def prune_to_folder(
    model: str | os.PathLike,
    out: str | os.PathLike,
    *,
    criterion: str = "last",
    num_layers: int | None = None,
    drop_fraction: float | None = None,
    layers: Sequence[int] | None = None,
    config: str | None = None,
    data: Sequence[str | os.PathLike] | None = None,
    overwrite: bool = False,
    pooling: str | None = None,
    max_length: int | None = None,
    dtype: torch.dtype | None = None,
    device: str | None = None,
) -> Path:
    """Load ``model``, prune it and save it to ``out``; refuses an existing ``out`` before any work."""
    out = check_output(out, overwrite=overwrite, kind="folder")
    _check_before_loading(model, criterion, num_layers, drop_fraction, layers)
    encoder = LLMEncoder.from_pretrained(model, pooling=pooling, max_length=max_length, dtype=dtype, device=device)
    prune_encoder(encoder, criterion=criterion, num_layers=num_layers, drop_fraction=drop_fraction,
                  layers=layers, config=config, data=data)
    return encoder.save(out, overwrite=overwrite)


def _check_before_loading(model, criterion, num_layers, drop_fraction, layers) -> None:
    """Fail on a bad criterion or size from the config alone, before seconds of weight loading."""
    from l3prune.loading import load_config, resolve
    from l3prune.pruning.apply import layers_to_keep

    get_criterion(criterion)
    total = load_config(resolve(model)).num_hidden_layers
    if num_layers is not None or drop_fraction is not None or layers is not None:
        layers_to_keep(total, num_layers=num_layers, drop_fraction=drop_fraction, layers=layers)
