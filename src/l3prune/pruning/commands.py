"""``l3prune prune``: choose layers with a criterion, remove the rest, save the smaller encoder.

Every command that prunes (``prune``, ``train``, ``export``) loads through ``load_pruned``. A ``PruneSpec``
is checked once against the model's config, before any weights load. When the kept layers follow without
looking at the model (the ``last`` criterion, ``l3prune`` given a size, explicit layers), only those layers
are loaded; otherwise the full model loads and the criterion measures it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from l3prune.data import Triplet, load_triplets
from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.files import check_output
from l3prune.layers import PruneSpec
from l3prune.loading import ModelSource, resolve
from l3prune.pruning.criteria import Criterion, Selection, get_criterion
from l3prune.settings import LoadOptions

logger = logging.getLogger(__name__)


def criterion_for(spec: PruneSpec) -> Criterion:
    """The spec's criterion, checked to offer the spec's configuration (if it names one)."""
    chosen = get_criterion(spec.criterion_name)
    if spec.configuration is not None and spec.configuration not in chosen.configurations:
        raise L3PruneError(
            f"criterion {spec.criterion_name!r} has no configuration {spec.configuration!r}"
            + (f"; it offers {list(chosen.configurations)}" if chosen.configurations
               else "; give --num-layers or --drop-fraction")
        )
    return chosen


def select_without_model(spec: PruneSpec, total: int) -> Selection | None:
    """Check ``spec`` against a model of ``total`` layers; return its selection when no model is needed.

    None means the criterion must measure the loaded model (a data-driven criterion, or a configuration).
    """
    if not spec.given:
        raise L3PruneError("give one of num_layers, drop_fraction, layers or config")
    spec.check(total)
    if spec.layers is not None:
        return Selection(sorted(spec.layers), f"layers {list(spec.layers)} chosen by the user")
    planner = getattr(criterion_for(spec), "plan", None)
    return planner(total, spec.size(total), configuration=spec.configuration) if planner is not None else None


def prune_encoder(encoder: LLMEncoder, spec: PruneSpec, *, data: Sequence[str | os.PathLike] | None = None,
                  triplets: Sequence[Triplet] | None = None) -> LLMEncoder:
    """Prune a loaded ``encoder`` in place by ``spec`` and record the criterion and its reason. A data-driven
    criterion measures ``triplets``, or the triplets of ``data`` (default: the shipped ones)."""
    selection = select_without_model(spec, encoder.num_layers)
    if selection is None:
        chosen = criterion_for(spec)
        if triplets is None and (data is not None or getattr(chosen, "needs_data", False)):
            triplets = load_triplets(data)
        selection = chosen.select(encoder, spec.size(encoder.num_layers), configuration=spec.configuration,
                                  data=triplets)
    logger.info("criterion %s keeps layers %s (%s)", spec.criterion_name, selection.layers, selection.reason)
    return encoder.prune(selection.layers, criterion=spec.criterion_name, reason=selection.reason)


def load_pruned(source: ModelSource, spec: PruneSpec | None = None, *, load: LoadOptions | None = None,
                data: Sequence[str | os.PathLike] | None = None, triplets: Sequence[Triplet] | None = None,
                measure_here: bool = True, agree: Callable[[Any], Any] | None = None) -> LLMEncoder:
    """Load ``source`` pruned by ``spec``: only the kept layers when the spec fixes them without the model,
    else the full model, pruned by its criterion (an empty spec keeps every layer).

    Under DDP every rank must keep the same layers: a criterion that measures the model runs only where
    ``measure_here`` (rank 0), and ``agree`` (a broadcast from rank 0) hands its choice to every rank.
    """
    spec = spec or PruneSpec()
    if not spec.given:
        return LLMEncoder.from_source(source, load=load)
    selection = select_without_model(spec, source.num_layers)
    if selection is not None:
        logger.info("criterion %s keeps layers %s (%s)", spec.criterion_name, selection.layers, selection.reason)
        encoder = LLMEncoder.from_source(source, PruneSpec(layers=selection.layers), load)
        return encoder.record_pruning(spec.criterion_name, selection.reason)
    encoder = LLMEncoder.from_source(source, load=load)
    choice = None
    if measure_here:
        before = list(encoder.settings.kept_layers)
        prune_encoder(encoder, spec, data=data, triplets=triplets)
        choice = ([before.index(i) for i in encoder.settings.kept_layers], dict(encoder.settings.pruning))
    if agree is not None:
        choice = agree(choice)
    if not measure_here:
        encoder.prune(choice[0], criterion=choice[1].get("criterion"), reason=choice[1].get("reason"))
    return encoder


def prune_to_folder(
    model: str | os.PathLike | ModelSource,
    out: str | os.PathLike,
    prune: PruneSpec,
    *,
    load: LoadOptions | None = None,
    data: Sequence[str | os.PathLike] | None = None,
    overwrite: bool = False,
) -> Path:
    """Load ``model``, prune it and save it to ``out``; refuses an existing ``out`` before any work."""
    out = check_output(out, overwrite=overwrite, kind="folder")
    triplets = load_triplets(data) if data is not None else None  # a bad data file fails before the model loads
    source = model if isinstance(model, ModelSource) else resolve(model)
    return load_pruned(source, prune, load=load, triplets=triplets).save(out, overwrite=overwrite)
