"""Bare matmul rate (GFLOP/s) of one dtype on one device: the hardware ceiling the model figures are divided by.

Run:
    .venv/bin/python benchmarks/matmul_rate.py --device cpu --dtype bf16 fp32 --threads 2
    python3 benchmarks/matmul_rate.py --device cuda --dtype bf16 --shape 8192 8192 8192 --out $OUT/matmul

Other benchmarks import ``matmul_gflops`` so that the ceiling is measured in the same process, at the
same thread count, as the figure it is compared with.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from _machine import machine
from l3prune.files import write_json

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}


def matmul_gflops(dtype: torch.dtype, device: str = "cpu", shape: tuple[int, int, int] = (2048, 576, 1536),
                  seconds: float = 1.0) -> float:
    """Best-of GFLOP/s of an (m, k) @ (k, n) product, after warm-ups (oneDNN/cuBLAS pick a kernel per shape)."""
    m, k, n = shape
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    cuda = torch.device(device).type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    for _ in range(3):
        a @ b
    sync()
    best, spent = float("inf"), 0.0
    reps = 1
    while spent < seconds:
        sync()
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync()
        elapsed = (time.perf_counter() - start) / reps
        best, spent = min(best, elapsed), spent + elapsed * reps
        reps = min(reps * 2, 64)
    return 2 * m * k * n / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", nargs="+", choices=sorted(DTYPES), default=["bf16", "fp32"])
    parser.add_argument("--shape", type=int, nargs=3, default=[2048, 576, 1536], metavar=("M", "K", "N"))
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", help="output prefix for a JSON file (default: print only)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rates = {name: matmul_gflops(DTYPES[name], args.device, tuple(args.shape)) for name in args.dtype}
    cuda = torch.device(args.device).type == "cuda"
    result = {"device": torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads",
              "shape": args.shape, "gflops": rates, "torch": torch.__version__, "machine": machine()}
    print(json.dumps(result))
    if args.out:
        write_json(Path(args.out).with_suffix(".json"), result, overwrite=True)


if __name__ == "__main__":
    main()
