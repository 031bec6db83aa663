"""What machine a speed figure came from, recorded beside it.

Speed on these CPUs depends on facts no figure shows: which CPU it was and whether it has AMX tiles (training
rates per layer-step differed by more than 2x between machines, and AMX did not tell the faster one), how many
threads ran, and how busy the machine was.
A result file that records them can be read later without guessing which machine it came from.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def _cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _cpu_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def machine(cpuinfo_path: str | Path = "/proc/cpuinfo") -> dict:
    """CPU model, AMX and AVX512-BF16 (from the kernel's flags), cores, torch's threads and version, the load.

    The load average includes the benchmark's own threads: on a 2-core machine a 2-thread run alone reads
    about 2. Where ``/proc/cpuinfo`` is missing (not Linux), the flags read as absent and the model comes from
    ``platform``.
    """
    try:
        cpuinfo = Path(cpuinfo_path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        cpuinfo = ""
    flags = _cpu_flags(cpuinfo)
    facts = {
        "cpu": _cpu_model(cpuinfo),
        "amx": "amx_tile" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if hasattr(os, "getloadavg"):
        facts["load_average_1min"] = round(os.getloadavg()[0], 2)
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts


def machine_line(facts: dict, label: str = "Machine") -> str:
    """One line for a Markdown report: ``Intel Xeon ..., AVX512-BF16 without AMX, 2 of 2 threads, torch 2.x``."""
    if facts["amx"]:
        bf16 = "AMX"
    elif facts["avx512_bf16"]:
        bf16 = "AVX512-BF16 without AMX"
    else:
        bf16 = "no native bf16"
    line = (f"{label}: {facts['cpu']}, {bf16}, {facts['torch_threads']} of {facts['logical_cores']} threads, "
            f"torch {facts['torch']}")
    if "load_average_1min" in facts:
        line += f", 1-minute load average {facts['load_average_1min']} when written (the run's own threads included)"
    if "gpu" in facts:
        line += f"; GPU: {facts['gpu']}"
    return line + "."


def with_machine(markdown: str, facts: dict) -> str:
    """A report's Markdown with the machine line appended as its last paragraph."""
    return markdown.rstrip("\n") + "\n\n" + machine_line(facts) + "\n"
