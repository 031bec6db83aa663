"""Process-group setup for ``torchrun`` / ``accelerate launch``, read from the launcher's environment.

Both launchers export ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (accelerate's multi-GPU mode runs
torch's own launcher), so plain ``torch.distributed`` + DDP covers both without an ``Accelerator``
object. A single process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) never touches ``torch.distributed``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from l3prune.errors import L3PruneError
from l3prune.devices import check_device

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job, and the device it trains on."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    device: str = "cpu"
    owns_group: bool = False  # we initialised the process group, so we tear it down

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str | None = None) -> DistEnv:
    """Join the launcher's process group (gloo on CPU, NCCL on CUDA) and pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistEnv(device=check_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = check_device(device)
    if torch.device(device).type == "cuda":
        if torch.device(device).index is not None:
            raise L3PruneError(f"under a launcher each rank picks its GPU by LOCAL_RANK; pass --device cuda, not {device}")
        if local_rank >= torch.cuda.device_count():
            raise L3PruneError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s); lower --nproc_per_node")
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    logger.info("rank %d of %d on %s", rank, world_size, device)
    return DistEnv(world_size, rank, local_rank, device, owns)


def teardown(env: DistEnv) -> None:
    if env.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def broadcast(env: DistEnv, value: Any) -> Any:
    """Rank 0's (picklable) value on every rank."""
    if not env.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(env: DistEnv, value: Any) -> list[Any]:
    """Every rank's (picklable) value, in rank order, on every rank."""
    if not env.distributed:
        return [value]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, value)
    return out


def mean(env: DistEnv, value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over ranks (the single-process value for per-rank means of equal-size slices)."""
    if not env.distributed:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / env.world_size


def any_rank(env: DistEnv, flag: bool, device: str | torch.device) -> bool:
    """True on every rank if ``flag`` is true on any rank, so all ranks stop together."""
    if not env.distributed:
        return flag
    value = torch.tensor([int(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
