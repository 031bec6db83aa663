from __future__ import annotations

import json

import pytest

from l3prune.errors import L3PruneError
from l3prune.evaluation import (
    ClusteringTask,
    PairClassificationTask,
    RerankingTask,
    STSTask,
    default_suite,
    format_table,
    run_suite,
    select_tasks,
    write_results,
)

REPORTED = ["STSBenchmark", "SICK-R", "STS13", "STS15", "STS16", "msmarco_5k", "Banking77Classification",
            "Banking77Clustering", "MRPC", "WikiQA"]


def test_default_suite_is_the_reported_ten_and_leaves_out_contaminated_data():
    tasks = default_suite()
    assert [t.name for t in tasks] == REPORTED
    paths = " ".join(str(t.describe()["path"]) for t in tasks)
    assert "dev" not in paths and "snli" not in paths.lower() and "mrpc_train" not in paths
    assert all(t.instruction for t in tasks)
    assert all(t.describe()["path"] and __import__("pathlib").Path(t.describe()["path"]).exists() for t in tasks)


def test_select_by_group_name_case_and_dedup():
    assert [t.name for t in select_tasks("sts")] == REPORTED[:5]
    assert [t.name for t in select_tasks("all")] == REPORTED
    assert [t.name for t in select_tasks(["sts13", "STS13", "retrieval"])] == ["STS13", "msmarco_5k"]
    assert [t.name for t in select_tasks("dev")] == ["STSBenchmark-dev"]
    assert [t.name for t in select_tasks("STS16, wikiqa")] == ["STS16", "WikiQA"]


@pytest.mark.parametrize("spec", ["", [], " , "])
def test_empty_selection_is_an_error_listing_names(spec):
    with pytest.raises(L3PruneError, match="STSBenchmark"):
        select_tasks(spec)


def test_unknown_name_is_an_error_listing_names():
    with pytest.raises(L3PruneError, match=r"unknown task 'STS99'.*msmarco_5k"):
        select_tasks("STS99")


def test_paths_are_recognised_by_their_columns(tmp_path, jsonl):
    sts = jsonl(tmp_path / "mine.jsonl", [{"sentence1": "a", "sentence2": "b", "score": 1}])
    pairs = jsonl(tmp_path / "pairs.jsonl", [{"sentence1": "a", "sentence2": "b", "label": 1}])
    rerank = jsonl(tmp_path / "rr.jsonl", [{"query": "a", "positive": ["b"], "negative": ["c"]}])
    clusters = tmp_path / "cl.csv"
    clusters.write_text("text,category\na,x\n")
    tasks = select_tasks([str(sts), str(pairs), str(rerank), str(clusters)])
    assert [type(t) for t in tasks] == [STSTask, PairClassificationTask, RerankingTask, ClusteringTask]
    forced = select_tasks(f"clustering:{pairs}")  # kind:path overrides the guess
    assert isinstance(forced[0], ClusteringTask)


def test_run_suite_reports_scores_timings_and_sizes(tmp_path, jsonl, hash_encoder):
    rows = [{"sentence1": f"w{i} w{i + 1} common", "sentence2": f"w{i} w{2 * i} other", "score": i % 5} for i in range(20)]
    a = STSTask(jsonl(tmp_path / "a.jsonl", rows), name="A")
    b = STSTask(tmp_path / "a.jsonl", name="B")  # same texts: served from the cache
    results = run_suite(hash_encoder, [a, b], model_id="hash", batch_size=8, progress=False)
    ta, tb = results["tasks"]["A"], results["tasks"]["B"]
    assert ta["main_score"] == ta["metrics"]["cosine_spearman"] == tb["main_score"]
    assert ta["num_texts"] == 40 and ta["encoded_texts"] == 40 and tb["encoded_texts"] == 0
    assert tb["cache_hits"] >= 40 and ta["seconds"] >= 0
    assert results["average_main_score"] == pytest.approx(ta["main_score"])
    json.dumps(results)  # plain data only
    table = format_table(results)
    assert "| A | sts | cosine_spearman |" in table and "**Average**" in table


def test_run_suite_rejects_an_empty_task_list(hash_encoder):
    with pytest.raises(L3PruneError, match="no tasks"):
        run_suite(hash_encoder, [], model_id="x")


def test_write_results_is_atomic_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "sub" / "r.json"
    write_results({"x": 1}, out)
    assert json.loads(out.read_text()) == {"x": 1}
    with pytest.raises(L3PruneError, match="already exists"):
        write_results({"x": 2}, out)
    write_results({"x": 2}, out, overwrite=True)
    assert json.loads(out.read_text()) == {"x": 2}
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]  # no temp file left behind


