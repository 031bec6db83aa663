"""Shared fixtures: tiny models come from ``l3prune.testing``."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import pytest

from l3prune.testing import tiny_encoder


BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def import_benchmark():
    """Import a script of ``benchmarks/`` (a folder, not a package) by its path without ``.py``: ``"_machine"``,
    or one in a study's folder, ``"replication/run"`` (imported as ``replication.run``, the name its siblings
    import it by). Scripts may import the helpers of ``benchmarks/`` (``_texts``, ``_machine``, ...).
    Registered in ``sys.modules`` while the test module runs (dataclasses look their module up there),
    forgotten afterwards."""
    loaded: list[str] = []
    sys.path.insert(0, str(BENCHMARKS))

    def load(path: str):
        name = path.replace("/", ".")
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{path}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loaded.append(name)
        spec.loader.exec_module(module)
        return module

    try:
        yield load
    finally:
        sys.path.remove(str(BENCHMARKS))
        for name in loaded:
            sys.modules.pop(name, None)


@pytest.fixture
def make_encoder():
    return tiny_encoder


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Tests never reach a hub; INFO logs from l3prune are visible to caplog."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    logging.getLogger("l3prune").setLevel(logging.INFO)


@pytest.fixture(autouse=True)
def _fp32_by_default(monkeypatch):
    """``auto`` means fp32 in tests, on any CI machine: most tests check exact equalities that bf16 would
    blur. The bf16 tests ask for bf16 explicitly, or patch this check back (``native_bf16_cpu``)."""
    import l3prune.devices

    monkeypatch.setattr(l3prune.devices, "cpu_has_native_bf16", lambda: False)


@pytest.fixture
def native_bf16_cpu(monkeypatch):
    """Pretend this CPU has AMX / AVX512-BF16, so ``auto`` picks bf16."""
    import l3prune.devices

    monkeypatch.setattr(l3prune.devices, "cpu_has_native_bf16", lambda: True)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine two threads are 5x slower; a module
    opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
