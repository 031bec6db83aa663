"""The per-step loss log (JSONL or CSV) and its PNG loss curve.

Rows are appended and flushed as training goes, so a killed run keeps its log; on resume the rows
after the checkpoint's step are dropped, because the resumed run recomputes exactly those steps.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from l3prune.files import atomic_output, dumps

COLUMNS = ("step", "loss", "lr", "grad_norm", "seconds")
#: Logged when a run has them: ``distill``, the distillation term (the loss then includes it).
OPTIONAL_COLUMNS = ("distill",)


class LossLog:
    """Append-only table of ``COLUMNS`` in ``train_log.jsonl`` or ``train_log.csv``."""

    def __init__(self, folder: Path, fmt: str = "jsonl") -> None:
        self.path = Path(folder) / f"train_log.{fmt}"
        self.fmt = fmt

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        with self.path.open(encoding="utf-8") as handle:
            if self.fmt == "csv":
                return [{k: float(v) if k != "step" else int(v) for k, v in row.items()} for row in csv.DictReader(handle)]
            return [json.loads(line) for line in handle if line.strip()]

    def truncate(self, step: int) -> None:
        """Keep rows up to ``step`` (a killed run may have logged steps past its last checkpoint)."""
        rows = [row for row in self.read() if row["step"] <= step]
        with atomic_output(self.path, overwrite=True) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
            self._write(handle, rows, header=True)

    def append(self, row: dict[str, Any]) -> None:
        header = self.fmt == "csv" and not self.path.is_file()
        with self.path.open("a", encoding="utf-8", newline="") as handle:
            self._write(handle, [row], header=header)

    def _write(self, handle, rows: list[dict[str, Any]], *, header: bool) -> None:
        columns = COLUMNS + tuple(k for k in OPTIONAL_COLUMNS if rows and k in rows[0])  # one run: the same keys
        if self.fmt == "csv":
            writer = csv.DictWriter(handle, fieldnames=columns)
            if header:
                writer.writeheader()
            writer.writerows({k: row[k] for k in columns} for row in rows)
        else:
            handle.writelines(dumps({k: row[k] for k in columns}, indent=None) + "\n" for row in rows)


def plot_loss(rows: list[dict[str, Any]], path: Path, *, title: str = "training loss") -> Path | None:
    """Loss per step plus a moving average, as a PNG, drawn on a bare Agg canvas (no pyplot: no display
    needed and no global state, as in ``l3prune.pruning.profile``)."""
    rows = [r for r in rows if math.isfinite(r["loss"])]
    if not rows:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = [r["step"] for r in rows]
    losses = [r["loss"] for r in rows]
    window = max(1, len(losses) // 20)
    smooth = [sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1])
              for i in range(len(losses))]
    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(steps, losses, alpha=0.35, label="loss per step")
    ax.plot(steps, smooth, label=f"moving average ({window} steps)")
    ax.set_xlabel("step")
    ax.set_ylabel("contrastive loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_output(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return path
