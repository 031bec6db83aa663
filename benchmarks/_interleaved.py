"""Time training steps of several trainers side by side, interleaved, so a shared machine's drifts hit all alike."""

from __future__ import annotations

import time

from l3prune.training import Trainer


def interleaved_step_seconds(trainers: list[Trainer], warmup: int, steps: int, label: str = "") -> list[list[float]]:
    """Seconds of each of ``steps`` timed ``train_step`` calls per trainer, after ``warmup`` untimed ones; every
    trainer takes step k (on the same batch, the samplers being seeded alike) before any takes step k + 1."""
    seconds: list[list[float]] = [[] for _ in trainers]
    for round_ in range(warmup + steps):
        for i, trainer in enumerate(trainers):
            start = time.perf_counter()
            trainer.train_step()
            if round_ >= warmup:
                seconds[i].append(round(time.perf_counter() - start, 3))
        print(f"{label}round {round_}: " + ", ".join(f"{s[-1]:.2f}" for s in seconds if s), flush=True)
    return seconds
