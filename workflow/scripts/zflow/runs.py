"""Trainer run directories (pretraining hf backend, post-training): resumable states.

``<run>/state/checkpoint-<N>/`` are Trainer states; a ``COMPLETE`` file marks one fully written.
The run's identity is ``<run>/run.json`` (zflow.identity): settings that changed move the run
aside and a new one starts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from zflow import identity, metrics, paths


def complete_states(state_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for d in Path(state_dir).glob("checkpoint-*"):
        if (d / "COMPLETE").exists() and d.name.split("-")[-1].isdigit():
            out.append((int(d.name.split("-")[-1]), d))
    return sorted(out)


def mark_complete(state_dir: Path, step: int) -> None:
    (Path(state_dir) / f"checkpoint-{step}" / "COMPLETE").write_text(str(step))


def resume_state(run: Path, fp: str, is_main: bool, entries, keyed_on: dict,
                 fields: list[str]) -> Path | None:
    """Claim the run directory and return the newest complete state to resume from (or None).

    Half-written states are removed; metrics logged after the resumed state are dropped.
    """
    identity.claim(run, fp, entries, keyed_on, write=is_main)
    state = run / paths.STATE
    states = complete_states(state)
    newest = states[-1][0] if states else 0
    if is_main:
        state.mkdir(parents=True, exist_ok=True)
        for d in state.glob("checkpoint-*"):  # half-written states are never resumed from
            if not (d / "COMPLETE").exists() or int(d.name.split("-")[-1]) > newest:
                print(f"removing incomplete state {d}")
                shutil.rmtree(d, ignore_errors=True)
        metrics.trim(run / paths.STATE_METRICS, newest, fields)
    return states[-1][1] if states else None


def state_step(state: Path | None) -> int:
    return int(state.name.split("-")[-1]) if state else 0
