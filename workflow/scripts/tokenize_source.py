"""Tokenize one parquet source directory with datatrove, as the seed's script does.

ParquetReader -> DocumentTokenizer under LocalPipelineExecutor (one task per parquet file,
``--workers`` processes), EOS appended after every document. The output folder holds
``*.ds``, ``*.ds.index`` and ``*.ds.metadata`` files and appears only when complete; an
interrupted run resumes the ranks datatrove had not completed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zflow.data import parquet_files  # noqa: E402
from zflow.io import die, versions, write_json  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--input", required=True, help="directory of parquet shards")
    p.add_argument("--text-key", default="text")
    p.add_argument("--glob", default="*.parquet")
    p.add_argument("--tokenizer", required=True,
                   help="a tokenizer.json file, a directory holding one, or a hub name")
    p.add_argument("--eos-token", required=True)
    p.add_argument("--name", required=True, help="source name (file prefix)")
    p.add_argument("--output", required=True, help="tokenized folder to create")
    p.add_argument("--stats", required=True, help="JSON of document and token counts")
    p.add_argument("--logging-dir", required=True, help="datatrove logs and completion markers")
    p.add_argument("--workers", type=int, default=1)
    return p.parse_args(argv)


def folder_stats(folder: Path) -> dict:
    """Document and token counts read back from the datatrove files themselves."""
    files = []
    docs = tokens = 0
    for ds in sorted(folder.glob("*.ds")):
        meta = Path(f"{ds}.metadata").read_text().splitlines()
        token_size = int(meta[0].rsplit("|", 1)[1])
        n_tok = ds.stat().st_size // token_size
        n_doc = Path(f"{ds}.index").stat().st_size // 8
        files.append({"file": ds.name, "documents": n_doc, "tokens": n_tok,
                      "token_size": token_size, "tokenizer": meta[0].rsplit("|", 1)[0]})
        docs += n_doc
        tokens += n_tok
    return {"documents": docs, "tokens": tokens, "files": files}


def run(args) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.tokens import DocumentTokenizer

    files = parquet_files(args.input, args.glob)
    if not files:
        die(f"no '{args.glob}' files in {args.input}")
    tok = Path(args.tokenizer)
    if tok.is_dir():
        tok = tok / "tokenizer.json"
    tokenizer = str(tok.resolve()) if tok.is_file() else args.tokenizer

    out = Path(args.output)
    tmp = out.with_name(out.name + ".tmp")
    logs = Path(args.logging_dir)
    # Resume only an interrupted run of the same job: anything else starts clean.
    fingerprint = hashlib.sha256(json.dumps({
        "files": [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files],
        "tokenizer": tokenizer, "eos": args.eos_token, "text_key": args.text_key,
        "tokenizer_mtime": tok.stat().st_mtime_ns if tok.is_file() else None,
    }, sort_keys=True).encode()).hexdigest()
    marker = logs / "fingerprint.txt"
    if not (marker.exists() and marker.read_text() == fingerprint and tmp.exists()):
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        marker.write_text(fingerprint)
    else:
        print(f"resuming interrupted tokenization in {tmp}")

    pipeline = [
        ParquetReader(data_folder=args.input, glob_pattern=args.glob, text_key=args.text_key,
                      recursive=False),
        DocumentTokenizer(
            output_folder=str(tmp),
            tokenizer_name_or_path=tokenizer,
            save_filename=args.name,
            eos_token=args.eos_token,
            shuffle_documents=False,
        ),
    ]
    t0 = time.time()
    LocalPipelineExecutor(pipeline=pipeline, tasks=len(files), workers=args.workers,
                          logging_dir=str(logs / "datatrove")).run()
    elapsed = time.time() - t0
    stats = folder_stats(tmp)
    if stats["documents"] == 0:
        die(f"datatrove wrote no documents for {args.input}")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    stats.update({
        "source": args.name, "input": args.input, "parquet_files": len(files),
        "text_key": args.text_key, "tokenizer": tokenizer, "eos_token": args.eos_token,
        "workers": args.workers, "seconds": round(elapsed, 3),
        "tokens_per_second": round(stats["tokens"] / elapsed, 1) if elapsed else None,
        "versions": versions(),
    })
    write_json(args.stats, stats)
    return stats


def main(argv=None):
    stats = run(parse_args(argv))
    print(f"{stats['source']}: {stats['documents']} documents, {stats['tokens']} tokens "
          f"in {stats['seconds']} s")


if __name__ == "__main__":
    main()