def test_results_record_data_paths_without_this_machines_prefix(tmp_path, monkeypatch):
    from pathlib import Path

    from l3prune.evaluation._common import portable_path

    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert portable_path(tmp_path / "work" / "data" / "sts.jsonl") == str(Path("data") / "sts.jsonl")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert portable_path(tmp_path / "home" / ".cache" / "x.jsonl") == "~/.cache/x.jsonl"
    assert portable_path("/elsewhere/x.jsonl") == "/elsewhere/x.jsonl"
    assert portable_path("") == ""
    import l3prune

    shipped = Path(l3prune.__file__).parent / "resources" / "eval" / "sts" / "STSBenchmark.test.jsonl"
    assert portable_path(shipped) == "l3prune/resources/eval/sts/STSBenchmark.test.jsonl"  # wherever installed


class _StopAt:
    """An encoder that raises once it is asked to embed ``stop`` (a task's text), like a run killed midway."""

    def __init__(self, inner, stop: str) -> None:
        self.inner, self.stop, self.calls = inner, stop, []

    def encode(self, texts, *, instruction=None, **kwargs):
        if self.stop in texts:
            raise KeyboardInterrupt
        self.calls.extend(texts)
        return self.inner.encode(texts, instruction=instruction, **kwargs)


def _two_tasks(tmp_path, jsonl):
    rows = lambda tag: [{"sentence1": f"{tag}{i} w{i}", "sentence2": f"{tag}{i} v{2 * i}", "score": i % 5}  # noqa: E731
                        for i in range(12)]
    return [STSTask(jsonl(tmp_path / "a.jsonl", rows("a")), name="A"),
            STSTask(jsonl(tmp_path / "b.jsonl", rows("b")), name="B")]


def test_a_stopped_suite_resumes_after_its_last_finished_task(tmp_path, jsonl, hash_encoder):
    tasks, progress = _two_tasks(tmp_path, jsonl), tmp_path / "out" / "progress.json"
    whole = run_suite(hash_encoder, tasks, model_id="hash", batch_size=4, progress=False, info={"layers": 2})
    with pytest.raises(KeyboardInterrupt):  # stopped while task B encodes
        run_suite(_StopAt(hash_encoder, "b3 w3"), tasks, model_id="hash", batch_size=4, progress=False,
                  info={"layers": 2}, progress_file=progress)
    saved = json.loads(progress.read_text())
    assert list(saved["tasks"]) == ["A"] and saved["total_seconds"] >= 0
    again = _StopAt(hash_encoder, "never")
    resumed = run_suite(again, tasks, model_id="hash", batch_size=4, progress=False, info={"layers": 2},
                        progress_file=progress)
    assert not any(t.startswith("a") for t in again.calls) and any(t.startswith("b") for t in again.calls)
    assert resumed["resumed_tasks"] == ["A"] and list(resumed["tasks"]) == ["A", "B"]
    assert resumed["tasks"]["A"] == saved["tasks"]["A"] and resumed["started_at"] == saved["started_at"]
    assert resumed["average_main_score"] == pytest.approx(whole["average_main_score"])
    assert json.loads(progress.read_text())["tasks"].keys() == {"A", "B"}


@pytest.mark.parametrize(("change", "message"), [
    ({"model_id": "other"}, "model id 'hash'"),
    ({"batch_size": 8}, "batch size 4"),
    ({"info": {"layers": 3}}, "info {'layers': 2}"),
])
def test_progress_of_another_run_is_refused_not_mixed_in(tmp_path, jsonl, hash_encoder, change, message):
    tasks, progress = _two_tasks(tmp_path, jsonl), tmp_path / "progress.json"
    run_suite(hash_encoder, tasks[:1], model_id="hash", batch_size=4, progress=False, info={"layers": 2},
              progress_file=progress)
    settings = {"model_id": "hash", "batch_size": 4, "info": {"layers": 2}, **change}
    with pytest.raises(L3PruneError, match=f"cannot resume from .*written with {message}.*delete it"):
        run_suite(hash_encoder, tasks, progress=False, progress_file=progress, **settings)


def test_a_task_whose_data_changed_is_run_again(tmp_path, jsonl, hash_encoder):
    tasks, progress = _two_tasks(tmp_path, jsonl), tmp_path / "progress.json"
    run_suite(hash_encoder, tasks[:1], model_id="hash", batch_size=4, progress=False, progress_file=progress)
    moved = STSTask(tasks[1].path, name="A")  # same name, another file
    counting = _StopAt(hash_encoder, "never")
    result = run_suite(counting, [moved], model_id="hash", batch_size=4, progress=False, progress_file=progress)
    assert "resumed_tasks" not in result and counting.calls


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"tasks": 3}'])
def test_a_progress_file_that_is_not_one_is_an_error(tmp_path, jsonl, hash_encoder, text):
    progress = tmp_path / "progress.json"
    progress.write_text(text)
    with pytest.raises(L3PruneError, match="not the progress file of an evaluation; delete it"):
        run_suite(hash_encoder, _two_tasks(tmp_path, jsonl), model_id="hash", progress=False, progress_file=progress)
