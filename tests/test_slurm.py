"""The embedded default through a real Slurm controller (two emulated nodes, fake GPUs)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess

import pytest
from conftest import copy_workflow, load_config, snakemake, spine, write_config
from slurm_cluster import Cluster, install

PROFILE = """\
executor: slurm
jobs: 6
latency-wait: 15
rerun-incomplete: true
slurm-status-command: squeue
slurm-init-seconds-before-status-checks: 2
default-resources:
  slurm_partition: debug
  runtime: 30
  mem_mb: 600
  cpus_per_task: 1
set-resources:
  pretrain:
    gres: "gpu:1"
    tasks_per_gpu: 0
    mpi: srun
    mem_mb: 1500
  evaluate:
    gpu: 1
    mem_mb: 1500
"""


@pytest.fixture(scope="module")
def cluster():
    why = install()
    if why:
        print(f"SKIPPED real-Slurm tests: {why}")
        pytest.skip(f"no Slurm on this machine: {why}")
    c = Cluster()
    try:
        c.start()
    except Exception as e:  # noqa: BLE001
        c.stop()
        pytest.fail(f"could not start the test Slurm cluster: {e}")
    os.environ["ZFLOW_TEST_SLURM_UP"] = "1"  # the real scontrol, not conftest's stand-in
    yield c
    os.environ.pop("ZFLOW_TEST_SLURM_UP", None)
    c.stop()


def test_embedded_default_through_slurm(cluster, tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    cfg = load_config(wd)
    lc = cfg["languages"]["ita"]
    lc["pretrain"].pop("stages")  # the decay stage at 150 is beyond 60 steps
    lc["pretrain"].update(nodes=2, nproc_per_node=1, train_steps=60, checkpoint_interval=30,
                          lr_decay_starting_step=30, lr_decay_steps=30, lr_warmup_steps=5)
    lc["eval"]["checkpoints"] = [30, 60]
    lc["eval"]["tasks"] = lc["eval"]["tasks"][:2]  # each eval job is ~15 s of imports
    spine(cfg)  # post-training runs in the demo test; here the spine
    write_config(wd, cfg)
    (wd / "profiles" / "test-slurm").mkdir()
    (wd / "profiles" / "test-slurm" / "config.v8+.yaml").write_text(PROFILE)
    before = set(re.findall(r"JobId=(\d+)", cluster.log()))
    p = snakemake(wd, "--profile", "profiles/test-slurm", "all", timeout=1800, check=False)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-6000:] + cluster.log()[-3000:]

    # every job but the local report went through sbatch
    submitted = set(re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", cluster.log())) - before
    # tokenizer, tokenize x6 (fineweb2_ita in three shard groups; tokenize_stats is local),
    # pretrain, evals
    n_jobs = 1 + 6 + 1 + 2 * 2
    assert len(submitted) == n_jobs, (sorted(submitted), out[-3000:])

    # the pretraining job ran on both nodes: world size 2, one torchrun per node
    summary = json.loads((wd / "results/pretrain/ita/train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["final_step"] == 60
    assert summary["checkpoints"] == [30, 60]
    log = (wd / "results/logs/pretrain/ita.log").read_text()
    assert "srun --nodes=2 --ntasks=2 --ntasks-per-node=1 torchrun --nnodes=2" in log

    # GPU-tagged evals saw the GRES devices, inside Slurm jobs
    for step in (30, 60):
        for task in lc["eval"]["tasks"]:
            e = json.loads((wd / f"results/evals/ita-step{step}/{task}.json").read_text())
            assert e["settings"]["cuda_visible_devices"] not in (None, "")
            assert e["settings"]["slurm_job_id"] in submitted
            assert 0.0 <= e["value"] <= 1.0
    md = (wd / "results/reports/ita/progression.md").read_text()
    assert "| 30 |" in md and "| 60 |" in md
    squeue = subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout
    assert squeue.strip() == ""  # nothing left behind


def test_pretraining_through_time_limits(cluster, tmp_path):
    """A two-minute time limit: the pretraining job saves the step it is on before Slurm's limit,
    requeues itself (same job id) and resumes there, until the run is done; the metrics have
    no gap and no repeat and match an uninterrupted run.

    Two minutes, not one: an attempt's fixed cost (the job's Snakemake, two ranks importing
    torch on two cores, the margin, the save) is most of a minute, so one-minute attempts train
    a few steps each and their number (and this test's time) swings with the machine's speed."""
    wd = copy_workflow(tmp_path / "wf")
    cfg = load_config(wd)
    lc = cfg["languages"]["ita"]
    # two nodes, one process each: the ranks agree on the step to stop at (an all-reduce); a
    # smaller model, so that each attempt trains many steps
    lc["model"].update(hidden_size=64, intermediate_size=128, num_hidden_layers=2)
    spine(cfg)
    cfg["time_limits"] = {"save_before_s": 25}
    summary = "results/pretrain/ita/train_summary.json"

    def with_steps(steps, nodes, nproc):
        q = steps // 4  # checkpoints every quarter, the decay over the second half
        pre = {**lc["pretrain"], "nodes": nodes, "nproc_per_node": nproc, "train_steps": steps,
               "checkpoint_interval": q, "sequence_length": 64, "micro_batch_size": 8,
               "lr_decay_starting_step": 2 * q, "lr_decay_steps": 2 * q}
        pre.pop("stages", None)  # the decay stage starts at a fixed step
        return {**cfg, "languages": {"ita": {**lc, "pretrain": pre,
                                             "eval": {**lc["eval"], "checkpoints": [q, steps]}}}}

    # The steps are sized to this machine, so that the run needs two or three attempts at any
    # speed: a short local run (the same two processes, torchrun on one machine) measures the
    # seconds per step, then the uninterrupted reference run trains ~110 s (an attempt of two
    # minutes has ~60-90 s for training), in the same folder (its tokenized data is reused;
    # the new settings move the short run aside).
    ref = copy_workflow(tmp_path / "ref")
    write_config(ref, with_steps(40, 1, 2))
    snakemake(ref, summary)
    elapsed = [float(r["elapsed_s"]) for r in csv.DictReader(
        (ref / "results/pretrain/ita/train_metrics.csv").read_text().splitlines())]
    per_step = (elapsed[39] - elapsed[9]) / 30
    steps = min(1200, max(160, round(110 / per_step / 4) * 4))
    print(f"{per_step:.3f} s per step: {steps} steps")
    write_config(ref, with_steps(steps, 1, 2))
    snakemake(ref, summary)
    write_config(wd, with_steps(steps, 2, 1))
    q = steps // 4
    snakemake(wd, *(f"results/tokenized/{lc['tokenizer']}/{s}.stats.json" for s in lc["data"]))

    (wd / "profiles" / "test-slurm").mkdir()
    (wd / "profiles" / "test-slurm" / "config.v8+.yaml").write_text(
        PROFILE.replace("    mpi: srun\n    mem_mb: 1500\n",
                        "    mpi: srun\n    mem_mb: 1500\n    runtime: 2\n"))
    p = snakemake(wd, "--profile", "profiles/test-slurm", summary, timeout=1800, check=False)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-6000:] + cluster.log()[-3000:]

    run = wd / "results/pretrain/ita"
    attempts = [json.loads(x) for x in (run / "attempts.jsonl").read_text().splitlines()]
    starts = [a for a in attempts if a["event"] == "start"]
    stops = [a for a in attempts if a["event"] == "stop"]
    assert len(starts) >= 2 and len(stops) == len(starts) - 1, attempts
    assert attempts[-1]["event"] == "done"
    assert {a["job"] for a in attempts} == {starts[0]["job"]}  # requeued: one Slurm job id
    job = starts[0]["job"]
    assert cluster.log().count(f"Requeuing JobId={job}\n") == len(stops)  # by the job itself
    for stop, nxt in zip(stops, starts[1:]):
        assert "before the time limit" in stop["reason"]
        assert nxt["step"] == stop["step"]  # saved at the step it was on: no step lost

    s = json.loads((wd / summary).read_text())
    assert s["final_step"] == steps and s["checkpoints"] == [q, 2 * q, 3 * q, steps]

    def curve(root):
        with open(root / "results/pretrain/ita/train_metrics.csv") as f:
            rows = list(csv.DictReader(f))
        return [int(r["step"]) for r in rows], [float(r["loss"]) for r in rows]

    run_steps, losses = curve(wd)
    ref_steps, ref_losses = curve(ref)
    assert run_steps == ref_steps == list(range(1, steps + 1))
    assert losses == pytest.approx(ref_losses, rel=1e-4, abs=1e-4)
