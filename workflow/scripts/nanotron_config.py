"""Write the nanotron YAML of one language and check it before any GPU is spent.

Pre-flight (each failure is one line naming the key or folder): unknown nanotron keys,
dp*tp*pp against the job's GPUs, heads against tp, vocab sizes, every tokenized folder's
tokenizer name (nanotron loads it by name) and sample count against weight x train steps x
global batch. ``checkpoints.resume_checkpoint_path`` is the checkpoints root, so re-running
the launch after a Slurm time limit resumes from ``latest.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zflow import nanotron  # noqa: E402
from zflow.io import die, write_text  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--spec", required=True, help="JSON pretraining spec (zflow.config.pretrain_spec)")
    p.add_argument("--checkpoints-path", required=True)
    p.add_argument("--output", required=True, help="the nanotron YAML to write")
    p.add_argument("--tokenizer-vocab", type=int, default=None)
    p.add_argument("--no-folder-checks", action="store_true",
                   help="skip the checks that read the tokenized folders")
    return p.parse_args(argv)


def build(spec: dict, checkpoints_path: str) -> dict:
    nano = spec["pretrain"]["nanotron"]
    return nanotron.make_config(
        model=spec["model"], pretrain=spec["pretrain"], nano=nano, tokenizer=spec["tokenizer"],
        folders=[os.path.abspath(d["folder"]) for d in spec["data"]],
        weights=[d["weight"] for d in spec["data"]],
        checkpoints_path=os.path.abspath(checkpoints_path),
        run=nano.get("run", f"zflow-{spec['lang']}"), project=nano.get("project", "zflow"),
    )


def main(argv=None):
    args = parse_args(argv)
    spec = json.loads(args.spec)
    cfg = build(spec, args.checkpoints_path)
    nano = spec["pretrain"]["nanotron"]
    errors = nanotron.preflight(cfg, nano["nodes"] * nano["gpus_per_node"], args.tokenizer_vocab,
                                check_folders=not args.no_folder_checks)
    if errors:
        die("nanotron pre-flight failed:\n  - " + "\n  - ".join(errors))
    write_text(args.output, yaml.safe_dump(cfg, sort_keys=True))
    print(f"nanotron config written to {args.output}")


if __name__ == "__main__":
    main()
