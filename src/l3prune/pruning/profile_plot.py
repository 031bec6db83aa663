"""The scan's plot: loss against depth, with the small and large picks marked so they read at a glance.

Two bands: the spread of the per-batch loss (light; batches from different sources differ a lot) and
the standard error of the mean (dark), which says whether neighbouring depths really differ. Drawn on
a bare Agg canvas (no pyplot), so plotting never needs a display or touches global state.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from l3prune.pruning.scan import LayerProfile

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
