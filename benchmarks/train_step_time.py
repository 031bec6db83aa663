"""Seconds per training step (and peak GPU memory) against the number of layers kept.

CPU, the real SmolLM2-135M (fp32), all depths resident and timed round-robin so that machine noise
hits every depth alike:

    .venv/bin/python benchmarks/train_step_time.py

GPU, a randomly initialised model with Llama-3-8B's configuration (bf16, batch 64, length 512, the
paper's gradient checkpointing), one depth at a time so peak memory is per depth. Speed and memory
only: the weights are random, so these runs say nothing about quality:

    .venv/bin/python benchmarks/train_step_time.py --device cuda --random-init-config llama3-8b

A step is exactly what ``l3prune train`` runs (``l3prune.training.Trainer.train_step``: tokenize,
three forwards for queries/positives/negatives, InfoNCE over the batch, backward, AdamW), on texts
that tokenize to exactly ``--length`` tokens. Writes ``benchmarks/results/train_step_time*.{json,md}``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import platform
import statistics
import time
from pathlib import Path

import torch

from _machine import machine, with_machine

from l3prune.data import Triplet
from l3prune.encoder import LLMEncoder
from l3prune.settings import EncoderSettings
from l3prune.files import write_json, write_text
from l3prune.training import TrainConfig, Trainer

RESULTS = Path(__file__).parent / "results"

#: Llama-3-8B's published hyper-parameters (rope theta left at the default: it does not change speed).
RANDOM_CONFIGS = {
    "llama3-8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                      rms_norm_eps=1e-5, tie_word_embeddings=False),
    # a few-kB stand-in with the same code path, for the CPU smoke test of the GPU check
    "tiny": dict(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                 num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False),
}
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def word_tokenizer():
    """A one-word vocabulary: 'w w w' is exactly 3 tokens; enough to drive a random-weight model."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"<unk>": 0, "<eos>": 1, "w": 2}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>", pad_token="<eos>")


def build_encoder(args, num_layers: int) -> LLMEncoder:
    if args.random_init_config:
        from transformers import AutoModel, LlamaConfig

        config = LlamaConfig(**{**RANDOM_CONFIGS[args.random_init_config], "num_hidden_layers": num_layers})
        with torch.device(args.device):
            model = AutoModel.from_config(config, dtype=DTYPES[args.dtype]).eval()
        settings = EncoderSettings(base_model=f"random {args.random_init_config}", max_length=args.length)
        return LLMEncoder(model, word_tokenizer(), settings)
    return LLMEncoder.from_pretrained(args.model, num_layers=num_layers, max_length=args.length, device=args.device)


def fixed_length_text(encoder: LLMEncoder, length: int) -> str:
    """A text of exactly ``length`` tokens for this tokenizer (its own specials, e.g. BOS, come on top)."""
    for word in ("w", "the"):
        specials = encoder.collator.tokenize([word])["input_ids"].shape[1] - 1
        text = " ".join([word] * length)
        if encoder.collator.tokenize([text])["input_ids"].shape[1] == length + specials:
            return text
    raise SystemExit("could not build a fixed-length text for this tokenizer")


def make_trainer(args, num_layers: int) -> Trainer:
    encoder = build_encoder(args, num_layers)
    text = fixed_length_text(encoder, args.length)
    triplets = [Triplet(text, text, text, "bench") for _ in range(args.batch_size)]
    config = TrainConfig(steps=10**6, batch_size=args.batch_size, warmup_steps=0,
                         gradient_checkpointing=args.gradient_checkpointing)
    return Trainer(encoder, triplets, config)


