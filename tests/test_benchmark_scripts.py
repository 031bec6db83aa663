"""The GPU check cannot run on CI's machines; its tiny CPU mode keeps the scripts from rotting unseen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_gpu_check_runs_its_tiny_cpu_mode(tmp_path):
    env = {**os.environ, "TINY": "1", "OUT": str(tmp_path), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    encode = json.loads((tmp_path / "encode_gpu.json").read_text())
    assert encode["speed_only"] and [r["layers"] for r in encode["rows"]] == [4, 2]
    assert encode["rows"][1]["worst_cosine_native_vs_st"] > 0.9999  # stock ST on the export agrees with native
    assert "SPEED ONLY" in (tmp_path / "encode_gpu.md").read_text()
    train = json.loads((tmp_path / "train_step_gpu.json").read_text())
    assert [r["layers"] for r in train["rows"]] == [4, 2] and train["gradient_checkpointing"]
    assert all(r["median_s_per_step"] > 0 for r in train["rows"])
    assert json.loads((tmp_path / "matmul.json").read_text())["gflops"]["fp32"] > 0
    assert "status 0" in (tmp_path / "gpu_check.log").read_text()


def test_every_benchmark_script_compiles():
    """Benchmarks run for hours in the background; a syntax error must fail here, not after the first row. The
    one-off investigations (benchmarks/investigations/) are held to this alone: they are not rerun."""
    scripts = sorted((ROOT / "benchmarks").rglob("*.py"))
    assert len(scripts) > 10
    for script in scripts:
        compile(script.read_text(encoding="utf-8"), str(script), "exec")  # raises SyntaxError

