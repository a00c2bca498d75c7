"""System packages the tests need (Chromium, Slurm, bubblewrap), installed from Debian when
missing: ``install`` says why they cannot be, or None."""

from __future__ import annotations

import os
import shutil
import subprocess


def install(packages: list[str], binaries: list[str]) -> str | None:
    """``apt-get install packages`` unless every one of ``binaries`` is on PATH; why not, or
    None once they all are."""
    if all(shutil.which(b) for b in binaries):
        return None
    if os.geteuid() != 0:
        return f"not root: cannot apt-get install {' '.join(packages)}"
    if not shutil.which("apt-get"):
        return "no apt-get on this machine"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if p.returncode:
            return f"{' '.join(cmd)} failed: {p.stderr[-500:]}"
    missing = [b for b in binaries if not shutil.which(b)]
    return f"apt-get installed {' '.join(packages)} but there is no {', '.join(missing)}" \
        if missing else None
