from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from l3prune.testing import CORPUS
from l3prune.cli import main
from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.export import export_sentence_transformers
from l3prune.pooling import POOLING_MODES

INSTRUCTION = "Given a question, retrieve passages that answer the question"
# mixed lengths, and one longer than max_length=40 so truncation is compared too
TEXTS = [*CORPUS[:5], "short", " ".join(CORPUS)]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matmuls are ~100x slower on 2 threads when the other core is busy (OpenMP barriers)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def _is_stock(folder) -> bool:
    modules = json.loads((folder / "modules.json").read_text())
    return all(m["type"].startswith("sentence_transformers.") for m in modules)


def _assert_parity(encoder: LLMEncoder, model: SentenceTransformer, *, normalize: bool = False) -> None:
    for instruction, prompt_name in ((None, None), (INSTRUCTION, "query")):
        native = encoder.encode(TEXTS, instruction=instruction, batch_size=3, normalize=normalize)
        st = model.encode(TEXTS, prompt_name=prompt_name, batch_size=3)
        assert _min_cosine(native, st) >= 1 - 1e-4, f"{encoder.settings.pooling} prompt={prompt_name}"
        np.testing.assert_allclose(native, st, atol=1e-4)


@pytest.mark.parametrize("arch", ["llama", "gemma3_text"])
@pytest.mark.parametrize("add_bos", [False, True])
@pytest.mark.parametrize("pooling", POOLING_MODES)
def test_stock_sentence_transformers_matches_native(make_encoder, tmp_path, arch, add_bos, pooling):
    enc = make_encoder(arch, add_bos=add_bos, pooling=pooling, max_length=40)
    if pooling == "weighted_mean_from_instruction" and add_bos:  # exists to be stock; with a BOS it cannot be
        with pytest.raises(L3PruneError, match="no special tokens around the text"):
            export_sentence_transformers(enc, tmp_path / "st", prompts={"query": INSTRUCTION})
        return
    out = export_sentence_transformers(enc, tmp_path / "st", prompts={"query": INSTRUCTION})
    # Stock pooling cannot weight 1..n after a prompt, nor skip a BOS without one.
    needs_l3prune = pooling == "weighted_mean" or (pooling == "mean" and add_bos)
    assert _is_stock(out) != needs_l3prune
    _assert_parity(enc, SentenceTransformer(str(out), device="cpu", trust_remote_code=needs_l3prune))


def test_paper_pooling_without_prompts_or_bos_is_pure_stock(make_encoder, tmp_path):
    enc = make_encoder(pooling="weighted_mean")
    out = export_sentence_transformers(enc, tmp_path / "st", normalize=True)
    assert _is_stock(out)
    model = SentenceTransformer(str(out), device="cpu")  # no trust_remote_code
    native = enc.encode(TEXTS, normalize=True)
    np.testing.assert_allclose(model.encode(TEXTS), native, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(model.encode(TEXTS), axis=1), 1, atol=1e-5)


def test_l3prune_pooling_needs_trust_remote_code(make_encoder, tmp_path):
    out = export_sentence_transformers(make_encoder(add_bos=True, pooling="mean"), tmp_path / "st")
    with pytest.raises(ValueError, match="trust_remote_code"):
        SentenceTransformer(str(out), device="cpu")


def test_a_folder_exported_before_the_pooling_module_moved_still_loads(make_encoder, tmp_path):
    """Folders exported before ``L3PrunePooling`` moved to ``l3prune.export.st_pooling`` name its old home."""
    enc = make_encoder(add_bos=True, pooling="weighted_mean", max_length=40)
    out = export_sentence_transformers(enc, tmp_path / "st", prompts={"query": INSTRUCTION})
    modules = json.loads((out / "modules.json").read_text())
    assert modules[1]["type"] == "l3prune.export.st_pooling.L3PrunePooling"
    modules[1]["type"] = "l3prune.st_pooling.L3PrunePooling"  # as every export before the move wrote it
    (out / "modules.json").write_text(json.dumps(modules))
    _assert_parity(enc, SentenceTransformer(str(out), device="cpu", trust_remote_code=True))


def test_chat_template_is_not_applied_to_plain_text(make_encoder, tmp_path):
    enc = make_encoder(pooling="mean")
    enc.tokenizer.chat_template = "{% for m in messages %}<bos>{{ m['content'] }}<eos>{% endfor %}"
    out = export_sentence_transformers(enc, tmp_path / "st")
    model = SentenceTransformer(str(out), device="cpu")
    assert model[0].tokenizer.chat_template is not None
    assert model.preprocess(["Paris"])["input_ids"].tolist() == enc.collator.tokenize(["Paris"])["input_ids"].tolist()


def test_folder_also_loads_natively_and_pins_st_settings(make_encoder, tmp_path):
    enc = make_encoder("gemma3_text", add_bos=True, pooling="eos", max_length=40)
    out = export_sentence_transformers(enc, tmp_path / "st", prompts={"query": INSTRUCTION})
    again = LLMEncoder.from_pretrained(out, device="cpu")
    assert again.settings.pooling == "eos" and again.settings.padding_side == enc.settings.padding_side
    np.testing.assert_allclose(again.encode(TEXTS, instruction=INSTRUCTION), enc.encode(TEXTS, instruction=INSTRUCTION),
                               atol=1e-4)
    model = SentenceTransformer(str(out), device="cpu")
    assert model.max_seq_length == 40
    assert model.prompts["query"] == INSTRUCTION + "\n"
    assert model[0].tokenizer("x")["input_ids"][-1] == enc.tokenizer.eos_token_id  # appended for eos pooling


