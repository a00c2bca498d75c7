"""Training jobs that end before their work does: a Slurm time limit, SIGTERM (scancel,
preemption, the limit itself) or SIGUSR1 (a warning asked for with ``sbatch --signal``).

How a run gets through a limit (docs/architecture.md says why this mechanism):
- The job asks Slurm once how long it has left (``squeue -o %L``) and, after every optimizer
  step, whether the time left still holds a margin: the configured floor
  (``time_limits.save_before_s``), or three of its slowest steps plus two of its slowest saves
  if that is more. SIGTERM and SIGUSR1 set the same flag. Every rank agrees (one all-reduce
  per step), so all of them stop at the same step.
- Then the Trainer saves a complete state at the current step (no step is lost) and stops;
  the job records the attempt and, on Slurm, requeues itself (``scontrol requeue``: the same
  job id, so Snakemake keeps waiting on it and no retry is spent) as long as the attempt made
  progress. Elsewhere it exits with ``STOPPED`` and the next run resumes.
- Every attempt's first step is recorded in ``<run>/attempts.jsonl``; an attempt that starts
  at the same step as the two before it (two attempts in a row without progress, a hard kill
  included) stops the job with a message saying so instead of trying again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from zflow import schema
from zflow.io import die

ATTEMPTS = "attempts.jsonl"
STOPPED = 3  # exit status of a job that saved and stopped before its end (resume to go on)
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class NoProgress(RuntimeError):
    pass


def parse_time_left(text: str) -> float | None:
    """Seconds in squeue's ``%L`` (``[days-]hours:minutes:seconds``, ``minutes:seconds``);
    None for ``UNLIMITED``, ``NOT_SET``, ``INVALID`` or anything else."""
    m = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)", text.strip())
    if not m:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def slurm_time_left() -> float | None:
    """Seconds this Slurm job has left (None outside Slurm or without a limit)."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return None
    try:
        out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%L"], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_time_left(out.splitlines()[0]) if out.strip() else None


class Stopper:
    """When to save and stop: before the job's deadline, or at a signal."""

    def __init__(self, save_before_s: float, time_left: float | None, clock=time.monotonic,
                 requeue: bool = True):
        self.clock, self.requeue = clock, requeue
        self.floor = float(save_before_s)
        self.deadline = None if time_left is None else clock() + time_left
        self.slowest_step = self.slowest_save = 0.0
        self.signalled: str | None = None
        self.stopped: tuple[int, str] | None = None  # (step, reason)

    def install(self) -> None:
        def handler(signum, frame):
            self.signalled = signal.Signals(signum).name

        for s in SIGNALS:
            signal.signal(s, handler)

    def margin(self) -> float:
        return max(self.floor, 3 * self.slowest_step + 2 * self.slowest_save)

    def reason(self) -> str | None:
        if self.signalled:
            return f"{self.signalled} received"
        if self.deadline is not None:
            left = self.deadline - self.clock()
            if left <= self.margin():
                return f"{left:.0f} s left before the time limit (margin {self.margin():.0f} s)"
        return None


# why a rank stops, as one number all ranks can agree on (the largest wins)
NO_STOP, TIME_LIMIT, SIGNAL = 0, 1, 2
KINDS = {TIME_LIMIT: "before the time limit", SIGNAL: "at a signal"}


def kind(reason: str | None) -> int:
    if reason is None:
        return NO_STOP
    return TIME_LIMIT if "before the time limit" in reason else SIGNAL


def agree(code: int) -> int:
    """The largest stop code of all ranks, on every rank (a no-op in a single process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return code
    import torch

    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    flag = torch.tensor([code], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item())


def stop_reason(own: str | None, agreed: int) -> str | None:
    """What this rank records: its own reason, else the kind another rank stopped for (each
    rank reads its own clock, so one may cross the margin a step before the others)."""
    if agreed == NO_STOP:
        return None
    return own or f"another rank stopped {KINDS[agreed]}"


def callback(stopper: Stopper):
    """A TrainerCallback: after a step, save and stop when the stopper says so."""
    from transformers import TrainerCallback

    class StopBeforeLimit(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t_step = stopper.clock()

        def on_step_end(self, args, state, control, **kw):
            now = stopper.clock()
            stopper.slowest_step = max(stopper.slowest_step, now - getattr(self, "t_step", now))
            self.t_end = now
            why = stop_reason(own := stopper.reason(), agree(kind(own)))
            if why and state.global_step < state.max_steps:
                control.should_save = control.should_training_stop = True
                stopper.stopped = (state.global_step, why)

        def on_save(self, args, state, control, **kw):
            if hasattr(self, "t_end"):
                stopper.slowest_save = max(stopper.slowest_save, stopper.clock() - self.t_end)

    return StopBeforeLimit()


def begin_attempt(run: Path, step: int) -> None:
    """Record an attempt starting at ``step``; raise NoProgress when the two attempts before
    it started at the same step."""
    path = Path(run) / ATTEMPTS
    previous = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    done = [i for i, a in enumerate(previous) if a.get("event") == "done"]
    previous = previous[done[-1] + 1:] if done else previous  # since the last finished attempt
    starts = [a["step"] for a in previous if a.get("event") == "start"]
    if len(starts) >= 2 and starts[-1] == starts[-2] == step:
        ends = [a for a in previous if a.get("event") == "stop"]
        last = f" (last stop: {ends[-1]['reason']})" if ends else " (killed before it could save)"
        raise NoProgress(
            f"two attempts in a row made no progress from step {step}{last}; not trying again. "
            "A step plus a save may not fit in the job's time: raise the runtime of the rule in "
            "the profile or time_limits.save_before_s, or look for a hung node in the log. "
            f"Delete {path} to try again.")
    _append(path, {"event": "start", "step": step, **_job()})


def start(run: Path, step: int, settings: dict | None, is_main: bool) -> Stopper:
    """A training job's start: record the attempt (rank 0; the job stops with a message when
    the two before it made no progress) and watch the job's time and signals. ``settings``:
    the config's ``time_limits`` (None: the schema's defaults)."""
    settings = settings or schema.defaults("time_limits")
    if is_main:
        try:
            begin_attempt(run, step)
        except NoProgress as e:
            die(str(e))
    stopper = Stopper(settings["save_before_s"], slurm_time_left(), requeue=settings["requeue"])
    stopper.install()
    return stopper


def end_attempt(run: Path, step: int) -> None:
    """Record an attempt that reached the end of its work."""
    _append(Path(run) / ATTEMPTS, {"event": "done", "step": step, **_job()})


def stop_early(run: Path, stopper: Stopper, is_main: bool = True) -> int:
    """After a stop before the end: record it, requeue this Slurm job (same id; rank 0), and
    return the exit status."""
    if not is_main:
        return STOPPED
    step, why = stopper.stopped
    _append(Path(run) / ATTEMPTS, {"event": "stop", "step": step, "reason": why, **_job()})
    job = os.environ.get("SLURM_JOB_ID")
    if stopper.requeue and job:
        p = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        if p.returncode == 0:
            print(f"saved step {step} ({why}); requeued Slurm job {job}: it resumes there",
                  flush=True)
            return STOPPED
        print(f"scontrol requeue {job} failed: {p.stderr.strip()}", flush=True)
    print(f"saved step {step} ({why}); stopped before the end: run again to resume", flush=True)
    return STOPPED


def _job() -> dict:
    return {"time": round(time.time(), 3), "job": os.environ.get("SLURM_JOB_ID")}


def _append(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
