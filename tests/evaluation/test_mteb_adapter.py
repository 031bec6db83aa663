from __future__ import annotations

import numpy as np
import pytest

mteb = pytest.importorskip("mteb")

from datasets import Dataset, DatasetDict  # noqa: E402
from mteb.abstasks.sts import AbsTaskSTS  # noqa: E402
from mteb.abstasks.task_metadata import TaskMetadata  # noqa: E402
from mteb.types import PromptType  # noqa: E402

from l3prune.evaluation import MTEBEncoder, STSTask  # noqa: E402
from l3prune.evaluation._common import read_records  # noqa: E402


def _local_sts_task(path):
    class LocalSTS(AbsTaskSTS):
        metadata = TaskMetadata(
            name="LocalSTS", type="STS", main_score="cosine_spearman", description="local file",
            reference="https://example.com", dataset={"path": "local", "revision": "local"},
            category="t2t", eval_splits=["test"], eval_langs=["eng-Latn"], date=("2024-01-01", "2024-01-01"),
            dialect=[], domains=[], task_subtypes=[], license="cc-by-4.0", annotations_creators="derived",
            modalities=["text"], sample_creation="found", bibtex_citation="",
        )

        def load_data(self, **kwargs):
            rows = read_records(path)
            cols = ("sentence1", "sentence2", "score")
            self.dataset = DatasetDict({"test": Dataset.from_dict({c: [r[c] for r in rows] for c in cols})})
            self.data_loaded = True

    return LocalSTS()


def test_mteb_evaluate_runs_offline_and_agrees_with_our_sts(tmp_path, jsonl, table_encoder):
    rng = np.random.default_rng(0)
    rows = [{"sentence1": f"left {i}", "sentence2": f"right {i}", "score": float(rng.uniform(0, 5))} for i in range(60)]
    path = jsonl(tmp_path / "local.jsonl", rows)
    texts = [r[c] for r in rows for c in ("sentence1", "sentence2")]
    encoder = table_encoder({t: rng.normal(size=8) for t in texts})  # random vectors: no tied cosines
    adapter = MTEBEncoder(encoder, "test/table", instructions={"LocalSTS": "Compare"})
    result = mteb.evaluate(adapter, [_local_sts_task(path)], cache=None, show_progress_bar=False)
    # Symmetric task: both sides carry the instruction.
    assert [instr for instr, _ in encoder.calls] == ["Compare", "Compare"]
    mteb_scores = result.task_results[0].scores["test"][0]
    ours = STSTask(path).evaluate(encoder)
    assert 100 * mteb_scores["cosine_spearman"] == pytest.approx(ours["cosine_spearman"], abs=1e-6)
    assert 100 * mteb_scores["cosine_pearson"] == pytest.approx(ours["cosine_pearson"], abs=1e-4)


def test_instruction_sides(hash_encoder):
    adapter = MTEBEncoder(hash_encoder, "mine")
    meta = type("Meta", (), {"name": "MSMARCO", "prompt": None})()
    assert adapter.instruction(meta, PromptType.query).startswith("Given a web search query")
    assert adapter.instruction(meta, PromptType.document) is None
    unknown = type("Meta", (), {"name": "Other", "prompt": {"query": "Q!", "document": "D!"}})()
    assert adapter.instruction(unknown, PromptType.query) == "Q!"
    assert adapter.mteb_model_meta.name == "l3prune/mine"
    sims = np.asarray(adapter.similarity(np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32)))
    assert np.allclose(sims, np.eye(2))
