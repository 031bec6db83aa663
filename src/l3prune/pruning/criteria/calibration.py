"""What the field's depth-pruning criteria share: calibration text, and the few ways they run the model.

ShortGPT, Gromov et al. and Shortened LLaMA all score layers on a small unlabeled calibration set; ours
is texts drawn from the training triplets. The forward helpers live here once: the raw residual
stream of every layer (``layer_states``), the LM head around the encoder's base model
(``causal_lm``), a block turned into the identity (``skipping``), and the LM loss (``lm_loss``).
``CalibrationCriterion`` caches its measurement, so asking one instance for several sizes costs one
calibration pass.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from l3prune.architectures import decoder_layers, final_norm
from l3prune.errors import L3PruneError
from l3prune.layers import target_num_layers

logger = logging.getLogger(__name__)

DEFAULT_NUM_TEXTS = 128
DEFAULT_BATCH_SIZE = 16


def calibration_texts(data: Sequence | None, num_texts: int = DEFAULT_NUM_TEXTS, seed: int = 0) -> list[str]:
    """``num_texts`` distinct texts (queries, positives and negatives alike) drawn at random from triplets."""
    if isinstance(num_texts, bool) or not isinstance(num_texts, int) or num_texts < 1:
        raise L3PruneError(f"the number of calibration texts must be a positive integer, got {num_texts!r}")
    if data is None:
        from l3prune.data import load_triplets

        data = load_triplets(None)
    texts = list(dict.fromkeys(text for t in data for text in (t.query, t.positive, t.negative)))
    if not texts:
        raise L3PruneError("no calibration texts: give some triplets")
    if len(texts) < num_texts:
        logger.warning("only %d distinct calibration texts, fewer than the %d asked for", len(texts), num_texts)
    order = np.random.default_rng(seed).permutation(len(texts))[:num_texts]
    return [texts[i] for i in order]


def calibration_batches(encoder, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> list[dict]:
    """Plain-text batches (no instruction) in the encoder's layout, similar lengths together."""
    ordered = sorted(texts, key=len)
    return [encoder.collator.tokenize(ordered[i : i + batch_size]) for i in range(0, len(ordered), batch_size)]


