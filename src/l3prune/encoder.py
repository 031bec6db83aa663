"""LLMEncoder: a (possibly pruned) decoder LLM used as a text encoder.

Instructions are tokenized on their own and placed before the text, so the instruction span is
known by construction: its tokens are attended to but never pooled, with no separator string to
search for. Batches are sorted by length and carry explicit position ids, so a text's embedding does
not depend on the batch it lands in or on the padding side.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from l3prune.architectures import decoder_layers
from l3prune.errors import L3PruneError
from l3prune.layers import PruneSpec, is_prefix, keep_layers, layers_to_keep
from l3prune.load_options import LoadOptions
from l3prune.loading import check_device, dtype_name, load_base_model, load_config, load_tokenizer, resolve
from l3prune.pooling import pool
from l3prune.safe_write import atomic_output, dumps

logger = logging.getLogger(__name__)

SETTINGS_FILE = "l3prune.json"
TextInput = str | tuple[str | None, str]  # a text, or an (instruction, text) pair


@dataclass
class EncoderSettings:
    """How the encoder tokenizes and pools, plus where its layers came from; saved as ``l3prune.json``."""

    pooling: str = "weighted_mean"
    max_length: int = 512
    padding_side: str = "left"
    instruction_template: str = "{instruction}\n"
    base_model: str | None = None
    original_num_layers: int | None = None
    kept_layers: list[int] | None = None  # indices into the original model
    pruning: dict = field(default_factory=dict)  # criterion and reason, recorded by whoever pruned
    dtype: str | None = None  # the weights' dtype when last loaded or saved (a record: loading resolves it anew)

    def validate(self) -> EncoderSettings:
        if self.pooling is None or self.max_length is None:
            raise L3PruneError("an encoder needs a pooling and a max_length")
        LoadOptions(pooling=self.pooling, max_length=self.max_length).validate()
        if self.padding_side not in ("left", "right"):
            raise L3PruneError(f"padding_side must be 'left' or 'right', got {self.padding_side!r}")
        if "{instruction}" not in self.instruction_template:
            raise L3PruneError("instruction_template must contain '{instruction}'")
        return self


class LLMEncoder(nn.Module):
    """Encode texts with a decoder LLM's hidden states, pooled over the text tokens."""

    def __init__(self, model: nn.Module, tokenizer, settings: EncoderSettings | None = None):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.settings = (settings or EncoderSettings()).validate()
        if self.settings.original_num_layers is None:
            self.settings.original_num_layers = self.num_layers
        if self.settings.kept_layers is None:
            self.settings.kept_layers = list(range(self.num_layers))
        self._prefix, self._suffix = special_tokens_around_text(tokenizer)
        self._warned_truncation = False
        self._instruction_ids = lru_cache(maxsize=256)(self._tokenize_instruction)

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(
        cls,
        reference: str | os.PathLike,
        *,
        prune: PruneSpec | None = None,
        load: LoadOptions | None = None,
        num_layers: int | None = None,
        drop_fraction: float | None = None,
        layers: Sequence[int] | None = None,
        pooling: str | None = None,
        max_length: int | None = None,
        padding_side: str | None = None,
        dtype: str | torch.dtype | None = None,
        device: str | None = None,
    ) -> LLMEncoder:
        """Load an alias, folder, GGUF file or hub id, optionally keeping only some of its layers.

        Which layers: a ``PruneSpec`` as ``prune``, or its fields ``num_layers``, ``drop_fraction`` or
        ``layers`` as keywords. Keeping the first n layers loads them directly, without ever allocating
        the others; any other set loads the full model, then prunes. Specs whose criterion measures
        the model are for ``l3prune.pruning.commands.prune_encoder``. How to load: ``LoadOptions`` as
        ``load``, or its fields as keywords; ``dtype`` is a name (``auto``, ``fp32``, ``bf16``, ``fp16``)
        or a torch dtype.
        """
        sized = num_layers is not None or drop_fraction is not None or layers is not None
        if prune is not None and sized:
            raise L3PruneError("give prune=PruneSpec(...) or num_layers/drop_fraction/layers, not both")
        spec = prune if prune is not None else PruneSpec(num_layers=num_layers, drop_fraction=drop_fraction,
                                                         layers=layers)
        if load is not None:
            if any(v is not None for v in (pooling, max_length, dtype, device)):
                raise L3PruneError("give load=LoadOptions(...) or pooling/max_length/dtype/device, not both")
            pooling, max_length, dtype, device = load.validate().pooling, load.max_length, load.dtype, load.device
        device = check_device(device)  # before any file is read or converted
        source = resolve(reference)
        settings = _read_settings(source.location) or EncoderSettings(base_model=source.reference)
        for name, value in (("pooling", pooling), ("max_length", max_length), ("padding_side", padding_side)):
            if value is not None:
                setattr(settings, name, value)
        settings.validate()
        total = load_config(source).num_hidden_layers
        keep = spec.fixed_layers(total)
        prefix_only = keep is not None and is_prefix(keep)
        model = load_base_model(source, num_layers=len(keep) if prefix_only else None, dtype=dtype, device=device)
        settings.original_num_layers = settings.original_num_layers or total
        settings.kept_layers = settings.kept_layers or list(range(total))
        encoder = cls(model, load_tokenizer(source), settings)
        encoder.settings.dtype = dtype_name(encoder.dtype)
        if keep is not None:
            if prefix_only:  # already loaded at that depth; only the bookkeeping is left
                encoder.settings.kept_layers = [encoder.settings.kept_layers[i] for i in keep]
            else:
                encoder.prune(keep)
        return encoder

    # ----------------------------------------------------------------- pruning
    def prune(self, keep: Sequence[int], *, criterion: str | None = None, reason: str | None = None) -> LLMEncoder:
        """Keep the layers at these *current* indices; record which original layers survive and why."""
        keep = layers_to_keep(self.num_layers, layers=keep)
        keep_layers(self.model, keep)
        self.settings.kept_layers = [self.settings.kept_layers[i] for i in keep]
        if criterion is not None:
            self.record_pruning(criterion, reason)
        return self

    def record_pruning(self, criterion: str, reason: str | None = None) -> LLMEncoder:
        """Note which criterion chose the current layers, and why (saved in ``l3prune.json``)."""
        self.settings.pruning = {"criterion": criterion, "reason": reason or ""}
        return self

    @property
    def num_layers(self) -> int:
        return len(decoder_layers(self.model))

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The base weights' dtype (LoRA adapters stay fp32 during training, whatever this is)."""
        return self.model.get_input_embeddings().weight.dtype

    def info(self) -> dict:
        """What ``l3prune info`` prints: size, depth and how the encoder pools."""
        s = self.settings
        return {
            "model": s.base_model,
            "architecture": self.model.config.model_type,
            "layers": self.num_layers,
            "original_layers": s.original_num_layers,
            "kept_layers": s.kept_layers,
            "parameters": self.num_parameters,
            "hidden_size": self.hidden_size,
            "pooling": s.pooling,
            "max_length": s.max_length,
            "padding_side": s.padding_side,
            "dtype": dtype_name(self.dtype),
            "pruning": s.pruning,
        }

    # ------------------------------------------------------------- tokenizing
    def _tokenize_instruction(self, instruction: str) -> tuple[int, ...]:
        text = self.settings.instruction_template.format(instruction=instruction)
        return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _text_ids(self, texts: Sequence[str]) -> list[list[int]]:
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise L3PruneError(f"text {i} is empty or not a string; every text needs some content")
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
        instructions, plain = _split_inputs(texts, instruction)
        prefix, suffix = self._row_specials()
        specials = len(prefix) + len(suffix)
        return [specials + (len(self._instruction_ids(i)) if i else 0) + len(ids)
                for ids, i in zip(self._text_ids(plain), instructions)]

    def collate(self, text_ids: Sequence[Sequence[int]], instructions: Sequence[str | None]) -> dict[str, torch.Tensor]:
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
        if truncated and not self._warned_truncation:
            logger.warning("%d text(s) exceed max_length=%d tokens and were truncated", truncated, self.settings.max_length)
            self._warned_truncation = True
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
        instructions, plain = _split_inputs(texts, instruction)
        return self.collate(self._text_ids(plain), instructions)

    # ---------------------------------------------------------------- forward
    def model_inputs(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """input_ids / attention_mask / position_ids of a collated batch, as the encoder feeds its model."""
        attention_mask = features["attention_mask"].to(self.device)
        # Positions count real tokens only, so left padding does not shift a text's positions.
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        return {
            "input_ids": features["input_ids"].to(self.device),
            "attention_mask": attention_mask,
            "position_ids": position_ids,
        }

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled embeddings of a collated batch, with gradients (training uses this)."""
        hidden = self.model(**self.model_inputs(features), use_cache=False).last_hidden_state
        return pool(hidden, features["pool_mask"].to(self.device), self.settings.pooling,
                    features["attention_mask"].to(self.device))  # (batch, dim)

    def hidden_states(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """All hidden states of one forward pass: index 0 is the embeddings, k is after layer k.

        As in transformers, the last entry already has the final norm applied; the others do not.
        """
        out = self.model(**self.model_inputs(features), use_cache=False, output_hidden_states=True)
        return out.hidden_states

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[TextInput],
        *,
        instruction: str | None = None,
        batch_size: int = 32,
        normalize: bool = False,
        convert_to: str = "numpy",
        show_progress: bool | None = None,
    ) -> np.ndarray | torch.Tensor:
        """Embed texts (or (instruction, text) pairs) -> (n, hidden_size) float32.

        ``instruction`` applies to every plain text. Texts are processed longest first, which keeps
        padding small, and returned in input order.
        """
        if convert_to not in ("numpy", "torch"):
            raise L3PruneError(f"convert_to must be 'numpy' or 'torch', got {convert_to!r}")
        if batch_size < 1:
            raise L3PruneError(f"batch_size must be >= 1, got {batch_size}")
        if len(texts) == 0:
            raise L3PruneError("no texts to encode")
        instructions, plain = _split_inputs(texts, instruction)
        ids = self._text_ids(plain)
        show = len(texts) > 256 if show_progress is None else show_progress
        out = torch.empty(len(texts), self.hidden_size, dtype=torch.float32)
        was_training = self.training
        self.eval()
        for idx in tqdm(longest_first_batches(ids, batch_size), desc="encode", disable=not show, unit="batch"):
            features = self.collate([ids[i] for i in idx], [instructions[i] for i in idx])
            out[torch.from_numpy(idx)] = self(features).float().cpu()
        self.train(was_training)
        if normalize:
            out = torch.nn.functional.normalize(out, dim=-1)
        return out.numpy() if convert_to == "numpy" else out

    # ----------------------------------------------------------------- saving
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write model, tokenizer and ``l3prune.json`` beside ``path``, then swap it in (see ``safe_write``)."""
        with atomic_output(path, overwrite=overwrite, kind="folder") as tmp:
            self.write_files(tmp)
        return Path(path)

    def write_files(self, folder: Path) -> None:
        """The folder's contents, written into ``folder`` as is; :meth:`save` is the checked, atomic way."""
        self.settings.dtype = dtype_name(self.dtype)
        self.model.save_pretrained(folder)  # transformers 5 writes safetensors only
        self.tokenizer.save_pretrained(folder)
        (folder / SETTINGS_FILE).write_text(dumps(asdict(self.settings)) + "\n", encoding="utf-8")


def _read_settings(location: str) -> EncoderSettings | None:
    file = Path(location) / SETTINGS_FILE
    if not file.is_file():
        return None
    try:
        return EncoderSettings(**json.loads(file.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:  # bad JSON, bad UTF-8, or unknown keys
        raise L3PruneError(f"{file} is not a valid l3prune settings file: {exc}") from None


def _split_inputs(texts: Sequence[TextInput], instruction: str | None) -> tuple[list[str | None], list[str]]:
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
