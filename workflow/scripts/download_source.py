"""Download the data files of one hub dataset (a source, or a chat dataset) with huggingface_hub.

``snapshot_download`` with allow patterns into the source's directory: resumable (files
already there are kept), the token only from the environment (HF_TOKEN). Writes a manifest
of the files it holds when complete.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zflow.io import die, versions, write_json  # noqa: E402


DATA_SUFFIXES = (".parquet", ".jsonl", ".json")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repo-id", required=True)
    p.add_argument("--allow", action="append", required=True, help="allow pattern (repeatable)")
    p.add_argument("--revision", default=None)
    p.add_argument("--local-dir", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--workers", type=int, default=8)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # this job is the one that downloads
        os.environ[var] = "0"
    from huggingface_hub import snapshot_download

    path = snapshot_download(repo_id=args.repo_id, repo_type="dataset", revision=args.revision,
                             allow_patterns=args.allow, local_dir=args.local_dir,
                             max_workers=args.workers)
    files = sorted(str(p.relative_to(path)) for p in Path(path).rglob("*")
                   if p.is_file() and p.suffix in DATA_SUFFIXES and ".cache" not in p.parts)
    if not files:
        die(f"{args.repo_id}: no data file ({', '.join(DATA_SUFFIXES)}) matches {args.allow}")
    write_json(args.manifest, {"repo_id": args.repo_id, "allow_patterns": args.allow,
                               "revision": args.revision, "local_dir": args.local_dir,
                               "files": files, "versions": versions(("huggingface_hub",))})
    print(f"{args.repo_id}: {len(files)} parquet files in {args.local_dir}")


if __name__ == "__main__":
    main()
