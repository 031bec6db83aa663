"""Results of a suite run: a Markdown table, and a JSON file written whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from l3prune.errors import L3PruneError
from l3prune.files import check_output, write_json


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


def check_results_path(path: str | Path, *, overwrite: bool = False) -> Path:
    """A results path must be a ``.json`` file that may be written (``l3prune.files.writing`` rules); checked before a run."""
    out = Path(path).expanduser()
    if out.suffix.lower() != ".json":
        raise L3PruneError(f"results file {out} must end in .json")
    return check_output(out, overwrite=overwrite)


def write_results(results: dict[str, Any], path: str | Path, *, overwrite: bool = False) -> Path:
    """Write results as strict JSON (no NaN), beside the target then swapped in; never over another kind of file."""
    return write_json(check_results_path(path, overwrite=overwrite), results, overwrite=overwrite)
