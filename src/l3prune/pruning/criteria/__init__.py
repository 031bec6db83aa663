"""Pruning criteria, registered by name. Each answers one question: which layers to keep.

A criterion gets the full encoder and a target size (or an L3Prune configuration name, "small" or
"large") and returns the original indices to keep plus a one-line reason that is saved with the pruned
model. A criterion whose answer needs no model (``last``; ``l3prune`` given a size) also offers
``plan(total, num_layers, configuration=...)``, so commands can load only the kept layers instead of the
whole model (``pruning.commands.select_without_model``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from l3prune.errors import L3PruneError

if TYPE_CHECKING:
    from l3prune.data import Triplet
    from l3prune.encoder import LLMEncoder


@dataclass
class Selection:
    """The layers a criterion keeps, why, and the per-layer scores behind the choice (if any)."""

    layers: list[int]
    reason: str
    scores: dict[str, list[float]] = field(default_factory=dict)


class Criterion(Protocol):
    name: str
    configurations: tuple[str, ...]  # named configurations it offers, e.g. ("small", "large"); () for none

    def select(
        self,
        encoder: LLMEncoder,
        num_layers: int | None,
        *,
        configuration: str | None = None,
        data: Sequence[Triplet] | None = None,
    ) -> Selection: ...


CRITERIA: dict[str, Callable[[], Criterion]] = {}


def register(name: str):
    """Class decorator: make a criterion available under ``name``."""

    def wrap(cls):
        cls.name = name
        CRITERIA[name] = cls
        return cls

    return wrap


def get_criterion(name: str) -> Criterion:
    _load_builtin()
    if name not in CRITERIA:
        raise L3PruneError(f"unknown criterion {name!r}; choose from {sorted(CRITERIA)}")
    return CRITERIA[name]()


def _load_builtin() -> None:
    # Imported lazily so each criterion module registers itself without import cycles.
    from l3prune.pruning.criteria import angular, block_influence, l3prune, last, perplexity, taylor  # noqa: F401
