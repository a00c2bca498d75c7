"""Launch nanotron's run_train.py for one language, then turn its log into the metrics CSV.

Everything the job starts runs in the nanotron environment's interpreter
(``languages.<lang>.pretrain.nanotron.python``; whatever python runs this script — the
workflow's .venv under `make run` or with .venv active, a conda env under --sdm): the pre-flight,
torchrun as ``<python> -m torch.distributed.run`` (one per node: ``srun`` starts them on a
multi-node Slurm allocation; see the slurm profile; rendezvous on the allocation's first node),
and the build of nanotron's C++ data helper (zflow.nanotron.build_data_helper). nanotron resumes
from ``latest.txt`` of the checkpoints root, so re-running after a time limit continues the run;
the run directory's ``run.json`` (zflow.identity) holds the run's identity, and checkpoints of
other settings are moved aside first. Offline by default (HF_*_OFFLINE, WANDB_MODE=disabled) and
DEBUG_DL=0 for local dataset folders, as nanotron needs.

Before torchrun starts, in seconds and all in one error (zflow.nanotron.environment_problems, run
in that interpreter): the interpreter (set, executable, with torch), the checkout (run_train.py,
not a nanotron whose Llama init crashes), ``import nanotron`` and flash-attn, datatrove's
DatatroveFolderDataset signature against the keywords nanotron passes, and the tokenizer loading
offline. A run whose ``latest.txt`` already reached ``train_steps`` is not launched (nanotron
would refuse it: ``train_steps > last_train_step``): the job only writes the metrics and summary
from the existing log. What a kill left half-saved is mended before and after nanotron runs
(zflow.nanotron.WRITE_ORDER): an empty latest.txt, a step without model_config.json.

    python nanotron_train.py --check --configfile config/zagreus.yaml [--lang ita]

runs the same pre-flight for every nanotron language of a config, on the node you run it on,
without launching anything (README, "Building the nanotron environment").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from zflow import identity, launch, metrics, nanotron, paths, tokenized
from zflow.io import die, spec_cli, versions, write_json, write_text
from zflow import retention  # issue 28: checkpoint retention


def claim_checkpoints(run_dir: Path, ident: str, folders) -> None:
    """Make the run directory this run's; checkpoints of other settings or data move aside
    (nanotron resumes from whatever ``latest.txt`` points at)."""
    keyed_on = {"identity": ident, "data": [tokenized.file_stats(f) for f in folders]}
    identity.claim(run_dir, identity.fingerprint(keyed_on), [Path(paths.NANOTRON_CHECKPOINTS).name],
                   keyed_on)


def launch_env(python: str) -> dict:
    """nanotron's environment variables; the interpreter's folder first on PATH, so that what
    nanotron itself shells out to (``make`` of its data helper: python3, python3-config) is the
    environment's too."""
    return dict(os.environ, CUDA_DEVICE_MAX_CONNECTIONS="1", DEBUG_DL="0", WANDB_MODE="disabled",
                HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                PATH=f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def launch_command(spec: dict) -> list[str]:
    """``<python> -m torch.distributed.run ... run_train.py --config-file <yaml>`` (through srun
    on several nodes), always under torchrun, even on one GPU."""
    run_train = Path(spec["checkout"]) / "run_train.py"
    return launch.command([str(run_train), "--config-file", spec["config"]], spec["nodes"],
                          spec["gpus_per_node"], python=spec["python"], always_torchrun=True)


def launch_nanotron(spec: dict) -> None:
    cmd = launch_command(spec)
    print(" ".join(cmd), flush=True)
    Path(spec["log"]).parent.mkdir(parents=True, exist_ok=True)
    with open(spec["log"], "a") as log:
        rc = subprocess.call(cmd, env=launch_env(spec["python"]), stdout=log,
                             stderr=subprocess.STDOUT)
    if rc:
        die(f"nanotron exited with {rc}; see {spec['log']} (re-run to resume from the last "
            "checkpoint)")


def mend(root: Path) -> None:
    """What a kill after latest.txt left out of a checkpoint (zflow.nanotron.WRITE_ORDER)."""
    for step, files in nanotron.complete_all(root).items():
        print(f"step {step}: {', '.join(files)} written from its config.yaml (nanotron was "
              "stopped after latest.txt, before it)", flush=True)


def check(argv) -> int:
    """``--check --configfile FILE... [--lang L]``: the job's pre-flight for each nanotron
    language of the config, here; nothing is launched. Exit status 1 on any problem."""
    import argparse

    from snakemake.utils import update_config
    from zflow.plan import ConfigError, Plan

    p = argparse.ArgumentParser(prog="nanotron_train.py --check")
    p.add_argument("--check", action="store_true", required=True)
    p.add_argument("--configfile", nargs="+", required=True)
    p.add_argument("--lang", nargs="*")
    a = p.parse_args(argv)
    cfg: dict = {}
    for f in a.configfile:
        update_config(cfg, yaml.safe_load(Path(f).read_text()) or {})
    plan = Plan(cfg, check_files=False)
    langs = [lang for lang in plan.config["languages"]
             if plan.backend(lang) == "nanotron" and (not a.lang or lang in a.lang)]
    if not langs:
        print("no language with pretrain.backend nanotron", file=sys.stderr)
        return 1
    failed = False
    for lang in langs:
        try:
            spec = plan.spec("pretrain_nanotron", lang=lang)
        except ConfigError as e:
            print(f"{lang}: {e}", flush=True)
            failed = True
            continue
        spec["python"] = os.path.abspath(spec["python"])
        tok = plan.tokenizer_ref(plan.lang(lang)["tokenizer"])
        problems = nanotron.environment_problems(spec, {"tokenizer": {
            "tokenizer_name_or_path": tok}})
        if not problems and not nanotron.is_standin(spec["checkout"]):
            problems = [p for p in [nanotron.build_data_helper(
                spec["python"], nanotron.python_key(spec))] if p]
        print(f"{lang}: " + ("nanotron environment OK" if not problems else
                             "\n  - ".join(["problems:", *problems])), flush=True)
        failed = failed or bool(problems)
    return int(failed)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--check" in argv:
        raise SystemExit(check(argv))
    spec, _ = spec_cli(__doc__, argv, counts=())
    cfg = yaml.safe_load(Path(spec["config"]).read_text())
    folders = nanotron.stage_folders(cfg)
    claim_checkpoints(Path(spec["run_dir"]), spec["identity"], folders)
    root = Path(cfg["checkpoints"]["checkpoints_path"])
    train_steps = cfg["tokens"]["train_steps"]
    fixed = nanotron.repair_latest(root)  # an empty latest.txt: nanotron could not resume
    if fixed:
        print(fixed, flush=True)
    last = nanotron.finished_step(root)
    if last is not None and last >= train_steps:
        print(f"nanotron not launched: {root}/latest.txt is at step {last} and train_steps is "
              f"{train_steps}, so the run is finished (nanotron would refuse to resume it); "
              f"metrics and summary from {spec['log']}", flush=True)
    else:
        if spec.get("python"):  # relative to the workflow's folder, the same on every node
            spec = {**spec, "python": os.path.abspath(spec["python"])}
        problems = nanotron.environment_problems(spec, cfg)
        if not problems and not nanotron.is_standin(spec["checkout"]):
            problems = [p for p in [nanotron.build_data_helper(
                spec["python"], nanotron.python_key(spec))] if p]
        if problems:
            die("nanotron would not start; nothing was launched:\n  - " + "\n  - ".join(problems))
        mend(root)
        # a resubmitted job (time limit) first removes what the ones before it left
        retention.apply_spec(spec)
        launch_nanotron(spec)
    mend(root)
    retention.apply_spec(spec)  # pretrain.keep_checkpoints: zflow.retention, logged
    rows, launches = [], [1]
    if Path(spec["log"]).exists():
        with open(spec["log"], errors="replace") as f:
            rows = nanotron.parse_log(f, spec["peak_tflops"])
            f.seek(0)
            launches = nanotron.launch_starts(f)
    steps = nanotron.complete_steps(root)
    write_text(spec["metrics"], metrics.to_csv(nanotron.metrics_rows(rows), metrics.PRETRAIN))
    # tokens seen per source, and of those the repeats: nanotron restarts a stage's folders
    # from their first sample (zflow.nanotron.stage_reads); through the last step trained
    through = max([rows[-1]["step"] if rows else 0, nanotron.finished_step(root) or 0])
    data = nanotron.source_reads(cfg, through, launches)
    write_json(spec["summary"], {
        "backend": "nanotron", "final_step": cfg["tokens"]["train_steps"], "checkpoints": steps,
        "checkpoints_dir": str(root), "last_logged": rows[-1] if rows else None,
        "data_through_step": through, **data,
        "config": spec["config"], "identity": spec["identity"], "versions": versions()})
    print(json.dumps({"checkpoints": len(steps), "logged_steps": len(rows)}))


if __name__ == "__main__":
    main()
