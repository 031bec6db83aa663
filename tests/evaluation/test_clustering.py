from __future__ import annotations

import numpy as np
import pytest

from l3prune.errors import L3PruneError
from l3prune.evaluation import ClusteringTask


def _file(tmp_path, n_per_label=20):
    lines = ["text,label"] + [f"{label} item {i},{label}" for label in ("red", "green", "blue") for i in range(n_per_label)]
    path = tmp_path / "c.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, [line.split(",")[0] for line in lines[1:]]


def test_separated_clusters_score_100_identical_points_score_0(tmp_path, table_encoder):
    path, texts = _file(tmp_path)
    centre = {"red": [10, 0, 0], "green": [0, 10, 0], "blue": [0, 0, 10]}
    rng = np.random.default_rng(0)
    separated = table_encoder({t: np.array(centre[t.split()[0]]) + rng.normal(0, 0.1, 3) for t in texts})
    task = ClusteringTask(path, instruction="Group", n_experiments=2, sample_size=200)
    assert task.evaluate(separated)["v_measure"] == pytest.approx(100.0)
    assert separated.calls[0][0] == "Group"
    collapsed = table_encoder({t: [1.0, 1.0, 1.0] for t in texts})
    assert task.evaluate(collapsed)["v_measure"] == pytest.approx(0.0, abs=1e-6)


def test_missing_label_column(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("text,topic\na,x\n")
    with pytest.raises(L3PruneError, match=r"'label'.*topic"):
        ClusteringTask(path).load()
