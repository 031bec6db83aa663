"""Training embeds a batch in length-sorted chunks: less padding, the same embeddings and the same gradients."""

from __future__ import annotations

import pytest
import torch

from l3prune.data import Triplet
from l3prune.encoder import LLMEncoder
from l3prune.testing import CORPUS, tiny_encoder
from l3prune.training import TrainConfig, Trainer
from l3prune.training.length_chunks import length_sorted_chunks
from l3prune.training.loop import triplet_texts


def padded(lengths: list[int], side: str) -> dict[str, torch.Tensor]:
    width = max(lengths)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for i, n in enumerate(lengths):
        if side == "left":
            mask[i, width - n:] = 1
        else:
            mask[i, :n] = 1
    ids = torch.arange(len(lengths))[:, None] * 100 + torch.arange(width) + 1
    return {"input_ids": ids * mask, "attention_mask": mask, "pool_mask": mask.clone()}


@pytest.mark.parametrize("side", ["left", "right"])
def test_chunks_cover_every_row_once_and_keep_every_real_token(side):
    lengths = [3, 9, 1, 5, 9, 2, 7]
    features = padded(lengths, side)
    parts = length_sorted_chunks(features, 3, side)

    rows = torch.cat([r for r, _ in parts])
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    assert [lengths[i] for i in rows.tolist()] == sorted(lengths)  # shortest first
    for chunk_rows, chunk in parts:
        assert chunk["input_ids"].shape[1] == max(lengths[i] for i in chunk_rows.tolist())  # trimmed to its widest
        for key in features:
            for j, i in enumerate(chunk_rows.tolist()):  # the same real tokens, in the same places
                real = features["attention_mask"][i].bool()
                assert torch.equal(chunk[key][j][chunk["attention_mask"][j].bool()], features[key][i][real])


def test_more_chunks_than_rows_gives_one_row_each():
    parts = length_sorted_chunks(padded([4, 2], "left"), 4, "left")
    assert [r.tolist() for r, _ in parts] == [[1], [0]]


def varied_triplets(n: int) -> list[Triplet]:
    """Texts from one word to a few sentences, so the chunks really differ in width."""
    def text(i):
        return " ".join(CORPUS[(i + k) % len(CORPUS)] for k in range(i % 4 + 1)) if i % 3 else CORPUS[i % len(CORPUS)][:12]
    return [Triplet(query=text(i), positive=text(i + 1), negative=text(i + 5), source="s",
                    query_instruction="Find the passage") for i in range(n)]


@pytest.mark.parametrize("arch", ["llama", "gemma3_text"])
def test_chunked_step_has_the_single_pass_loss_and_gradients(tmp_path, arch):
    folder = tiny_encoder(arch, num_layers=2).save(tmp_path / "tiny")
    enc = LLMEncoder.from_pretrained(folder, device="cpu", dtype="fp32", max_length=48)
    batch = varied_triplets(6)
    trainer = Trainer(enc, batch, TrainConfig(steps=1, batch_size=6, lora_dropout=0.0))
    with torch.no_grad():  # LoRA B starts at zero; make the adapters matter
        for name, param in enc.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)

    def loss_and_grads(embed):
        trainer.optimizer.zero_grad(set_to_none=True)
        loss = trainer.loss_fn(*embed())
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in trainer.params]

    queries, positives, negatives = triplet_texts(batch)
    features = enc.collator.tokenize(queries + positives + negatives)
    widths = [c["input_ids"].shape[1] for _, c in length_sorted_chunks(features, 4, enc.settings.padding_side)]
    assert min(widths) < features["input_ids"].shape[1]  # the chunks really are narrower

    chunked = loss_and_grads(lambda: trainer.embed_triplets(batch))
    single = loss_and_grads(lambda: trainer.embed(queries + positives + negatives).split(len(batch)))
    torch.testing.assert_close(chunked[0], single[0], atol=1e-5, rtol=1e-5)
    for a, b in zip(chunked[1], single[1]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
