"""Write the nanotron YAML of one language and check it before any GPU is spent.

Pre-flight (each failure is one line naming the key or folder): unknown nanotron keys,
dp*tp*pp against the job's GPUs, heads against tp, vocab sizes, every tokenized folder's
tokenizer name (nanotron loads it by name) and sample count against weight x train steps x
global batch. ``checkpoints.resume_checkpoint_path`` is the checkpoints root, so re-running
the launch after a Slurm time limit resumes from ``latest.txt``. ``dataset_weights`` is always
written (normalised), ``save_final_state`` whenever the last step is no checkpoint step. The
keys are those of the nanotron the workflow pins (zflow.nanotron.NANOTRON_COMMIT); the launch
environment is checked by the pretrain_nanotron job (nanotron_train.py).
"""

from __future__ import annotations

import argparse
import os

import yaml

from zflow import nanotron
from zflow.mixture import spec_stages
from zflow.io import die, read_json, write_text


def build(spec: dict) -> dict:
    """The nanotron YAML (as a dict) of a nanotron_config spec (zflow.plan)."""
    nano = spec["pretrain"]["nanotron"]
    stages = [{"name": st["name"], "start_step": st["start_step"],
               "folders": [os.path.abspath(d["folder"]) for d in st["data"]],
               "weights": [d["weight"] for d in st["data"]]}
              for st in spec_stages(spec, nano["stage_name"])]
    return nanotron.make_config(
        model=spec["model"], pretrain=spec["pretrain"], nano=nano, tokenizer=spec["tokenizer"],
        stages=stages, checkpoints_path=os.path.abspath(spec["checkpoints_path"]),
        run=nano.get("run", f"zflow-{spec['lang']}"), project=nano["project"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--spec", required=True, help="the job's spec (JSON), written by zflow.plan")
    p.add_argument("--no-folder-checks", action="store_true",
                   help="skip the checks that read the tokenized folders")
    args = p.parse_args(argv)
    spec = read_json(args.spec)
    cfg = build(spec)
    nano = spec["pretrain"]["nanotron"]
    errors = nanotron.preflight(cfg, nano["nodes"] * nano["gpus_per_node"],
                                spec["tokenizer_vocab"], check_folders=not args.no_folder_checks)
    if errors:
        die("nanotron pre-flight failed:\n  - " + "\n  - ".join(errors))
    write_text(spec["output"], yaml.safe_dump(cfg, sort_keys=True))
    print(f"nanotron config written to {spec['output']}")


if __name__ == "__main__":
    main()
