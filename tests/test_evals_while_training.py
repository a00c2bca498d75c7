"""`evals_<lang>` evaluates the complete checkpoints on disk while pretraining still runs."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

from conftest import (copy_workflow, env, load_config, scheduled, snakemake, spine,
                      write_config)


def evaluated(out: str) -> set[str]:
    return set(re.findall(r"wildcards: model=(ita-step\d+), task=\w+", out))


def test_evaluate_while_training(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    cfg = load_config(wd)
    spine(cfg)
    lc = cfg["languages"]["ita"]
    lc["pretrain"].pop("stages")  # the decay stage at 150 is beyond the shortened run below
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
    # the SIGTERM made the job save the step it was on (zflow.limits): it resumes there
    resumed = re.search(r"resuming from .* \(step (\d+)\)", log)
    assert resumed and int(resumed.group(1)) >= 20, log[-2000:]
    dry = snakemake(wd, "evals_ita", "--dry-run").stdout
    assert "rule pretrain:" not in dry
    assert evaluated(dry) == {"ita-step40", "ita-step60"}
    snakemake(wd, "evals_ita")
    # the full target has nothing left to evaluate but the report
    dry = snakemake(wd, "all_ita", "--dry-run").stdout
    assert evaluated(dry) == set() and "rule report:" in dry


def test_evals_inside_the_running_target(tmp_path):
    """pretrain.segment_steps: one `snakemake all_ita`-style run evaluates a checkpoint while
    the next segment of the same pretraining run trains (no second process, no lock)."""
    wd = copy_workflow(tmp_path / "wf")
    cfg = load_config(wd)
    spine(cfg)
    lc = cfg["languages"]["ita"]
    lc["pretrain"].update(train_steps=240, checkpoint_interval=40, segment_steps=80,
                          lr_warmup_steps=5, lr_decay_starting_step=120, lr_decay_steps=120)
    lc["eval"].update(tasks=["arc_it"], checkpoints=[80, 240])
    write_config(wd, cfg)
    target = [f"results/evals/ita-step{s}/arc_it.json" for s in (80, 240)]

    jobs = scheduled(wd, target[1])
    assert {j for j in jobs if j[0].startswith("pretrain")} == {
        ("pretrain_segment", "lang=ita, step=80"), ("pretrain_segment", "lang=ita, step=160"),
        ("pretrain", "lang=ita")}
    p = snakemake(wd, "--cores", "4", *target)  # room for an eval beside a training job
    out = p.stdout + p.stderr
    assert "LockException" not in out
    run = wd / "results/pretrain/ita"
    segments = {int(f.stem.split("-")[1]): f.stat().st_mtime
                for f in (run / "segments").glob("step-*.json")}
    assert sorted(segments) == [80, 160]
    starts = {a["step"]: a["time"] for a in map(json.loads,
              (run / "attempts.jsonl").read_text().splitlines()) if a["event"] == "start"}
    assert sorted(starts) == [0, 80, 160]  # each job resumed where the one before it ended
    written = (wd / target[0]).stat().st_mtime
    # step 80 was evaluated while the segment 81-160 was training
    assert starts[80] < written < segments[160], (starts, written, segments)
    # one job each: three pretraining jobs, two evals
    assert len(re.findall(r"^(?:local)?checkpoint pretrain_segment:", out, re.M)) == 2
    assert len(re.findall(r"^(?:local)?checkpoint pretrain:", out, re.M)) == 1
    assert len(re.findall(r"^(?:local)?rule evaluate:", out, re.M)) == 2
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["checkpoints"] == [40, 80, 120, 160, 200, 240]
    with open(run / "train_metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, 241))
    assert "Nothing to be done" in snakemake(wd, *target, "--dry-run").stdout
