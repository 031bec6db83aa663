"""Clustering: V-measure of mini-batch k-means with k = number of gold labels.

Follows MTEB 2.x's bootstrapped protocol (``AbsTaskClustering``): embed every text once, then
``n_experiments`` = 10 times draw ``sample_size`` = 16,384 texts with replacement
(``random.Random(seed).choices``), cluster them with
``MiniBatchKMeans(k, batch_size=512, init="k-means++", n_init=1, random_state=seed)`` and score
V-measure; report the mean. Unlike MTEB's default we embed the whole set (no 4% down-sampling),
because our sets are small. Texts carry the task instruction, as LLM2Vec evaluates clustering.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import adjusted_mutual_info_score, v_measure_score

from l3prune.errors import L3PruneError
from l3prune.evaluation._common import Task, TextEncoder, as_percent, encode_texts
from l3prune.evaluation.classification import LabelledTexts, load_labelled

logger = logging.getLogger(__name__)

CLUSTERING_INSTRUCTION = "Identify the category of the given text"


@dataclass
class ClusteringTask(Task):
    """One file with a text column and a label column; the labels are the gold clusters."""

    path: str | Path
    name: str = ""
    instruction: str | None = CLUSTERING_INSTRUCTION
    text_column: str = "text"
    label_column: str = "label"
    n_experiments: int = 10
    sample_size: int = 16_384
    kmeans_batch_size: int = 512
    seed: int = 42

    task_type: ClassVar[str] = "clustering"
    main_metric: ClassVar[str] = "v_measure"
    _data: LabelledTexts | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name = self.name or Path(self.path).stem

    def load(self) -> LabelledTexts:
        if self._data is None:
            data = load_labelled(self.path, self.text_column, self.label_column, f"clustering file for {self.name}")
            if len(set(data.labels)) < 2:
                raise L3PruneError(f"{self.path}: clustering needs at least 2 distinct labels")
            self._data = data
        return self._data

    def num_texts(self) -> int:
        return len(self.load().texts)

    def sample_texts(self, n: int) -> list[str]:
        return self.load().texts[:n]

    def evaluate(
        self, encoder: TextEncoder, *, batch_size: int = 32, progress: bool | None = None
    ) -> dict[str, float]:
        data = self.load()
        emb = encode_texts(encoder, data.texts, self.instruction, batch_size=batch_size, progress=progress)
        return cluster_metrics(
            emb,
            np.array(data.labels),
            n_experiments=self.n_experiments,
            sample_size=self.sample_size,
            kmeans_batch_size=self.kmeans_batch_size,
            seed=self.seed,
        )


def cluster_metrics(
    emb: np.ndarray,
    labels: np.ndarray,
    *,
    n_experiments: int = 10,
    sample_size: int = 16_384,
    kmeans_batch_size: int = 512,
    seed: int = 42,
) -> dict[str, float]:
    """Mean (and spread) of V-measure and AMI over bootstrap samples (x100)."""
    rng = random.Random(seed)
    v_measures, amis = [], []
    for _ in range(n_experiments):
        idx = rng.choices(range(len(emb)), k=sample_size)
        sample_labels = labels[idx]
        km = MiniBatchKMeans(
            n_clusters=len(np.unique(sample_labels)),
            batch_size=kmeans_batch_size,
            init="k-means++",
            n_init=1,
            random_state=seed,
        )
        assigned = km.fit_predict(emb[idx])
        v_measures.append(v_measure_score(sample_labels, assigned))
        amis.append(adjusted_mutual_info_score(sample_labels, assigned))
    out = as_percent({"v_measure": float(np.mean(v_measures)), "ami": float(np.mean(amis))})
    out["v_measure_std"] = 100.0 * float(np.std(v_measures))
    return out
