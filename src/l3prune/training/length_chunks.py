"""Split a padded training batch into length-sorted chunks, each trimmed to its own longest text.

A step embeds 3 x batch texts (queries, positives, negatives) of very different lengths: padded as one batch,
every text is as wide as the longest WikiQA answer. On the shipped triplets (every fifth of the first 1000
batches of 16, seed 42, max length 128), the real tokens are 53% of one padded pass and four length-sorted
chunks carry 63% of its tokens; a step is 1.14x faster, not 1.5x, because smaller matmuls run less efficiently
(``benchmarks/investigations/length_chunks_speed.py``). The loss is unchanged: a text's embedding does not depend on
its padding (positions count real tokens, see ``LLMEncoder.model_inputs``), and all chunks stay in one graph.
"""

from __future__ import annotations

import torch

#: How many chunks a training batch is split into (fewer: more padding; more: smaller, less efficient matmuls).
TRAIN_CHUNKS = 4


def length_sorted_chunks(features: dict[str, torch.Tensor], chunks: int, padding_side: str
                         ) -> list[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """``(rows, features)`` per chunk: the batch's row indices, shortest texts first, and their features
    trimmed to the chunk's widest text (from the left when padded on the left)."""
    lengths = features["attention_mask"].sum(dim=1)
    order = torch.argsort(lengths, stable=True)
    out = []
    for rows in torch.tensor_split(order, min(chunks, len(order))):
        width = int(lengths[rows].max())
        cols = slice(-width, None) if padding_side == "left" else slice(0, width)
        out.append((rows, {key: value[rows][:, cols] for key, value in features.items()}))
    return out
