"""The replication queue starts a training row only if it can finish before the session ends."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def row_time(import_benchmark):
    return import_benchmark("replication/row_time")


def write_run(runs: Path, name: str, layers: int, seconds: list[float]) -> None:
    folder = runs / name
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"kept": list(range(layers))}))
    (folder / "train_log.jsonl").write_text(
        "".join(json.dumps({"step": i + 1, "loss": 1.0, "seconds": s}) + "\n" for i, s in enumerate(seconds)))


def test_the_rate_comes_from_this_machines_logs_pooled_by_layer_steps(row_time, tmp_path):
    write_run(tmp_path, "deep-s42", 20, [99.0] + [10.0] * 60)  # 0.5 s per layer-step; step 1 (warm-up) ignored
    write_run(tmp_path, "shallow-s42", 4, [99.0] + [1.2] * 40)  # 0.3 s per layer-step
    rate, source = row_time.seconds_per_layer_step("smollm2-135m", tmp_path)
    assert rate == pytest.approx((60 * 10.0 + 40 * 1.2) / (60 * 20 + 40 * 4))
    assert "100 steps" in source


def test_too_few_logged_steps_fall_back_to_the_table(row_time, tmp_path):
    write_run(tmp_path, "new-s42", 10, [5.0] * 20)
    assert row_time.seconds_per_layer_step("gemma3-270m", tmp_path) == (
        row_time.DEFAULT_SECONDS_PER_LAYER["gemma3-270m"], row_time.TABLE_SOURCE)
    assert not row_time.measured_here(tmp_path)
    slowest = max(row_time.DEFAULT_SECONDS_PER_LAYER.values())
    assert row_time.DEFAULT_SECONDS_PER_LAYER[row_time.FALLBACK_MODEL] == slowest
    assert row_time.seconds_per_layer_step("another-model", tmp_path)[0] == slowest
    write_run(tmp_path, "more-s42", 10, [5.0] * 40)  # 19 + 39 steps after each run's warm-up step
    assert row_time.measured_here(tmp_path)


def test_row_minutes_count_remaining_steps_and_the_evaluations(row_time):
    evals = row_time.EVAL_MINUTES["gemma3-270m"]
    fresh = row_time.row_minutes(model="gemma3-270m", layers=18, steps=1000, done_steps=0, seconds_per_layer=0.5,
                                 full_suite=True)
    quick, full = (a + b * 18 for a, b in (evals["quick"], evals["full"]))
    assert fresh == pytest.approx(1000 * 18 * 0.5 * row_time.SAFETY / 60 + quick + full)
    resumed = row_time.row_minutes(model="gemma3-270m", layers=18, steps=1000, done_steps=900,
                                   seconds_per_layer=0.5, full_suite=False)
    assert resumed == pytest.approx(100 * 18 * 0.5 * row_time.SAFETY / 60 + quick)


def test_the_full_suite_is_budgeted_as_measured_and_unknown_models_as_the_slowest(row_time):
    """Gemma-3's full suite took most of an hour at 18 layers without AMX: a row that needs it must say so."""
    kwargs = dict(layers=18, steps=1000, done_steps=1000, seconds_per_layer=0.5)
    gemma_full = row_time.row_minutes(model="gemma3-270m", full_suite=True, **kwargs)
    assert gemma_full - row_time.row_minutes(model="gemma3-270m", full_suite=False, **kwargs) >= 40
    assert row_time.row_minutes(model="another-model", full_suite=True, **kwargs) == gemma_full


def test_done_steps_reads_the_last_logged_step(row_time, tmp_path):
    write_run(tmp_path, "r", 3, [1.0] * 7)
    assert row_time.done_steps(tmp_path / "r") == 7
    assert row_time.done_steps(tmp_path / "missing") == 0


def test_finish_by_accepts_a_clock_time_or_an_iso_time(row_time):
    now = dt.datetime(2026, 12, 1, 10, 30)
    assert row_time.parse_finish_by("12:20", now) == dt.datetime(2026, 12, 1, 12, 20)
    assert row_time.parse_finish_by("2026-12-02T01:00", now) == dt.datetime(2026, 12, 2, 1, 0)


@pytest.mark.parametrize("text, message", [("10:00", "already past"), ("soon", "is not a time"),
                                           ("25:00", "is not a time"), ("2026-13-01T00:00", "is not a time")])
def test_finish_by_rejects_bad_or_past_times_with_a_message(row_time, text, message):
    with pytest.raises(ValueError, match=message):
        row_time.parse_finish_by(text, dt.datetime(2026, 12, 1, 10, 30))
