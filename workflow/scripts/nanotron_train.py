"""Launch nanotron's run_train.py for one language, then turn its log into the metrics CSV.

One torchrun per node (``srun`` starts them on a multi-node Slurm allocation; see the slurm
profile), rendezvous on the allocation's first node. nanotron resumes from ``latest.txt`` of
the checkpoints root, so re-running after a time limit continues the run; the run directory's
``run.json`` (zflow.identity) holds the run's identity, and checkpoints of other settings are
moved aside first. Offline by default (HF_*_OFFLINE, WANDB_MODE=disabled) and DEBUG_DL=0 for
local dataset folders, as nanotron needs.

Before torchrun starts, in seconds and all in one error (zflow.nanotron.environment_problems):
the checkout (run_train.py, not a nanotron whose Llama init crashes), ``import nanotron`` and
flash-attn, datatrove's DatatroveFolderDataset signature against the keywords nanotron passes,
and the tokenizer loading offline. A run whose ``latest.txt`` already reached ``train_steps`` is
not launched (nanotron would refuse it: ``train_steps > last_train_step``): the job only writes
the metrics and summary from the existing log.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from zflow import identity, launch, metrics, nanotron, paths, tokenized
from zflow.io import die, spec_cli, versions, write_json, write_text


def claim_checkpoints(run_dir: Path, ident: str, folders) -> None:
    """Make the run directory this run's; checkpoints of other settings or data move aside
    (nanotron resumes from whatever ``latest.txt`` points at)."""
    keyed_on = {"identity": ident, "data": [tokenized.file_stats(f) for f in folders]}
    identity.claim(run_dir, identity.fingerprint(keyed_on), [Path(paths.NANOTRON_CHECKPOINTS).name],
                   keyed_on)


def launch_nanotron(spec: dict) -> None:
    run_train = Path(spec["checkout"]) / "run_train.py"
    env = dict(os.environ, CUDA_DEVICE_MAX_CONNECTIONS="1", DEBUG_DL="0", WANDB_MODE="disabled",
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = launch.command([str(run_train), "--config-file", spec["config"]], spec["nodes"],
                         spec["gpus_per_node"])
    if cmd[0] == "python":  # nanotron always runs under torchrun, even on one GPU
        cmd = ["torchrun", "--standalone", "--nproc_per_node=1", *cmd[1:]]
    print(" ".join(cmd), flush=True)
    Path(spec["log"]).parent.mkdir(parents=True, exist_ok=True)
    with open(spec["log"], "a") as log:
        rc = subprocess.call(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    if rc:
        die(f"nanotron exited with {rc}; see {spec['log']} (re-run to resume from the last "
            "checkpoint)")


def main(argv=None):
    spec, _ = spec_cli(__doc__, argv, counts=())
    cfg = yaml.safe_load(Path(spec["config"]).read_text())
    folders = nanotron.stage_folders(cfg)
    claim_checkpoints(Path(spec["run_dir"]), spec["identity"], folders)
    root = Path(cfg["checkpoints"]["checkpoints_path"])
    train_steps = cfg["tokens"]["train_steps"]
    last = nanotron.finished_step(root)
    if last is not None and last >= train_steps:
        print(f"nanotron not launched: {root}/latest.txt is at step {last} and train_steps is "
              f"{train_steps}, so the run is finished (nanotron would refuse to resume it); "
              f"metrics and summary from {spec['log']}", flush=True)
    else:
        problems = nanotron.environment_problems(spec, cfg)
        if problems:
            die("nanotron would not start; nothing was launched:\n  - " + "\n  - ".join(problems))
        launch_nanotron(spec)
    rows = []
    if Path(spec["log"]).exists():
        with open(spec["log"], errors="replace") as f:
            rows = nanotron.parse_log(f, spec["peak_tflops"])
    steps = nanotron.complete_steps(root)
    write_text(spec["metrics"], metrics.to_csv(nanotron.metrics_rows(rows), metrics.PRETRAIN))
    write_json(spec["summary"], {
        "backend": "nanotron", "final_step": cfg["tokens"]["train_steps"], "checkpoints": steps,
        "checkpoints_dir": str(root), "last_logged": rows[-1] if rows else None,
        "config": spec["config"], "identity": spec["identity"], "versions": versions()})
    print(json.dumps({"checkpoints": len(steps), "logged_steps": len(rows)}))


if __name__ == "__main__":
    main()
