"""Merge a source's shard-group stats into its tokenize stats (``{source}.stats.json``).

Totals (documents, tokens, parquet files, seconds of tokenize jobs), one row per group and one
per tokenized file (its path under the source folder, the parquet file it holds): what the cost
plan and the release's training-content summary read. Checks that the source folder holds no
group folder of another assignment (pretraining reads the folder recursively).
"""

from __future__ import annotations

from pathlib import Path

from zflow.io import die, read_json, spec_cli, versions, write_json

GROUP_KEYS = ("group", "documents", "tokens", "parquet_files", "parquet", "checksum", "workers",
              "seconds", "tokens_per_second")


def merge(spec: dict) -> dict:
    if not spec["groups"]:
        die(f"{spec['source']}: no parquet files to tokenize")
    groups = {g: read_json(f) for g, f in spec["groups"].items()}
    stray = sorted(p.name for p in Path(spec["folder"]).iterdir()
                   if p.name not in groups) if Path(spec["folder"]).is_dir() else []
    if stray:
        die(f"{spec['folder']} holds {', '.join(stray)}, no shard group of source "
            f"{spec['source']} now (groups {', '.join(groups)}): pretraining would read it; "
            "delete it")
    files = [{**f, "file": f"{g}/{f['file']}", "group": g}
             for g, s in groups.items() for f in s["files"]]
    first = next(iter(groups.values()))
    seconds = sum(s["seconds"] for s in groups.values())
    tokens = sum(s["tokens"] for s in groups.values())
    return {
        "source": spec["source"], "folder": spec["folder"], "input": first["input"],
        "tokenizer": first["tokenizer"], "eos_token": first["eos_token"],
        "text_key": first["text_key"],
        "documents": sum(s["documents"] for s in groups.values()), "tokens": tokens,
        "parquet_files": sum(s["parquet_files"] for s in groups.values()),
        "n_groups": len(groups), "seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
        "groups": [{k: s[k] for k in GROUP_KEYS} for s in groups.values()],
        "files": files, "versions": versions(),
    }


def main(argv=None):
    spec, _ = spec_cli(__doc__, argv, counts=())
    stats = merge(spec)
    write_json(spec["output"], stats)
    print(f"{stats['source']}: {stats['n_groups']} groups, {stats['documents']} documents, "
          f"{stats['tokens']} tokens")


if __name__ == "__main__":
    main()
