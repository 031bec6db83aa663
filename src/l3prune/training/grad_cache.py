"""Gradient caching (Gao et al. 2021, "GradCache"): a large contrastive batch's exact gradient at a small batch's
memory.

In-batch negatives make the batch size a quality knob, but the activations of every text of the batch are kept
for the backward pass. Caching breaks that link in three passes over the same length-sorted pieces of the batch:

1) embed every piece without gradients, remembering the RNG state each piece starts from;
2) compute the loss over the whole batch from those embeddings, and its gradient with respect to each embedding;
3) embed each piece again, with gradients, from its remembered RNG state (so dropout draws the same masks), and
   backpropagate its part of the cached gradient.

Only one piece's activations are alive at a time, and the parameters' gradient is exactly that of the loss in 2).
sentence-transformers' ``CachedMultipleNegativesRankingLoss`` does the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch

from l3prune.training.checkpoint import rng_state, set_rng_state

Piece = tuple[torch.Tensor, dict[str, torch.Tensor]]  # (rows of the batch, their features)


def in_batch_order(embedded: torch.Tensor, pieces: Sequence[Piece]) -> torch.Tensor:
    """The pieces' embeddings (concatenated in piece order) back in the batch's row order."""
    order = torch.cat([rows for rows, _ in pieces]).to(embedded.device)
    return torch.empty_like(embedded).index_copy(0, order, embedded)  # (texts, dim)


def cached_backward(
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    pieces: Sequence[Piece],
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    *,
    no_sync: Callable[[], contextlib.AbstractContextManager] | None = None,
) -> torch.Tensor:
    """Backpropagate ``loss_of(embeddings)`` into the parameters, one piece's activations at a time; return the loss.

    ``forward`` embeds one piece's features; ``loss_of`` maps the batch's embeddings (in batch order) to the loss.
    Under DDP, ``no_sync`` (the wrapper's) keeps the gradients local until the last piece's backward.
    """
    # 1) embed every piece without gradients, noting the RNG state it starts from
    states, embedded = [], []
    with torch.no_grad():
        for _, features in pieces:
            states.append(rng_state())
            embedded.append(forward(features))  # (piece, dim)
    after = rng_state()
    # 2) the loss over the whole batch, and its gradient with respect to every embedding
    cache = torch.cat(embedded).detach().requires_grad_()  # (texts, dim), in piece order
    loss = loss_of(in_batch_order(cache, pieces))
    loss.backward()  # reaches only ``cache``: the embeddings were computed without a graph
    # 3) each piece again, with gradients and its own RNG state, backpropagating its share of the cached gradient
    start = 0
    for i, ((rows, features), state) in enumerate(zip(pieces, states)):
        set_rng_state(state)
        last = i == len(pieces) - 1
        with no_sync() if no_sync is not None and not last else contextlib.nullcontext():
            piece = forward(features)  # (piece, dim)
            piece.backward(cache.grad[start : start + len(rows)].to(piece.dtype))
        start += len(rows)
    set_rng_state(after)  # the stream continues as after one pass over the batch
    return loss.detach()
