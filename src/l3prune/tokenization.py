"""Texts to padded batches: each row is the tokenizer's special prefix, the instruction, the text and its suffix.

Instructions are tokenized on their own and placed before the text, so the instruction span is known by
construction: its tokens are attended to but never pooled (``pool_mask``), with no separator string to search
for. The encoder, training, the scan and the export all tokenize through this module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

from l3prune.errors import L3PruneError
from l3prune.settings import EncoderSettings

logger = logging.getLogger(__name__)

TextInput = str | tuple[str | None, str]  # a text, or an (instruction, text) pair


class TextCollator:
    """Tokenizes and collates texts the way one encoder's settings say (pooling, max length, padding side,
    instruction template). It shares the encoder's ``settings`` object, so a change there applies here too."""

    def __init__(self, tokenizer, settings: EncoderSettings):
        self.tokenizer, self.settings = tokenizer, settings
        self._prefix, self._suffix = special_tokens_around_text(tokenizer)
        self.warned_truncation = False  # one truncation warning per encoder: the first batch (or encode call) that cuts
        self.truncated = 0  # texts cut to max_length so far (``encode`` reports its own share)
        self._instruction_ids = lru_cache(maxsize=256)(self._tokenize_instruction)

    def _tokenize_instruction(self, instruction: str) -> tuple[int, ...]:
        _check_encodable(instruction, "the instruction")
        text = self.settings.instruction_template.format(instruction=instruction)
        return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def text_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens; an empty or non-string text is an error."""
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise L3PruneError(f"text {i} is empty or not a string; every text needs some content")
            _check_encodable(text, f"text {i}")
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def _row_specials(self) -> tuple[list[int], list[int]]:
        """The special tokens around every row's instruction and text: (prefix, suffix), as pooling needs them."""
        mode = self.settings.pooling
        prefix = list(self._prefix)
        if mode == "bos" and not prefix:
            if self.tokenizer.bos_token_id is None:
                raise L3PruneError("pooling 'bos' needs a tokenizer with a BOS token; choose another pooling")
            prefix = [self.tokenizer.bos_token_id]
        suffix = [self.tokenizer.eos_token_id] if mode == "eos" else list(self._suffix)
        return prefix, suffix

    def token_lengths(self, texts: Sequence[TextInput], instruction: str | None = None) -> list[int]:
        """Tokens each row would take before truncation: special tokens, instruction and text.

        A row longer than ``settings.max_length`` loses the end of its text, so this says how many of a
        dataset's texts a ``max_length`` cuts, before anything is encoded.
        """
        instructions, plain = split_inputs(texts, instruction)
        prefix, suffix = self._row_specials()
        specials = len(prefix) + len(suffix)
        return [specials + (len(self._instruction_ids(i)) if i else 0) + len(ids)
                for ids, i in zip(self.text_ids(plain), instructions)]

    def collate(self, text_ids: Sequence[Sequence[int]], instructions: Sequence[str | None], *,
                warn: bool = True) -> dict[str, torch.Tensor]:
        """Build padded ``input_ids``/``attention_mask``/``pool_mask`` from pre-tokenized texts.

        Layout per row: special prefix (e.g. BOS) + instruction + text (+ EOS for ``eos`` pooling).
        Only the text (and that EOS) is marked in ``pool_mask``; ``bos`` pooling marks the first token.
        """
        mode = self.settings.pooling
        prefix, suffix = self._row_specials()
        rows, pooled_spans, truncated = [], [], 0
        for ids, instruction in zip(text_ids, instructions):
            instr = list(self._instruction_ids(instruction)) if instruction else []
            budget = self.settings.max_length - len(prefix) - len(instr) - len(suffix)
            if budget < 1:
                raise L3PruneError(
                    f"the instruction takes {len(instr)} tokens, leaving no room for text within "
                    f"max_length={self.settings.max_length}; shorten it or raise max_length"
                )
            if len(ids) > budget:
                truncated += 1
                ids = ids[:budget]
            start = len(prefix) + len(instr)
            rows.append(prefix + instr + list(ids) + suffix)
            if mode == "bos":
                pooled_spans.append((0, 1))
            else:
                pooled_spans.append((start, start + len(ids) + (1 if mode == "eos" else 0)))
        self.truncated += truncated
        if truncated and warn and not self.warned_truncation:
            logger.warning("%d text(s) of a batch exceed max_length=%d tokens and were truncated", truncated,
                           self.settings.max_length)
            self.warned_truncation = True
        width = max(len(r) for r in rows)
        batch = len(rows)
        input_ids = np.full((batch, width), self.tokenizer.pad_token_id, dtype=np.int64)
        attention = np.zeros((batch, width), dtype=np.int64)
        pool_mask = np.zeros((batch, width), dtype=np.int64)
        for i, (row, (lo, hi)) in enumerate(zip(rows, pooled_spans)):
            offset = width - len(row) if self.settings.padding_side == "left" else 0
            input_ids[i, offset : offset + len(row)] = row
            attention[i, offset : offset + len(row)] = 1
            pool_mask[i, offset + lo : offset + hi] = 1
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention),
            "pool_mask": torch.from_numpy(pool_mask),
        }

    def tokenize(self, texts: Sequence[TextInput], instruction: str | None = None) -> dict[str, torch.Tensor]:
        """Tokenize texts or (instruction, text) pairs into one padded batch."""
        instructions, plain = split_inputs(texts, instruction)
        return self.collate(self.text_ids(plain), instructions)


def _check_encodable(text: str, what: str) -> None:
    """A lone surrogate (e.g. a JSON ``"\\ud800"``) is no character: the tokenizer cannot encode it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise L3PruneError(f"{what} holds {text[exc.start:exc.end]!r} at position {exc.start}, a lone surrogate "
                           "that is not a character; fix the input's escapes") from None


def split_inputs(texts: Sequence[TextInput], instruction: str | None) -> tuple[list[str | None], list[str]]:
    """(instructions, texts) of a list of texts or (instruction, text) pairs; ``instruction`` applies to plain texts."""
    if isinstance(texts, str):
        raise L3PruneError("pass a list of texts, not a single string")
    instructions, plain = [], []
    for item in texts:
        if isinstance(item, (tuple, list)):
            if len(item) != 2:
                raise L3PruneError(f"an (instruction, text) pair must have 2 items, got {item!r}")
            instructions.append(item[0] or None)
            plain.append(item[1])
        else:
            instructions.append(instruction)
            plain.append(item)
    return instructions, plain


def special_tokens_around_text(tokenizer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The special tokens the tokenizer adds before and after a text (e.g. Gemma's BOS)."""
    bare = tokenizer("x", add_special_tokens=False)["input_ids"]
    full = tokenizer("x", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return tuple(full[:start]), tuple(full[start + len(bare) :])
    return (), ()


def longest_first_batches(ids: Sequence[Sequence[int]], batch_size: int) -> list[np.ndarray]:
    """``encode``'s batches as index arrays: texts sorted by token count, longest first (stable), so each batch
    pads to texts of nearly its own length."""
    order = np.argsort([-len(x) for x in ids], kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
