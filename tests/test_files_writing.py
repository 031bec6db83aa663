"""The one safe-write helper: what it may replace, how it swaps, and what a killed run leaves for the next."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from l3prune.errors import L3PruneError
from l3prune.files import atomic_output, check_output, clean_stale, dumps, temp_sibling, write_json, write_text


def test_a_file_is_written_whole_or_not_at_all(tmp_path):
    out = tmp_path / "r.json"
    write_json(out, {"a": 1})
    with pytest.raises(RuntimeError), atomic_output(out, overwrite=True) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert json.loads(out.read_text()) == {"a": 1} and os.listdir(tmp_path) == ["r.json"]


def test_text_is_written_through_the_same_swap(tmp_path):
    out = tmp_path / "report.md"
    write_text(out, "# first\n")
    with pytest.raises(L3PruneError, match="exists"):
        write_text(out, "# second\n")  # a report is replaced only when asked
    assert out.read_text() == "# first\n"
    write_text(out, "# second, é\n", overwrite=True)
    assert out.read_text(encoding="utf-8") == "# second, é\n" and os.listdir(tmp_path) == ["report.md"]


def test_a_folder_is_replaced_only_when_it_is_ours(tmp_path):
    out = tmp_path / "enc"
    with atomic_output(out, kind="folder") as tmp:
        (tmp / "l3prune.json").write_text("{}")
    with pytest.raises(L3PruneError, match="already exists; choose another path or pass overwrite=True"):
        check_output(out, kind="folder")
    with atomic_output(out, overwrite=True, kind="folder") as tmp:
        (tmp / "l3prune.json").write_text('{"new": 1}')
    assert json.loads((out / "l3prune.json").read_text()) == {"new": 1}
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(L3PruneError, match=r"refusing to replace .*thesis.tex.*did not write it"):
        check_output(mine, overwrite=True, kind="folder")


@pytest.mark.parametrize("where", [".", "..", "~", "/"])
def test_protected_places_are_never_outputs(where, tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    with pytest.raises(L3PruneError, match="refusing to write to"):
        check_output(where, overwrite=True, kind="folder")


def test_a_killed_writer_leaves_a_temp_that_the_next_run_removes(tmp_path):
    out = tmp_path / "e.npy"
    code = (f"import os, sys; sys.path.insert(0, {str(Path(__file__).parents[1] / 'src')!r})\n"
            "from l3prune.files import atomic_output\n"
            f"with atomic_output({str(out)!r}) as tmp:\n    tmp.write_bytes(b'partial'); os._exit(9)\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".e.npy.l3prune-tmp-")  # one recognisable name
    with atomic_output(out) as tmp:
        tmp.write_bytes(b"\x93NUMPY whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.npy"]


def test_an_old_output_set_aside_by_a_killed_swap_comes_back(tmp_path, monkeypatch):
    out = tmp_path / "enc"
    monkeypatch.setattr(os, "getpid", lambda: 999_999_999)  # a process id that is surely not running
    aside = temp_sibling(out, tag=".l3prune-old-")
    aside.mkdir()
    (aside / "l3prune.json").write_text("{}")
    monkeypatch.undo()
    clean_stale(out)
    assert (out / "l3prune.json").is_file() and not aside.exists()


def test_json_is_strict():
    with pytest.raises(L3PruneError, match="NaN or infinite"):
        dumps({"score": float("nan")})
    assert dumps({"x": float("1.5")}) == '{\n  "x": 1.5\n}'


def test_only_strict_json_calls_json_dump():
    """Every JSON l3prune writes goes through ``l3prune.files.dumps`` (allow_nan=False)."""
    src = Path(__file__).parents[1] / "src" / "l3prune"
    offenders = []
    for file in src.rglob("*.py"):
        if file.relative_to(src).as_posix() == "files/strict_json.py":
            continue
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("dump", "dumps") and \
                    isinstance(node.value, ast.Name) and node.value.id == "json":
                offenders.append(f"{file.relative_to(src)}:{node.lineno}")
    assert not offenders
