"""The ``auto`` dtype and bf16 training: which dtype each machine gets, and that bf16 trains correctly.

``conftest`` makes ``auto`` mean fp32 in every other test; here the capability check is patched both
ways (``native_bf16_cpu``), so both branches run on any CI machine.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from peft.tuners.lora import LoraLayer

import l3prune.devices as devices
from l3prune.cli import main
from l3prune.data import Triplet
from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.devices import default_dtype, resolve_dtype
from l3prune.settings import LoadOptions
from l3prune.testing import CORPUS, tiny_encoder
from l3prune.training import TrainConfig, Trainer
from l3prune.training.adapters import merge_trained, prepare_trainable
from l3prune.training.config import check_train_load
from l3prune.training.dropout import PackedDropout, use_packed_dropout


@pytest.fixture(autouse=True)
def _fresh_log_state(monkeypatch):
    monkeypatch.setattr(devices, "_explained", set())


@pytest.fixture
def model_dir(tmp_path):
    return tiny_encoder("llama", num_layers=3).save(tmp_path / "tiny")


def triplets(n: int = 16) -> list[Triplet]:
    return [Triplet(query=CORPUS[i % len(CORPUS)], positive=CORPUS[(i + 1) % len(CORPUS)],
                    negative=CORPUS[(i + 5) % len(CORPUS)], source="s", query_instruction="Find the passage")
            for i in range(n)]


# --- which dtype auto means ---------------------------------------------------------------------


def test_auto_is_bf16_on_a_cpu_with_native_bf16(native_bf16_cpu):
    assert default_dtype("cpu") == torch.bfloat16
    assert resolve_dtype("auto", "cpu") == resolve_dtype(None, "cpu") == torch.bfloat16


def test_auto_is_fp32_on_a_cpu_without_native_bf16():
    assert default_dtype("cpu") == torch.float32  # conftest patches the check to "no"


@pytest.mark.parametrize("supported", [True, False])
def test_auto_on_cuda_follows_the_gpus_bf16_support(monkeypatch, supported):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    assert default_dtype("cuda") == (torch.bfloat16 if supported else torch.float32)


@pytest.mark.parametrize(("amx", "avx512_bf16", "expected"),
                         [(True, False, True), (False, True, True), (False, False, False)])
def test_native_bf16_uses_torchs_own_cpu_checks(monkeypatch, amx, avx512_bf16, expected):
    monkeypatch.undo()  # the real cpu_has_native_bf16, with torch's checks patched
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert devices.cpu_has_native_bf16() is expected


def test_a_failing_or_missing_capability_check_means_no(monkeypatch):
    monkeypatch.undo()

    def broken():
        raise RuntimeError("no cpuinfo")

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", broken, raising=False)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    assert devices.cpu_has_native_bf16() is False


def test_auto_logs_its_choice_once(native_bf16_cpu, caplog):
    with caplog.at_level(logging.INFO, logger="l3prune.devices"):
        resolve_dtype("auto", "cpu")
        resolve_dtype("auto", "cpu")
    lines = [r.getMessage() for r in caplog.records if "dtype auto" in r.getMessage()]
    assert lines == ["dtype auto -> bf16 on cpu (this CPU has AMX or AVX512-BF16); pass --dtype fp32 to override"]


def test_fp16_on_cpu_is_refused_with_the_alternatives():
    with pytest.raises(L3PruneError, match="fp16 on the CPU.*'auto'.*'bf16' or 'fp32'"):
        resolve_dtype("fp16", "cpu")


def test_bf16_on_a_cpu_without_native_bf16_warns_that_it_is_slow(caplog):
    with caplog.at_level(logging.WARNING, logger="l3prune.devices"):
        assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    assert any("emulated and slower than fp32" in r.getMessage() for r in caplog.records)


def test_cli_refuses_fp16_on_cpu_in_one_line(model_dir, capsys):
    assert main(["info", str(model_dir), "--dtype", "fp16", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: fp16 on the CPU")


# --- the choice is recorded --------------------------------------------------------------------


def test_auto_loads_bf16_and_records_it(native_bf16_cpu, model_dir, tmp_path):
    enc = LLMEncoder.from_pretrained(model_dir, device="cpu")
    assert enc.dtype == torch.bfloat16 and enc.info()["dtype"] == "bf16" and enc.settings.dtype == "bf16"
    saved = enc.save(tmp_path / "saved")
    assert json.loads((saved / "l3prune.json").read_text())["dtype"] == "bf16"
    fp32 = LLMEncoder.from_pretrained(saved, load=LoadOptions(dtype="fp32", device="cpu"))
    assert fp32.dtype == torch.float32 and fp32.settings.dtype == "fp32"  # a record, resolved anew on load


def test_bf16_embeddings_are_close_to_fp32(model_dir):
    texts = CORPUS[:8]
    a = LLMEncoder.from_pretrained(model_dir, dtype="fp32", device="cpu").encode(texts, normalize=True)
    b = LLMEncoder.from_pretrained(model_dir, dtype="bf16", device="cpu").encode(texts, normalize=True)
    assert a.dtype == b.dtype == np.float32
    assert float((a * b).sum(1).min()) > 0.99  # a random tiny model; SmolLM2's figure is in docs/performance.md


# --- bf16 training is correct ------------------------------------------------------------------


def test_lora_on_bf16_keeps_adapters_optimizer_and_loss_in_fp32(native_bf16_cpu, model_dir):
    enc = LLMEncoder.from_pretrained(model_dir, device="cpu", max_length=24)
    trainer = Trainer(enc, triplets(), TrainConfig(steps=2, batch_size=4, warmup_steps=1))
    row = trainer.train_step()
    assert np.isfinite(row["loss"])
    adapters = {n: p for n, p in enc.model.named_parameters() if p.requires_grad}
    assert adapters and all("lora_" in n and p.dtype == torch.float32 for n, p in adapters.items())
    frozen = [p for n, p in enc.model.named_parameters() if not p.requires_grad]
    assert all(p.dtype == torch.bfloat16 for p in frozen)
    states = [s for s in trainer.optimizer.state.values()]
    assert states and all(s["exp_avg"].dtype == torch.float32 for s in states)
    q, p, n = trainer.embed_triplets(triplets(4))
    assert trainer.loss_fn(q, p, n).dtype == torch.float32


def test_merge_adds_the_fp32_delta_before_one_rounding_to_bf16():
    enc = tiny_encoder("llama", num_layers=2)
    enc.model.to(torch.bfloat16)
    prepare_trainable(enc, TrainConfig(lora_dropout=0.0))
    torch.manual_seed(1)
    expected = {}
    for name, module in enc.model.named_modules():
        if isinstance(module, LoraLayer):
            torch.nn.init.normal_(module.lora_B["default"].weight, std=0.02)  # B starts at 0: give it a delta
            delta = module.get_delta_weight("default").float()
            expected[name] = (module.get_base_layer().weight.float() + delta).to(torch.bfloat16)
    texts = CORPUS[:6]
    enc.eval()
    before = enc.encode(texts, normalize=True)  # adapters unmerged, fp32
    merge_trained(enc)
    modules = dict(enc.model.named_modules())
    for name, weight in expected.items():
        merged = modules[name.removeprefix("base_model.model.")].weight
        assert merged.dtype == torch.bfloat16
        assert torch.equal(merged, weight), name
    after = enc.encode(texts, normalize=True)
    assert float((before * after).sum(1).min()) > 0.999


def test_full_finetuning_trains_in_fp32():
    assert check_train_load(LoadOptions(dtype="auto"), "full").dtype == "fp32"
    assert check_train_load(LoadOptions(dtype="auto"), "lora").dtype == "auto"
    with pytest.raises(L3PruneError, match="full fine-tuning in bf16.*1/256"):
        check_train_load(LoadOptions(dtype="bf16"), "full")


def test_train_records_the_resolved_dtype_and_resume_keeps_it(native_bf16_cpu, model_dir, tmp_path, monkeypatch):
    data = tmp_path / "t.jsonl"
    data.write_text("".join(json.dumps({"query": t.query, "positive": t.positive, "negative": t.negative}) + "\n"
                            for t in triplets()))
    out = tmp_path / "out"
    args = ["train", str(model_dir), "--data", str(data), "--steps", "2", "--batch-size", "4", "--max-length", "24",
            "--warmup-steps", "1", "--save-every", "1", "--device", "cpu", "--out", str(out)]
    real_write = LLMEncoder.write_files

    def dying_write(self, folder):
        raise KeyboardInterrupt

    monkeypatch.setattr(LLMEncoder, "write_files", dying_write)
    assert main(args) == 130  # trained in bf16 (auto on this "CPU"), killed while saving
    assert json.loads((tmp_path / "out.run" / "run.json").read_text())["dtype"] == "bf16"
    monkeypatch.setattr(LLMEncoder, "write_files", real_write)
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)  # auto would now mean fp32
    assert main([*args, "--resume"]) == 0
    assert json.loads((out / "training.json").read_text())["dtype"] == "bf16"
    assert LLMEncoder.from_pretrained(out, dtype="bf16", device="cpu").settings.dtype == "bf16"


# --- the step's speed-ups change nothing they should not ----------------------------------------


def test_packed_dropout_drops_at_its_rate_and_keeps_the_mean():
    drop = PackedDropout(0.05).train()
    assert drop.effective_p == round(0.05 * 65536) / 65536
    torch.manual_seed(0)
    x = torch.ones(1000, 1000)
    y = drop(x)
    dropped = float((y == 0).float().mean())
    assert abs(dropped - drop.effective_p) < 5 * (0.05 * 0.95 / x.numel()) ** 0.5
    assert abs(float(y.mean()) - 1) < 2e-3
    assert torch.equal(drop.eval()(x), x)
    torch.manual_seed(0)
    assert torch.equal(drop.train()(x), y)  # torch's generator: seeded runs and resumes repeat exactly


def test_packed_dropout_masks_of_bf16_and_odd_sizes():
    drop = PackedDropout(0.5).train()
    x = torch.ones(7, 3, dtype=torch.bfloat16)  # 21 elements: not a multiple of the 4 lanes
    y = drop(x)
    assert y.dtype == torch.bfloat16 and y.shape == x.shape
    assert set(y.unique().tolist()) <= {0.0, 2.0}
    with pytest.raises(ValueError):
        PackedDropout(1.0)


def test_every_lora_dropout_is_replaced():
    enc = tiny_encoder("llama", num_layers=2)
    prepare_trainable(enc, TrainConfig())
    lora_modules = [m for m in enc.model.modules() if isinstance(m, LoraLayer)]
    drops = [m.lora_dropout["default"] for m in lora_modules]
    assert lora_modules and all(isinstance(d, PackedDropout) for d in drops)
    assert use_packed_dropout(enc.model) == 0  # nothing left to replace


def test_one_forward_gives_the_three_forwards_embeddings(model_dir):
    enc = LLMEncoder.from_pretrained(model_dir, device="cpu", dtype="fp32", max_length=24)
    trainer = Trainer(enc, triplets(), TrainConfig(steps=1, batch_size=4, lora_dropout=0.0))
    enc.eval()
    batch = triplets(4)
    with torch.no_grad():
        together = trainer.embed_triplets(batch)
        apart = [trainer.embed([(t.query_instruction, t.query) for t in batch]),
                 trainer.embed([(t.doc_instruction, t.positive) for t in batch]),
                 trainer.embed([(t.doc_instruction, t.negative) for t in batch])]
    for a, b in zip(together, apart):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
