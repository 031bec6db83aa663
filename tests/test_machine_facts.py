"""Benchmarks record the machine beside each speed figure: whether the CPU has AMX is read, not assumed."""

from __future__ import annotations

import pytest

CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse avx2 avx512f {extra}

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse avx2 avx512f {extra}
"""


@pytest.fixture(scope="module")
def facts_module(import_benchmark):
    return import_benchmark("_machine")


@pytest.mark.parametrize("extra, amx, bf16, words", [
    ("avx512_bf16 amx_bf16 amx_tile amx_int8", True, True, "AMX"),
    ("avx512_bf16", False, True, "AVX512-BF16 without AMX"),
    ("", False, False, "no native bf16"),
])
def test_the_bf16_hardware_is_read_from_the_cpu_flags(facts_module, tmp_path, extra, amx, bf16, words):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra=extra))
    facts = facts_module.machine(cpuinfo)
    assert (facts["amx"], facts["avx512_bf16"]) == (amx, bf16)
    assert facts["cpu"] == "Intel(R) Xeon(R) Platinum 8488C"
    assert facts["torch_threads"] >= 1 and facts["logical_cores"] >= 1
    line = facts_module.machine_line(facts)
    assert line.startswith("Machine: Intel(R) Xeon(R) Platinum 8488C, " + words + ",")
    assert f"{facts['torch_threads']} of {facts['logical_cores']} threads" in line


def test_a_missing_cpuinfo_reads_as_no_flags(facts_module, tmp_path):
    facts = facts_module.machine(tmp_path / "absent")
    assert facts["amx"] is False and facts["avx512_bf16"] is False and facts["cpu"]


def test_the_machine_line_ends_a_report(facts_module, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra="avx512_bf16"))
    text = facts_module.with_machine("# Title\n\n| a |\n|---|\n\n", facts_module.machine(cpuinfo))
    assert text.startswith("# Title\n\n| a |\n|---|\n\nMachine: ") and text.endswith(".\n")
    assert text.count("\n\n") == 2
