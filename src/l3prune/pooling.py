"""Pool token states into one vector per text, over the text tokens only (never the instruction).

``pool_mask`` marks the tokens that may be pooled; it is independent of the padding side, so every
mode below is correct for left and right padding alike.
"""

from __future__ import annotations

import torch

from l3prune.errors import L3PruneError
from l3prune.settings import POOLING_MODES, check_pooling

__all__ = ["POOLING_MODES", "check_pooling", "pool"]


def pool(hidden: torch.Tensor, pool_mask: torch.Tensor, mode: str,
         attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """(batch, seq, dim) states and a (batch, seq) 0/1 mask -> (batch, dim) embeddings.

    ``attention_mask`` (the real tokens: special tokens, instruction and text) is needed only by
    ``weighted_mean_from_instruction``.
    """
    mask = pool_mask.to(hidden.dtype)  # (batch, seq)
    if mode == "mean":
        return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
    if mode == "weighted_mean":
        # Weights 1..n over the pooled tokens, counted from the first text token (the paper's
        # position weighting), so padding and instruction tokens shift nothing.
        # The cumsum runs in float32: bf16 cannot count past 256 exactly.
        return _weighted_mean(hidden, pool_mask.float().cumsum(1) * pool_mask)
    if mode == "weighted_mean_from_instruction":
        # The same text tokens, but their weights count from the first real token (a BOS, the instruction):
        # p+1..p+n after p such tokens. This is what stock sentence-transformers' 'weightedmean' computes
        # with include_prompt=False, so an encoder trained with it exports stock and exact.
        if attention_mask is None:
            raise L3PruneError("pooling 'weighted_mean_from_instruction' needs the attention mask")
        return _weighted_mean(hidden, attention_mask.float().cumsum(1) * pool_mask)
    positions = torch.arange(hidden.shape[1], device=hidden.device).expand_as(pool_mask)  # (batch, seq)
    if mode in ("last_token", "eos"):
        index = torch.where(pool_mask.bool(), positions, -1).amax(1)  # (batch,)
    elif mode == "bos":
        index = torch.where(pool_mask.bool(), positions, hidden.shape[1]).amin(1)  # (batch,)
    else:
        check_pooling(mode)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]  # (batch, dim)


def _weighted_mean(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sum of states x (batch, seq) weights, over the weights' sum; the weights arrive in float32."""
    weights = weights.to(hidden.dtype)  # (batch, seq)
    return (hidden * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True).clamp(min=1)
