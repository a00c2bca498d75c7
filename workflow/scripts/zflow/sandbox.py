"""Run untrusted Python (a completion's code, then its unit tests) in an isolated, limited child.

Two isolations (``docs/sandbox.md`` has the attack list and what each one stops):

``bwrap`` (the GRPO code reward's default)
    The child runs under bubblewrap in new user, mount, PID, network, IPC and UTS namespaces
    (``--unshare-all``), as PID 1 of its namespace (``--as-pid-1``: no other process there),
    with ``--new-session``, ``--die-with-parent``, no capabilities (``--cap-drop ALL`` when run
    as root) and an empty environment (``--clearenv``, then only PATH, HOME, TMPDIR, LANG and
    one-thread BLAS variables; bwrap adds PWD). Its file system is read-only: /usr, the /bin and
    /lib links, the dynamic linker's cache and the Python prefixes (``sys.prefix``,
    ``sys.base_prefix``), its own /proc (only the sandbox's process: the trainer's
    ``/proc/<pid>/environ`` does not exist there) with /proc/sys and the other paths Docker
    masks hidden, and a read-only minimal /dev. The one writable place is ``/sandbox`` (cwd,
    HOME, TMPDIR): a tmpfs capped in bytes (``disk_mb``) and in files (``max_files``, as tmpfs
    ``nr_inodes``: the child mounts it in a nested user namespace, where the inherited mounts
    are locked read-only; bwrap's own ``--size`` tmpfs is the fallback). The network namespace
    has only a down loopback: nothing on the host is reachable.
``process`` (weaker; the code reward uses it only with ``allow_process_sandbox: true``)
    A plain child in its own session, in a fresh temporary directory, with the same environment
    and in-child layers below, its directory's bytes and entries polled by the parent every
    50 ms (killed when over: approximate), and no file-system isolation: it reads and writes
    what the trainer's user can (as root: what root can, sysctls included); the trainer's
    ``/proc/<pid>/environ`` is kept from it only where the trainer holds capabilities the child
    dropped (root), as the kernel requires a reader's capabilities to cover its target's.

In both, before the untrusted code runs, the child (``RUNNER``) drops every capability, sets
``PR_SET_NO_NEW_PRIVS`` and hard limits (address space, CPU seconds, file size, open files,
process count, no core files), dies with its parent (``PR_SET_PDEATHSIG``) and installs a
seccomp filter (x86_64 and aarch64) that refuses with EPERM: fork, vfork, clone without
``CLONE_THREAD`` (no new process; threads stay, bounded by the address-space limit), execve,
socket (no new socket of any family; socketpair stays for asyncio), kill and tgkill of anything
but itself, setsid, setpgid, ``PR_SET_PDEATHSIG``, ptrace, process_vm_*, pidfd_*, io_uring,
unshare, setns, the mount calls, memfd_create, shmget, msgget, mq_open (memory no limit would
count), bpf, perf_event_open, keyctl, syslog, reboot and module loading; clone3 gets ENOSYS
(glibc then falls back to clone). The old monkeypatching prelude (``os``, ``socket`` and
``open`` guards) stays as a first layer that gives readable errors; it is not what isolates.
RLIMIT_NPROC is set but does not bind a child whose host uid is root (the kernel exempts uid 0,
in a user namespace too; measured in tests/test_sandbox.py): the seccomp filter is what stops
fork bombs. At the timeout the parent kills the child's process group: under bwrap, bwrap
itself, whose death kills the namespace's PID 1 and with it everything in the namespace.

The verdict cannot be faked by leaving early. The parent (this module, outside the sandbox) is
the harness: it sends the solution over a pipe, the child runs it and writes ``ready``, and only
then does the parent send the tests with a fresh random nonce (``secrets.token_hex``) that
exists nowhere before; the child runs the tests and echoes the nonce. The run passes only when
the echoed nonce matches and the child then exits 0 before the timeout. ``posix._exit(0)``,
``SystemExit``, a signal, or printing any marker before the tests all end without the nonce and
fail. Why not a token inside the sandbox: the solution and the tests run in one interpreter, so
anything the test-running code could read before the tests (a token in memory, an fd, a file)
the solution could read too (frames, ``gc``, ctypes); the nonce does not exist until the
solution's top level has returned, and a second process inside the sandbox holding a token
would be one more target for the same user. What remains possible is code written against
this protocol (writing ``ready`` itself, reading the tests and the nonce from the pipe, echoing
it, exiting; an xfail test shows it) or code that subverts the tests in-process (objects whose
``__eq__`` is always true, patched builtins): the tests share the solution's interpreter, so no
harness around them can rule those out. The tests are not in the sandbox while the solution
runs (the old design left ``tests.py`` readable in the working directory).

``RUNNER`` sets its limits itself rather than in a ``preexec_fn``: CPython documents
``preexec_fn`` as unsafe in a process with threads, and a trainer has many.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

SANDBOX_DIR = "/sandbox"  # the writable tmpfs inside bwrap (cwd, HOME, TMPDIR)
SANDBOX_UID = 1000        # the child's uid in bwrap's namespace (not 0: private_tmpfs maps it)
SETUP_FAILED = 125        # the child's exit code when its own set-up fails
POLL_S = 0.05             # the parent's polling period (process isolation's disk checks)
NOFILE = 256              # the child's RLIMIT_NOFILE (pipes and sockets hold kernel memory)
ISOLATIONS = ("auto", "bwrap", "process")
# Hidden in bwrap's /proc (Docker's masked and read-only paths): a child whose host uid is root
# (the trainer's, when it runs as root) may write sysctls and the like without any capability,
# as the kernel checks those files' owner bits against the uid alone.
PROC_MASKED_DIRS = ("acpi", "asound", "bus", "driver", "fs", "irq", "pressure", "scsi", "sys",
                    "sysvipc", "tty")
PROC_MASKED_FILES = ("kcore", "keys", "key-users", "kmsg", "kallsyms", "latency_stats", "mtrr",
                     "sched_debug", "sysrq-trigger", "timer_list", "timer_stats")

# Runs in the child as `python -I -B -c RUNNER <json settings>`; see the module docstring.
RUNNER = r'''
import builtins, ctypes, io, json, os, posix, resource, socket, struct, sys, traceback
import _posixsubprocess

CFG = json.loads(sys.argv[1])
LIBC = ctypes.CDLL(None, use_errno=True)
_exit, _write, _read = posix._exit, posix.write, posix.read
UL = ctypes.c_ulong


def call(name, *args):
    if getattr(LIBC, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def write_file(path, text):
    fd = posix.open(path, os.O_WRONLY)
    try:
        _write(fd, text.encode())
    finally:
        posix.close(fd)


def private_tmpfs():
    """A tmpfs capped in bytes and inodes over the work dir, in a nested user and mount
    namespace (the mounts inherited from bwrap's namespace are locked there: they cannot be
    remounted writable or unmounted). False where the kernel refuses the namespace."""
    uid, gid = os.getuid(), os.getgid()
    if LIBC.unshare(ctypes.c_int(0x10000000 | 0x00020000)) != 0:  # CLONE_NEWUSER | CLONE_NEWNS
        return False
    write_file("/proc/self/setgroups", "deny")
    write_file("/proc/self/uid_map", f"0 {uid} 1")
    write_file("/proc/self/gid_map", f"0 {gid} 1")
    opts = f"size={CFG['disk_bytes']},nr_inodes={CFG['max_files'] + 1},mode=0700"
    call("mount", b"zflow-sandbox", CFG["workdir"].encode(), b"tmpfs",
         UL(0x2 | 0x4 | 0x8), opts.encode())  # nosuid, nodev, noexec
    os.chdir(CFG["workdir"])
    return True


def drop_capabilities():
    for cap in range(64):
        LIBC.prctl(24, UL(cap), UL(0), UL(0), UL(0))  # PR_CAPBSET_DROP (EPERM without caps)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    call("capset", ctypes.byref(header), ctypes.byref((ctypes.c_uint32 * 6)()))
    call("prctl", 38, UL(1), UL(0), UL(0), UL(0))  # PR_SET_NO_NEW_PRIVS


SYSCALLS = {  # name: (x86_64, aarch64); None: no such call
    "fork": (57, None), "vfork": (58, None), "execve": (59, 221), "execveat": (322, 281),
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "setsid": (112, 157), "setpgid": (109, 154), "tkill": (200, 130),
    "rt_sigqueueinfo": (129, 138), "rt_tgsigqueueinfo": (297, 240), "unshare": (272, 97),
    "setns": (308, 268), "socket": (41, 198), "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426), "io_uring_register": (427, 427), "pidfd_open": (434, 434),
    "pidfd_send_signal": (424, 424), "pidfd_getfd": (438, 438), "mount": (165, 40),
    "umount2": (166, 39), "pivot_root": (155, 41), "open_tree": (428, 428),
    "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431),
    "fsmount": (432, 432), "fspick": (433, 433), "mount_setattr": (442, 442), "bpf": (321, 280),
    "perf_event_open": (298, 241), "keyctl": (250, 219), "add_key": (248, 217),
    "request_key": (249, 218), "reboot": (169, 142), "init_module": (175, 105),
    "finit_module": (313, 273), "kexec_load": (246, 104), "kexec_file_load": (320, 294),
    "userfaultfd": (323, 282), "syslog": (103, 116),
    # memory outside the address-space limit and the work dir's cap
    "memfd_create": (319, 279), "shmget": (29, 194), "msgget": (68, 186), "mq_open": (240, 180),
    # checked on an argument
    "clone": (56, 220), "clone3": (435, 435), "kill": (62, 129), "tgkill": (234, 131),
    "prctl": (157, 167),
}
SPECIAL = ("clone", "clone3", "kill", "tgkill", "prctl")


def seccomp_filter(pid):
    """A classic-BPF seccomp program: see the module docstring for what it refuses."""
    machine = os.uname().machine
    arches = {"x86_64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7)}
    if machine not in arches:
        raise OSError(f"no seccomp filter for {machine}")
    col, audit_arch = arches[machine]
    nr = {name: nums[col] for name, nums in SYSCALLS.items() if nums[col] is not None}
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    prog, labels = [], {}

    def op(code, k, jt=0, jf=0):
        prog.append([code, jt, jf, k])

    op(LD, 4)                              # seccomp_data.arch
    op(JEQ, audit_arch, 0, "kill")
    op(LD, 0)                              # seccomp_data.nr
    if machine == "x86_64":
        op(JGE, 0x40000000, "deny", 0)     # the x32 ABI
    for name, number in nr.items():
        if name not in SPECIAL:
            op(JEQ, number, "deny", 0)
    op(JEQ, nr["clone3"], "nosys", 0)      # flags behind a pointer: glibc falls back to clone
    op(JEQ, nr["clone"], "clone", 0)
    op(JEQ, nr["kill"], "self", 0)
    op(JEQ, nr["tgkill"], "self", 0)
    op(JEQ, nr["prctl"], "prctl", 0)
    op(RET, 0x7FFF0000)                    # allow
    labels["clone"] = len(prog)
    op(LD, 16)                             # args[0], low half: the flags
    op(JSET, 0x7E020000, "deny", 0)        # any CLONE_NEW* namespace
    op(JSET, 0x00010000, "allow", "deny")  # CLONE_THREAD: a thread, not a process
    labels["self"] = len(prog)
    op(LD, 16)
    op(JEQ, pid, "allow", "deny")          # signals to itself only
    labels["prctl"] = len(prog)
    op(LD, 16)
    op(JEQ, 1, "deny", "allow")            # PR_SET_PDEATHSIG
    for name, ret in (("allow", 0x7FFF0000), ("deny", 0x00050000 | 1),   # EPERM
                      ("nosys", 0x00050000 | 38), ("kill", 0x80000000)):  # ENOSYS, kill process
        labels[name] = len(prog)
        op(RET, ret)
    out = b""
    for i, (code, jt, jf, k) in enumerate(prog):
        jt, jf = (labels[j] - i - 1 if isinstance(j, str) else j for j in (jt, jf))
        assert 0 <= jt < 256 and 0 <= jf < 256
        out += struct.pack("HBBI", code, jt, jf, k)
    return out


def install_seccomp():
    program = seccomp_filter(os.getpid())
    buf = ctypes.create_string_buffer(program, len(program))

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = Prog(len(program) // 8, ctypes.addressof(buf))
    call("prctl", 22, UL(2), ctypes.byref(prog), UL(0), UL(0))  # PR_SET_SECCOMP, MODE_FILTER


def guards(workdir):
    """The first layer: readable PermissionErrors for casual network, file and process use."""
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
    checked_open, checked_os_open = guard(real_open), guard(real_os_open)
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


def set_up():
    call("prctl", 1, UL(9), UL(0), UL(0), UL(0))  # PR_SET_PDEATHSIG: SIGKILL
    if CFG["ppid"] and os.getppid() != CFG["ppid"]:
        _exit(SETUP_FAILED)  # the parent is already gone
    if CFG["private_tmpfs"] and not private_tmpfs():
        _write(2, b"sandbox: no nested user namespace: work dir capped in bytes only\n")
    drop_capabilities()
    mb = 2 ** 20
    for res, value in ((resource.RLIMIT_AS, CFG["memory_mb"] * mb),
                       (resource.RLIMIT_CPU, CFG["cpu_s"]),
                       (resource.RLIMIT_FSIZE, CFG["fsize_mb"] * mb),
                       (resource.RLIMIT_NPROC, CFG["nproc"]), (resource.RLIMIT_CORE, 0),
                       (resource.RLIMIT_NOFILE, CFG["nofile"])):
        hard = resource.getrlimit(res)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(res, (value, value))
    guards(os.path.realpath(os.getcwd()))
    if CFG["seccomp"]:
        install_seccomp()


def receive(fd):
    def exactly(n):
        out = b""
        while len(out) < n:
            chunk = _read(fd, n - len(out))
            if not chunk:
                _exit(1)  # the parent went away
            out += chunk
        return out
    return exactly(int.from_bytes(exactly(8), "big")).decode("utf-8")


def run():
    scope = {"__name__": "__main__", "__builtins__": builtins}
    try:
        code = compile(receive(CFG["rfd"]), "solution.py", "exec")
        sys.argv = ["solution.py"]
        exec(code, scope)
        _write(CFG["wfd"], b"ready\n")
        message = json.loads(receive(CFG["rfd"]))
        exec(compile(message["tests"], "tests.py", "exec"), scope)
    except BaseException:  # SystemExit too: exit(0) before the tests must not pass
        traceback.print_exc()
        return 1
    _write(CFG["wfd"], message["nonce"].encode() + b"\n")
    return 0


SETUP_FAILED = CFG["setup_failed"]
try:
    set_up()
except BaseException as e:
    _write(2, f"sandbox set-up failed: {e!r}\n".encode())
    _exit(SETUP_FAILED)
rc = run()
for stream in (sys.stdout, sys.stderr):
    try:
        stream.flush()
    except BaseException:
        pass
_exit(rc)
'''


class SandboxUnavailable(ValueError):
    """The requested isolation cannot run on this machine (a ValueError, so that the config
    check reports it as a problem of the reward's settings)."""


@dataclass(frozen=True)
class RunResult:
    """How a sandboxed run ended: exit code (None when killed at the timeout), stderr's tail,
    whether the child echoed the run's nonce after the tests, and the isolation used."""

    returncode: int | None
    timed_out: bool
    stderr: str
    verified: bool = False
    isolation: str = ""

    @property
    def passed(self) -> bool:
        return self.verified and self.returncode == 0 and not self.timed_out


def _env(workdir: str) -> dict[str, str]:
    """The child's whole environment: no proxies, credentials or PYTHON* variables from the
    parent; one BLAS/OpenMP thread (per-core buffers would not fit the address-space limit)."""
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
            **threads}


