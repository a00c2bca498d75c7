"""Launch nanotron's run_train.py for one language, then turn its log into the metrics CSV.

One torchrun per node (``srun`` starts them on a multi-node Slurm allocation; see the slurm
profile), rendezvous on the allocation's first node. nanotron resumes from ``latest.txt`` of
the checkpoints root, so re-running after a time limit continues the run. Offline by default
(HF_*_OFFLINE, WANDB_MODE=disabled) and DEBUG_DL=0 for local dataset folders, as nanotron
main needs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zflow import launch, nanotron  # noqa: E402
from zflow.io import die, read_json, versions, write_json, write_text  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, help="the nanotron YAML")
    p.add_argument("--checkout", required=True, help="nanotron git checkout")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpus-per-node", type=int, required=True)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--log", required=True, help="nanotron's own log (appended across resumes)")
    p.add_argument("--peak-tflops", type=float, default=312.0)
    p.add_argument("--metrics", required=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--identity", default=None,
                   help="the run's identity (its settings); checkpoints of another are moved aside")
    return p.parse_args(argv)


def claim_checkpoints(root: Path, identity: str) -> None:
    """Record the run's identity beside its checkpoints; those of other settings move aside.

    nanotron resumes from whatever ``latest.txt`` points at, so a run with other settings must
    not find the old checkpoints: they go to ``<run>/superseded/<time>/`` (never deleted).
    """
    ident = root / "run.json"
    if root.exists() and any(root.iterdir()):
        old = read_json(ident).get("identity") if ident.exists() else None
        if old != identity:
            dest = root.parent / "superseded" / time.strftime("%Y%m%d-%H%M%S")
            dest.mkdir(parents=True)
            shutil.move(str(root), str(dest / root.name))
            print(f"settings changed: previous checkpoints moved to {dest}", flush=True)
    root.mkdir(parents=True, exist_ok=True)
    write_json(ident, {"identity": identity})


def main(argv=None):
    args = parse_args(argv)
    run_train = Path(args.checkout) / "run_train.py"
    if not run_train.exists():
        die(f"pretrain.nanotron.checkout: no run_train.py in {args.checkout}")
    import yaml

    if args.identity:
        cfg = yaml.safe_load(Path(args.config).read_text())
        claim_checkpoints(Path(cfg["checkpoints"]["checkpoints_path"]), args.identity)
    env = dict(os.environ, CUDA_DEVICE_MAX_CONNECTIONS="1", DEBUG_DL="0", WANDB_MODE="disabled",
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = launch.command([str(run_train), "--config-file", args.config], args.nodes,
                         args.gpus_per_node, port=args.port)
    if cmd[0] == "python":  # nanotron always runs under torchrun, even on one GPU
        cmd = ["torchrun", "--standalone", "--nproc_per_node=1", *cmd[1:]]
    print(" ".join(cmd), flush=True)
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    with open(args.log, "a") as log:
        rc = subprocess.call(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    if rc:
        die(f"nanotron exited with {rc}; see {args.log} (re-run to resume from the last checkpoint)")
    cfg = yaml.safe_load(Path(args.config).read_text())
    with open(args.log, errors="replace") as f:
        rows = nanotron.parse_log(f, args.peak_tflops)
    root = Path(cfg["checkpoints"]["checkpoints_path"])
    steps = []
    for d in sorted(root.iterdir()) if root.exists() else []:
        if not d.is_dir():
            continue
        try:
            steps.append(nanotron.check_complete(d))
        except nanotron.IncompleteCheckpoint:
            continue
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=nanotron.LOG_FIELDS, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    write_text(args.metrics, buf.getvalue())
    write_json(args.summary, {
        "backend": "nanotron", "final_step": cfg["tokens"]["train_steps"],
        "checkpoints": sorted(steps), "checkpoints_dir": str(root),
        "last_logged": rows[-1] if rows else None, "config": args.config,
        "versions": versions(),
    })
    print(json.dumps({"checkpoints": len(steps), "logged_steps": len(rows)}))


if __name__ == "__main__":
    main()
