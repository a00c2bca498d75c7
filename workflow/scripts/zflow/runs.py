"""Training run directories shared by pretraining and post-training: resumable states.

``<run>/state/checkpoint-<N>/`` are Trainer states; a ``COMPLETE`` file marks one fully written.
``<run>/state/run.json`` holds the fingerprint of the settings; a run whose settings changed is
moved aside to ``<run>/superseded/<time>/`` (never deleted) and a new one starts.
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

from zflow.io import read_json, write_json


def complete_states(state_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for d in state_dir.glob("checkpoint-*"):
        if (d / "COMPLETE").exists() and d.name.split("-")[-1].isdigit():
            out.append((int(d.name.split("-")[-1]), d))
    return sorted(out)


def prepare_run_dir(run: Path, fp: str, is_main: bool,
                    move=("state", "checkpoints")) -> Path | None:
    """Return the state to resume from (or None), moving aside a run with other settings."""
    state = run / "state"
    ident = state / "run.json"
    if ident.exists() and read_json(ident)["fingerprint"] != fp and is_main:
        dest = run / "superseded" / time.strftime("%Y%m%d-%H%M%S")
        dest.mkdir(parents=True)
        for name in move:
            if (run / name).exists():
                shutil.move(str(run / name), str(dest / name))
        print(f"settings changed: previous run moved to {dest}; starting from scratch")
    states = complete_states(state)
    if is_main:
        state.mkdir(parents=True, exist_ok=True)
        write_json(ident, {"fingerprint": fp})
        newest = states[-1][0] if states else 0
        for d in state.glob("checkpoint-*"):  # half-written states are never resumed from
            if not (d / "COMPLETE").exists() or int(d.name.split("-")[-1]) > newest:
                print(f"removing incomplete state {d}")
                shutil.rmtree(d, ignore_errors=True)
    return states[-1][1] if states else None


def append_metrics(path: Path, row: dict, fields: list[str]) -> None:
    """Append one row to a run's metrics CSV (the header when the file is new)."""
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        if new:
            w.writeheader()
        w.writerow(row)


def trim_metrics(path: Path, upto: int, fields: list[str]) -> None:
    """Keep the rows logged up to step ``upto``: those after the state a run resumes from go."""
    if not path.exists():
        return
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= upto]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