# --- bubblewrap --------------------------------------------------------------------------------

def bwrap_path() -> str | None:
    """``$ZFLOW_BWRAP`` when set (tests point it elsewhere), else ``bwrap`` on PATH."""
    return os.environ.get("ZFLOW_BWRAP") or shutil.which("bwrap")


def _python_roots() -> list[str]:
    """The directories the child's interpreter needs, outside /usr (bound read-only)."""
    exe = os.path.realpath(sys.executable)
    paths = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                           sys.base_exec_prefix, os.path.dirname(os.path.dirname(exe)))}
    paths.add(os.path.abspath(sys.prefix))  # a venv reached through a symlink
    roots: list[str] = []
    for p in sorted(paths, key=len):
        if p != "/" and not any(p == r or p.startswith(r + os.sep) for r in ["/usr", *roots]):
            roots.append(p)
    return roots


def _bwrap_argv(bwrap: str, disk_bytes: int) -> list[str]:
    argv = [bwrap, "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID),
            "--gid", str(SANDBOX_UID), "--hostname", "sandbox", "--as-pid-1", "--die-with-parent",
            "--new-session", "--clearenv"]
    if os.geteuid() == 0:
        argv += ["--cap-drop", "ALL"]  # as root, bwrap keeps the capabilities otherwise
    argv += ["--ro-bind", "/usr", "/usr"]
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime"):
        argv += ["--ro-bind-try", f, f]
    for root in _python_roots():
        argv += ["--ro-bind", root, root]
    argv += ["--proc", "/proc"]
    for name in PROC_MASKED_DIRS:
        if os.path.isdir(f"/proc/{name}"):
            argv += ["--tmpfs", f"/proc/{name}", "--remount-ro", f"/proc/{name}"]
    for name in PROC_MASKED_FILES:
        if os.path.exists(f"/proc/{name}"):
            argv += ["--ro-bind", "/dev/null", f"/proc/{name}"]
    # /dev is bwrap's own uncapped tmpfs (device nodes, an empty /dev/shm): read-only, so that
    # the capped work dir is the only writable place (device nodes still take writes)
    argv += ["--dev", "/dev", "--remount-ro", "/dev",
             "--size", str(disk_bytes), "--tmpfs", SANDBOX_DIR, "--remount-ro", "/",
             "--chdir", SANDBOX_DIR]
    for k, v in _env(SANDBOX_DIR).items():
        argv += ["--setenv", k, v]
    return argv + ["--"]


