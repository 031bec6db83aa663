from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from l3prune.testing import CORPUS, tiny_encoder
from l3prune.cli import main
from l3prune.data import Triplet
from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.layers import PruneSpec
from l3prune.settings import LoadOptions
from l3prune.training import (
    NonFiniteLossError,
    TrainConfig,
    WarmupSchedule,
    build_config,
    train_encoder,
    train_to_folder,
)
from l3prune.training.adapters import merge_trained, prepare_trainable
from l3prune.training.config import TRAIN_LOAD

FAST = dict(steps=4, batch_size=4, warmup_steps=1, save_every=2)
LOAD = LoadOptions(max_length=24, device="cpu")


def triplet_rows(n: int, source: str) -> list[dict]:
    rows = []
    for i in range(n):
        a, b, c = CORPUS[i % 8], CORPUS[(i + 1) % 8], CORPUS[(i + 4) % 8]
        rows.append({"query": f"{a} {i}", "positive": f"{b} {i}", "negative": c, "source": source,
                     "instruction": "Retrieve a related sentence"})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny 3-layer llama encoder saved as a normal model folder (what a user would pass)."""
    return tiny_encoder("llama", 3).save(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "toy.jsonl", triplet_rows(16, "a") + triplet_rows(12, "b"))


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def assert_same_weights(a: Path, b: Path, atol: float = 1e-6) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], atol=atol, rtol=0, msg=key)


def train_args(model_dir: Path, data_file: Path, out: Path, *extra: str, steps: int = 4) -> list[str]:
    return ["train", str(model_dir), "--data", str(data_file), "--steps", str(steps), "--batch-size", "4",
            "--dtype", "fp32", "--max-length", "24", "--warmup-steps", "1", "--save-every", "2", "--device", "cpu",
            "--out", str(out), *extra]


# --- the recipe --------------------------------------------------------------------------------


def test_defaults_are_the_papers_recipe():
    c = TrainConfig()
    assert (c.lora_r, c.lora_alpha, c.lora_dropout, c.learning_rate) == (16, 32, 0.05, 2e-4)
    assert (c.warmup_steps, c.steps, c.batch_size, c.loss_scale) == (300, 1000, 64, 50.0)
    assert c.finetune == "lora" and c.schedule == "linear"
    assert TRAIN_LOAD.max_length == 512 and TRAIN_LOAD.dtype == "auto"  # bf16 on GPU, fp32 on CPU


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_flags_win_over_the_file_and_the_file_over_defaults(tmp_path, suffix):
    values = {"steps": 50, "learning_rate": 1e-3, "lora_r": 4, "data": "one.jsonl"}
    text = "steps: 50\nlearning_rate: 1e-3\nlora_r: 4\ndata: one.jsonl\n" if suffix == ".yaml" else json.dumps(values)
    recipe = tmp_path / f"recipe{suffix}"
    recipe.write_text(text)
    config = build_config(recipe, steps=7, lora_r=None)  # None = flag not given
    assert (config.steps, config.learning_rate, config.lora_r, config.data) == (7, 1e-3, 4, ["one.jsonl"])
    assert config.batch_size == 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stepz: 5\n", "unknown setting 'stepz'"),
        ("steps: 0\n", "steps must be at least 1"),
        ("steps: many\n", "'steps' must be int"),
        ("schedule: cosine\n", "schedule must be one of"),
        ("- steps\n", "must be a mapping"),
    ],
)
def test_bad_recipe_files_name_the_setting(tmp_path, text, message):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    with pytest.raises(L3PruneError, match=message):
        build_config(recipe)


def test_a_recipe_file_sets_training_settings_and_load_options(tmp_path):
    from l3prune.training import build_load_options, read_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text("steps: 5\nmax_length: 128\ndtype: bf16\n")
    values = read_recipe(recipe)
    assert build_config(values).steps == 5
    assert build_load_options(values, dtype="fp32") == LoadOptions(max_length=128, dtype="fp32")
    assert build_load_options().max_length == 512  # the paper's length, whatever the model saved
    with pytest.raises(L3PruneError, match="for training"):
        build_load_options(dtype="fp16")


def test_warmup_longer_than_the_run_is_clamped_and_logged(caplog):
    config = build_config(steps=10)
    assert config.effective_warmup == 10 and "clamping it to 10 steps" in caplog.text
    linear, constant = WarmupSchedule(2, 6), WarmupSchedule(2, 6, "constant")
    assert [linear(s) for s in range(6)] == pytest.approx([0.5, 1, 1, 0.75, 0.5, 0.25])
    assert [constant(s) for s in range(6)] == [0.5, 1, 1, 1, 1, 1]


# --- training, merging, saving -----------------------------------------------------------------


def test_train_saves_a_merged_encoder_that_loads_without_peft(tmp_path, model_dir, data_file):
    out = tmp_path / "out"
    config = build_config(data=[str(data_file)], **FAST)
    train_to_folder(model_dir, out, config, load=LOAD, prune=PruneSpec(num_layers=2))
    files = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "l3prune.json", "training.json", "train_log.jsonl", "train_loss.png"} <= files
    assert "adapter_config.json" not in files and not any("lora" in k for k in weights(out))
    trained = LLMEncoder.from_pretrained(out, device="cpu")
    assert trained.num_layers == 2 and trained.settings.kept_layers == [0, 1]
    assert trained.settings.max_length == 24
    untrained = LLMEncoder.from_pretrained(model_dir, num_layers=2, device="cpu")
    assert not torch.allclose(torch.from_numpy(trained.encode(CORPUS[:3])), torch.from_numpy(untrained.encode(CORPUS[:3])))
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3, 4] and all(row["loss"] > 0 for row in log)
    assert json.loads((out / "training.json").read_text())["steps_run"] == 4
    assert (tmp_path / "out.run" / "checkpoints" / "step-0000004.pt").is_file()
    assert main(["info", str(out), "--json"]) == 0  # the CLI reads it like any other model


@pytest.mark.parametrize("arch", ["phi3", "gemma3_text"])
def test_lora_merge_keeps_the_trained_function(arch):
    encoder = tiny_encoder(arch, 2)
    prepare_trainable(encoder, TrainConfig(lora_r=4))
    with torch.no_grad():
        for name, param in encoder.model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.05)  # B starts at 0; make the adapters matter
    before = encoder.encode(CORPUS)
    merge_trained(encoder)
    assert not any("lora" in name for name, _ in encoder.model.named_parameters())
    torch.testing.assert_close(encoder.encode(CORPUS), before, atol=1e-5, rtol=1e-4)


def test_seeded_runs_are_identical_and_checkpointing_changes_nothing(data_file):
    def run(**extra) -> dict[str, torch.Tensor]:
        encoder = tiny_encoder("llama", 2, max_length=24)
        train_encoder(encoder, build_config(data=[str(data_file)], **{**FAST, "steps": 3, **extra}))
        return encoder.model.state_dict()

    first, again = run(), run()
    checkpointed, full = run(gradient_checkpointing=True), run(finetune="full")
    for key in first:
        torch.testing.assert_close(first[key], again[key], atol=0, rtol=0)
        torch.testing.assert_close(first[key], checkpointed[key], atol=1e-6, rtol=0)
    assert any(not torch.allclose(first[k], full[k]) for k in first)


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, model_dir, data_file):
    """SIGKILL a real training process after its first checkpoint, resume it, compare with a clean run."""
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    args = train_args(model_dir, data_file, killed, steps=24)
    args[args.index("--save-every") + 1] = "4"
    proc = subprocess.Popen([sys.executable, "-m", "l3prune.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())})
    checkpoints = tmp_path / "killed.run" / "checkpoints"
    deadline = time.monotonic() + 120
    while not list(checkpoints.glob("step-*.pt")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not killed.exists(), "the run ended before it could be killed"
    assert main([*args, "--resume"]) == 0
    clean_args = train_args(model_dir, data_file, clean, steps=24)
    clean_args[clean_args.index("--save-every") + 1] = "4"
    assert main(clean_args) == 0
    assert_same_weights(killed, clean, atol=1e-6)
    steps = [json.loads(line)["step"] for line in (killed / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 25))


def test_interrupted_final_save_leaves_no_model_and_resume_finishes(tmp_path, model_dir, data_file, monkeypatch):
    out = tmp_path / "out"
    real_write = LLMEncoder.write_files

    def dying_write(self, folder):
        real_write(self, folder)
        raise KeyboardInterrupt  # killed right after the weights were written

    monkeypatch.setattr(LLMEncoder, "write_files", dying_write)
    assert main(train_args(model_dir, data_file, out)) == 130
    assert not out.exists() and not list(tmp_path.glob(".out*"))  # no model, no temporary folder
    monkeypatch.setattr(LLMEncoder, "write_files", real_write)
    assert main(train_args(model_dir, data_file, out, "--resume")) == 0  # from the final checkpoint: no steps left
    assert LLMEncoder.from_pretrained(out, device="cpu").num_layers == 3


def test_nonfinite_loss_stops_the_run_and_saves_nothing(tmp_path, model_dir, data_file, monkeypatch, capsys):
    from l3prune.losses import ContrastiveLoss

    real = ContrastiveLoss.forward
    monkeypatch.setattr(ContrastiveLoss, "forward", lambda self, q, p, n=None, **kw: real(self, q, p, n, **kw) * float("nan"))
    out = tmp_path / "out"
    with pytest.raises(NonFiniteLossError, match="loss became nan at step 1"):
        train_to_folder(model_dir, out, build_config(data=[str(data_file)], **FAST), load=LOAD)
    assert not out.exists()
    assert main(train_args(model_dir, data_file, out, "--overwrite")) == 2
    assert "no model was saved" in capsys.readouterr().err and not out.exists()


# --- bad input and folder rules ----------------------------------------------------------------


def test_train_exports_a_sentence_transformers_folder(tmp_path, model_dir, data_file, capsys):
    from sentence_transformers import SentenceTransformer

    out, st_dir = tmp_path / "out", tmp_path / "st"
    assert main(train_args(model_dir, data_file, out, "--num-layers", "2", "--pooling", "mean", "--export",
                           str(st_dir), "--prompt", "query=Find the answer", steps=2)) == 0
    assert f"wrote {st_dir} (sentence-transformers)" in capsys.readouterr().out
    native = LLMEncoder.from_pretrained(out, device="cpu")
    model = SentenceTransformer(str(st_dir), device="cpu")  # mean pooling, no BOS: pure stock, no remote code
    for instruction, prompt_name in ((None, None), ("Find the answer", "query")):
        a = native.encode(CORPUS[:4], instruction=instruction, batch_size=2)
        b = model.encode(CORPUS[:4], prompt_name=prompt_name, batch_size=2)
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_bad_input_fails_with_one_line_before_training(tmp_path, model_dir, data_file, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(triplet_rows(1, "a")[0]) + "\n{oops\n")
    existing = tmp_path / "exists"
    existing.mkdir()
    cases = [
        (train_args(model_dir, bad, tmp_path / "o1"), f"{bad}:2: invalid JSON"),
        (train_args(model_dir, data_file, tmp_path / "o2", "--batch-size", "64"), "larger than the largest source"),
        (train_args(model_dir, data_file, existing), "already exists; choose another path or pass --overwrite"),
        (train_args(model_dir, data_file, tmp_path / "o3", "--dtype", "fp16"), "dtype must be one of"),
        (train_args(model_dir, data_file, tmp_path / "o4", "--num-layers", "9"), "num_layers must be an integer in 1..3"),
        (train_args(model_dir, data_file, tmp_path / "o5", "--export", str(existing)),
         "already exists; choose another path or pass --overwrite"),
        (train_args(model_dir, data_file, tmp_path / "o6", "--prompt", "query=Find it"), "add --export DIR"),
    ]
    for args, message in cases:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert not list(tmp_path.glob("*.run"))  # a run that fails its checks leaves no run folder


def test_earlier_run_needs_resume_or_overwrite_and_resume_needs_the_same_recipe(tmp_path, model_dir, data_file, capsys):
    out = tmp_path / "out"
    assert main(train_args(model_dir, data_file, out)) == 0
    capsys.readouterr()
    fresh = tmp_path / "again"
    run_dir = ["--run-dir", str(tmp_path / "out.run")]
    assert main(train_args(model_dir, data_file, fresh, *run_dir)) == 2
    assert "pass --resume to continue it or --overwrite" in capsys.readouterr().err
    assert main(train_args(model_dir, data_file, fresh, *run_dir, "--resume", "--lr", "1e-3")) == 2
    assert "learning_rate: 0.0002 -> 0.001" in capsys.readouterr().err
    assert main(train_args(model_dir, data_file, fresh, *run_dir, "--resume", "--num-layers", "2")) == 2
    assert "prune differ" in capsys.readouterr().err
    assert main(train_args(model_dir, data_file, out, "--overwrite", "--steps", "2", "--log-format", "csv")) == 0
    assert (out / "train_log.csv").read_text().splitlines()[0] == "step,loss,lr,grad_norm,seconds"


def test_cli_help_lists_the_recipe_flags(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--recipe", "--lora-r", "--lr", "--warmup-steps", "--resume", "--config {small,large}", "--finetune"):
        assert flag in text


def test_train_to_the_first_n_layers_builds_only_those(tmp_path, model_dir, data_file, monkeypatch):
    from transformers.models.llama import modeling_llama

    built: list[int] = []
    real = modeling_llama.LlamaDecoderLayer.__init__
    def counting(self, config, layer_idx, *a, **k):
        built.append(layer_idx)
        return real(self, config, layer_idx, *a, **k)

    monkeypatch.setattr(modeling_llama.LlamaDecoderLayer, "__init__", counting)
    out = tmp_path / "out"
    train_to_folder(model_dir, out, build_config(data=[str(data_file)], **{**FAST, "steps": 1}), load=LOAD,
                    prune=PruneSpec(num_layers=2))
    assert built == [0, 0, 1]  # the LoRA-target check's one-layer skeleton (no weights), then the two kept layers
    assert LLMEncoder.from_pretrained(out, device="cpu").settings.pruning["criterion"] == "last"


def test_run_record_round_trips_and_is_the_one_resume_check(tmp_path):
    from dataclasses import replace

    from l3prune.training.record import RunRecord

    record = RunRecord.start("m", PruneSpec(num_layers=2), TrainConfig(), TRAIN_LOAD, 1)
    record.save(tmp_path)
    saved = RunRecord.read(tmp_path)
    assert saved == record
    replace(record, load={**record.load, "device": "cuda"}).check_resume(saved, where="x")  # run-only
    with pytest.raises(L3PruneError, match="max_length: 512 -> 128"):
        replace(record, load={**record.load, "max_length": 128}).check_resume(saved, where="x")
    with pytest.raises(L3PruneError, match="written by 1 process"):
        replace(record, world_size=2).check_resume(saved, where="x")
    with pytest.raises(L3PruneError, match="prune differ"):
        replace(record, prune={"num_layers": 3}).check_resume(saved, where="x", settings=False)
    legacy = {"model": "m", "prune": record.prune, "config": {**record.config, "max_length": 512, "dtype": None},
              "world_size": 1}
    (tmp_path / "run.json").write_text(json.dumps(legacy))  # written before load options had their own entry
    record.check_resume(RunRecord.read(tmp_path), where="x")
