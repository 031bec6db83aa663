"""The replication's figures: quality against size and speed (Pareto), and the training loss curves, with the
per-step losses kept in the results because a machine's cache does not outlive it."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from _plot_labels import place_labels

from l3prune.files import atomic_output
from l3prune.training.history import LossLog


def on_depth_curve(row: dict) -> bool:
    """Whether a row is a point of the paper's quality-versus-size curve: trained, keeping the first n layers
    (full, last-*, l3prune-*), with the paper's settings. A variant (another pooling, full fine-tuning) of such a
    row sits at the same size, and joining it would draw the line down to it and back up."""
    return row["trained"] and row["family"] in ("full", "last", "l3prune") and not row.get("variant")


def pareto_plot(rows: list[dict], path: Path, title: str) -> None:
    """Average score against parameters and against throughput; seed spread as error bars.

    The rows on the depth curve (``on_depth_curve``) are joined by a line. Points with the same layers share one
    joined label; a variant is drawn in blue and labelled with what it changes, beside the row it varies.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    fig, axes = plt.subplots(1, 2, figsize=(14, 6))
    all_labels = []
    for ax, x_key, label in ((axes[0], "parameters", "parameters (millions)"),
                             (axes[1], "texts_per_s", "encode throughput (sentences/s, CPU)")):
        points: dict[tuple, list[dict]] = {}
        labels: list[tuple[float, float, str]] = []
        for r in rows:
            if r[x_key] is not None:
                x = r[x_key] / 1e6 if x_key == "parameters" else r[x_key]
                points.setdefault((round(x, 3), round(r["average"], 3)), []).append(r)
        for (x, y), same in points.items():
            r = same[0]
            marker = "*" if r["family"] == "minilm" else ("o" if r["trained"] else "x")
            color = ("tab:blue" if r.get("variant") else
                     "black" if r["family"] in ("full", "last", "l3prune", "minilm") else "tab:red")
            ax.errorbar(x, y, yerr=r["seed_std"] or 0, fmt=marker, color=color, ms=9 if marker == "*" else 5, capsize=3)
            labels.append((x, y, " = ".join(_point_label(p) for p in same)))
        curve = sorted({(x, y) for (x, y), same in points.items() if any(on_depth_curve(p) for p in same)})
        if curve:
            ax.plot(*zip(*curve), color="black", alpha=0.3, lw=1)
        ax.set_xlabel(label)
        ax.set_ylabel("average score (10 tasks, quick suite)")
        ax.grid(alpha=0.3)
        if x_key == "texts_per_s":  # plain numbers at 1-2-5 steps: the default minor labels print over each other
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        all_labels.append((ax, labels))
    fig.suptitle(title + "\n(o trained, x untrained, * MiniLM; red: field criteria; blue: the row it names with another "
                 "pooling or full fine-tuning; bars: seed std)", fontsize=11)
    fig.tight_layout()
    for ax, labels in all_labels:  # after the layout: the boxes are measured where they will be drawn
        place_labels(ax, labels)
    with atomic_output(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def _point_label(row: dict) -> str:
    """A variant's label names the row it varies, shortly, and what it changes ("small +mean", "drop80 +fullft"),
    short enough to sit beside its crowded neighbours."""
    changes = [str(value) if key == "pooling" else f"{value}ft" for key, value in sorted((row.get("variant") or {}).items())]
    if not changes:
        return row["config"]
    base = row["config"]
    for change in changes:
        base = base.removesuffix("-" + change)
    return " ".join([base.removeprefix("l3prune-").removeprefix("last-"), *("+" + c for c in changes)])


def keep_loss_curves(results: list[dict], cache: Path, path: Path, *, seed: int) -> dict[str, dict]:
    """The per-step training loss of the trained rows of ``seed``, kept in the results next to the scores.

    A session's machine keeps no cache, so the training logs of rows trained in earlier sessions are gone; the
    curves committed in ``path`` are merged with the logs still in the cache, and the file is rewritten.
    """
    curves = json.loads(path.read_text())["curves"] if path.is_file() else {}
    for r in results:
        if not (r["info"]["trained"] and r["info"]["seed"] == seed):
            continue
        rows = LossLog(cache / "models" / r["model_id"]).read()
        if rows:
            curves[r["model_id"]] = {"step": [row["step"] for row in rows],
                                     "loss": [round(row["loss"], 4) for row in rows]}
    with atomic_output(path, overwrite=True) as tmp:  # one line: 1000 numbers per row would be 1000 lines
        tmp.write_text(json.dumps({"description": f"training loss per step of the trained seed-{seed} rows "
                                                  "(from each row's train_log.jsonl), by model_id",
                                   "curves": curves}) + "\n", encoding="utf-8")
    return curves


def loss_plot(results: list[dict], curves: dict[str, dict], path: Path, title: str, *, seed: int) -> None:
    """The loss curves of the trained rows of ``seed`` on one figure (moving average of 25 steps); a row whose
    curve was not kept is named under the plot, never silently left out."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in results if r["info"]["trained"] and r["info"]["seed"] == seed]
    drawn = [r for r in rows if r["model_id"] in curves]
    missing = [r["info"]["config"] for r in rows if r["model_id"] not in curves]
    if not drawn:
        return
    fig = Figure(figsize=(9, 5.4 if missing else 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for r in drawn:
        curve = curves[r["model_id"]]
        losses = curve["loss"]
        smooth = [statistics.mean(losses[max(0, i - 24): i + 1]) for i in range(len(losses))]
        ax.plot(curve["step"], smooth, lw=1.5, label=f"{r['info']['config']} ({r['info']['num_layers']} layers)")
    ax.set_xlabel("step")
    ax.set_ylabel("contrastive loss (moving average of 25 steps)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if missing:
        fig.text(0.01, 0.01, "no curve kept for: " + ", ".join(missing)
                 + " (trained before the curves were committed; see docs/replication.md)", fontsize=8)
    fig.tight_layout(rect=(0, 0.04 if missing else 0, 1, 1))
    with atomic_output(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