_probe_lock = threading.Lock()
_probed: dict[tuple[str, str | None], tuple[bool, str]] = {}


def _probe(isolation: str, path: str | None) -> tuple[bool, str]:
    """A trivial solution and test through the whole isolation, once per (isolation, bwrap)."""
    with _probe_lock:
        if (isolation, path) not in _probed:
            try:
                r = _run("x = 1", "assert x == 1", isolation, path, timeout_s=60, memory_mb=1024,
                         cpu_s=60, fsize_mb=16, disk_mb=16, max_files=100, nproc=64,
                         stderr_chars=1000, seccomp=True)
                _probed[isolation, path] = (True, "") if r.passed else (
                    False, f"{path or 'the process sandbox'} could not run the sandbox "
                           f"(exit {r.returncode}): {r.stderr.strip()[-500:]}")
            except OSError as e:
                _probed[isolation, path] = (False, f"{path or sys.executable} could not start: {e}")
        return _probed[isolation, path]


def bwrap_status() -> tuple[bool, str]:
    """(whether the bwrap isolation works here, why not), probed once per bwrap path."""
    path = bwrap_path()
    if path is None:
        return False, "bubblewrap (bwrap) is not installed (Debian: apt-get install bubblewrap)"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return False, (f"ZFLOW_BWRAP={path} is not an executable"
                       if os.environ.get("ZFLOW_BWRAP") else f"{path} is not an executable")
    return _probe("bwrap", path)


