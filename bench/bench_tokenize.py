"""Tokenization speed: the tokenize rule's code (datatrove) against raw `tokenizers` encode_batch.

Builds a corpus from the embedded parquet shards (repeated --repeat times, 8 shards), trains
nothing: it uses the tokenizer given (default: the embedded default's, built by the workflow).
Reports tokens/s of raw ``Tokenizer.encode_batch`` on one core; of one tokenize job (the rule's
script in its own process, start-up included) with 1 and 2 workers; of 2 concurrent tokenize
jobs of one worker each (two shard groups: the fan-out); the per-core ratio to raw, the 1 -> 2
job scaling, and the projection of the seed's ~1T tokens on 64 CPU nodes of 64 cores from the
measured per-core throughput; writes the table into docs/performance.md between its markers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "workflow" / "scripts" / "tokenize_source.py"
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


def job_spec(work: Path, name: str, files: list[str], tokenizer: str) -> Path:
    """The spec of one tokenize job (one shard group of ``files``), as zflow.plan writes it."""
    spec = {"source": "bench", "group": name, "input": str(work / "src"), "files": files,
            "checksum": name, "text_key": "text", "tokenizer": tokenizer,
            "eos_token": "<|endoftext|>", "output": str(work / "out" / name),
            "stats": str(work / "stats" / f"{name}.json"), "work_dir": str(work / "work" / name)}
    f = work / "specs" / f"{name}.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(spec))
    return f


def run_jobs(specs: list[Path], workers: int) -> tuple[int, float, float, float]:
    """Run tokenize jobs side by side (the rule's script, one process each, as Snakemake does):
    (tokens, wall seconds of them all, the jobs' pipeline seconds summed, CPU seconds of the
    jobs and their workers: user + system, independent of what else the machine runs)."""
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(SCRIPT), "--spec", str(f), "--workers",
                               str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for f in specs]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            sys.exit(err.decode()[-3000:])
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    stats = [json.loads(Path(json.loads(f.read_text())["stats"]).read_text()) for f in specs]
    return sum(s["tokens"] for s in stats), wall, sum(s["seconds"] for s in stats), cpu


def projection(per_core: float, efficiency: float, tokens: float = 1e12, nodes: int = 64,
               cores: int = 64) -> str:
    """The seed's ~1T tokens on ``nodes`` CPU nodes of ``cores`` cores, every core busy with a
    tokenize worker (at least nodes x cores / files_per_job groups queued), at the measured
    tokens per CPU-second, times the measured 2-job efficiency."""
    rate = per_core * cores * nodes * efficiency
    hours = tokens / rate / 3600
    one_node = tokens / (per_core * cores * efficiency) / 3600
    return (f"Projection: {tokens:.0e} tokens / ({per_core:,.0f} tokens/s per core x {cores} cores "
            f"x {nodes} nodes x {efficiency:.2f} 2-job efficiency) = {rate:,.0f} tokens/s = "
            f"**{hours * 60:.0f} min** on {nodes} nodes of {cores} cores ({one_node:.1f} h on one "
            f"such node; CPU only: reading the parquet and writing the tokens not included).")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tokenizer", default=str(REPO / "results/tokenizers/bpe_ita_eng_4k"))
    p.add_argument("--repeat", type=int, default=6)
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args(argv)
    from tokenizers import Tokenizer

    tok_file = Path(args.tokenizer) / "tokenizer.json"
    if not tok_file.exists():
        sys.exit(f"no tokenizer at {tok_file}: run `make demo` first (or pass --tokenizer)")
    work = Path(tempfile.mkdtemp(prefix="zflow-bench-"))
    try:
        texts = build_corpus(work / "src", args.repeat)
        files = sorted(f.name for f in (work / "src").glob("*.parquet"))
        tok = Tokenizer.from_file(str(tok_file))
        t0, c0 = time.perf_counter(), time.process_time()
        n_raw = 0
        for i in range(0, len(texts), 1000):
            n_raw += sum(len(e.ids) for e in tok.encode_batch(texts[i:i + 1000]))
        wall_raw, cpu_raw = time.perf_counter() - t0, time.process_time() - c0
        raw = n_raw / cpu_raw
        rows = [("raw tokenizers encode_batch, 1 core", 1, n_raw, wall_raw, cpu_raw,
                 n_raw / wall_raw, raw, 1.0)]
        half = len(files) // 2
        runs = {  # name: (jobs (files each), workers per job)
            "1 tokenize job, 1 worker (8 shards)": ([files], 1),
            "1 tokenize job, 2 workers (8 shards)": ([files], 2),
            "2 concurrent tokenize jobs, 1 worker each (2 shard groups of 4)":
                ([files[:half], files[half:]], 1),
        }
        measured, per_cpu = {}, {}
        load = os.getloadavg()[0]
        for k, (what, (groups, workers)) in enumerate(runs.items()):
            specs = [job_spec(work, f"r{k}g{i}", g, args.tokenizer) for i, g in enumerate(groups)]
            n, wall, own, cpu = run_jobs(specs, workers)
            cores = len(groups) * workers
            if workers > 1:  # datatrove's worker pool: its CPU time is not reported to us
                cpu = None
            measured[what] = n / wall
            per_cpu[what] = n / cpu if cpu else None
            rows.append((what, cores, n, wall, cpu, n / wall, per_cpu[what],
                         per_cpu[what] / raw if cpu else None))
        table = ["| what | cores | tokens | wall s (jobs, start-up included) | CPU s (jobs + "
                 "workers) | tokens/s (wall) | tokens per CPU-second | per CPU-second vs raw |",
                 "|---|---|---|---|---|---|---|---|"]
        table += [f"| {w} | {c} | {n:,} | {'—' if s is None else f'{s:.2f}'} | "
                  f"{'—' if o is None else f'{o:.2f}'} | {t:,.0f} | "
                  f"{'—' if u is None else f'{u:,.0f}'} | {'—' if r is None else f'{r:.0%}'} |"
                  for w, c, n, s, o, t, u, r in rows]
        one, two = measured[list(runs)[0]], measured[list(runs)[2]]
        workers2 = measured[list(runs)[1]]
        # per core: tokens per CPU-second of one job on one worker (start-up included), which
        # does not depend on what else runs; efficiency: the CPU cost of running as two jobs
        per_core = per_cpu[list(runs)[0]]
        eff = min(per_cpu[list(runs)[2]] / per_core, 1.0)
        table.append(f"\nScaling 1 → 2 concurrent jobs (wall): {two / one:.2f}x; 1 → 2 workers in "
                     f"one job: {workers2 / one:.2f}x (2 cores). Tokens per CPU-second, 2 jobs vs "
                     f"1: {eff:.0%}.")
        table.append(f"Load average (1 min) when the runs started: {load:.2f} on {os.cpu_count()} "
                     "cores (other processes share them: scaling below 2x is contention).")
        table.append("\n" + projection(per_core, eff))
        table.append("\nCPU seconds: user + system of the jobs (one worker: datatrove runs in "
                     "the job's process), `time.process_time` for raw; they do not depend on the "
                     "load, the wall figures do.")
        text = "\n".join(table)
        print(text)
        if not args.no_doc:
            update_doc("tokenize", f"`python bench/bench_tokenize.py --repeat {args.repeat}` "
                       f"({len(texts):,} documents, 8 parquet shards):\n\n{text}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
