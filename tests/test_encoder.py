from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from l3prune.testing import CONFIGS
from l3prune.encoder import LLMEncoder
from l3prune.errors import L3PruneError
from l3prune.pooling import POOLING_MODES

SHORT = "A man is playing a guitar."
LONG = "The stock market fell sharply today after the report, and two dogs run across a green field in the sun."
INSTRUCTION = "Given a question, retrieve passages that answer the question"


@pytest.mark.parametrize("arch", sorted(CONFIGS))
@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_embedding_does_not_depend_on_the_batch(make_encoder, arch, padding_side):
    for pooling in POOLING_MODES:
        enc = make_encoder(arch, padding_side=padding_side, pooling=pooling, add_bos=arch.startswith("gemma"))
        alone = enc.encode([SHORT], instruction=INSTRUCTION)
        mixed = enc.encode([LONG, SHORT, LONG[:20]], instruction=INSTRUCTION)
        np.testing.assert_allclose(alone[0], mixed[1], atol=1e-5, err_msg=f"{arch} {padding_side} {pooling}")


def test_instruction_tokens_are_attended_but_not_pooled(make_encoder):
    enc = make_encoder(pooling="mean")
    feats = enc.collator.tokenize([SHORT], instruction=INSTRUCTION)
    n_instr = len(enc.collator._instruction_ids(INSTRUCTION))
    n_text = len(enc.tokenizer(SHORT, add_special_tokens=False)["input_ids"])
    assert feats["pool_mask"].sum().item() == n_text
    assert feats["attention_mask"].sum().item() == n_text + n_instr
    # attended: the instruction changes the (causal) text states, hence the embedding
    assert not np.allclose(enc.encode([SHORT]), enc.encode([SHORT], instruction=INSTRUCTION))


def test_pairs_and_shared_instruction_agree(make_encoder):
    enc = make_encoder()
    a = enc.encode([(INSTRUCTION, SHORT), (None, LONG)])
    b = np.concatenate([enc.encode([SHORT], instruction=INSTRUCTION), enc.encode([LONG])])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_bos_is_prepended_once_and_never_pooled_in_mean(make_encoder):
    enc = make_encoder(add_bos=True, pooling="mean")
    feats = enc.collator.tokenize([SHORT])
    assert feats["input_ids"][0, 0].item() == enc.tokenizer.bos_token_id
    assert feats["pool_mask"][0, 0].item() == 0
    bos = make_encoder(add_bos=False, pooling="bos")
    assert bos.collator.tokenize([SHORT])["input_ids"][0, 0].item() == bos.tokenizer.bos_token_id


def test_eos_pooling_appends_and_pools_eos(make_encoder):
    enc = make_encoder(pooling="eos", padding_side="right")
    feats = enc.collator.tokenize([SHORT])
    last = feats["attention_mask"][0].sum().item() - 1
    assert feats["input_ids"][0, last].item() == enc.tokenizer.eos_token_id
    assert feats["pool_mask"][0, last].item() == 1


def test_output_formats_and_normalisation(make_encoder):
    enc = make_encoder()
    emb = enc.encode([SHORT, LONG], normalize=True, convert_to="torch")
    assert isinstance(emb, torch.Tensor) and emb.dtype == torch.float32 and emb.shape == (2, 64)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(2))
    assert isinstance(enc.encode([SHORT]), np.ndarray)


def test_long_text_is_truncated_with_one_warning(make_encoder, caplog):
    enc = make_encoder(max_length=16)
    enc.encode([LONG * 3, LONG * 4])
    enc.encode([LONG * 3])
    warnings = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(warnings) == 1 and "2 of 2 text(s)" in warnings[0].getMessage()
    assert enc.collator.tokenize([LONG * 3])["input_ids"].shape[1] == 16


@pytest.mark.parametrize("settings", [dict(add_bos=True, pooling="mean"), dict(pooling="eos", padding_side="right"),
                                      dict(add_bos=False, pooling="bos"), dict()])
def test_token_lengths_are_the_rows_tokens_and_say_which_rows_are_cut(make_encoder, settings):
    """Special tokens and instruction count: a row is cut exactly when its length exceeds max_length."""
    texts = [(INSTRUCTION, SHORT), (None, LONG), (INSTRUCTION, LONG * 3)]
    roomy = make_encoder(max_length=512, **settings)
    lengths = roomy.collator.token_lengths(texts)
    for i, text in enumerate(texts):
        assert lengths[i] == roomy.collator.tokenize([text])["attention_mask"].sum().item()
    cut_at = sorted(lengths)[1]  # the shortest row fits, the longest is cut
    tight = make_encoder(max_length=cut_at, **settings)
    assert tight.collator.token_lengths(texts) == lengths
    kept = tight.collator.tokenize(texts)["attention_mask"].sum(-1).tolist()
    assert [n > cut_at for n in lengths] == [k < n for k, n in zip(kept, lengths)]
    assert make_encoder().collator.token_lengths([SHORT], instruction=INSTRUCTION) == make_encoder().collator.token_lengths(
        [(INSTRUCTION, SHORT)])


@pytest.mark.parametrize("bad", [[""], ["  "], [SHORT, ""]])
def test_empty_text_is_rejected(make_encoder, bad):
    with pytest.raises(L3PruneError, match="empty"):
        make_encoder().encode(bad)


def test_no_texts_and_single_string_are_rejected(make_encoder):
    with pytest.raises(L3PruneError, match="no texts"):
        make_encoder().encode([])
    with pytest.raises(L3PruneError, match="list of texts"):
        make_encoder().encode(SHORT)


def test_instruction_longer_than_max_length_is_rejected(make_encoder):
    with pytest.raises(L3PruneError, match="instruction takes"):
        make_encoder(max_length=4).encode([SHORT], instruction=INSTRUCTION)


def test_bad_settings_are_rejected(make_encoder):
    with pytest.raises(L3PruneError, match="pooling"):
        make_encoder(pooling="max")
    with pytest.raises(L3PruneError, match="padding_side"):
        make_encoder(padding_side="middle")


def test_save_and_reload_gives_the_same_embeddings(make_encoder, tmp_path):
    enc = make_encoder("qwen2", num_layers=4, pooling="last_token")
    enc.prune([0, 2, 3], criterion="manual", reason="test")
    before = enc.encode([SHORT, LONG], instruction=INSTRUCTION)
    enc.save(tmp_path / "enc")
    settings = json.loads((tmp_path / "enc" / "l3prune.json").read_text())
    assert settings["kept_layers"] == [0, 2, 3] and settings["pooling"] == "last_token"
    assert settings["pruning"] == {"criterion": "manual", "reason": "test"}
    again = LLMEncoder.from_pretrained(tmp_path / "enc", device="cpu")
    assert again.num_layers == 3 and again.settings.kept_layers == [0, 2, 3]
    np.testing.assert_allclose(again.encode([SHORT, LONG], instruction=INSTRUCTION), before, atol=1e-5)
    assert not list(tmp_path.glob(".enc.tmp*")), "temporary folder left behind"


def test_save_refuses_an_existing_folder(make_encoder, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(L3PruneError, match="overwrite=True"):
        make_encoder().save(tmp_path / "out")
    make_encoder().save(tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "l3prune.json").is_file()
