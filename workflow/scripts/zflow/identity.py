"""One run identity for every job that keeps state between attempts.

A run directory holds ``run.json``: the fingerprint of the settings (and data) that made it, and
what it is keyed on. A job that finds another fingerprint there moves the old run's entries to
``superseded/<time>/`` (never deleted; scratch state may be discarded instead) and starts anew;
one that finds its own resumes. Used by tokenization, both pretraining backends and
post-training; evals record the fingerprint of their spec.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from zflow import paths
from zflow.io import read_json, remove_tree, write_json


def fingerprint(obj, files=()) -> str:
    """16 hex digits of the canonical JSON of ``obj`` and the bytes of ``files``."""
    h = hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode())
    for f in files:
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


def file_stats(folder, pattern: str = "*") -> list:
    """Paths (relative to ``folder``), sizes and modification times of the files ``pattern``
    matches, ``**/`` for sub-folders (large data: not hashed)."""
    folder = Path(folder)
    found = sorted((p.relative_to(folder).as_posix(), p) for p in folder.glob(pattern))
    return [(rel, p.stat().st_size, p.stat().st_mtime_ns) for rel, p in found if p.is_file()]


def read(run_dir) -> dict | None:
    try:
        return read_json(Path(run_dir) / paths.RUN_JSON)
    except (OSError, ValueError):
        return None


def claim(run_dir, fp: str, entries, keyed_on: dict | None = None, keep: bool = True,
          write: bool = True) -> Path | None:
    """Make ``run_dir`` the run of fingerprint ``fp``.

    If it holds a run of another fingerprint, its ``entries`` (names inside ``run_dir``) are
    moved to ``superseded/<time>/`` (``keep``) or deleted (scratch state). Returns where they
    went (None when nothing moved). ``write=False`` only reads (the other ranks of a job).
    """
    run_dir = Path(run_dir)
    if not write:
        return None
    old = read(run_dir)
    present = [e for e in entries if (run_dir / e).exists()]
    moved = None
    if present and (old or {}).get("fingerprint") != fp:
        if keep:
            moved = run_dir / paths.SUPERSEDED / time.strftime("%Y%m%d-%H%M%S")
            moved.mkdir(parents=True, exist_ok=True)
            for e in present:
                shutil.move(str(run_dir / e), str(moved / e))
            print(f"settings changed: previous run moved to {moved}; starting from scratch",
                  flush=True)
        else:
            for e in present:
                remove_tree(run_dir / e)
            print("settings changed: previous partial state discarded", flush=True)
    write_json(run_dir / paths.RUN_JSON, {"fingerprint": fp, "keyed_on": keyed_on or {}})
    return moved
