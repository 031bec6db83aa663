"""Paths to the real data the package ships (training triplets and the default evaluation suite)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """Absolute path of a shipped file or folder, e.g. ``resource_path("train")``."""
    return Path(str(resources.files("l3prune").joinpath("resources", *parts)))


def default_train_files() -> list[Path]:
    """The shipped (query, positive, negative) triplet files, sorted by name."""
    return sorted(resource_path("train").glob("*.jsonl"))