def process_status() -> tuple[bool, str]:
    """(whether the process isolation works here, why not): its set-up (capabilities, limits,
    the seccomp filter of this architecture) can fail too, and must not score every run 0."""
    return _probe("process", None)


# --- the parent's side ---------------------------------------------------------------------------

class _OverCap(Exception):
    pass


def _usage(path: str, max_files: int) -> tuple[int, int]:
    """(bytes allocated, entries) under ``path``; stops counting past ``max_files`` entries."""
    total, count, stack = 0, 0, [path]
    while stack and count <= max_files:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    count += 1
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
        except OSError:
            continue
    return total, count


class _Conversation:
    """The parent's end of the protocol, with one deadline and a periodic check."""

    def __init__(self, proc, wfd: int, rfd: int, deadline: float, check):
        self.proc, self.wfd, self.rfd, self.deadline, self.check = proc, wfd, rfd, deadline, check
        self.buf = b""
        os.set_blocking(wfd, False)

    def _wait(self, fd: int, event: int) -> bool | None:
        """True when ``fd`` is ready, None at the deadline."""
        poller = select.poll()
        poller.register(fd, event)
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0:
                return None
            ready = poller.poll(max(1, int(min(left, POLL_S) * 1000)))
            self.check()
            if ready:
                return True

    def send(self, text: str) -> bool | None:
        data = text.encode("utf-8")
        view = memoryview(len(data).to_bytes(8, "big") + data)
        while view:
            if self._wait(self.wfd, select.POLLOUT) is None:
                return None
            try:
                view = view[os.write(self.wfd, view):]
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                return False
        return True

    def line(self, limit: int = 128) -> bytes | None:
        while b"\n" not in self.buf:
            if len(self.buf) > limit or self._wait(self.rfd, select.POLLIN) is None:
                return None
            chunk = os.read(self.rfd, limit + 1)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def exit(self) -> int | None:
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                return self.proc.wait(timeout=min(left, POLL_S))
            except subprocess.TimeoutExpired:
                self.check()


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


