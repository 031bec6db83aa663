"""Resumable checkpoints: trainable weights, optimizer, scheduler, every rank's RNG state and the step.

A checkpoint is one file, written beside its final name and swapped in (``l3prune.files.writing``), so a run killed while
saving leaves the previous checkpoint intact and never a half-written one. The batch order needs no
state: ``SourceBatchSampler.batch_at(step)`` recomputes it from the step.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch

from l3prune.errors import L3PruneError
from l3prune.files import atomic_output

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^step-(\d{7})\.pt$")


def rng_state() -> dict[str, Any]:
    """This process's torch RNG states (CPU and current CUDA device): all that dropout draws from."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"step-{step:07d}.pt"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in a folder, oldest first (temporary files are ignored)."""
    if not folder.is_dir():
        return []
    found = [(int(m[1]), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], *, keep: int = 1) -> Path:
    """Write ``state`` as ``step-NNNNNNN.pt`` (temp file, then rename) and delete all but the ``keep`` newest."""
    final = checkpoint_path(folder, step)
    with atomic_output(final, overwrite=True) as tmp:
        torch.save({**state, "step": step}, tmp)
    for _, old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    logger.info("checkpoint at step %d: %s", step, final)
    return final


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which and how to recover
        raise L3PruneError(f"could not read checkpoint {path}: {exc}; delete it to resume from an earlier one") from None
