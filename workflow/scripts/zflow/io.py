"""Atomic writes, provenance and small file helpers shared by the scripts."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import sys
from pathlib import Path

# Packages whose versions change results: recorded in every result file.
PINNED = (
    "torch",
    "transformers",
    "tokenizers",
    "datatrove",
    "lm_eval",
    "trl",
    "datasets",
    "accelerate",
)


def versions(packages=PINNED) -> dict:
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_json(path, obj) -> None:
    """Write JSON to a temp file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def write_text(path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_png(fig, path) -> None:
    """Save a matplotlib figure as a PNG beside ``path`` and rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)


def read_json(path):
    return json.loads(Path(path).read_text())


RESULTS = "results"  # every output of the workflow lies under it (zflow.paths)


class UnsafePath(ValueError):
    pass


def owned(path, root=None) -> Path:
    """``path``, resolved, when it is one of the workflow's outputs: at least two levels inside
    the results folder (``results/<kind>/<name>…``), reached without a ``.`` or ``..``
    component. Else UnsafePath: nothing outside its own output is ever removed or replaced (the
    schema refuses such names first; this is the second line). The results folder: ``root``,
    else ``$ZFLOW_RESULTS_ROOT`` (the test suite points it at its temporary folder, where tests
    run scripts on their own paths), else ``./results`` (a job runs in the workflow's folder)."""
    root = Path(root or os.environ.get("ZFLOW_RESULTS_ROOT") or RESULTS).resolve()
    if any(part in (".", "..") for part in str(path).replace(os.sep, "/").split("/")[1:]):
        raise UnsafePath(f"refusing to remove or replace {path}: it has a '.' or '..' component")
    resolved = Path(os.path.abspath(path))
    try:
        inside = resolved.parent.resolve().relative_to(root).parts + (resolved.name,)
    except ValueError:
        raise UnsafePath(f"refusing to remove or replace {path}: not inside {root}") from None
    if len(inside) < 2:
        raise UnsafePath(f"refusing to remove or replace {path}: a folder of {root} itself")
    return resolved


def remove_tree(path, root=None) -> None:
    """Remove one of the workflow's own outputs (see ``owned``): a folder and what it holds, or
    a file or link; nothing when it is gone already."""
    path = owned(path, root)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_dir(final, root=None):
    """Yield a temporary directory that is renamed to ``final`` only on success.

    Anything half-written stays under ``<final>.tmp`` and is never consumed downstream. Both
    paths must be outputs of the workflow (``owned``).
    """
    final = Path(final)
    owned(final, root)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        remove_tree(tmp, root)
    tmp.mkdir(parents=True)
    yield tmp
    if final.exists():
        remove_tree(final, root)
    os.replace(tmp, final)


def die(message: str, code: int = 2):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def spec_cli(doc: str, argv=None, counts=("threads",)):
    """The command line every script shares: ``--spec FILE`` (the job's spec, written by the
    plan) and the job's thread/worker count. Returns (spec, args)."""
    import argparse

    p = argparse.ArgumentParser(description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", required=True, help="the job's spec (JSON), written by zflow.plan")
    for name in counts:
        p.add_argument(f"--{name}", type=int, default=1)
    args = p.parse_args(argv)
    return read_json(args.spec), args
