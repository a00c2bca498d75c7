"""bubblewrap (``bwrap``) for the code sandbox's tests (zflow.sandbox): Debian's `bubblewrap`
package is installed (`apt-get install bubblewrap`) when missing; ``install`` says why it cannot
be. Whether it also *runs* here (user namespaces allowed) is zflow.sandbox.bwrap_status's probe.
"""

from __future__ import annotations

import shutil

import apt_packages


def binary() -> str | None:
    return shutil.which("bwrap")


def install() -> str | None:
    """Install bubblewrap when missing; return why not, or None."""
    return apt_packages.install(["bubblewrap"], ["bwrap"])
