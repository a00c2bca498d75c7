"""Run untrusted Python (a completion's code and its unit tests) in a separate, limited process.

Each run gets a fresh temporary directory as its working directory, deleted afterwards, and a
``python -I -B`` child in its own process group, killed as a group at the wall-clock timeout. Before
the code runs, a prelude in the child sets hard resource limits (address space, CPU seconds, file
size), blocks IP sockets and name lookups, refuses writes and deletions outside the working
directory, and blocks starting processes. The environment is replaced by a minimal one (no proxy
variables, HOME and TMPDIR in the working directory).

The limits are set by the child itself rather than in a ``preexec_fn``: CPython documents
``preexec_fn`` as unsafe in a process with threads, and a trainer has many.

Everything but the resource limits and the timeout is best-effort, not a security boundary: code can
still reach the unpatched low-level modules (``_socket``, ``posix``, ``_io``) or patch the guards
back. It keeps honest mistakes and casual reward hacks in the sandbox; run training itself in a
container or a network-less job when the code is hostile.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass

CODE_FILE = "solution.py"
TESTS_FILE = "tests.py"
STDERR_FILE = ".stderr"

# Runs in the child as `python -I -B -c PRELUDE <address-space bytes> <cpu s> <file-size bytes>`.
PRELUDE = r'''
import builtins, io, os, resource, socket, sys, traceback, _posixsubprocess

def _main():
    limits = (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_FSIZE)
    for res, value in zip(limits, map(int, sys.argv[1:4])):
        resource.setrlimit(res, (value, value))
    with open("solution.py") as f:
        code = compile(f.read(), "solution.py", "exec")
    with open("tests.py") as f:
        tests = compile(f.read(), "tests.py", "exec")
    workdir = os.path.realpath(os.getcwd())

    def refused(what):
        def refuse(*args, **kwargs):
            raise PermissionError(f"sandbox: {what} disabled")
        return refuse

    class NoNetworkSocket(socket.socket):
        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
            if fileno is None and family != socket.AF_UNIX:
                refused("network")()
            super().__init__(family, type, proto, fileno)

    socket.socket = NoNetworkSocket
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        setattr(socket, name, refused("network"))

    def inside(path):
        if isinstance(path, int):
            return True
        real = os.path.realpath(os.fsdecode(os.fspath(path)))
        return real == workdir or real.startswith(workdir + os.sep)

    def guard(fn):
        def guarded(*args, **kwargs):
            if any(kwargs.get(k) is not None for k in ("dir_fd", "src_dir_fd", "dst_dir_fd")):
                refused("dir_fd")()
            for a in args:
                if isinstance(a, (str, bytes, os.PathLike)) and not inside(a):
                    raise PermissionError(f"sandbox: outside the working directory: {a!r}")
            return fn(*args, **kwargs)
        return guarded

    real_open, real_os_open = builtins.open, os.open
    checked_open = guard(real_open)
    checked_os_open = guard(real_os_open)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def open_(file, mode="r", *args, **kwargs):
        writes = any(c in mode for c in "wax+")
        return (checked_open if writes else real_open)(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        return (checked_os_open if flags & write_flags else real_os_open)(path, flags, *args, **kwargs)

    builtins.open = io.open = open_
    os.open = os_open
    for name in ("remove", "unlink", "rmdir", "mkdir", "rename", "replace", "symlink", "link",
                 "chmod", "truncate", "mkfifo", "mknod"):
        setattr(os, name, guard(getattr(os, name)))
    for name in ("system", "popen", "fork", "forkpty", "execv", "execve", "posix_spawn",
                 "posix_spawnp", "_exit", "kill", "killpg"):
        setattr(os, name, refused("processes"))
    _posixsubprocess.fork_exec = refused("processes")

    scope = {"__name__": "__main__", "__builtins__": builtins}
    sys.argv = ["solution.py"]
    try:
        exec(code, scope)
        exec(tests, scope)
    except BaseException:  # SystemExit too: exit(0) before the tests must not pass
        traceback.print_exc()
        sys.stderr.flush()
        return 1
    return 0

sys.exit(_main())
'''


@dataclass(frozen=True)
class RunResult:
    """How a sandboxed run ended: exit code (None when killed at the timeout) and stderr's tail."""

    returncode: int | None
    timed_out: bool
    stderr: str

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _env(workdir: str) -> dict[str, str]:
    """A minimal environment: no proxies, credentials or PYTHON* variables from the parent; one
    BLAS/OpenMP thread (per-core buffers would not fit the address-space limit on a big node)."""
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return {"PATH": os.defpath, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8", **threads}


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _remove_tree(path: str) -> None:
    """Delete a directory, also where the code made parts of it unreadable or read-only."""
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        for root, dirs, _files in os.walk(path):
            for d in [root, *(os.path.join(root, d) for d in dirs)]:
                if not os.path.islink(d):
                    os.chmod(d, stat.S_IRWXU)
        shutil.rmtree(path)


def run_python(code: str, tests: str = "", *, timeout_s: float = 10.0, memory_mb: int = 1024,
               cpu_s: int | None = None, fsize_mb: int = 16, stderr_chars: int = 2000) -> RunResult:
    """Run ``code`` then ``tests`` (plain statements, e.g. asserts) in one namespace in a child.

    Passes when both finish without an exception (``SystemExit`` counts as a failure). ``cpu_s``
    defaults to the wall-clock timeout rounded up, plus one second.
    """
    cpu_s = cpu_s if cpu_s is not None else int(timeout_s) + 1
    limits = [memory_mb * 2**20, cpu_s, fsize_mb * 2**20]
    workdir = tempfile.mkdtemp(prefix="zflow-sandbox-")
    proc = None
    try:
        for name, text in ((CODE_FILE, code), (TESTS_FILE, tests)):
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as f:
                f.write(text)
        err_path = os.path.join(workdir, STDERR_FILE)
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", "-c", PRELUDE, *map(str, limits)],
                cwd=workdir, env=_env(workdir), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err, process_group=0, close_fds=True)
            try:
                returncode, timed_out = proc.wait(timeout=timeout_s), False
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()
                returncode, timed_out = None, True
        with open(err_path, "rb") as err:
            err.seek(max(0, os.path.getsize(err_path) - stderr_chars))
            stderr = err.read().decode("utf-8", "replace")
        return RunResult(returncode, timed_out, stderr)
    finally:
        if proc is not None:
            _kill_group(proc.pid)
        _remove_tree(workdir)
