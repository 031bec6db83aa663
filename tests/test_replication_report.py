"""The paper-vs-ours verdicts are computed by stated rules; these pin the rules on made-up rows."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def report(import_benchmark):
    return import_benchmark("replication/report")


@pytest.fixture(scope="module")
def claims(import_benchmark):
    return import_benchmark("replication/claims")


def row(config, layers, average, *, seeds=(42,), std=None, params=None, b77=70.0, trained=True):
    params = params if params is not None else 30e6 + layers * 3.5e6  # embeddings + linear in layers
    return {"config": config, "family": "last", "trained": trained, "layers": layers, "parameters": params,
            "params_pct": 100 * params / (30e6 + 30 * 3.5e6), "seeds": list(seeds), "average": average,
            "seed_std": std, "delta_vs_full": None,
            "scores": {"Banking77Classification": b77, "Banking77Clustering": b77 - 5}}


def payload(*rows):
    return {"rows": list(rows)}


def test_negligible_loss_held_within_one_point_and_not_beyond(claims):
    full = row("full", 30, 70.0, seeds=(42, 7, 1234), std=0.2)
    held = claims.claims({"smollm2-135m": payload(full, row("last-drop30", 21, 69.2)), "gemma3-270m": None})[0]
    assert held.cells["smollm2-135m"].verdict == "held"
    assert "outside seed noise (±0.40)" in held.cells["smollm2-135m"].why
    lost = claims.claims({"smollm2-135m": payload(full, row("last-drop30", 21, 68.5)), "gemma3-270m": None})[0]
    assert lost.cells["smollm2-135m"].verdict == "did not hold"
    assert lost.cells["gemma3-270m"].verdict == "pending"


def test_missing_rows_are_pending_and_named(claims):
    cell = claims.claims({"smollm2-135m": payload(row("full", 30, 70.0)), "gemma3-270m": None})[1].cells["smollm2-135m"]
    assert cell.verdict == "pending" and "last-drop80" in cell.why and cell.figure == ""


def test_seed_noise_is_unknown_with_one_seed(claims):
    assert claims.seed_noise(claims.rows_of(payload(row("full", 30, 70.0)))) is None
    assert claims.noise_note(0.3, None) == "seed noise not measured yet"
    assert claims.noise_note(0.3, 0.4).startswith("inside") and claims.noise_note(0.5, 0.4).startswith("outside")


def test_parameter_shares_far_from_the_papers_are_called_not_comparable(claims):
    rows = payload(row("full", 30, 70.0), row("l3prune-large", 28, 70.5), row("l3prune-small", 7, 66.0))
    large, small = claims.claims({"smollm2-135m": rows, "gemma3-270m": None})[2:4]
    assert large.cells["smollm2-135m"].verdict == "held"  # +0.5 points
    assert "not comparable" in large.cells["smollm2-135m"].why  # 5% removed vs the paper's 21%
    assert small.cells["smollm2-135m"].verdict == "held"  # -4.0 is within the paper's -5.1
    assert claims.embedding_share(rows) == pytest.approx(100 * 30e6 / (30e6 + 105e6))


def test_few_layers_claim_compares_classification_not_the_average(claims):
    rows = payload(row("full", 30, 70.0, b77=80.0), *(row(f"first-{n}", n, 60.0, b77=75.0 + n) for n in (1, 2, 3, 4)))
    cell = claims.claims({"smollm2-135m": rows, "gemma3-270m": None})[5].cells["smollm2-135m"]
    assert cell.verdict == "did not hold" and "first-4, -1.00" in cell.why
    assert "clustering V-measure: full 75.00, first-1 71.00" in cell.figure
    rows["rows"][4]["scores"]["Banking77Classification"] = 81.0
    assert claims.claims({"smollm2-135m": rows, "gemma3-270m": None})[5].cells["smollm2-135m"].verdict == "held"
    assert claims.claims({"smollm2-135m": rows, "gemma3-270m": None})[5].cells["gemma3-270m"].verdict == "not run"


def test_the_report_section_is_replaced_between_its_markers_only(report):
    page = f"# title\n\nintro\n{report.REPORT_START}\nold table\n{report.REPORT_END}\n\nprose after\n"
    once = report.with_report(page, "new table\n")
    assert once == f"# title\n\nintro\n{report.REPORT_START}\nnew table\n{report.REPORT_END}\n\nprose after\n"
    assert report.with_report(once, "new table\n") == once  # rerunning the report changes nothing


def test_a_page_without_both_markers_is_left_alone(report):
    assert report.with_report("# title\n", "table") is None
    assert report.with_report(f"{report.REPORT_END}\n{report.REPORT_START}\n", "table") is None
    assert report.with_report(f"{report.REPORT_START}\n{report.REPORT_START}\n{report.REPORT_END}", "t") is None


def test_the_budget_table_keeps_every_row_of_both_budgets(report):
    short = payload(row("full", 30, 59.4), row("last-drop25", 22, 61.0))
    paper = payload(row("full", 30, 77.1), row("first-1", 1, 58.1))
    lines = report.budget_table(short, paper)[2:]
    assert [line.split(" | ")[0] for line in lines] == ["| full", "| last-drop25", "| first-1"]
    assert lines[0].endswith("| 59.40 | 77.10 | +17.70 |")
    assert lines[1].endswith("| 61.00 | — |  |") and lines[2].endswith("| — | 58.10 |  |")


def test_full_retraining_must_beat_lora_by_more_than_noise_and_a_point(claims):
    """Shortened LLaMA says full retraining recovers far more: a gain inside seed noise or under a point is not that."""
    def cell(small_gain, drop80_gain, std=0.32):
        rows = payload(row("full", 30, 77.0), row("l3prune-small", 7, 69.9, seeds=(42, 7), std=std),
                       row("l3prune-small-fullft", 7, 69.9 + small_gain), row("last-drop80", 6, 70.5),
                       row("last-drop80-fullft", 6, 70.5 + drop80_gain))
        return claims.claims({"smollm2-135m": rows, "gemma3-270m": None})[6].cells["smollm2-135m"]
    measured = cell(1.08, 0.61)  # this session's SmolLM2 rows: one gain is inside the noise (±0.64)
    assert measured.verdict == "did not hold"
    assert "6 layers +0.61, inside seed noise (±0.64)" in measured.why
    assert "7 layers +1.08, outside seed noise" in measured.why
    assert cell(0.9, 3.0, std=0.1).verdict == "did not hold"  # beyond the noise, but under a point
    assert cell(2.5, 3.0).verdict == "held"


def test_a_criteria_win_inside_seed_noise_is_undecided(claims):
    criteria = [row("block_influence-50%", 15, 73.12), row("perplexity-50%", 15, 72.55), row("angular-50%", 15, 71.49),
                row("taylor-50%", 15, 69.85)]
    cell = lambda full_std: claims.claims({  # noqa: E731
        "smollm2-135m": payload(row("full", 30, 76.81, seeds=(42, 7), std=full_std), row("last-drop50", 15, 74.04),
                                *criteria), "gemma3-270m": None})[4].cells["smollm2-135m"]
    noisy = cell(0.47)  # noise ±0.94: the +0.92 over block influence could be one seed's luck
    assert noisy.verdict == "undecided"
    assert "block_influence only by +0.92, inside seed noise (±0.94)" in noisy.why
    assert "beyond it against 3 of 4 (angular, perplexity, taylor)" in noisy.why
    assert cell(0.2).verdict == "held"  # the same margins against ±0.40
    worse = claims.claims({"smollm2-135m": payload(row("full", 30, 77.0), row("last-drop50", 15, 73.0), *criteria),
                           "gemma3-270m": None})[4].cells["smollm2-135m"]
    assert worse.verdict == "did not hold" and "lose to block_influence-50%" in worse.why


def test_criteria_finished_so_far_are_shown_while_the_claim_is_pending(claims):
    rows = payload(row("full", 30, 77.0), row("last-drop50", 15, 74.04), row("block_influence-50%", 15, 73.12))
    cell = claims.claims({"smollm2-135m": rows, "gemma3-270m": None})[4].cells["smollm2-135m"]
    assert cell.verdict == "pending" and "angular-50%" in cell.why and "block_influence" not in cell.why
    assert cell.figure == "so far: first 15 layers 74.04; block_influence 73.12 (first layers +0.92)"
    without_ours = claims.claims({"smollm2-135m": payload(row("full", 30, 77.0), row("block_influence-50%", 15, 73.1)),
                                  "gemma3-270m": None})[4].cells["smollm2-135m"]
    assert without_ours.figure == "" and "last-drop50" in without_ours.why


def pooling_rows(claims, small_wmfi=70.4, large_wmfi=None, std=0.26, large_wmfi_seeds=(42,), large_wmfi_std=None):
    rows = [row("full", 30, 77.0, seeds=(42, 7, 1234), std=std), row("l3prune-small", 7, 69.95, seeds=(42, 7), std=0.2),
            row("l3prune-large", 28, 77.26), row("l3prune-small-weighted_mean_from_instruction", 7, small_wmfi),
            row("l3prune-small-last_token", 7, 59.9)]
    if large_wmfi is not None:
        rows.append(row("l3prune-large-weighted_mean_from_instruction", 28, large_wmfi, seeds=large_wmfi_seeds,
                        std=large_wmfi_std))
    return rows_by_name(claims, *rows)


def rows_by_name(claims, *rows):
    """Rows as the report reads them (its own ``rows_of``, not a copy of it)."""
    return claims.rows_of(payload(*rows))


def test_which_poolings_export_stock_comes_from_the_exporter(claims):
    assert not claims.stock_with_instruction("weighted_mean")  # stock weightedmean counts from the prompt's first token
    assert all(claims.stock_with_instruction(p) for p in claims.STOCK_POOLINGS)


def test_pooling_table_compares_each_pooling_with_the_papers_at_the_same_depth(claims, report):
    table = report.pooling_table(pooling_rows(claims), 0.52)
    wmfi = next(line for line in table if line.startswith("| `weighted_mean_from_instruction`"))
    assert "| 70.40 | +0.45, inside seed noise | pending |" in wmfi
    last = next(line for line in table if line.startswith("| `last_token`"))
    assert "-10.05, outside seed noise" in last
    assert "| `mean` | yes | pending |  | pending |  |" in table
    assert report.pooling_table(rows_by_name(claims, row("full", 30, 77.0), row("l3prune-small", 7, 69.95)), 0.5) == []


def test_pooling_cost_says_nothing_measurable_only_inside_the_noise_and_names_pending_depths(claims):
    cheap = claims.pooling_cost(pooling_rows(claims), 0.52, {"steps": 1000, "batch_size": 16, "train_max_length": 128})
    assert cheap.startswith("The stock-exact weighting (`weighted_mean_from_instruction`) costs nothing measurable "
                            "at `small` (`large` not run yet).")
    assert "1000 steps x batch 16, max length 128, seed 42, seed noise ±0.52" in cheap
    assert "`last_token` 59.90 (-10.05, outside seed noise)" in cheap
    costly = claims.pooling_cost(pooling_rows(claims, large_wmfi=75.0), 0.52)
    assert "costs more than seed noise at `large`" in costly and "not run yet" not in costly
    assert "also stock" not in costly  # no other pooling measured at `large`: none is offered instead
    assert "cannot be judged yet" in claims.pooling_cost(pooling_rows(claims), None)
    assert "not been measured yet" in claims.pooling_cost(rows_by_name(claims, row("l3prune-small", 7, 69.95)), 0.5)


def test_pooling_cost_names_the_stock_poolings_that_cost_nothing_where_the_weighting_costs(claims):
    base = pooling_rows(claims, large_wmfi=75.0)
    rows = dict(base, **rows_by_name(claims, row("l3prune-large-last_token", 28, 77.0),
                                     row("l3prune-large-mean", 28, 75.5)))
    text = claims.pooling_cost(rows, 0.52)
    assert text.startswith("The stock-exact weighting (`weighted_mean_from_instruction`) costs more than seed noise "
                           "at `large`; there, `last_token` (also stock) costs nothing measurable.")
    # `small`, where the weighting costs nothing, offers no alternative: `last_token` there is 10 points below.
    assert "at `small`, `last_token` (also stock)" not in text


def test_pooling_cost_names_the_seeds_of_a_pooling_row_trained_at_more_of_them(claims):
    rows = pooling_rows(claims, large_wmfi=76.6, large_wmfi_seeds=(42, 7), large_wmfi_std=0.4)
    text = claims.pooling_cost(rows, 1.2, {"steps": 1000, "batch_size": 16, "train_max_length": 128})
    assert "max length 128, seed 42 unless noted, seed noise ±1.20" in text
    assert "`weighted_mean_from_instruction` 76.60 ± 0.40, seeds 42, 7 (-0.66, inside seed noise)" in text
    assert "`weighted_mean_from_instruction` 70.40 (+0.45" in text  # small: one seed, the header's


def test_pooling_markers_are_replaced_and_pages_without_them_left_alone(report, tmp_path, capsys):
    page = tmp_path / "export.md"
    page.write_text(f"intro\n\n{report.POOLING_START}\nold\n{report.POOLING_END}\n\nafter\n")
    report.write_between(page, "new sentence", report.POOLING_START, report.POOLING_END)
    assert page.read_text() == f"intro\n\n{report.POOLING_START}\nnew sentence\n{report.POOLING_END}\n\nafter\n"
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n")
    report.write_between(bare, "new sentence", report.POOLING_START, report.POOLING_END)
    assert bare.read_text() == "no markers\n" and "left as it is" in capsys.readouterr().out
