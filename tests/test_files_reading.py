"""Input files read as a user sees them: the lines of a text file, the rows of a CSV, the texts of an encode input."""

from __future__ import annotations

import numpy as np
import pytest

from l3prune.cli import main
from l3prune.encode_file import read_inputs
from l3prune.errors import L3PruneError
from l3prune.files import iter_csv, iter_lines, read_text


def test_a_byte_order_mark_is_not_text(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes("\ufefffirst\nsecond\n".encode())
    assert list(iter_lines(path)) == [(1, "first"), (2, "second")]
    assert read_text(path) == "first\nsecond\n"


@pytest.mark.parametrize("bad_line", [3, 1442])
def test_a_bad_byte_is_reported_at_its_own_line(tmp_path, bad_line):
    path = tmp_path / "in.txt"
    path.write_bytes(b"".join(b"caf\xe9\n" if i == bad_line else b"fine line %d\n" % i for i in range(1, 1500)))
    with pytest.raises(L3PruneError, match=rf"in.txt:{bad_line}: not UTF-8"):
        list(iter_lines(path))


def test_a_quoted_newline_stays_in_its_csv_field_and_rows_name_their_first_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('text,label\n"guitar.\nsecond line",a\nplain,b\n')
    assert list(iter_csv(path)) == [(f"{path}:2", {"text": "guitar.\nsecond line", "label": "a"}),
                                    (f"{path}:4", {"text": "plain", "label": "b"})]


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("in.JSONL", '{"text": "a"}\n{"text": "b", "instruction": "Find it"}\n', [(None, "a"), ("Find it", "b")]),
    ("in.ndjson", '{"text": "a"}\n', [(None, "a")]),
    ("in.json", '["a", {"text": "b"}]', [(None, "a"), (None, "b")]),
    ("in.csv", 'text,instruction\n"a, with a comma",\nb,Find it\n', [(None, "a, with a comma"), ("Find it", "b")]),
    ("in.tsv", "text\na\n", [(None, "a")]),
    ("in.txt", "\ufeffa\nb\n", [(None, "a"), (None, "b")]),
])
def test_encode_inputs_are_read_by_their_format_never_as_raw_lines(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert list(read_inputs(path)) == expected


def test_a_bom_does_not_change_the_first_embedding(make_encoder, tmp_path):
    folder = make_encoder().save(tmp_path / "tiny")
    (tmp_path / "plain.txt").write_text("A man plays a guitar.\n")
    (tmp_path / "bom.txt").write_bytes("\ufeffA man plays a guitar.\n".encode())
    for name in ("plain", "bom"):
        assert main(["encode", str(folder), "--input", str(tmp_path / f"{name}.txt"), "--output",
                     str(tmp_path / f"{name}.npy"), "--device", "cpu", "--dtype", "fp32"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "plain.npy"), np.load(tmp_path / "bom.npy"))
