"""`evals_<lang>` evaluates the complete checkpoints on disk while pretraining still runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from conftest import copy_workflow, env, load_config, snakemake, spine, write_config


def evaluated(out: str) -> set[str]:
    return set(re.findall(r"wildcards: model=(ita-step\d+), task=\w+", out))


def test_evaluate_while_training(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    cfg = load_config(wd)
    spine(cfg)
    lc = cfg["languages"]["ita"]
    lc["pretrain"].update(train_steps=2000, checkpoint_interval=20, lr_warmup_steps=5,
                          lr_decay_starting_step=1000, lr_decay_steps=1000)
    lc["eval"].update(tasks=["arc_it"], checkpoints=[20, 2000])
    write_config(wd, cfg)

    # pretraining through Snakemake, stopped (SIGTERM, as Slurm does at the time limit) once
    # its first checkpoint is complete
    summary = "results/pretrain/ita/train_summary.json"
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(wd),
           "--snakefile", str(wd / "Snakefile"), summary]
    p = subprocess.Popen(cmd, cwd=wd, env=env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    first = wd / "results/pretrain/ita/checkpoints/step-20/zflow_checkpoint.json"
    deadline = time.time() + 900
    while not first.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.5)
    os.killpg(p.pid, signal.SIGTERM)
    p.wait(timeout=120)
    assert first.exists(), "no checkpoint before the stop"
    on_disk = sorted((wd / "results/pretrain/ita/checkpoints").glob("step-*"))
    assert [d.name for d in on_disk if not d.name.endswith(".tmp")] == ["step-20"], on_disk
    (wd / "results/pretrain/ita/checkpoints/step-40.tmp").mkdir(exist_ok=True)  # half-written
    snakemake(wd, "--unlock")

    dry = snakemake(wd, "evals_ita", "--dry-run").stdout
    assert "rule pretrain:" not in dry and "rule tokenize:" not in dry
    assert evaluated(dry) == {"ita-step20"}
    snakemake(wd, "evals_ita")
    assert (wd / "results/evals/ita-step20/arc_it.json").exists()
    assert not (wd / summary).exists()
    assert "Nothing to be done" in snakemake(wd, "evals_ita", "--dry-run").stdout

    # training finishes (shortened to 60 steps): only the new checkpoints are evaluated
    lc["pretrain"].update(train_steps=60)
    lc["eval"]["checkpoints"] = [20, 60]
    write_config(wd, cfg)
    p = snakemake(wd, summary)
    log = (wd / "results/logs/pretrain/ita.log").read_text()
    assert "resuming from" in log and "step 20" in log, log[-2000:]
    dry = snakemake(wd, "evals_ita", "--dry-run").stdout
    assert "rule pretrain:" not in dry
    assert evaluated(dry) == {"ita-step40", "ita-step60"}
    snakemake(wd, "evals_ita")
    # the full target has nothing left to evaluate but the report
    dry = snakemake(wd, "all_ita", "--dry-run").stdout
    assert evaluated(dry) == set() and "rule report:" in dry
