"""Two small parts of a bf16 training step, timed alone: the attention kernel's choice, and tokenizing a batch.

Run (2 threads, on a machine with nothing else running):
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/investigations/train_step_parts.py
Writes benchmarks/investigations/results/train_step_parts.{json,md}.

- **Attention kernel.** ``Trainer._precision`` picks torch's math SDPA kernel for bf16 CPU batches up to
  ``MATH_ATTENTION_MAX_LENGTH`` tokens wide and leaves the flash kernel above that. This times both kernels
  forward and backward, interleaved, at SmolLM2's attention shape (48 texts of a step x 9 heads x head size 64,
  a causal boolean mask as transformers passes with padding) and at several widths, in bf16.
- **Tokenizing.** ``Trainer.embed_triplets`` tokenizes a step's 16 queries, positives and negatives (with
  their instructions) in one call; this times that call over the shipped triplets' first batches.
Medians over ``--repeats``. The step these parts belong to takes seconds (``train_step_ablation.md``).

A one-off investigation: its committed results come from commit 21cea5c, and it has not been rerun since.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.functional import scaled_dot_product_attention

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the helpers (_machine, ...) are in benchmarks/
from _machine import machine, with_machine

from l3prune.data import load_triplets
from l3prune.encoder import LLMEncoder
from l3prune.files import write_json, write_text
from l3prune.training.loop import MATH_ATTENTION_MAX_LENGTH, triplet_texts

RESULTS = Path(__file__).parent / "results"
KERNELS = {"math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION}


def attention_ms(kernel: SDPBackend, texts: int, heads: int, width: int, head_size: int) -> tuple[float, float]:
    """(forward, backward) milliseconds of one bf16 SDPA call with a causal boolean mask."""
    q, k, v = (torch.randn(texts, heads, width, head_size, dtype=torch.bfloat16, requires_grad=True)
               for _ in range(3))
    mask = torch.ones(width, width, dtype=torch.bool).tril().expand(texts, 1, width, width)
    with sdpa_kernel([kernel]):
        start = time.perf_counter()
        out = scaled_dot_product_attention(q, k, v, attn_mask=mask)
        middle = time.perf_counter()
        out.backward(torch.ones_like(out))
        end = time.perf_counter()
    return 1000 * (middle - start), 1000 * (end - middle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()

    encoder = LLMEncoder.from_pretrained(args.model, num_layers=1, max_length=args.max_length, device="cpu")
    config = encoder.model.config
    heads, head_size = config.num_attention_heads, config.hidden_size // config.num_attention_heads
    texts = 3 * args.batch_size
    attention = []
    for width in args.widths:
        times: dict[str, dict[str, list[float]]] = {name: {"forward": [], "backward": []} for name in KERNELS}
        for rep in range(args.repeats + 1):  # the first round warms the allocator and is dropped
            for name in (KERNELS if rep % 2 == 0 else reversed(KERNELS)):
                forward, backward = attention_ms(KERNELS[name], texts, heads, width, head_size)
                if rep:
                    times[name]["forward"].append(forward)
                    times[name]["backward"].append(backward)
        row = {"width": width, "training_uses": "math" if width <= MATH_ATTENTION_MAX_LENGTH else "flash"}
        for name, parts in times.items():
            row[name] = {part: round(statistics.median(ms), 2) for part, ms in parts.items()}
        attention.append(row)
        print(f"width {width}: " + ", ".join(f"{n} {row[n]['forward']}+{row[n]['backward']} ms" for n in KERNELS),
              flush=True)

    triplets = load_triplets(None)
    tokenize_ms = []
    for rep in range(args.repeats):
        batch = triplets[rep * args.batch_size : (rep + 1) * args.batch_size]
        queries, positives, negatives = triplet_texts(batch)
        start = time.perf_counter()
        encoder.collator.tokenize(queries + positives + negatives)
        tokenize_ms.append(1000 * (time.perf_counter() - start))

    result = {"model": args.model, "dtype": "bf16", "texts_per_step": texts, "heads": heads, "head_size": head_size,
              "repeats": args.repeats, "torch_threads": torch.get_num_threads(), "machine": machine(),
              "math_attention_max_length": MATH_ATTENTION_MAX_LENGTH, "attention_ms": attention,
              "tokenize_step_ms": {"median": round(statistics.median(tokenize_ms), 2),
                                   "max": round(max(tokenize_ms), 2), "max_length": args.max_length}}
    RESULTS.mkdir(exist_ok=True)
    write_json(RESULTS / "train_step_parts.json", result, overwrite=True)
    rows = [f"| {r['width']} | {r['math']['forward']} | {r['math']['backward']} | {r['flash']['forward']} | "
            f"{r['flash']['backward']} | {r['training_uses']} |" for r in attention]
    write_text(RESULTS / "train_step_parts.md", with_machine("\n".join([
        f"# Two parts of a bf16 training step ({args.model})",
        "",
        f"Attention: one SDPA call, {texts} texts x {heads} heads x head size {head_size}, bf16, causal boolean "
        f"mask; median ms of {args.repeats} interleaved repeats, {torch.get_num_threads()} threads.",
        "",
        "| width (tokens) | math forward | math backward | flash forward | flash backward | training uses |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Tokenizing one step's {texts} texts with their instructions (shipped triplets, max length "
        f"{args.max_length}): median {result['tokenize_step_ms']['median']} ms, worst "
        f"{result['tokenize_step_ms']['max']} ms over {args.repeats} batches.",
    ]), result["machine"]), overwrite=True)
    print(f"wrote {RESULTS / 'train_step_parts.md'}")


if __name__ == "__main__":
    main()
