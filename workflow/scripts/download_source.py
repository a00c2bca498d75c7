"""Download the data files of one hub dataset (a source, or a chat dataset) with huggingface_hub.

``snapshot_download`` with allow patterns into the source's directory: resumable (files
already there are kept), the token only from the environment (HF_TOKEN). Writes a manifest
of the files it holds when complete.
"""

from __future__ import annotations

import os
from pathlib import Path

from zflow.io import die, spec_cli, versions, write_json

DATA_SUFFIXES = (".parquet", ".jsonl", ".json")


def main(argv=None):
    spec, args = spec_cli(__doc__, argv, counts=("workers",))
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # this job is the one that downloads
        os.environ[var] = "0"
    from huggingface_hub import snapshot_download

    path = snapshot_download(repo_id=spec["repo_id"], repo_type="dataset",
                             revision=spec["revision"], allow_patterns=spec["allow_patterns"],
                             local_dir=spec["local_dir"], max_workers=args.workers)
    files = sorted(str(p.relative_to(path)) for p in Path(path).rglob("*")
                   if p.is_file() and p.suffix in DATA_SUFFIXES and ".cache" not in p.parts)
    if not files:
        die(f"{spec['repo_id']}: no data file ({', '.join(DATA_SUFFIXES)}) matches "
            f"{spec['allow_patterns']}")
    write_json(spec["manifest"], {**spec, "files": files,
                                  "versions": versions(("huggingface_hub",))})
    print(f"{spec['repo_id']}: {len(files)} data files in {spec['local_dir']}")


if __name__ == "__main__":
    main()