def _run(code: str, tests: str, isolation: str, bwrap: str | None, *, timeout_s: float,
         memory_mb: int, cpu_s: int, fsize_mb: int, disk_mb: int, max_files: int, nproc: int,
         stderr_chars: int, seccomp: bool) -> RunResult:
    nonce = secrets.token_hex(16)
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    workdir = None if isolation == "bwrap" else tempfile.mkdtemp(prefix="zflow-sandbox-")
    cfg = dict(rfd=to_child_r, wfd=from_child_w, memory_mb=memory_mb, cpu_s=cpu_s,
               fsize_mb=fsize_mb, nproc=nproc, nofile=NOFILE, disk_bytes=disk_mb * 2**20, max_files=max_files,
               seccomp=seccomp, setup_failed=SETUP_FAILED, workdir=workdir or SANDBOX_DIR,
               private_tmpfs=isolation == "bwrap", ppid=0 if isolation == "bwrap" else os.getpid())
    argv = [os.path.abspath(sys.executable), "-I", "-B", "-c", RUNNER, json.dumps(cfg)]
    if isolation == "bwrap":
        argv, cwd, env = _bwrap_argv(bwrap, disk_mb * 2**20) + argv, None, {}
    else:
        cwd, env = workdir, _env(workdir)
    over: list[str] = []
    last = [0.0]

    def check():
        if workdir is None or time.monotonic() - last[0] < POLL_S:
            return
        last[0] = time.monotonic()
        size, files = _usage(workdir, max_files)
        if size > disk_mb * 2**20 or files > max_files:
            over.append(f"sandbox: over the work dir's cap ({size} bytes, {files} entries; "
                        f"cap {disk_mb} MiB, {max_files} entries): killed")
            raise _OverCap

    proc = None
    verified, returncode = False, None
    with tempfile.TemporaryFile() as err:
        try:
            deadline = time.monotonic() + timeout_s
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=err, close_fds=True,
                                        pass_fds=(to_child_r, from_child_w), start_new_session=True)
            finally:
                os.close(to_child_r)
                os.close(from_child_w)
            talk = _Conversation(proc, to_child_w, from_child_r, deadline, check)
            try:
                if talk.send(code) and talk.line() == b"ready" and talk.send(
                        json.dumps({"tests": tests, "nonce": nonce})):
                    echoed = talk.line()
                    verified = echoed is not None and hmac.compare_digest(echoed, nonce.encode())
                returncode = talk.exit()
            except _OverCap:
                returncode = None
        finally:
            os.close(to_child_w)
            os.close(from_child_r)
            if proc is not None and proc.returncode is None:
                _kill_group(proc.pid)
                proc.wait()
            if workdir is not None:
                _remove_tree(workdir)
        timed_out = returncode is None and not over
        if over:
            returncode = proc.returncode
        size = err.seek(0, os.SEEK_END)
        err.seek(max(0, size - stderr_chars))
        stderr = err.read().decode("utf-8", "replace") + "".join(f"\n{o}\n" for o in over)
    return RunResult(returncode, timed_out, stderr, verified and not over and not timed_out,
                     isolation)


