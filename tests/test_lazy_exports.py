"""The packages' public names import their modules on first use, and are the same objects as there."""

from __future__ import annotations

import subprocess
import sys

import pytest

import l3prune
import l3prune.training


@pytest.mark.parametrize("package", [l3prune, l3prune.training])
def test_every_public_name_resolves_to_its_module_object(package):
    import importlib

    for name in package.__all__:
        value = getattr(package, name)
        home = importlib.import_module(package._HOMES[name])
        assert value is getattr(home, name), name
        assert name in dir(package)


@pytest.mark.parametrize("package", [l3prune, l3prune.training])
def test_an_unknown_name_is_an_attribute_error(package):
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018
    assert not hasattr(package, "no_such_name")


def test_importing_the_package_imports_no_torch_until_a_name_is_used():
    probe = ("import sys, l3prune, l3prune.training\nbefore = 'torch' in sys.modules\n"
             "from l3prune import LLMEncoder\nprint(before, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["False", "True"], out.stderr[-500:]
