"""Tokenization speed: the tokenize rule's code (datatrove) against raw `tokenizers` encode_batch.

Builds a corpus from the embedded parquet shards (repeated --repeat times, 8 shards), trains
nothing: it uses the tokenizer given (default: the embedded default's, built by the workflow).
Reports tokens/s of raw ``Tokenizer.encode_batch`` on one core, of the tokenize script with 1
and 2 workers, the per-worker ratio (goal >= 90%) and the 1 -> 2 worker scaling; writes the
table into docs/performance.md between its markers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from bench_common import update_doc  # noqa: E402


def build_corpus(dst: Path, repeat: int, shards: int = 8) -> list[str]:
    texts = []
    for src in ("fineweb2_ita", "fineweb_eng", "finepdfs_ita"):
        for f in sorted((REPO / "data/embedded" / src).glob("*.parquet")):
            texts += pq.read_table(f, columns=["text"]).column(0).to_pylist()
    texts = texts * repeat
    dst.mkdir(parents=True)
    for i in range(shards):
        pq.write_table(pa.table({"text": texts[i::shards]}), dst / f"{i:03d}.parquet")
    return texts


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tokenizer", default=str(REPO / "results/tokenizers/bpe_ita_eng_4k"))
    p.add_argument("--repeat", type=int, default=6)
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args(argv)
    from tokenizers import Tokenizer
    from tokenize_source import run

    tok_file = Path(args.tokenizer) / "tokenizer.json"
    if not tok_file.exists():
        sys.exit(f"no tokenizer at {tok_file}: run `make demo` first (or pass --tokenizer)")
    work = Path(tempfile.mkdtemp(prefix="zflow-bench-"))
    try:
        texts = build_corpus(work / "src", args.repeat)
        tok = Tokenizer.from_file(str(tok_file))
        t0 = time.perf_counter()
        n_raw = 0
        for i in range(0, len(texts), 1000):
            n_raw += sum(len(e.ids) for e in tok.encode_batch(texts[i:i + 1000]))
        raw = n_raw / (time.perf_counter() - t0)
        rows = [("raw tokenizers encode_batch, 1 core", n_raw, raw, 1.0)]
        per_worker = {}
        for workers in (1, 2):
            out = work / f"out{workers}"
            spec = {"source": "bench", "input": str(work / "src"), "glob": "*.parquet",
                    "text_key": "text", "tokenizer": args.tokenizer, "eos_token": "<|endoftext|>",
                    "output": str(out), "stats": str(work / f"s{workers}.json"),
                    "work_dir": str(work / f"work{workers}")}
            t0 = time.perf_counter()
            stats = run(spec, workers)
            dt = time.perf_counter() - t0
            tps = stats["tokens"] / dt
            per_worker[workers] = tps / workers
            rows.append((f"tokenize rule (datatrove), {workers} worker(s)", stats["tokens"], tps,
                         tps / workers / raw))
        table = ["| what | tokens | tokens/s | per worker vs raw |", "|---|---|---|---|"]
        table += [f"| {w} | {n:,} | {t:,.0f} | {r:.0%} |" for w, n, t, r in rows]
        table.append(f"\nScaling 1 → 2 workers: {per_worker[2] * 2 / per_worker[1]:.2f}x "
                     f"(2 cores). Goal: ≥ 90% of raw tokenizer speed per worker.")
        text = "\n".join(table)
        print(text)
        if not args.no_doc:
            update_doc("tokenize", f"`python bench/bench_tokenize.py --repeat {args.repeat}` "
                       f"({len(texts):,} documents, 8 parquet shards):\n\n{text}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