def run_python(code: str, tests: str = "", *, timeout_s: float = 10.0, memory_mb: int = 1024,
               cpu_s: int | None = None, fsize_mb: int = 16, disk_mb: int = 64,
               max_files: int = 10_000, nproc: int = 64, stderr_chars: int = 2000,
               isolation: str = "auto", _seccomp: bool = True) -> RunResult:
    """Run ``code`` then ``tests`` (plain statements, e.g. asserts) in one namespace in a child.

    Passes when both finish without an exception (``SystemExit`` counts as a failure) and the
    child echoes the nonce it got with the tests (see the module docstring). ``isolation``:
    ``bwrap`` (raises :class:`SandboxUnavailable` where bubblewrap cannot run), ``process`` (the
    weaker one), ``auto`` (bwrap where it runs, else process). ``cpu_s`` defaults to the
    wall-clock timeout rounded up, plus one second; ``disk_mb`` and ``max_files`` cap the work
    dir (bytes written, files and directories made); ``nproc`` is RLIMIT_NPROC. ``_seccomp``
    exists for the tests of the outer layers only.
    """
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation: one of {', '.join(ISOLATIONS)}, got {isolation!r}")
    why = ""
    if isolation != "process":
        ok, why = bwrap_status()
        if not ok and isolation == "bwrap":
            raise SandboxUnavailable(why)
        isolation = "bwrap" if ok else "process"
    if isolation == "process":
        ok, why_not = process_status()
        if not ok:
            raise SandboxUnavailable("; ".join(filter(None, (why, why_not))))
    cpu_s = cpu_s if cpu_s is not None else int(timeout_s) + 1
    return _run(code, tests, isolation, bwrap_path(), timeout_s=timeout_s, memory_mb=memory_mb,
                cpu_s=cpu_s, fsize_mb=fsize_mb, disk_mb=disk_mb, max_files=max_files,
                nproc=nproc, stderr_chars=stderr_chars, seccomp=_seccomp)
