"""The names of the pooling modes and their check, without torch.

Apart from ``pooling`` (which computes them) so that the command line can offer ``--pooling``'s choices,
and check them, before torch is imported: ``l3prune --help`` answers in well under a second.
"""

from __future__ import annotations

from l3prune.errors import L3PruneError

POOLING_MODES = ("mean", "weighted_mean", "weighted_mean_from_instruction", "last_token", "eos", "bos")


def check_pooling(mode: str) -> str:
    if mode not in POOLING_MODES:
        raise L3PruneError(f"unknown pooling {mode!r}; choose from {list(POOLING_MODES)}")
    return mode
