"""``l3prune prune``: choose layers with a criterion, remove the rest, save the smaller encoder.

Every command that prunes (``prune``, ``train``) goes through here. A ``PruneSpec`` is checked once
against the model's config, before any weights load. When the kept layers follow without looking at
the model (the ``last`` criterion, ``l3prune`` given a size, explicit layers), only those layers are
loaded (``load_pruned``); otherwise the full model loads and the criterion measures it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.layers import PruneSpec
from l3prune.load_options import LoadOptions
from l3prune.loading import load_config, resolve
from l3prune.pruning.criteria import Criterion, Selection, get_criterion, plan
from l3prune.safe_write import check_output

logger = logging.getLogger(__name__)


def criterion_for(spec: PruneSpec) -> Criterion:
    """The spec's criterion, checked to offer the spec's configuration (if it names one)."""
    chosen = get_criterion(spec.criterion_name)
    if spec.config is not None and spec.config not in chosen.configs:
        raise L3PruneError(
            f"criterion {spec.criterion_name!r} has no configuration {spec.config!r}"
            + (f"; it offers {list(chosen.configs)}" if chosen.configs else "; give --num-layers or --drop-fraction")
        )
    return chosen


def plan_layers(spec: PruneSpec, total: int) -> Selection | None:
    """Check ``spec`` against a model of ``total`` layers; return its selection when no model is needed.

    None means the criterion must measure the loaded model (a data-driven criterion, or a configuration).
    """
    if not spec.given:
        raise L3PruneError("give one of num_layers, drop_fraction, layers or config")
    spec.check(total)
    if spec.layers is not None:
        return Selection(sorted(spec.layers), f"layers {list(spec.layers)} chosen by the user")
    return plan(criterion_for(spec), total, spec.size(total), spec.config)


def prune_encoder(encoder: LLMEncoder, spec: PruneSpec, *, data: Sequence[str | os.PathLike] | None = None
                  ) -> LLMEncoder:
    """Prune a loaded ``encoder`` in place by ``spec`` and record the criterion and its reason."""
    selection = plan_layers(spec, encoder.num_layers)
    if selection is None:
        chosen = criterion_for(spec)
        triplets = None
        if data is not None or getattr(chosen, "needs_data", False):
            from l3prune.data import load_triplets

            triplets = load_triplets(data)
        selection = chosen.select(encoder, spec.size(encoder.num_layers), config=spec.config, data=triplets)
    logger.info("criterion %s keeps layers %s (%s)", spec.criterion_name, selection.layers, selection.reason)
    return encoder.prune(selection.layers, criterion=spec.criterion_name, reason=selection.reason)


def load_pruned(model: str | os.PathLike, spec: PruneSpec, *, load: LoadOptions | None = None,
                data: Sequence[str | os.PathLike] | None = None) -> LLMEncoder:
    """Load ``model`` pruned by ``spec``: only the kept layers when the spec fixes them without the model,
    else the full model, pruned by its criterion."""
    selection = plan_layers(spec, load_config(resolve(model)).num_hidden_layers)
    if selection is None:
        return prune_encoder(LLMEncoder.from_pretrained(model, load=load), spec, data=data)
    logger.info("criterion %s keeps layers %s (%s)", spec.criterion_name, selection.layers, selection.reason)
    encoder = LLMEncoder.from_pretrained(model, prune=PruneSpec(layers=selection.layers), load=load)
    return encoder.record_pruning(spec.criterion_name, selection.reason)


def prune_to_folder(
    model: str | os.PathLike,
    out: str | os.PathLike,
    prune: PruneSpec,
    *,
    load: LoadOptions | None = None,
    data: Sequence[str | os.PathLike] | None = None,
    overwrite: bool = False,
) -> Path:
    """Load ``model``, prune it and save it to ``out``; refuses an existing ``out`` before any work."""
    out = check_output(out, overwrite=overwrite, kind="folder")
    encoder = load_pruned(model, prune, load=load, data=data)
    return encoder.save(out, overwrite=overwrite)
