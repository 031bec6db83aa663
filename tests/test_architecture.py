"""Imports run one way (docs/ARCHITECTURE.md): a module imports only its own layer or the layers below.

Every import counts, including the ones inside functions: a lazy import upward is still a cycle in
the design. Modules of one layer but different rooms (e.g. ``pruning`` and ``evaluation``) do not
import each other either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import l3prune

SRC = Path(l3prune.__file__).parent

#: Bottom to top: (level, room) for each module or package of l3prune.
LAYERS = {
    "errors": 0, "lazy": 0,
    "files": 1, "architectures": 1, "losses": 1, "resources": 1,
    "settings": 2, "layers": 2, "data": 2,
    "devices": 3, "pooling": 3, "tokenization": 3,
    "loading": 4,
    "encoder": 5,
    "pruning": 6, "evaluation": 6, "export": 6, "encode_file": 6, "testing": 6,
    "training": 7,
    "cli": 8, "__init__": 8, "st_pooling": 8, "__main__": 9,
}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("l3prune"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("l3prune"))
    return found


def test_every_module_has_a_layer():
    rooms = {p.stem if p.is_file() else p.name for p in SRC.iterdir() if (p.suffix == ".py" or (p / "__init__.py").is_file())}
    assert rooms <= set(LAYERS), sorted(rooms - set(LAYERS))


def test_imports_run_downward_only():
    wrong = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        here = room(".".join(rel.parts))
        for target in imports(path):
            there = room(target)
            if there == here or target == "l3prune":
                continue
            if LAYERS[there] >= LAYERS[here]:
                wrong.append(f"{'.'.join(rel.parts)} imports {target}")
    assert not wrong, wrong
