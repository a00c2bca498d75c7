"""Tokenize one shard group of a parquet source with datatrove, as the seed's script does.

ParquetReader (the group's files, listed in a paths file) -> DocumentTokenizer under
LocalPipelineExecutor (one task per parquet file, ``--workers`` processes), EOS appended after
every document. The group's folder holds ``*.ds``, ``*.ds.index`` and ``*.ds.metadata`` files
(``<source>_<rank>_unshuffled.ds``: rank i is the group's i-th file) and appears only when complete; an
interrupted run resumes the ranks datatrove had completed (its work directory holds the run's
identity, ``run.json``: other files, content or settings start it clean). The group's stats
list its parquet files and, per tokenized file, documents and tokens.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from zflow import identity, tokenized
from zflow.data import DataError, check_text_columns
from zflow.io import die, remove_tree, spec_cli, versions, write_json, write_text

PARTIAL = "output.tmp"
PATHS_FILE = "paths.txt"
ERRORS = "damaged"  # one line per damaged parquet file, written by the reader (zflow.shard_reader)
STATE = ("datatrove", PARTIAL, PATHS_FILE, ERRORS)


def tokenizer_file(ref: str) -> str:
    """datatrove's tokenizer argument: a tokenizer.json path for a local tokenizer, else the
    hub name."""
    tok = Path(ref)
    if tok.is_dir():
        tok = tok / "tokenizer.json"
    return str(tok.resolve()) if tok.is_file() else ref


def claim_work_dir(spec: dict, tokenizer: str) -> Path:
    """The work directory of this group: resumed if the same job was interrupted."""
    work = Path(spec["work_dir"])
    tok = Path(tokenizer)
    keyed_on = {"files": spec["files"], "checksum": spec["checksum"], "tokenizer": tokenizer,
                "eos": spec["eos_token"], "text_key": spec["text_key"],
                "tokenizer_mtime": tok.stat().st_mtime_ns if tok.is_file() else None}
    identity.claim(work, identity.fingerprint(keyed_on), STATE,
                   {"source": spec["source"], "group": spec["group"]}, keep=False)
    if (work / PARTIAL).exists():
        print(f"resuming interrupted tokenization in {work / PARTIAL}")
    return work


def pipeline(spec: dict, tokenizer: str, work: Path) -> list:
    from datatrove.pipeline.tokens import DocumentTokenizer

    from zflow.shard_reader import CheckedParquetReader

    write_text(work / PATHS_FILE, "".join(f"{f}\n" for f in spec["files"]))
    return [
        CheckedParquetReader(data_folder=spec["input"], paths_file=str(work / PATHS_FILE),
                             text_key=spec["text_key"], errors_dir=str(work / ERRORS)),
        DocumentTokenizer(output_folder=str(work / PARTIAL), tokenizer_name_or_path=tokenizer,
                          save_filename=spec["source"], eos_token=spec["eos_token"],
                          shuffle_documents=False),
    ]


def group_stats(spec: dict, folder: Path) -> dict:
    """Documents and tokens of the group, per tokenized file with the parquet file it holds."""
    stats = tokenized.folder_stats(folder)
    for f in stats["files"]:  # <source>_<rank>[_unshuffled].ds: rank i read the i-th file
        rank = re.search(r"_(\d+)(?:_unshuffled)?\.ds$", f["file"])
        f["parquet"] = spec["files"][int(rank.group(1))] if rank else None
    return stats


def run(spec: dict, workers: int) -> dict:
    from datatrove.executor import LocalPipelineExecutor

    missing = [f for f in spec["files"] if not (Path(spec["input"]) / f).is_file()]
    if missing:
        die(f"{spec['source']} group {spec['group']}: no {', '.join(missing)} in {spec['input']}")
    try:  # footers only: a text column of the wrong type, before any worker starts
        check_text_columns([Path(spec["input"]) / f for f in spec["files"]], spec["text_key"])
    except DataError as e:
        die(f"{spec['source']} group {spec['group']}: {e} (sources.{spec['source']}.text_key)")
    tokenizer = tokenizer_file(spec["tokenizer"])
    work = claim_work_dir(spec, tokenizer)
    t0 = time.time()
    LocalPipelineExecutor(pipeline=pipeline(spec, tokenizer, work), tasks=len(spec["files"]),
                          workers=min(workers, len(spec["files"])),
                          logging_dir=str(work / "datatrove")).run()
    elapsed = time.time() - t0
    from zflow.shard_reader import damaged

    bad = damaged(work / ERRORS)
    if bad:  # nothing of this run is kept: the next one reads every file again
        for entry in STATE:
            remove_tree(work / entry)
        die(f"{spec['source']} group {spec['group']}: {len(bad)} damaged parquet "
            f"file{'s' if len(bad) > 1 else ''}: {' | '.join(bad)}")
    stats = group_stats(spec, work / PARTIAL)
    if stats["documents"] == 0:
        die(f"datatrove wrote no documents for {spec['source']} group {spec['group']}")
    out = Path(spec["output"])
    if out.exists():
        remove_tree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work / PARTIAL, out)
    stats.update({
        "source": spec["source"], "group": spec["group"], "input": spec["input"],
        "parquet": spec["files"], "parquet_files": len(spec["files"]),
        "checksum": spec["checksum"], "text_key": spec["text_key"], "tokenizer": tokenizer,
        "eos_token": spec["eos_token"], "workers": workers, "seconds": round(elapsed, 3),
        "tokens_per_second": round(stats["tokens"] / elapsed, 1) if elapsed else None,
        "versions": versions(),
    })
    write_json(spec["stats"], stats)
    return stats


def main(argv=None):
    spec, args = spec_cli(__doc__, argv, counts=("workers",))
    stats = run(spec, args.workers)
    print(f"{stats['source']} {stats['group']}: {stats['parquet_files']} files, "
          f"{stats['documents']} documents, {stats['tokens']} tokens in {stats['seconds']} s")


if __name__ == "__main__":
    main()
