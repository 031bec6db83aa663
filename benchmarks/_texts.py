"""Shared benchmark inputs: a realistic mix of short sentences and long passages from the shipped data."""

from __future__ import annotations

import json
import random

from l3prune.resources import resource_path


def sts_sentences() -> list[str]:
    """Every sentence of the shipped STS-B test pairs, first sentences then second ones."""
    sts = [json.loads(line) for line in resource_path("eval", "sts", "STSBenchmark.test.jsonl").open()]
    return [row["sentence1"] for row in sts] + [row["sentence2"] for row in sts]


def mixed_texts(n: int = 512, long_fraction: float = 0.25, seed: int = 0) -> list[str]:
    """``n`` texts: STS-B sentences (short) and MS MARCO passages (long), shuffled with a fixed seed."""
    rng = random.Random(seed)
    short = sts_sentences()
    corpus = resource_path("eval", "retrieval", "msmarco_5k", "corpus.jsonl").open()
    passages = [json.loads(line)["text"] for _, line in zip(range(2000), corpus)]
    n_long = int(n * long_fraction)
    texts = rng.sample(short, n - n_long) + rng.sample(passages, n_long)
    rng.shuffle(texts)
    return texts
