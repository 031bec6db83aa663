"""The scan's result: the loss of every prefix depth, its files (JSON, CSV) and its plot (PNG).

The plot shows loss against depth, with the small and large picks marked so they read at a glance. Two
bands: the spread of the per-batch loss (light; batches from different sources differ a lot) and the
standard error of the mean (dark), which says whether neighbouring depths really differ. Drawn on a
bare Agg canvas (no pyplot), so plotting never needs a display or touches global state.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from l3prune.errors import L3PruneError
from l3prune.files import atomic_output, check_output, dumps

PROFILE_NAME = "layer_profile"  # file stem when ``save`` is given a folder


@dataclass
class LayerProfile:
    """Mean contrastive loss of every prefix depth k = 1..L, and the paper's two picks.

    ``loss_mean[k - 1]`` is the loss of the encoder that keeps the first k layers; ``loss_std`` is the
    spread of the per-batch mean loss across the scanned batches. ``small`` and ``large`` are 1-based
    layer counts: the argmin over 1..L//2 and over L//2+1..L.
    """

    model: str | None
    num_layers: int
    loss_mean: list[float]
    loss_std: list[float]
    small: int
    large: int
    settings: dict = field(default_factory=dict)

    @classmethod
    def from_losses(cls, per_batch: torch.Tensor, *, model: str | None, settings: dict) -> LayerProfile:
        """Build a profile from a (num_batches, num_layers) matrix of per-batch mean losses."""
        num_layers = per_batch.shape[1]
        mean = per_batch.mean(0)  # (layers,)
        std = per_batch.std(0) if per_batch.shape[0] > 1 else torch.zeros(num_layers)  # (layers,)
        half = num_layers // 2
        small = int(mean[:half].argmin()) + 1
        large = half + int(mean[half:].argmin()) + 1
        return cls(model, num_layers, mean.tolist(), std.tolist(), small, large, settings)

    @property
    def layers(self) -> list[int]:
        return list(range(1, self.num_layers + 1))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LayerProfile:
        """Read a profile written by :meth:`save` (its ``.json`` file)."""
        path = Path(path)
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise L3PruneError(f"{path} is not a layer profile written by 'l3prune scan': {exc}") from None

    def to_csv(self) -> str:
        rows = ["layers,loss_mean,loss_std,config"]
        for k, mean, std in zip(self.layers, self.loss_mean, self.loss_std):
            config = "small" if k == self.small else "large" if k == self.large else ""
            rows.append(f"{k},{mean:.6f},{std:.6f},{config}")
        return "\n".join(rows) + "\n"

    def save(self, target: str | os.PathLike, *, overwrite: bool = False) -> dict[str, Path]:
        """Write ``<prefix>.json``, ``.csv`` and ``.png``; a folder target uses the prefix ``layer_profile``.

        All three paths are checked before any is written (see :func:`profile_paths`); each is written
        beside its target and swapped in, so a reader never sees half a file.
        """
        paths = profile_paths(target, overwrite=overwrite)
        text = dumps(self.to_dict()) + "\n"  # a NaN loss fails here, before anything is written
        writers = {
            "json": lambda tmp: tmp.write_text(text, encoding="utf-8"),
            "csv": lambda tmp: tmp.write_text(self.to_csv(), encoding="utf-8"),
            "png": lambda tmp: plot_profile(self, tmp),
        }
        for ext, path in paths.items():
            with atomic_output(path, overwrite=overwrite) as tmp:
                writers[ext](tmp)
        return paths


def profile_paths(target: str | os.PathLike, *, overwrite: bool = False) -> dict[str, Path]:
    """The JSON/CSV/PNG paths of a profile saved at ``target`` (a prefix, one of the three files, or a folder), each
    checked as an output."""
    text = str(target)
    prefix = Path(target).expanduser()
    if text.endswith(("/", os.sep)) or prefix.is_dir():
        prefix = prefix / PROFILE_NAME
    elif prefix.suffix.lower() in (".json", ".csv", ".png"):  # `--out prof.json` means the prefix prof
        prefix = prefix.with_suffix("")
    paths = {ext: prefix.with_name(f"{prefix.name}.{ext}") for ext in ("json", "csv", "png")}
    for path in paths.values():
        check_output(path, overwrite=overwrite)
    return paths


_COLORS = {"line": "#1f4e79", "std": "#c6dbef", "sem": "#6baed6", "small": "#2ca02c", "large": "#d62728"}


def _band(ax, x, mean, width, color, label) -> None:
    ax.fill_between(x, [m - w for m, w in zip(mean, width)], [m + w for m, w in zip(mean, width)],
                    color=color, alpha=0.6, lw=0, label=label)


def plot_profile(profile: LayerProfile, path: str | os.PathLike) -> None:
    """Write a PNG of mean loss per kept-layer count, its spread, and the small/large picks."""
    layers, mean, std = profile.layers, profile.loss_mean, profile.loss_std
    num_layers, half = profile.num_layers, profile.num_layers // 2
    batches = int(profile.settings.get("num_batches") or 1)
    fig = Figure(figsize=(8, 5), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, lo, hi in (("small", 1, half), ("large", half + 1, num_layers)):
        ax.axvspan(lo - 0.5, hi + 0.5, color=_COLORS[name], alpha=0.06, lw=0)
        ax.text((lo + hi) / 2, 0.02, f"{name} is searched in {lo}..{hi}", transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=8, color=_COLORS[name])
    _band(ax, layers, mean, std, _COLORS["std"], "±1 std of the per-batch loss")
    _band(ax, layers, mean, [s / math.sqrt(batches) for s in std], _COLORS["sem"], "±1 standard error of the mean")
    ax.plot(layers, mean, "-o", color=_COLORS["line"], ms=3.5, lw=1.8, label="mean contrastive loss")
    for name in ("small", "large"):
        k = getattr(profile, name)
        ax.axvline(k, color=_COLORS[name], ls="--", lw=1.2, alpha=0.8)
        ax.plot([k], [mean[k - 1]], "*", color=_COLORS[name], ms=18, mec="black", mew=0.8, zorder=5,
                label=f"{name} = {k} layers (loss {mean[k - 1]:.3f})")
        right = k > 0.8 * num_layers  # keep the label inside the axes
        ax.text(k, 0.98, f"{name} = {k} " if right else f" {name} = {k}", transform=ax.get_xaxis_transform(),
                ha="right" if right else "left", va="top", fontsize=9, fontweight="bold", color=_COLORS[name])
    low, high = min(m - s for m, s in zip(mean, std)), max(m + s for m, s in zip(mean, std))
    pad = high - low or 1.0
    ax.set_ylim(low - 0.1 * pad, high + 0.1 * pad)
    ax.set_xlim(0.5, num_layers + 0.5)
    step = 1 if num_layers <= 20 else 2
    ax.set_xticks(range(step, num_layers + 1, step) if step > 1 else range(1, num_layers + 1))
    ax.set_xlabel("layers kept (the first k)")
    ax.set_ylabel("contrastive loss (lower is better)")
    ax.grid(True, alpha=0.3)
    s = profile.settings
    sample = f"{s.get('num_batches', '?')} batches of {s.get('batch_size', '?')} triplets, max_length {s.get('max_length', '?')}"
    ax.set_title(f"L3Prune scan: {profile.model or 'model'} ({num_layers} layers)\n{sample}", fontsize=11)
    fig.legend(loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.savefig(path, format="png")
