"""bubblewrap (``bwrap``) for the code sandbox's tests (zflow.sandbox): Debian's `bubblewrap`
package is installed (`apt-get install bubblewrap`) when missing; ``install`` says why it cannot
be. Whether it also *runs* here (user namespaces allowed) is zflow.sandbox.bwrap_status's probe.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def binary() -> str | None:
    return shutil.which("bwrap")


def install() -> str | None:
    """Install bubblewrap when missing; return why not, or None."""
    if binary():
        return None
    if os.geteuid() != 0:
        return "not root: cannot apt-get install bubblewrap"
    if not shutil.which("apt-get"):
        return "no apt-get on this machine"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "bubblewrap"]):
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if p.returncode:
            return f"{' '.join(cmd)} failed: {p.stderr[-500:]}"
    return None if binary() else "apt-get installed bubblewrap but there is no bwrap binary"
