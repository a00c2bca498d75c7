"""Training jobs save before a time limit or at a signal, resume there, and stop when stuck."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time

import pytest
from conftest import env
from test_pretrain_resume import cmd, spec_for
from zflow import limits


def test_time_left_parsing():
    assert limits.parse_time_left("1:00") == 60
    assert limits.parse_time_left("2:03:04") == 2 * 3600 + 3 * 60 + 4
    assert limits.parse_time_left("3-00:00:10") == 3 * 86400 + 10
    assert limits.parse_time_left("UNLIMITED") is None
    assert limits.parse_time_left("INVALID") is None


def test_margin_grows_with_slow_steps_and_saves():
    now = [0.0]
    s = limits.Stopper(save_before_s=30, time_left=100, clock=lambda: now[0])
    assert s.reason() is None
    s.slowest_step, s.slowest_save = 10, 12  # 3 steps + 2 saves = 54 s > the 30 s floor
    assert s.margin() == 54
    now[0] = 45
    assert s.reason() is None  # 55 s left
    now[0] = 47
    assert "53 s left" in s.reason()
    s2 = limits.Stopper(save_before_s=30, time_left=None)
    s2.signalled = "SIGTERM"
    assert s2.reason() == "SIGTERM received"


def _agree_rank(rank, port, reasons, out):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=len(reasons))
    own = reasons[rank]
    out[rank] = limits.stop_reason(own, limits.agree(limits.kind(own)))
    dist.destroy_process_group()


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("reasons, expect", [
    # each rank reads its own clock: rank 1 crosses the margin a step before rank 0
    ((None, "20 s left before the time limit (margin 25 s)"),
     ("another rank stopped before the time limit", "20 s left before the time limit (margin 25 s)")),
    (("SIGTERM received", "20 s left before the time limit (margin 25 s)"),
     ("SIGTERM received", "20 s left before the time limit (margin 25 s)")),
    ((None, "SIGUSR1 received"), ("another rank stopped at a signal", "SIGUSR1 received")),
    ((None, None), (None, None)),
])
def test_ranks_agree_on_stopping_and_say_why(reasons, expect):
    """Two real processes (gloo): every rank stops at the same step, and the one whose own clock
    had not yet crossed records the kind of stop the other one saw."""
    import torch.multiprocessing as mp

    out = mp.Manager().dict()
    mp.spawn(_agree_rank, args=(_free_port(), reasons, out), nprocs=2)
    assert (out[0], out[1]) == expect


def test_two_attempts_without_progress_stop(tmp_path):
    limits.begin_attempt(tmp_path, 0)
    limits.begin_attempt(tmp_path, 20)  # progress
    limits.begin_attempt(tmp_path, 20)  # a kill that saved nothing
    with pytest.raises(limits.NoProgress, match="two attempts in a row made no progress from "
                                                "step 20"):
        limits.begin_attempt(tmp_path, 20)
    limits.end_attempt(tmp_path, 40)  # a finished run may be started again and again
    for _ in range(3):
        limits.begin_attempt(tmp_path, 40)
        limits.end_attempt(tmp_path, 40)


def steps_and_losses(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [int(r["step"]) for r in rows], [float(r["loss"]) for r in rows]


def logged_step(run) -> int:
    p = run / "state" / "metrics.csv"
    return steps_and_losses(p)[0][-1] if p.exists() and p.stat().st_size > 80 else 0


def test_sigterm_saves_the_current_step_and_resumes(demo_run, tmp_path):
    """SIGTERM mid-run: the job saves the step it is on (no step lost), exports no unscheduled
    checkpoint, exits STOPPED; the next run resumes there and matches an uninterrupted run."""
    wd, _ = demo_run
    ref = tmp_path / "ref"
    spec = spec_for(wd, ref, 40)
    out = subprocess.run(cmd(ref, spec), env=env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]

    run = tmp_path / "run"
    spec = spec_for(wd, run, 40)
    p = subprocess.Popen(cmd(run, spec), env=env(), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while logged_step(run) < 13 and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    before = logged_step(run)
    p.send_signal(signal.SIGTERM)
    log = p.communicate(timeout=300)[0]
    assert p.returncode == limits.STOPPED, log[-3000:]
    saved = [int(d.name.split("-")[1]) for d in (run / "state").glob("checkpoint-*")
             if (d / "COMPLETE").exists()]
    assert max(saved) >= before and max(saved) % 10, (saved, before)  # the current step, saved
    assert f"saved step {max(saved)} (SIGTERM received)" in log
    exported = sorted(int(d.name.split("-")[1]) for d in (run / "checkpoints").iterdir())
    assert exported == [s for s in (10, 20, 30) if s <= max(saved)]  # the schedule only
    attempts = [json.loads(x) for x in (run / "attempts.jsonl").read_text().splitlines()]
    assert [a["event"] for a in attempts] == ["start", "stop"]

    out = subprocess.run(cmd(run, spec), env=env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"(step {max(saved)})" in out.stdout
    steps, losses = steps_and_losses(run / "m.csv")
    ref_steps, ref_losses = steps_and_losses(ref / "m.csv")
    assert steps == ref_steps == list(range(1, 41))  # no gap, no repeat
    assert losses == pytest.approx(ref_losses, rel=1e-4, abs=1e-4)
    assert sorted(int(d.name.split("-")[1]) for d in (run / "checkpoints").iterdir()) == [
        10, 20, 30, 40]


def test_time_limit_saves_and_requeues(demo_run, tmp_path):
    """Inside a Slurm job (squeue / scontrol stand-ins): the job saves before its time is up,
    requeues itself, and the requeued attempt finishes the run."""
    wd, _ = demo_run
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "squeue").write_text("#!/bin/sh\necho 0:25\n")  # 25 s left at the start
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    run = tmp_path / "run"
    spec = spec_for(wd, run, 4000)
    spec["time_limits"] = {"save_before_s": 20, "requeue": True}
    e = {**env(), "SLURM_JOB_ID": "4242", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    f = run.parent / "spec.json"
    f.write_text(json.dumps(spec))
    t0 = time.time()
    out = subprocess.run(cmd(run, spec)[:2] + ["--spec", str(f), "--threads", "1"], env=e,
                         capture_output=True, text=True, timeout=600)
    took = time.time() - t0
    assert out.returncode == limits.STOPPED, out.stderr[-3000:]
    assert calls.read_text().split() == ["requeue", "4242"]
    stop = json.loads((run / "attempts.jsonl").read_text().splitlines()[-1])
    assert stop["event"] == "stop" and stop["job"] == "4242" and "before the time limit" in \
        stop["reason"]
    assert took < 25 + 60, took  # it stopped by itself, before the limit (plus start-up)
    assert (run / "state" / f"checkpoint-{stop['step']}" / "COMPLETE").exists()
    assert logged_step(run) == stop["step"]  # every step done was saved
