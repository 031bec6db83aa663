"""Classification: accuracy of a logistic regression trained on a few embedded examples per label.

Follows MTEB 2.x (``AbsTaskClassification``): ``n_experiments`` = 10 runs; in each, the train
indices are shuffled again by ``numpy.random.RandomState(seed)`` (the shuffles accumulate across
runs), the first ``samples_per_label`` = 8 texts of each label are kept, and
``LogisticRegression(max_iter=100, random_state=seed)`` is fit on their embeddings and scored on
the whole test set. Scores are the mean over runs. Every text (train and test) carries the task
instruction, as LLM2Vec evaluates classification.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from l3prune.errors import L3PruneError
from l3prune.files import string_field
from l3prune.evaluation._common import (
    Task,
    TextEncoder,
    as_percent,
    encode_texts,
    read_records,
    require_columns,
)

logger = logging.getLogger(__name__)

CLASSIFICATION_INSTRUCTION = "Classify the given text into its category"


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: list[str]


def load_labelled(path: str | Path, text_column: str, label_column: str, what: str) -> LabelledTexts:
    """Texts and their labels (as strings) from a .csv/.tsv/.jsonl file; columns chosen by name.

    Public classification sets hold a few empty texts (a tweet that was only a link, say); such a row
    says nothing about the encoder, so it is left out with one warning rather than failing the task.
    A text or label of the wrong type is an error naming file:line.
    """
    rows = read_records(path, what)
    require_columns(rows, (text_column, label_column), path)
    texts, labels, empty = [], [], []
    for row, at in zip(rows, rows.where):
        text = string_field(row, text_column, at, allow_empty=True)
        label = row[label_column]
        if isinstance(label, bool) or not isinstance(label, (str, int)) or not str(label).strip():
            raise L3PruneError(f"{at}: field {label_column!r} must be a non-empty string or an integer, got {label!r}")
        if not text.strip():
            empty.append(at.rsplit(":", 1)[-1])
            continue
        texts.append(text)
        labels.append(str(label))
    if empty:
        logger.warning("%s: left out %d row(s) with an empty %r (lines %s)", path, len(empty), text_column,
                       ", ".join(empty[:5]) + (", ..." if len(empty) > 5 else ""))
    if not texts:
        raise L3PruneError(f"{path}: every {text_column!r} is empty")
    return LabelledTexts(texts, labels)


def undersample(labels: list[str], samples_per_label: int, n_experiments: int, seed: int) -> list[list[int]]:
    """The train indices each experiment uses, drawn exactly as MTEB 2.x draws them."""
    idxs = list(range(len(labels)))
    selections = []
    for _ in range(n_experiments):
        np.random.RandomState(seed).shuffle(idxs)  # a fresh state each run, applied to the last order
        counts: dict[str, int] = {}
        chosen = []
        for i in idxs:
            if counts.get(labels[i], 0) < samples_per_label:
                chosen.append(i)
                counts[labels[i]] = counts.get(labels[i], 0) + 1
        selections.append(chosen)
    return selections


@dataclass
class ClassificationTask(Task):
    """A train file and a test file with a text column and a label column (any label values)."""

    train_path: str | Path
    test_path: str | Path
    name: str = ""
    instruction: str | None = CLASSIFICATION_INSTRUCTION
    text_column: str = "text"
    label_column: str = "label"
    n_experiments: int = 10
    samples_per_label: int = 8
    max_iter: int = 100
    seed: int = 42

    task_type: ClassVar[str] = "classification"
    main_metric: ClassVar[str] = "accuracy"
    _data: tuple[LabelledTexts, LabelledTexts, list[list[int]]] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name = self.name or Path(self.test_path).parent.name
        if self.n_experiments < 1 or self.samples_per_label < 1:
            raise L3PruneError("n_experiments and samples_per_label must be at least 1")

    @property
    def path(self) -> Path:
        return Path(self.test_path)

    def load(self) -> tuple[LabelledTexts, LabelledTexts, list[list[int]]]:
        if self._data is None:
            train = load_labelled(self.train_path, self.text_column, self.label_column, f"train file for {self.name}")
            test = load_labelled(self.test_path, self.text_column, self.label_column, f"test file for {self.name}")
            if len(set(train.labels)) < 2:
                raise L3PruneError(f"{self.train_path}: every row has the label {train.labels[0]!r}; a classifier "
                                   "needs at least two classes")
            unseen = set(test.labels) - set(train.labels)
            if unseen:
                raise L3PruneError(
                    f"{self.test_path}: labels {sorted(unseen)[:5]} never occur in {self.train_path}; "
                    "a classifier cannot predict them"
                )
            selections = undersample(train.labels, self.samples_per_label, self.n_experiments, self.seed)
            self._data = (train, test, selections)
        return self._data

    def num_texts(self) -> int:
        _, test, selections = self.load()
        return len(set().union(*selections)) + len(test.texts)

    def sample_texts(self, n: int) -> list[str]:
        return self.load()[1].texts[:n]

    def evaluate(
        self, encoder: TextEncoder, *, batch_size: int = 32, progress: bool | None = None
    ) -> dict[str, float]:
        train, test, selections = self.load()
        union = sorted(set().union(*selections))
        position = {idx: pos for pos, idx in enumerate(union)}
        train_emb = encode_texts(
            encoder, [train.texts[i] for i in union], self.instruction, batch_size=batch_size, progress=progress
        )
        test_emb = encode_texts(encoder, test.texts, self.instruction, batch_size=batch_size, progress=progress)
        runs = []
        for chosen in selections:
            x = train_emb[[position[i] for i in chosen]]
            y = [train.labels[i] for i in chosen]
            clf = LogisticRegression(max_iter=self.max_iter, random_state=self.seed)
            with warnings.catch_warnings():
                # MTEB keeps max_iter=100 and lets lbfgs stop early; the warning is expected noise.
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(x, y)
            pred = clf.predict(test_emb)
            runs.append(
                {
                    "accuracy": accuracy_score(test.labels, pred),
                    "f1": f1_score(test.labels, pred, average="macro"),
                    "f1_weighted": f1_score(test.labels, pred, average="weighted"),
                }
            )
        mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
        out = as_percent(mean)
        out["accuracy_std"] = 100.0 * float(np.std([r["accuracy"] for r in runs]))
        return out