def test_existing_out_is_refused_and_overwrite_replaces(make_encoder, tmp_path):
    enc = make_encoder()
    out = tmp_path / "st"
    out.mkdir()
    (out / "old.txt").write_text("x")
    with pytest.raises(L3PruneError, match="overwrite=True"):
        export_sentence_transformers(enc, out)
    with pytest.raises(L3PruneError, match="refusing to replace .*old.txt"):  # not l3prune's: never replaced
        export_sentence_transformers(enc, out, overwrite=True)
    (out / "old.txt").unlink()
    export_sentence_transformers(enc, out, overwrite=True)  # an empty folder holds nothing to lose
    export_sentence_transformers(enc, out, overwrite=True)  # an export of ours is replaced
    (out / "extra.txt").write_text("mine")  # ... but not once a file of the user's is in it
    with pytest.raises(L3PruneError, match=r"files l3prune did not write \(extra.txt\)"):
        export_sentence_transformers(enc, out, overwrite=True)
    assert (out / "extra.txt").read_text() == "mine" and (out / "modules.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["st"]  # no temporary folder left behind


def test_require_stock_refuses_before_writing_and_passes_when_exact(make_encoder, tmp_path, capsys):
    make_encoder(pooling="weighted_mean").save(tmp_path / "tiny")
    base = ["export", str(tmp_path / "tiny"), "--device", "cpu", "--require-stock"]
    assert main([*base, "--out", str(tmp_path / "st"), "--prompt", f"query={INSTRUCTION}"]) == 2
    err = capsys.readouterr().err
    assert "stock sentence-transformers cannot reproduce" in err and "Traceback" not in err
    assert not (tmp_path / "st").exists()
    assert main([*base, "--out", str(tmp_path / "st2")]) == 0  # weighted mean without prompts: stock and exact
    assert _is_stock(tmp_path / "st2")


def test_prompt_that_merges_with_the_text_is_refused(make_encoder, tmp_path):
    # An e5-style template ends in a space, which byte-level BPE merges into the text's first word
    # ("Ġa"), so ST's prompt_length (from the prompt alone) would exclude the wrong tokens.
    enc = make_encoder(instruction_template="{instruction}: ")
    with pytest.raises(L3PruneError, match="trailing whitespace"):
        export_sentence_transformers(enc, tmp_path / "st", prompts={"query": "Given a question"})
    assert not (tmp_path / "st").exists()


def test_cli_export(make_encoder, tmp_path, capsys):
    make_encoder(pooling="last_token").save(tmp_path / "tiny")
    args = ["export", str(tmp_path / "tiny"), "--out", str(tmp_path / "st"), "--device", "cpu",
            "--prompt", f"query={INSTRUCTION}", "--normalize"]
    assert main(args) == 0 and "wrote" in capsys.readouterr().out
    model = SentenceTransformer(str(tmp_path / "st"), device="cpu")
    assert set(model.prompts) >= {"query"} and np.allclose(np.linalg.norm(model.encode(TEXTS), axis=1), 1, atol=1e-5)
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert main([*args, "--prompt", "no-equals-sign"]) == 2  # argparse's complaint: one line too
    err = capsys.readouterr().err
    assert "NAME=INSTRUCTION" in err and len(err.strip().splitlines()) == 1


@pytest.mark.real_model
def test_real_smollm2_readme_snippet_matches_native(tmp_path, monkeypatch):
    enc = LLMEncoder.from_pretrained("smollm2-135m", num_layers=4, max_length=128, device="cpu")
    monkeypatch.chdir(tmp_path)
    export_sentence_transformers(enc, "smollm2-l3prune", prompts={"query": INSTRUCTION})

    # The README's three lines:
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer("smollm2-l3prune", trust_remote_code=True)
    embeddings = model.encode(["what is the capital of France?"], prompt_name="query")

    native = enc.encode(["what is the capital of France?"], instruction=INSTRUCTION)
    assert _min_cosine(native, embeddings) >= 1 - 1e-4
    _assert_parity(enc, model)
    assert 'SentenceTransformer("PATH", trust_remote_code=True)' in (tmp_path / "smollm2-l3prune" / "README.md").read_text()
    with pytest.raises(L3PruneError, match="trailing whitespace"):  # ": \n" alone is one token, "Ġ" + "Ċ" before text
        export_sentence_transformers(enc, "refused", prompts={"query": "Represent this: "})


@pytest.mark.parametrize("saved", ["fp32", "bf16"])
def test_bf16_parity_with_stock_sentence_transformers(make_encoder, tmp_path, saved):
    """An export loads in bf16 with ``model_kwargs={"torch_dtype": torch.bfloat16}`` and matches the native
    bf16 encoder; a folder saved in bf16 (trained with dtype auto on a bf16 machine) loads in bf16 as is."""
    enc = make_encoder("llama", pooling="mean", max_length=40)
    if saved == "bf16":
        enc.model.to(torch.bfloat16)
    out = export_sentence_transformers(enc, tmp_path / "st", prompts={"query": INSTRUCTION})
    kwargs = {"model_kwargs": {"torch_dtype": torch.bfloat16}} if saved == "fp32" else {}
    model = SentenceTransformer(str(out), device="cpu", **kwargs)
    assert next(model.parameters()).dtype == torch.bfloat16
    native = LLMEncoder.from_pretrained(out, dtype="bf16", device="cpu")
    for instruction, prompt_name in ((None, None), (INSTRUCTION, "query")):
        a = native.encode(TEXTS, instruction=instruction, batch_size=3)
        b = model.encode(TEXTS, prompt_name=prompt_name, batch_size=3)
        assert _min_cosine(a, b) >= 0.999, prompt_name