def timed_step(trainer: Trainer, cuda: bool) -> float:
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.train_step()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--random-init-config", choices=sorted(RANDOM_CONFIGS),
                        help="random weights with this config (speed/memory only)")
    parser.add_argument("--layers", type=int, nargs="+", help="depths to time (default: 30 21 15 8 4; 32 25 8 random)")
    parser.add_argument("--batch-size", type=int, help="triplets per step (default: 16 CPU, 64 random-init)")
    parser.add_argument("--length", type=int, help="tokens per text (default: 64 CPU, 512 random-init)")
    parser.add_argument("--rounds", type=int, default=4, help="timed steps per depth (after one warm-up step)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction,
                        help="default: on for --random-init-config (as the paper trains), off otherwise")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16", help="weights of --random-init-config")
    parser.add_argument("--out", help="output prefix (default: benchmarks/results/train_step_time[_gpu_speed_only])")
    args = parser.parse_args()
    random_init = args.random_init_config is not None
    args.layers = args.layers or ([32, 25, 8] if random_init else [30, 21, 15, 8, 4])
    args.batch_size = args.batch_size or (64 if random_init else 16)
    args.length = args.length or (512 if random_init else 64)
    if args.gradient_checkpointing is None:
        args.gradient_checkpointing = random_init
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    cuda = torch.device(args.device).type == "cuda"
    times: dict[int, list[float]] = {n: [] for n in args.layers}
    peak_gb: dict[int, float] = {}
    if cuda:  # one depth at a time: an 8B model's depths do not fit together, and peak memory is per depth
        for n in args.layers:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            trainer = make_trainer(args, n)
            timed_step(trainer, cuda)  # warm-up (kernels, allocator)
            times[n] = [timed_step(trainer, cuda) for _ in range(args.rounds)]
            peak_gb[n] = torch.cuda.max_memory_allocated() / 2**30
            print(f"{n} layers: {statistics.median(times[n]):.3f} s/step, peak {peak_gb[n]:.1f} GiB", flush=True)
            del trainer
            gc.collect()
    else:  # all depths resident, timed round-robin
        trainers = {n: make_trainer(args, n) for n in args.layers}
        for trainer in trainers.values():
            timed_step(trainer, cuda)
        for r in range(args.rounds):
            for n, trainer in trainers.items():
                times[n].append(timed_step(trainer, cuda))
            print(f"round {r + 1}: " + ", ".join(f"{n}L {times[n][-1]:.2f}s" for n in args.layers), flush=True)
    full = max(args.layers)
    base = statistics.median(times[full])
    rows = [{"layers": n, "median_s_per_step": statistics.median(times[n]), "all_s": times[n],
             "relative_to_full": statistics.median(times[n]) / base, "layer_ratio": n / full,
             **({"peak_memory_gib": peak_gb[n]} if n in peak_gb else {})} for n in args.layers]
    model = f"random-init {args.random_init_config} config ({args.dtype})" if random_init else f"{args.model} (fp32)"
    device = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} torch threads"
    result = {"model": model, "device": device, "batch_size": args.batch_size, "length": args.length,
              "rounds": args.rounds, "gradient_checkpointing": args.gradient_checkpointing, "lora_r": 16,
              "speed_only": random_init, "torch": torch.__version__, "python": platform.python_version(), "machine": machine(),
              "rows": rows}
    out = Path(args.out or RESULTS / ("train_step_time_gpu_speed_only" if random_init else "train_step_time"))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out.with_suffix(".json"), result, overwrite=True)
    title = f"# Training step time vs layers kept: {model}, {device}" + (" (SPEED ONLY: random weights)" if random_init else "")
    lines = [title, "",
             f"Batch {args.batch_size} triplets x 3 texts of {args.length} tokens, LoRA r16, gradient checkpointing "
             f"{'on' if args.gradient_checkpointing else 'off'}; median of {args.rounds} steps after a warm-up step"
             + (", depths timed round-robin." if not cuda else ", one depth at a time."), "",
             "| layers kept | s/step | vs full depth | layers / full |" + (" peak memory (GiB) |" if peak_gb else ""),
             "|---|---|---|---|" + ("---|" if peak_gb else "")]
    for r in rows:
        lines.append(f"| {r['layers']} | {r['median_s_per_step']:.3f} | {r['relative_to_full']:.2f} | "
                     f"{r['layer_ratio']:.2f} |" + (f" {r['peak_memory_gib']:.1f} |" if peak_gb else ""))
    write_text(out.with_suffix(".md"), with_machine("\n".join(lines), result["machine"]), overwrite=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
