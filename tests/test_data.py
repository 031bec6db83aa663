from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from l3prune.data import (
    E5_INSTRUCTIONS,
    SHIPPED_INSTRUCTIONS,
    SourceBatchSampler,
    Triplet,
    load_triplets,
    read_triplets,
)
from l3prune.errors import L3PruneError


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def rows(n: int, tag: str = "") -> list[dict]:
    return [{"query": f"q{tag}{i}", "positive": f"p{tag}{i}", "negative": f"n{tag}{i}"} for i in range(n)]


def triplets(**sizes: int) -> list[Triplet]:
    return [Triplet(f"q{i}", "p", "n", source) for source, size in sizes.items() for i in range(size)]


# --- reading files ---------------------------------------------------------------------------


def test_read_jsonl_defaults_source_to_stem_and_keeps_instruction(tmp_path):
    records = rows(2)
    records[1]["instruction"] = "Find the answer"
    records[1]["source"] = "mine"
    got = read_triplets(write_jsonl(tmp_path / "toy.jsonl", records))
    assert got[0] == Triplet("q0", "p0", "n0", "toy")
    assert got[1].source == "mine" and got[1].query_instruction == "Find the answer"
    assert got[1].doc_instruction is None


def test_read_json_list(tmp_path):
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(rows(3)), encoding="utf-8")
    assert [t.query for t in read_triplets(path)] == ["q0", "q1", "q2"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "invalid JSON"),
        ('{"query": "q", "positive": "p"}', "missing field 'negative'"),
        ('{"query": "q", "positive": 3, "negative": "n"}', "field 'positive' must be a string"),
        ('{"query": "  ", "positive": "p", "negative": "n"}', "field 'query' is empty"),
        ('{"query": "q", "positive": "p", "negative": "n", "instruction": ""}', "field 'instruction' is empty"),
        ('["q", "p", "n"]', "expected a JSON object"),
    ],
)
def test_read_errors_name_file_and_line(tmp_path, line, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(rows(1)[0]) + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(L3PruneError) as err:
        read_triplets(path)
    assert f"{path}:3:" in str(err.value) and expected in str(err.value)


def test_read_empty_file_and_bad_extension(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(L3PruneError, match="no triplets"):
        read_triplets(empty)
    with pytest.raises(L3PruneError, match="unsupported extension"):
        read_triplets(write_jsonl(tmp_path / "x.csv", rows(1)))


def test_json_list_error_names_item(tmp_path):
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(rows(1) + [{"query": "q"}]), encoding="utf-8")
    with pytest.raises(L3PruneError, match=r"toy\.json\[1\]: missing field 'positive'"):
        read_triplets(path)


# --- loading with instructions ---------------------------------------------------------------


def test_load_missing_path_names_it(tmp_path):
    with pytest.raises(L3PruneError, match="nowhere.jsonl does not exist"):
        load_triplets([tmp_path / "nowhere.jsonl"])
    with pytest.raises(L3PruneError, match="holds no .jsonl"):
        load_triplets([tmp_path])


def test_load_e5_folder_instructions_symmetry_and_split_merge(tmp_path):
    write_jsonl(tmp_path / "nq.jsonl", rows(2))
    write_jsonl(tmp_path / "allnli_split1.jsonl", rows(2))
    write_jsonl(tmp_path / "allnli_split2.jsonl", rows(2))
    write_jsonl(tmp_path / "mine.jsonl", rows(1))
    by_stem = {}
    for t in load_triplets([tmp_path]):
        by_stem.setdefault(t.source, []).append(t)
    assert set(by_stem) == {"nq", "allnli", "mine"}  # the two allnli splits are batched together
    nq = by_stem["nq"][0]
    assert nq.query_instruction == E5_INSTRUCTIONS["nq"] and nq.doc_instruction is None
    nli = by_stem["allnli"]
    assert nli[0].query_instruction == E5_INSTRUCTIONS["allnli_split1"] and nli[0].doc_instruction is None
    assert nli[2].query_instruction == nli[2].doc_instruction == "Retrieve semantically similar text"
    assert by_stem["mine"][0].query_instruction is None


def test_load_explicit_instruction_wins_and_instructions_off(tmp_path):
    records = rows(2)
    records[0]["instruction"] = "Custom"
    path = write_jsonl(tmp_path / "quora_duplicates_split1.jsonl", records)
    first, second = load_triplets(path)
    assert (first.query_instruction, first.doc_instruction) == ("Custom", None)
    assert second.query_instruction == second.doc_instruction == E5_INSTRUCTIONS["quora_duplicates_split1"]
    plain = load_triplets([path], instructions=False)
    assert all(t.query_instruction is None and t.doc_instruction is None for t in plain)
    assert {t.source for t in plain} == {"quora_duplicates"}


def test_load_shipped_defaults():
    shipped = load_triplets()
    sources = {t.source for t in shipped}
    assert sources == set(SHIPPED_INSTRUCTIONS)
    by_source = {t.source: t for t in shipped}
    assert by_source["mrpc_train"].doc_instruction == by_source["mrpc_train"].query_instruction  # symmetric
    assert by_source["wikiqa_train"].doc_instruction is None
    assert by_source["snli_dev"].query_instruction == E5_INSTRUCTIONS["allnli"]


# --- batching ---------------------------------------------------------------------------------


def test_every_batch_has_one_source_and_each_epoch_uses_full_batches_once():
    data = triplets(a=50, b=23, c=31)
    sampler = SourceBatchSampler(data, batch_size=8, seed=3)
    assert len(sampler) == 50 // 8 + 23 // 8 + 31 // 8
    for epoch in range(2):
        batches = [sampler.batch_at(epoch * len(sampler) + i) for i in range(len(sampler))]
        seen = [i for batch in batches for i in batch]
        assert len(seen) == len(set(seen)) == len(sampler) * 8  # tails dropped, nothing repeated
        assert all(len({data[i].source for i in batch}) == 1 for batch in batches)
        counts = {s: sum(data[b[0]].source == s for b in batches) for s in "abc"}
        assert counts == {"a": 6, "b": 2, "c": 3}


def test_sources_are_interleaved_not_sequential():
    data = triplets(a=80, b=80)
    sampler = SourceBatchSampler(data, batch_size=4, seed=0)
    order = [data[sampler.batch_at(i)[0]].source for i in range(len(sampler))]
    assert order != sorted(order) and order != sorted(order, reverse=True)


def test_deterministic_per_seed_and_reshuffled_per_epoch():
    data = triplets(a=40, b=40)
    first = list(zip(range(20), SourceBatchSampler(data, 4, seed=1).iter_from(0)))
    again = list(zip(range(20), SourceBatchSampler(data, 4, seed=1).iter_from(0)))
    other = list(zip(range(20), SourceBatchSampler(data, 4, seed=2).iter_from(0)))
    assert first == again and first != other
    sampler = SourceBatchSampler(data, 4, seed=1)
    assert sampler.epoch_plan(0).tolist() != sampler.epoch_plan(1).tolist()


def test_resume_reproduces_the_uninterrupted_tail_across_epochs():
    data = triplets(a=30, b=18)
    sampler = SourceBatchSampler(data, 6, seed=7)
    steps = 3 * len(sampler) + 2
    full = [batch for _, batch in zip(range(steps), sampler.iter_from(0))]
    resume_at = len(sampler) - 1  # resume just before an epoch boundary, in a fresh sampler
    resumed = SourceBatchSampler(data, 6, seed=7).iter_from(resume_at)
    assert [next(resumed) for _ in range(steps - resume_at)] == full[resume_at:]


def test_rank_slices_concatenate_to_the_global_batch():
    data = triplets(a=40, b=28)
    single = SourceBatchSampler(data, 8, seed=5)
    ranks = [SourceBatchSampler(data, 8, seed=5, world_size=4, rank=r) for r in range(4)]
    assert all(len(r) == len(single) for r in ranks)
    for step in range(2 * len(single)):
        parts = [r.batch_at(step) for r in ranks]
        assert all(len(part) == 2 for part in parts)
        assert sum(parts, []) == single.batch_at(step)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 6, "world_size": 4}, "does not split evenly over 4 ranks"),
        ({"batch_size": 8, "world_size": 2, "rank": 2}, "rank 2 is not in 0..1"),
        ({"batch_size": 0}, "at least 1"),
        ({"batch_size": 8, "seed": -1}, "non-negative"),
    ],
)
def test_sampler_argument_errors(kwargs, message):
    with pytest.raises(L3PruneError, match=message):
        SourceBatchSampler(triplets(a=20), **kwargs)


def test_too_small_sources_are_skipped_or_rejected(caplog):
    with caplog.at_level(logging.WARNING, logger="l3prune.data"):
        sampler = SourceBatchSampler(triplets(big=40, tiny=5), 8)
    assert "skipping source tiny" in caplog.text
    assert len(sampler) == 5
    with pytest.raises(L3PruneError, match=r"larger than the largest source \(big, 40 triplets\).*--batch-size"):
        SourceBatchSampler(triplets(big=40, tiny=5), 64)
