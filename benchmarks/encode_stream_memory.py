"""Does ``l3prune encode`` keep memory flat as the input grows to a million lines?

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/encode_stream_memory.py [--lines 10000 100000 1000000]
Writes benchmarks/results/encode_stream_memory.{json,md}.

Each size runs the real CLI (``l3prune encode``) in a fresh process and reports its peak resident memory
(ru_maxrss). The model is a tiny random Llama (the one the tests build): the question is the streaming,
not the model, and a real model would need hours for a million lines on 2 CPU cores. Inputs cycle through
the STS-B test sentences. The output .npy is checked for its shape and deleted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import machine, with_machine

from l3prune.files import write_json, write_text

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PROBE = """
import resource, sys
from l3prune.cli import main
code = main(["encode", sys.argv[1], "--input", sys.argv[2], "--output", sys.argv[3], "--batch-size", "64"])
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    from l3prune.testing import tiny_encoder

    sentences = [json.loads(line)["sentence1"] for line in
                 (ROOT / "src/l3prune/resources/eval/sts/STSBenchmark.test.jsonl").open(encoding="utf-8")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_encoder("llama", 2).save(Path(tmp) / "tiny")
        for n in args.lines:
            src, out = Path(tmp) / f"in_{n}.txt", Path(tmp) / f"out_{n}.npy"
            with src.open("w", encoding="utf-8") as f:
                f.writelines(sentences[i % len(sentences)].replace("\n", " ") + "\n" for i in range(n))
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", PROBE, str(model), str(src), str(out)],
                                  capture_output=True, text=True, check=True)
            seconds = time.perf_counter() - start
            peak_kb = int(next(line for line in proc.stdout.splitlines() if line.startswith("PEAK_KB")).split()[1])
            shape = np.load(out, mmap_mode="r").shape
            assert shape[0] == n, shape
            rows.append({"lines": n, "peak_rss_mb": peak_kb / 1024, "output_mb": out.stat().st_size / 2**20,
                         "seconds": round(seconds, 1), "texts_per_s": round(n / seconds)})
            print(rows[-1], flush=True)
            src.unlink()
            out.unlink()
    result = {"model": "tiny random llama, 2 layers (l3prune.testing)", "batch_size": 64, "chunk_lines": 4096,
              "machine": machine(), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS / "encode_stream_memory.json", result, overwrite=True)
    lines = ["# `l3prune encode`: peak memory vs input size", "",
             "Fresh process per size, real CLI, tiny random Llama (the streaming is measured, not the model), "
             "batch 64, chunks of 4096 lines.", "",
             "| lines | peak RSS (MB) | output .npy (MB) | seconds |", "|---|---|---|---|"]
    lines += [f"| {r['lines']:,} | {r['peak_rss_mb']:.0f} | {r['output_mb']:.0f} | {r['seconds']} |" for r in rows]
    write_text(RESULTS / "encode_stream_memory.md", with_machine("\n".join(lines), result["machine"]), overwrite=True)


if __name__ == "__main__":
    main()
