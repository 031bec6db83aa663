"""The whole training step under ``torchrun`` (2 gloo processes on CPU) against one process, same global batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from l3prune.testing import tiny_encoder
from l3prune.cli import main
from test_training import train_args, triplet_rows, write_jsonl


@pytest.mark.slow
@pytest.mark.parametrize("per_rank", [(), ("--mini-batch-size", "1", "--mask-duplicates")],
                         ids=["whole-batch", "gradient-cache"])
def test_two_ranks_train_the_same_weights_as_one_process(tmp_path, per_rank):
    """With gradient caching on the two ranks (one triplet a pass, cross-rank negatives gathered) too."""
    model = tiny_encoder("llama", 2).save(tmp_path / "tiny")
    data = write_jsonl(tmp_path / "toy.jsonl", triplet_rows(16, "a") + triplet_rows(12, "b"))
    # No LoRA dropout: its random masks are drawn per rank, so they could never match one process's.
    extra = ("--lora-dropout", "0", "--save-every", "1")
    one, two = tmp_path / "one", tmp_path / "two"
    single = ("--mask-duplicates",) if per_rank else ()
    assert main(train_args(model, data, one, *extra, *single, steps=2)) == 0
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "l3prune.cli",
                           *train_args(model, data, two, *extra, *per_rank, steps=2)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "two.run" / "run.json").read_text())["world_size"] == 2
    w1, w2 = load_file(one / "model.safetensors"), load_file(two / "model.safetensors")
    untrained = load_file(model / "model.safetensors")
    assert any(not torch.equal(w1[k], untrained[k]) for k in w1)  # training really moved the weights
    for key in w1:
        torch.testing.assert_close(w2[key], w1[key], atol=2e-6, rtol=1e-5, msg=key)
    log1 = (one / "train_log.jsonl").read_text().splitlines()
    log2 = (two / "train_log.jsonl").read_text().splitlines()
    for a, b in zip(log1, log2):  # the logged loss is the global-batch loss on both
        assert json.loads(a)["loss"] == pytest.approx(json.loads(b)["loss"], rel=1e-5)