def layer_states(encoder, features: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """(layers + 1) x (batch, seq, dim) raw residual stream: [0] enters layer 0, [l] leaves layer l - 1.

    transformers reports the last hidden state after the final norm; the criteria compare a block's
    input with its raw output, so the last one is taken from the final norm's input instead.
    """
    captured: list[torch.Tensor] = []
    hook = final_norm(encoder.model).register_forward_hook(lambda _m, args, _out: captured.append(args[0]))
    try:
        states = encoder.hidden_states(features)
    finally:
        hook.remove()
    if len(states) != encoder.num_layers + 1 or len(captured) != 1:
        raise L3PruneError("could not read every layer's hidden state from this model")
    return [*states[:-1], captured[0]]


def causal_lm(encoder) -> nn.Module:
    """The family's ``*ForCausalLM`` wrapped around the encoder's own base model (no second copy).

    With tied embeddings (SmolLM2, Gemma) the head is the embedding matrix; otherwise its weights are
    loaded from the checkpoint the encoder came from. The real class keeps family details such as
    Gemma's logit soft-capping.
    """
    from transformers import AutoModelForCausalLM

    config = encoder.model.config
    with torch.device("meta"):
        lm = AutoModelForCausalLM.from_config(config)
    setattr(lm, lm.base_model_prefix, encoder.model)
    embeddings = encoder.model.get_input_embeddings()
    if getattr(config, "tie_word_embeddings", False):
        head = nn.Linear(config.hidden_size, embeddings.num_embeddings, bias=False)
        head.weight = embeddings.weight
    else:
        head = _checkpoint_lm_head(encoder)
    lm.set_output_embeddings(head)
    return lm.eval()


def _checkpoint_lm_head(encoder) -> nn.Module:
    from l3prune.loading import load_base_model, resolve

    reference = encoder.settings.base_model
    if reference is None:
        raise L3PruneError("this model has untied embeddings and no known checkpoint to read its LM head from; "
                           "load it with LLMEncoder.from_pretrained")
    # The checkpoint the encoder was loaded from, unless that was an l3prune folder (which keeps no LM head):
    # then the model it came from.
    source = encoder.source if encoder.source is not None and encoder.source.reference == reference else resolve(reference)
    # One layer is enough to get the head; the blocks come from the encoder itself.
    full = load_base_model(source, num_layers=1, causal_lm=True,
                           dtype=next(encoder.model.parameters()).dtype, device=encoder.device)
    return full.get_output_embeddings()


@contextlib.contextmanager
def skipping(encoder, index: int) -> Iterator[None]:
    """Make block ``index`` the identity, which equals removing it when no KV cache is used."""

    def identity(_module, args, kwargs, output):
        hidden = args[0] if args else kwargs["hidden_states"]
        return hidden if isinstance(output, torch.Tensor) else (hidden, *output[1:])

    hook = decoder_layers(encoder.model)[index].register_forward_hook(identity, with_kwargs=True)
    try:
        yield
    finally:
        hook.remove()


def lm_loss(lm: nn.Module, encoder, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed next-token NLL over the real tokens of a batch, and how many tokens it covers."""
    inputs = encoder.model_inputs(features)
    logits = lm(**inputs, use_cache=False).logits[:, :-1].float()  # (batch, seq - 1, vocab)
    targets = inputs["input_ids"][:, 1:]  # (batch, seq - 1)
    valid = (inputs["attention_mask"][:, 1:] * inputs["attention_mask"][:, :-1]).bool()  # (batch, seq - 1)
    nll = F.cross_entropy(logits[valid], targets[valid], reduction="sum")
    return nll, int(valid.sum())


class CalibrationCriterion:
    """Base for criteria measured on calibration text; the measurement is cached per model state."""

    configurations: tuple[str, ...] = ()
    needs_data = True
    name = "calibration"

    def __init__(self, *, num_texts: int = DEFAULT_NUM_TEXTS, batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0):
        if batch_size < 1:
            raise L3PruneError(f"batch_size must be >= 1, got {batch_size}")
        self.num_texts, self.batch_size, self.seed = num_texts, batch_size, seed
        self._cache: tuple[Any, Any] | None = None
        self._texts_used = num_texts

    def measure(self, encoder, batches: list[dict]) -> Any:
        raise NotImplementedError

    def measurement(self, encoder, data: Sequence | None) -> Any:
        """``measure`` on this encoder and these texts, reused for the same model object, layers and texts.

        Weights edited in place are not noticed; make a new criterion instance after changing them.
        """
        texts = calibration_texts(data, self.num_texts, self.seed)
        self._texts_used = len(texts)
        key = (id(encoder.model), tuple(encoder.settings.kept_layers), tuple(texts))
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.measure(encoder, calibration_batches(encoder, texts, self.batch_size)))
        return self._cache[1]

    def check_size(self, encoder, num_layers: int | None) -> int:
        if num_layers is None:
            raise L3PruneError(f"criterion {self.name!r} needs a size: --num-layers or --drop-fraction")
        return target_num_layers(encoder.num_layers, num_layers=num_layers)

    def describe_data(self) -> str:
        return f"{self._texts_used} calibration texts from the triplets (seed {self.seed})"


def drop_lowest(scores: Sequence[float], num_drop: int, *, protected: Sequence[int] = ()) -> list[int]:
    """Kept indices after dropping the ``num_drop`` lowest scores; protected layers go last, if at all."""
    guarded = set(protected)
    order = sorted(range(len(scores)), key=lambda i: (i in guarded, scores[i], i))
    return sorted(set(range(len(scores))) - set(order[:num_drop]))
