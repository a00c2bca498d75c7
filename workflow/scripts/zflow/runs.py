"""Trainer run directories (pretraining hf backend, post-training): resumable states.

``<run>/state/checkpoint-<N>/`` are Trainer states; a ``COMPLETE`` file marks one fully written.
The run's identity is ``<run>/run.json`` (zflow.identity): settings that changed move the run
aside and a new one starts.
"""

from __future__ import annotations

from pathlib import Path

from zflow import identity, launch, metrics, paths
from zflow.io import remove_tree


def complete_states(state_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for d in Path(state_dir).glob("checkpoint-*"):
        if (d / "COMPLETE").exists() and d.name.split("-")[-1].isdigit():
            out.append((int(d.name.split("-")[-1]), d))
    return sorted(out)


def mark_complete(state_dir: Path, step: int) -> None:
    (Path(state_dir) / f"checkpoint-{step}" / "COMPLETE").write_text(str(step))


def resume_state(run: Path, fp: str, entries, keyed_on: dict, fields: list[str],
                 cuda: bool) -> Path | None:
    """Claim the run directory (rank 0), join the job's process group, and return the newest
    complete state to resume from, the same on every rank (or None).

    Half-written states are removed; metrics logged after the resumed state are dropped.
    """
    world, is_main = launch.world()
    identity.claim(run, fp, entries, keyed_on, write=is_main)
    state = run / paths.STATE
    if is_main:
        states = complete_states(state)
        newest = states[-1][0] if states else 0
        state.mkdir(parents=True, exist_ok=True)
        for d in state.glob("checkpoint-*"):  # half-written states are never resumed from
            if not (d / "COMPLETE").exists() or int(d.name.split("-")[-1]) > newest:
                print(f"removing incomplete state {d}")
                remove_tree(d)
        metrics.trim(run / paths.STATE_METRICS, newest, fields)
    launch.start_distributed(cuda)  # the other ranks read the states once rank 0 cleaned them
    states = complete_states(state)
    return states[-1][1] if states else None


def state_step(state: Path | None) -> int:
    return int(state.name.split("-")[-1]) if state else 0
