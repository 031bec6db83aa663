"""Tiny random decoder models of every supported family, built in-process (no hub, no files).

For tests and benchmarks: ``tiny_encoder("llama", 4)`` is an ``LLMEncoder`` of four random layers with a
tokenizer trained on ``CORPUS``. Part of the package so both import it the same way (no ``sys.path``)."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    AutoModel,
    Gemma2Config,
    Gemma3TextConfig,
    GemmaConfig,
    LlamaConfig,
    MistralConfig,
    Phi3Config,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen3Config,
)

from l3prune.encoder import LLMEncoder
from l3prune.settings import EncoderSettings

CORPUS = [
    "A man is playing a guitar on the stage.",
    "Someone plays an instrument for the crowd.",
    "The stock market fell sharply today after the report.",
    "Two dogs run across a green field in the sun.",
    "Represent this sentence for retrieval: what is the capital of France?",
    "Paris is the capital and largest city of France.",
    "A woman is slicing an onion in the kitchen.",
    "Given a question, retrieve passages that answer the question.",
]

# Plain sentences (no instruction wording) for scan and criteria tests.
SENTENCES = [
    "A man is playing a guitar on the stage.",
    "Someone plays an instrument for the crowd.",
    "The stock market fell sharply today after the report.",
    "Two dogs run across a green field in the sun.",
    "What is the capital of France?",
    "Paris is the capital and largest city of France.",
    "A woman is slicing an onion in the kitchen.",
    "Given a question, retrieve passages that answer the question.",
]

CONFIGS = {
    "llama": LlamaConfig,
    "mistral": MistralConfig,
    "qwen2": Qwen2Config,
    "qwen3": Qwen3Config,
    "gemma": GemmaConfig,
    "gemma2": Gemma2Config,
    "gemma3_text": Gemma3TextConfig,
    "phi3": Phi3Config,
}


def tiny_tokenizer(add_bos: bool = False) -> PreTrainedTokenizerFast:
    """A word-piece-free BPE tokenizer trained on a few sentences; optionally adds BOS like Gemma."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<bos>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    if add_bos:
        from tokenizers.processors import TemplateProcessing

        tok.post_processor = TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   unk_token="<unk>", pad_token="<eos>")


def tiny_config(arch: str = "llama", num_layers: int = 4, vocab_size: int = 300):
    kwargs = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=num_layers,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  pad_token_id=2, bos_token_id=1, eos_token_id=2)
    if arch in ("gemma", "gemma2", "gemma3_text", "qwen3"):
        kwargs["head_dim"] = 16
    if arch in ("gemma2", "gemma3_text"):
        kwargs["sliding_window"] = 8  # small, so sliding and full layers really differ
    if arch == "mistral":
        kwargs["sliding_window"] = None
    config = CONFIGS[arch](**kwargs)
    config._attn_implementation = "eager" if arch in ("gemma2", "gemma3_text") else "sdpa"
    return config


def tiny_encoder(arch: str = "llama", num_layers: int = 4, seed: int = 0, add_bos: bool = False,
                 **settings) -> LLMEncoder:
    torch.manual_seed(seed)
    model = AutoModel.from_config(tiny_config(arch, num_layers)).eval()
    return LLMEncoder(model, tiny_tokenizer(add_bos=add_bos), EncoderSettings(base_model=f"tiny-{arch}", **settings))


