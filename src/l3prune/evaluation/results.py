"""Results of a suite run: a Markdown table, and a JSON file written whole."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from l3prune.errors import L3PruneError


def format_table(results: dict[str, Any]) -> str:
    """A Markdown table of main scores, text counts and times, with notes underneath."""
    lines = [
        f"Model: `{results['model_id']}` (batch size {results['batch_size']})",
        "",
        "| Task | Type | Metric | Score | Texts | Seconds |",
        "|---|---|---|---:|---:|---:|",
    ]
    notes = []
    for name, t in results["tasks"].items():
        mark = ""
        if "note" in t:
            notes.append(f"{len(notes) + 1}. {name}: {t['note']}")
            mark = f" [{len(notes)}]"
        lines.append(
            f"| {name}{mark} | {t['type']} | {t['main_metric']} | {t['main_score']:.2f} "
            f"| {t['num_texts']} | {t['seconds']:.1f} |"
        )
    lines.append(f"| **Average** | | | **{results['average_main_score']:.2f}** | | {results['total_seconds']:.1f} |")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], path: str | Path, *, overwrite: bool = False) -> Path:
    """Write results as JSON atomically (temp file, then rename); refuse to replace a file unless asked."""
    out = Path(path).expanduser()
    if out.exists() and not overwrite:
        raise L3PruneError(f"{out} already exists; choose another path or pass overwrite=True")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
