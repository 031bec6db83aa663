"""Will a training row finish before the session ends? An estimate, so a queue starts only rows that fit.

A session's machine may keep no cache: then a row cut off by the session's end is lost, checkpoints
included, and its hours are wasted. Step time is about proportional to the kept layers, and machines differ
by more than 2x in a way their CPU flags do not tell (per step and kept layer: 0.13-0.15 s on an AMD EPYC
without AMX, 0.26 on an Intel Xeon with AMX, 0.30 on the machine of the table below), so the rate comes from
this machine's own training logs when it has enough, and from the table (a slow machine) otherwise;
``run.py`` runs a short probe to get such logs on a fresh machine (``probe_rate``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from l3prune.training.history import LossLog

#: Seconds per training step per kept layer at the paper budget (bf16, batch 16 triplets, max length 128,
#: 2 cores without AMX): SmolLM2 6.3 s at 21 layers, Gemma-3 10.5 s at 18 (the mean of a whole session's
#: run in length-sorted chunks, 2026-12-01).
DEFAULT_SECONDS_PER_LAYER = {"smollm2-135m": 0.30, "gemma3-270m": 0.58}
#: Minutes to evaluate a trained row, (fixed, per kept layer), per model, rounded up from what was measured
#: without AMX: Gemma-3's quick suite took 2.1 min at 8 layers and 4.0 at 17, its full suite 19.1 min at 8 and
#: 41.6 at 18 (msmarco_5k's 5,043 passages alone 14 at 18). SmolLM2's full suite took 2.4 min at 7 layers on a
#: machine with AMX; without AMX it is taken as Gemma-3's per-layer time scaled by the two models' training
#: rates (0.30/0.58).
EVAL_MINUTES = {
    "gemma3-270m": {"quick": (1.0, 0.2), "full": (1.0, 2.3)},
    "smollm2-135m": {"quick": (1.0, 0.2), "full": (1.0, 1.2)},
}
#: An unknown model is budgeted as this one, the slower per layer to train and to evaluate, so that a queue does not
#: start it on an optimistic guess.
FALLBACK_MODEL = "gemma3-270m"
SAFETY = 1.15  # step times swing 2x with each batch's texts; means over a row are steadier, but not exact
MIN_LOGGED_STEPS = 50  # fewer steps than this on this machine: trust the table instead
TABLE_SOURCE = "the table (a slow machine's rate)"


def seconds_per_layer_step(model: str, runs: Path) -> tuple[float, str]:
    """(seconds per step per kept layer, where that figure comes from) for ``model`` on this machine.

    ``runs`` holds one folder per training run (``run.json`` with the kept layers, ``train_log.jsonl``).
    Layer-steps are pooled over every run, so long, deep runs weigh most: they are what the estimate is for.
    """
    seconds, layer_steps, steps = _logged(runs)
    if steps >= MIN_LOGGED_STEPS:
        return seconds / layer_steps, f"this machine's own logs ({steps} steps)"
    return DEFAULT_SECONDS_PER_LAYER.get(model, DEFAULT_SECONDS_PER_LAYER[FALLBACK_MODEL]), TABLE_SOURCE


def measured_here(runs: Path) -> bool:
    """Whether this machine has logged enough training steps to estimate its own rate."""
    return _logged(runs)[2] >= MIN_LOGGED_STEPS


def _logged(runs: Path) -> tuple[float, int, int]:
    """(seconds, layer-steps, steps) logged by every training run in ``runs``; step 1 of each warms up."""
    seconds, layer_steps, steps = 0.0, 0, 0
    for record in sorted(runs.glob("*/run.json")):
        layers = len(json.loads(record.read_text()).get("kept") or [])
        logged = [row["seconds"] for row in LossLog(record.parent).read()[1:]]
        if layers and logged:
            seconds += sum(logged)
            layer_steps += layers * len(logged)
            steps += len(logged)
    return seconds, layer_steps, steps


def row_minutes(*, model: str, layers: int, steps: int, done_steps: int, seconds_per_layer: float,
                full_suite: bool) -> float:
    """Minutes a row still needs: its remaining steps, with a safety margin, then its evaluation."""
    train = max(0, steps - done_steps) * layers * seconds_per_layer * SAFETY / 60
    suites = ["quick", "full"] if full_suite else ["quick"]
    evals = EVAL_MINUTES.get(model, EVAL_MINUTES[FALLBACK_MODEL])
    return train + sum(evals[s][0] + evals[s][1] * layers for s in suites)


def done_steps(run_dir: Path) -> int:
    """Steps a stopped run has logged (it resumes from its last checkpoint, at most ``save_every`` earlier)."""
    rows = LossLog(run_dir).read()
    return int(rows[-1]["step"]) if rows else 0


def parse_finish_by(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``HH:MM`` (today, local time) or an ISO date-time; it must lie in the future."""
    now = now or dt.datetime.now()
    try:
        if len(text) <= 5 and ":" in text:
            hours, minutes = (int(part) for part in text.split(":"))
            when = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
        else:
            when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--finish-by {text!r} is not a time: give HH:MM (today) or an ISO date-time such as "
                         "2026-12-01T12:20") from None
    if when.tzinfo is not None:
        when = when.astimezone().replace(tzinfo=None)
    if when <= now:
        raise ValueError(f"--finish-by {text} is already past (now {now:%Y-%m-%d %H:%M}); give a later time")
    return when
