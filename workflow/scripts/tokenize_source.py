"""Tokenize one parquet source directory with datatrove, as the seed's script does.

ParquetReader -> DocumentTokenizer under LocalPipelineExecutor (one task per parquet file,
``--workers`` processes), EOS appended after every document. The output folder holds
``*.ds``, ``*.ds.index`` and ``*.ds.metadata`` files and appears only when complete; an
interrupted run resumes the ranks datatrove had completed (its work directory holds the run's
identity, ``run.json``: inputs or settings that changed start it clean).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from zflow import identity, tokenized
from zflow.data import parquet_files
from zflow.io import die, spec_cli, versions, write_json

PARTIAL = "output.tmp"


def tokenizer_file(ref: str) -> str:
    """datatrove's tokenizer argument: a tokenizer.json path for a local tokenizer, else the
    hub name."""
    tok = Path(ref)
    if tok.is_dir():
        tok = tok / "tokenizer.json"
    return str(tok.resolve()) if tok.is_file() else ref


def claim_work_dir(spec: dict, files: list[Path], tokenizer: str) -> Path:
    """The work directory of this tokenization: resumed if the same job was interrupted."""
    work = Path(spec["work_dir"])
    tok = Path(tokenizer)
    keyed_on = {"files": [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files],
                "tokenizer": tokenizer, "eos": spec["eos_token"], "text_key": spec["text_key"],
                "tokenizer_mtime": tok.stat().st_mtime_ns if tok.is_file() else None}
    identity.claim(work, identity.fingerprint(keyed_on), ("datatrove", PARTIAL),
                   {"source": spec["source"]}, keep=False)
    if (work / PARTIAL).exists():
        print(f"resuming interrupted tokenization in {work / PARTIAL}")
    return work


def run(spec: dict, workers: int) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.tokens import DocumentTokenizer

    files = parquet_files(spec["input"], spec["glob"])
    if not files:
        die(f"no '{spec['glob']}' files in {spec['input']}")
    tokenizer = tokenizer_file(spec["tokenizer"])
    work = claim_work_dir(spec, files, tokenizer)
    pipeline = [
        ParquetReader(data_folder=spec["input"], glob_pattern=spec["glob"],
                      text_key=spec["text_key"], recursive=False),
        DocumentTokenizer(output_folder=str(work / PARTIAL), tokenizer_name_or_path=tokenizer,
                          save_filename=spec["source"], eos_token=spec["eos_token"],
                          shuffle_documents=False),
    ]
    t0 = time.time()
    LocalPipelineExecutor(pipeline=pipeline, tasks=len(files), workers=workers,
                          logging_dir=str(work / "datatrove")).run()
    elapsed = time.time() - t0
    stats = tokenized.folder_stats(work / PARTIAL)
    if stats["documents"] == 0:
        die(f"datatrove wrote no documents for {spec['input']}")
    out = Path(spec["output"])
    if out.exists():
        import shutil

        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work / PARTIAL, out)
    stats.update({
        "source": spec["source"], "input": spec["input"], "parquet_files": len(files),
        "text_key": spec["text_key"], "tokenizer": tokenizer, "eos_token": spec["eos_token"],
        "workers": workers, "seconds": round(elapsed, 3),
        "tokens_per_second": round(stats["tokens"] / elapsed, 1) if elapsed else None,
        "versions": versions(),
    })
    write_json(spec["stats"], stats)
    return stats


def main(argv=None):
    spec, args = spec_cli(__doc__, argv, counts=("workers",))
    stats = run(spec, args.workers)
    print(f"{stats['source']}: {stats['documents']} documents, {stats['tokens']} tokens "
          f"in {stats['seconds']} s")


if __name__ == "__main__":
    main()
