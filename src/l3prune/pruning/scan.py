"""L3Prune's layer scan: the training loss at every depth, from one forward pass per batch side.

Keeping the first k layers of a decoder and applying its final norm gives exactly the hidden state
``norm(h_k)`` of the unpruned model, because a decoder block only sees the blocks below it. So one
pass with ``output_hidden_states`` yields, for every k at once, the embeddings the model pruned to k
layers would produce; pooled as the encoder pools and scored with the training loss, they give the
per-depth loss profile from which the paper picks its "small" and "large" configurations. The test
suite checks this equality against models actually pruned to k layers.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from l3prune.architectures import final_norm
from l3prune.data import SourceBatchSampler, Triplet, load_triplets
from l3prune.errors import L3PruneError
from l3prune.loading import ModelSource, resolve
from l3prune.settings import LoadOptions
from l3prune.devices import dtype_name
from l3prune.losses import contrastive_loss_per_example
from l3prune.pooling import pool
from l3prune.pruning.profile import LayerProfile, profile_paths

logger = logging.getLogger(__name__)

DEFAULT_NUM_BATCHES = 100  # the paper's sample: 100 batches of 64 training triplets
DEFAULT_BATCH_SIZE = 64
LOSS_SCALE = 50.0  # cosine x 50 (temperature 0.02), as in training


def triplet_features(encoder, batch: Sequence[Triplet]) -> tuple[dict[str, torch.Tensor], ...]:
    """Collate queries (with their instructions), positives and negatives, one padded batch per side."""
    tokenize = encoder.collator.tokenize
    queries = tokenize([(t.query_instruction, t.query) for t in batch])
    positives = tokenize([(t.doc_instruction, t.positive) for t in batch])
    negatives = tokenize([(t.doc_instruction, t.negative) for t in batch])
    return queries, positives, negatives


def pooled_per_layer(encoder, features: dict[str, torch.Tensor]) -> torch.Tensor:
    """(layers, batch, dim): the embedding each prefix depth k = 1..L would give, from one forward pass."""
    states = encoder.hidden_states(features)  # (layers + 1) x (batch, seq, dim); [0] = embeddings
    num_layers = encoder.num_layers
    if len(states) != num_layers + 1:
        raise L3PruneError(f"expected {num_layers + 1} hidden states from the model, got {len(states)}")
    norm = final_norm(encoder.model)
    mask = features["pool_mask"].to(encoder.device)  # (batch, seq)
    attention = features["attention_mask"].to(encoder.device)  # (batch, seq)
    pooled = []
    for k in range(1, num_layers + 1):
        # transformers records the last entry after the final norm; the others are the raw block outputs.
        hidden = states[k] if k == num_layers else norm(states[k])  # (batch, seq, dim)
        pooled.append(pool(hidden, mask, encoder.settings.pooling, attention))  # (batch, dim)
    return torch.stack(pooled)  # (layers, batch, dim)


@torch.inference_mode()
def layer_losses(encoder, batch: Sequence[Triplet], *, scale: float = LOSS_SCALE) -> torch.Tensor:
    """(layers, batch) training loss of every triplet at every prefix depth."""
    q, p, n = (pooled_per_layer(encoder, f) for f in triplet_features(encoder, batch))  # (layers, batch, dim)
    return torch.stack(
        [contrastive_loss_per_example(q[k], p[k], n[k], scale=scale) for k in range(q.shape[0])]
    )  # (layers, batch)


def scan_sampler(triplets: Sequence[Triplet], *, num_batches: int, batch_size: int, seed: int = 0
                 ) -> tuple[SourceBatchSampler, int]:
    """The single-source batch order of a scan and how many batches it really gets (checked early)."""
    if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1:
        raise L3PruneError(f"num_batches must be a positive integer, got {num_batches!r}")
    if len(triplets) < batch_size:
        raise L3PruneError(
            f"{len(triplets)} triplets are fewer than one batch of {batch_size}; "
            "lower --batch-size or give more triplets"
        )
    sampler = SourceBatchSampler(triplets, batch_size, seed=seed)
    if num_batches > len(sampler):
        logger.warning("only %d distinct batches of %d fit in %d triplets; scanning those instead of %d",
                       len(sampler), batch_size, len(triplets), num_batches)
        num_batches = len(sampler)
    return sampler, num_batches


def scan_layers(
    encoder,
    triplets: Sequence[Triplet],
    *,
    num_batches: int = DEFAULT_NUM_BATCHES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    show_progress: bool = True,
) -> LayerProfile:
    """Mean contrastive loss at every depth over ``num_batches`` single-source batches of triplets."""
    if encoder.num_layers < 2:
        raise L3PruneError(f"the model has {encoder.num_layers} layer; a scan needs at least 2 to compare")
    sampler, num_batches = scan_sampler(triplets, num_batches=num_batches, batch_size=batch_size, seed=seed)
    was_training = encoder.training
    encoder.eval()
    per_batch = torch.empty(num_batches, encoder.num_layers)  # (batches, layers)
    sources: Counter[str] = Counter()
    start = time.perf_counter()
    try:
        for step in tqdm(range(num_batches), desc="scan", unit="batch", disable=not show_progress):
            batch = [triplets[i] for i in sampler.batch_at(step)]
            sources[batch[0].source] += 1
            per_batch[step] = layer_losses(encoder, batch).mean(1).float().cpu()  # (layers,)
    finally:
        encoder.train(was_training)
    settings = {
        "num_batches": num_batches,
        "batch_size": batch_size,
        "seed": seed,
        "num_triplets": len(triplets),
        "batches_per_source": dict(sorted(sources.items())),
        "loss": f"in-batch + hard-negative InfoNCE, cosine x {LOSS_SCALE:g}",
        "pooling": encoder.settings.pooling,
        "max_length": encoder.settings.max_length,
        "padding_side": encoder.settings.padding_side,
        "kept_layers": list(encoder.settings.kept_layers),
        "dtype": dtype_name(encoder.dtype),  # bf16 / fp32, as flags and every other result file spell it
        "device": str(encoder.device),
        "seconds": round(time.perf_counter() - start, 2),
    }
    profile = LayerProfile.from_losses(per_batch, model=encoder.settings.base_model, settings=settings)
    logger.info("scan: small = %d layers (loss %.4f), large = %d layers (loss %.4f) of %d", profile.small,
                profile.loss_mean[profile.small - 1], profile.large, profile.loss_mean[profile.large - 1],
                profile.num_layers)
    return profile


def scan_model(
    model: str | os.PathLike | ModelSource,
    out: str | os.PathLike,
    *,
    data: Sequence[str | os.PathLike] | None = None,
    num_batches: int = DEFAULT_NUM_BATCHES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    load: LoadOptions | None = None,
    overwrite: bool = False,
) -> tuple[LayerProfile, dict[str, Path]]:
    """``l3prune scan``: check the outputs and load triplets (before the model loads), scan, write JSON/CSV/PNG."""
    from l3prune.encoder import LLMEncoder

    profile_paths(out, overwrite=overwrite)
    triplets = load_triplets(data)
    scan_sampler(triplets, num_batches=num_batches, batch_size=batch_size, seed=seed)
    source = model if isinstance(model, ModelSource) else resolve(model)
    encoder = LLMEncoder.from_source(source, load=load)
    profile = scan_layers(encoder, triplets, num_batches=num_batches, batch_size=batch_size, seed=seed)
    profile.settings["data"] = [str(d) for d in data] if data else "shipped triplets"
    return profile, profile.save(out, overwrite=overwrite)
