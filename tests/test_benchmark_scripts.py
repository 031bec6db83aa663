"""The GPU benchmark cannot run on CI's machines; its tiny CPU mode keeps the script from rotting unseen."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def test_encode_gpu_script_runs_its_cpu_smoke_mode(tmp_path):
    out = tmp_path / "smoke"
    subprocess.run([sys.executable, str(BENCHMARKS / "encode_gpu.py"), "--device", "cpu", "--config", "tiny",
                    "--dtype", "fp32", "--layers", "4", "2", "--st-layers", "2", "--texts", "8", "--length", "16",
                    "--repeats", "1", "--out", str(out), "--tmp", str(tmp_path)], check=True, capture_output=True)
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["speed_only"] and [r["layers"] for r in result["rows"]] == [4, 2]
    assert result["rows"][1]["worst_cosine_native_vs_st"] > 0.9999  # stock ST on the export agrees with native
    assert "SPEED ONLY" in out.with_suffix(".md").read_text()
