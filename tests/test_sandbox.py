"""The code sandbox (zflow.sandbox) against an attack suite, under bubblewrap and under the
weaker process isolation that `allow_process_sandbox` accepts; the refusal where bwrap cannot run;
the verdict protocol (an early exit scores 0).

Each attack case runs the untrusted code once and looks for its effect from outside (a file
outside written or deleted, bytes at a listener, a planted secret in the output, a process left
behind, the parent killed); it prints its time (pytest -s shows them). Under the process
isolation, the attacks that need file-system isolation succeed: those cases run, check that the
effect happened (so the docs' claim is measured) and end as xfail.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sandbox_tool  # noqa: E402
from zflow import rewards as R  # noqa: E402
from zflow import sandbox  # noqa: E402

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
ENV_KEYS = {"PATH", "HOME", "TMPDIR", "LANG", "PWD", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            "MKL_NUM_THREADS"}


@pytest.fixture(scope="module")
def bwrap_why():
    """None where the bwrap isolation runs (bubblewrap installed when missing), else why not."""
    why = sandbox_tool.install()
    if why is None:
        ok, why = sandbox.bwrap_status()
        if ok:
            return None
    return why


@pytest.fixture(params=["bwrap", "process"])
def mode(request, bwrap_why):
    if request.param == "bwrap" and bwrap_why:
        pytest.skip(f"bubblewrap cannot run here: {bwrap_why}")
    return request.param


class Ctx:
    """What an attack may aim at: a planted secret in the parent's environment and in a file
    outside, a victim file, a listener on 127.0.0.1, a unique process name."""

    def __init__(self, tmp_path: Path, mode: str):
        self.mode, self.tmp = mode, tmp_path
        self.secret = "hf_zflowFake" + secrets.token_hex(12)
        self.secret_file = tmp_path / "secret.txt"
        self.secret_file.write_text(self.secret)
        self.victim = tmp_path / "victim.txt"
        self.victim.write_text("keep me")
        self.victim_dir = tmp_path / "victim-dir"
        self.victim_dir.mkdir()
        self.outside = tmp_path / "written.txt"
        self.late = tmp_path / "late.txt"
        self.name = "zfl" + secrets.token_hex(5)  # a process name (comm: 15 characters at most)
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.port = self.server.getsockname()[1]

    def code(self, text: str) -> str:
        subs = {"@PID@": os.getpid(), "@SECRET_FILE@": self.secret_file, "@VICTIM@": self.victim,
                "@VICTIM_DIR@": self.victim_dir, "@OUTSIDE@": self.outside, "@LATE@": self.late,
                "@NAME@": self.name, "@PORT@": self.port}
        text = textwrap.dedent(text)
        for k, v in subs.items():
            text = text.replace(k, str(v))
        return text

    def run(self, text: str, tests: str = "", **kw):
        kw.setdefault("timeout_s", 10)
        return sandbox.run_python(self.code(text), tests, isolation=self.mode, **kw)

    def connections(self) -> list[bytes]:
        """What reached the listener (connections accepted, their first bytes)."""
        got = []
        self.server.settimeout(0.2)
        while True:
            try:
                conn, _ = self.server.accept()
            except (TimeoutError, socket.timeout):
                return got
            conn.settimeout(0.5)
            try:
                got.append(conn.recv(100))
            except OSError:
                got.append(b"")
            conn.close()

    def processes_named(self) -> list[int]:
        out = []
        for p in Path("/proc").iterdir():
            try:
                if p.name.isdigit() and (p / "comm").read_text().strip() == self.name:
                    out.append(int(p.name))
            except OSError:
                pass
        return out

    def close(self):
        self.server.close()
        for d in ("/dev/shm", "/dev", "/tmp", "/"):
            Path(d, self.name).unlink(missing_ok=True)
        for pid in self.processes_named():  # a test that failed must not leave them running
            try:
                os.kill(pid, 9)
            except OSError:
                pass


@pytest.fixture
def ctx(tmp_path, mode, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "placeholder")
    c = Ctx(tmp_path, mode)
    monkeypatch.setenv("HF_TOKEN", c.secret)  # in the parent's (this process's) environment
    yield c
    c.close()


# --- the attacks: each returns its evidence ("" when blocked) -------------------------------------

def read_parent_environ(c: Ctx):
    r = c.run("""
        import posix
        pids = {posix.getppid(), @PID@} | {int(p) for p in posix.listdir("/proc") if p.isdigit()}
        for pid in sorted(pids):
            try:
                fd = posix.open(f"/proc/{pid}/environ", posix.O_RDONLY)
                data = posix.read(fd, 1 << 20)
                posix.close(fd)
            except OSError as e:
                posix.write(2, f"{pid}: {e!r}\\n".encode())
                continue
            for var in data.split(b"\\0"):
                if var.startswith(b"HF_TOKEN="):
                    posix.write(2, b"found " + var + b"\\n")
        """)
    return "parent's HF_TOKEN read" if c.secret in r.stderr else ""


def read_file_outside(c: Ctx):
    r = c.run("""
        import posix
        for path in ("@SECRET_FILE@", "/etc/shadow"):
            try:
                fd = posix.open(path, posix.O_RDONLY)
                posix.write(2, b"read=" + posix.read(fd, 64) + b"\\n")
            except OSError as e:
                posix.write(2, f"{path}: {e!r}\\n".encode())
        """)
    return ("planted file read" if c.secret in r.stderr else "") + (
        " /etc/shadow read" if "read=root:" in r.stderr else "")


def write_posix(c: Ctx):
    c.run("""
        import posix
        fd = posix.open("@OUTSIDE@", posix.O_WRONLY | posix.O_CREAT)
        posix.write(fd, b"x")
        """)
    return "written via posix" if c.outside.exists() else ""


def write_io(c: Ctx):
    c.run("""
        import _io
        _io.open("@OUTSIDE@", "w").write("x")
        """)
    return "written via _io" if c.outside.exists() else ""


def write_introspection(c: Ctx):
    c.run("""
        def subclasses(cls):
            for sub in type.__subclasses__(cls):
                yield sub
                yield from subclasses(sub)
        FileIO = next(k for k in subclasses(object) if k.__name__ == "FileIO")
        FileIO("@OUTSIDE@", "w").write(b"x")
        """)
    return "written via object.__subclasses__" if c.outside.exists() else ""


def delete_outside(c: Ctx):
    c.run("""
        import posix
        for f in (posix.unlink, posix.rmdir):
            try:
                f("@VICTIM@" if f is posix.unlink else "@VICTIM_DIR@")
            except OSError as e:
                posix.write(2, f"{e!r}\\n".encode())
        """)
    return ("file deleted" if not c.victim.exists() else "") + (
        " dir deleted" if not c.victim_dir.exists() else "")


def sysctl_write(c: Ctx):
    """Opens kernel sysctls for writing and closes them unwritten (a write would reach the host:
    kernel.core_pattern runs a program as root). A host-root uid may, without capabilities."""
    r = c.run("""
        import posix
        for path in ("/proc/sys/kernel/core_pattern", "/proc/sys/vm/drop_caches", "/proc/mtrr"):
            try:
                posix.close(posix.open(path, posix.O_WRONLY))
                posix.write(2, f"opened {path} for writing\\n".encode())
            except OSError as e:
                posix.write(2, f"{path}: {e!r}\\n".encode())
        """)
    return "; ".join(line for line in r.stderr.splitlines() if line.startswith("opened"))


SPAWNED = "SPAW" "NED"  # never in the attack's text: only a child that ran can print it


def spawned(r) -> str:
    return "a process was started" if SPAWNED in r.stderr else ""


def spawn_fork(c: Ctx):
    return spawned(c.run("""
        import posix
        pid = posix.fork()
        if pid == 0:
            posix.write(2, b"SPAW" + b"NED\\n")
            posix._exit(0)
        posix.waitpid(pid, 0)
        """))


def spawn_posix_spawn(c: Ctx):
    return spawned(c.run("""
        import posix
        pid = posix.posix_spawn("/bin/sh", ["sh", "-c", "echo SPAW''NED >&2"], {})
        posix.waitpid(pid, 0)
        """))


def spawn_ctypes(c: Ctx):
    return spawned(c.run("""
        import ctypes, posix
        libc = ctypes.CDLL(None, use_errno=True)
        posix.write(2, f"system: {libc.system(b'echo SPAW""NED >&2')} errno {ctypes.get_errno()}\\n".encode())
        pid = libc.fork()
        if pid == 0:
            posix.write(2, b"SPAW" + b"NED\\n")
            posix._exit(0)
        posix.write(2, f"fork: {pid} errno {ctypes.get_errno()}\\n".encode())
        """))


def spawn_reloaded_os(c: Ctx):
    return spawned(c.run("""
        import importlib, os
        os = importlib.reload(os)
        os.system("echo SPAW''NED >&2")
        import subprocess
        subprocess = importlib.reload(subprocess)
        import _posixsubprocess
        importlib.reload(_posixsubprocess) if hasattr(_posixsubprocess, "__file__") else None
        subprocess.run(["sh", "-c", "echo SPAW''NED >&2"])
        """))


def socket_lowlevel(c: Ctx):
    r = c.run("""
        import _socket
        s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect(("127.0.0.1", @PORT@))
        s.send(b"ESCAPED")
        """)
    got = c.connections()
    return f"listener got {got}" if got else ""


def socket_ctypes(c: Ctx):
    c.run("""
        import ctypes, posix, struct
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.socket(2, 1, 0)
        posix.write(2, f"socket: {fd} errno {ctypes.get_errno()}\\n".encode())
        addr = struct.pack("<HH4s8x", 2, ((@PORT@ & 255) << 8) | (@PORT@ >> 8), bytes([127, 0, 0, 1]))
        posix.write(2, f"connect: {libc.connect(fd, addr, 16)} errno {ctypes.get_errno()}\\n".encode())
        libc.send(fd, b"ESCAPED", 7, 0)
        """)
    got = c.connections()
    return f"listener got {got}" if got else ""


HELPER = r"""
import json, os, sys
from zflow import sandbox
code = sys.argv[1].replace("@HELPER@", str(os.getpid()))
r = sandbox.run_python(code, "", timeout_s=10, isolation=sys.argv[2])
print(json.dumps({"stderr": r.stderr, "passed": r.passed}))
"""


def kill_parent(c: Ctx):
    """In a helper process that calls run_python (its parent, so the test runner survives)."""
    code = c.code("""
        import ctypes, posix
        for pid in (posix.getppid(), @HELPER@):
            for kill in (posix.kill, ctypes.CDLL(None, use_errno=True).kill):
                try:
                    if kill(pid, 9) == 0:
                        posix.write(2, f"killed {pid}\\n".encode())
                except OSError as e:
                    posix.write(2, f"kill {pid}: {e!r}\\n".encode())
        """)
    p = subprocess.run([sys.executable, "-c", HELPER, code, c.mode], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(SCRIPTS)))
    if p.returncode != 0:
        return f"the parent died ({p.returncode}): {p.stderr[-300:]}"
    stderr = json.loads(p.stdout)["stderr"]
    return "a kill succeeded" if "killed" in stderr else ""


def setsid_grandchild(c: Ctx, **kw):
    start = time.monotonic()
    r = c.run("""
        import ctypes, posix, time
        try:
            pid = posix.fork()
        except OSError as e:
            posix.write(2, f"fork: {e!r}\\n".encode())
            pid = -1
        if pid == 0:
            posix.setsid()
            ctypes.CDLL(None).prctl(15, b"@NAME@", 0, 0, 0)  # PR_SET_NAME
            for path in ("@LATE@", "late.txt"):
                try:
                    fd = posix.open(path, posix.O_WRONLY | posix.O_CREAT | posix.O_APPEND)
                    break
                except OSError:
                    pass
            while True:
                posix.write(fd, b"x")
                time.sleep(0.02)
        time.sleep(60)
        """, timeout_s=1.5, **kw)
    assert r.timed_out and time.monotonic() - start < 5
    size = c.late.stat().st_size if c.late.exists() else 0
    time.sleep(0.5)
    evidence = []
    if (c.late.stat().st_size if c.late.exists() else 0) > size:
        evidence.append("written after the timeout")
    if c.processes_named():
        evidence.append(f"still running: {c.processes_named()}")
    return "; ".join(evidence)


def fork_bomb(c: Ctx):
    # bounded at 200 forks whose children exit at once: a real bomb would take down the machine
    # if a layer failed
    r = c.run("""
        import posix
        n = 0
        try:
            while n < 200:
                if posix.fork() == 0:
                    posix._exit(0)
                n += 1
        finally:
            posix.write(2, f"forks={n}\\n".encode())
        """)
    forks = int(r.stderr.split("forks=")[1].split()[0])
    return f"{forks} forks" if forks else ""


def thread_bomb(c: Ctx):
    r = c.run("""
        import posix, threading, time
        n = 0
        try:
            while n < 5000:
                threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
                n += 1
        finally:
            posix.write(2, f"threads={n}\\n".encode())
        """, timeout_s=10)
    threads = int(r.stderr.split("threads=")[1].split()[0])
    print(f"  threads started before the limit: {threads}")
    return f"{threads} threads (unbounded)" if threads >= 5000 else ""


DISK_MB = 32


def disk_fill(c: Ctx):
    r = c.run("""
        import posix
        total = 0
        try:
            for i in range(64):
                fd = posix.open(f"big{i}", posix.O_WRONLY | posix.O_CREAT)
                for _ in range(15):
                    total += posix.write(fd, b"x" * 2**20)
                    posix.write(2, f"total={total}\\n".encode())
                posix.close(fd)
        except OSError as e:
            posix.write(2, f"stopped: {e!r}\\n".encode())
        """, disk_mb=DISK_MB)
    totals = [int(x.split()[0]) for x in r.stderr.split("total=")[1:]]
    written = max(totals, default=0)
    print(f"  written before the cap: {written / 2**20:.1f} MiB (cap {DISK_MB} MiB); "
          f"{r.stderr.strip().splitlines()[-1][:120]}")
    return f"{written / 2**20:.0f} MiB written" if written > (DISK_MB + 100) * 2**20 else ""


def disk_outside_workdir(c: Ctx):
    """The places that are writable tmpfs on a usual machine: the cap would not see them."""
    r = c.run("""
        import posix
        for path in ("/dev/shm/@NAME@", "/dev/@NAME@", "/tmp/@NAME@", "/@NAME@"):
            try:
                fd = posix.open(path, posix.O_WRONLY | posix.O_CREAT)
                posix.write(2, f"wrote {posix.write(fd, bytes(2**20))} to {path}\\n".encode())
            except OSError as e:
                posix.write(2, f"{path}: {e!r}\\n".encode())
        """)
    return "; ".join(line for line in r.stderr.splitlines() if line.startswith("wrote"))


def memory_outside_limits(c: Ctx):
    """Memory that neither the address-space limit nor the work dir's cap would count."""
    r = c.run("""
        import ctypes, os, posix
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            fd = os.memfd_create("x")
            posix.write(fd, bytes(2**20))
            posix.write(2, b"made a memfd\\n")
        except OSError as e:
            posix.write(2, f"memfd: {e!r}\\n".encode())
        for name, args in (("shmget", (0, 2**30, 0o1600)), ("msgget", (0, 0o1600))):
            got = getattr(libc, name)(*map(ctypes.c_long, args))
            posix.write(2, f"{name}: {got} errno {ctypes.get_errno()}\\n".encode())
            if got >= 0:
                posix.write(2, f"made a {name} segment\\n".encode())
                if name == "shmget":
                    libc.shmctl(got, 0, None)  # IPC_RMID
                else:
                    libc.msgctl(got, 0, None)
        pipes = 0
        try:
            while pipes < 5000:
                posix.pipe()
                pipes += 1
        except OSError as e:
            posix.write(2, f"pipes={pipes} {e!r}\\n".encode())
        """)
    made = [line for line in r.stderr.splitlines() if line.startswith("made")]
    pipes = int(r.stderr.split("pipes=")[1].split()[0]) if "pipes=" in r.stderr else 5000
    print(f"  pipes opened before RLIMIT_NOFILE: {pipes}")
    return "; ".join(made + ([f"{pipes} pipes"] if pipes >= 5000 else []))


MAX_FILES = 2000


def many_files(c: Ctx):
    r = c.run("""
        import posix
        n = 0
        try:
            while n < 200_000:
                posix.close(posix.open(f"f{n}", posix.O_WRONLY | posix.O_CREAT))
                n += 1
                if n % 100 == 0:
                    posix.write(2, f"files={n}\\n".encode())
        except OSError as e:
            posix.write(2, f"files={n} stopped: {e!r}\\n".encode())
        """, max_files=MAX_FILES)
    made = max((int(x.split()[0]) for x in r.stderr.split("files=")[1:]), default=0)
    print(f"  files made before the cap: {made} (cap {MAX_FILES}); "
          f"{r.stderr.strip().splitlines()[-1][:120]}")
    return f"{made} files" if made >= 200_000 or made > 10 * MAX_FILES else ""


def early_exit(c: Ctx):
    exits = ["import posix\nposix._exit(0)", "raise SystemExit(0)",
             "import ctypes\nctypes.CDLL(None)._exit(0)",
             "import posix, signal\nposix.kill(posix.getpid(), signal.SIGKILL)",
             "import posix\nposix.write(2, b'ready\\n')\nposix.write(1, b'ok\\n')\nposix._exit(0)"]
    passed = [e for e in exits if c.run(e, "assert False").passed]
    return f"scored as passes: {passed}" if passed else ""


def environment(c: Ctx):
    r = c.run("""
        import os, sys
        sys.stderr.write(f"env={sorted(os.environ)} {dict(os.environ)}\\n")
        """)
    keys = set(eval(r.stderr.split("env=")[1].split("] ")[0] + "]"))
    return (f"extra variables {keys - ENV_KEYS}" if keys - ENV_KEYS else "") + (
        " the secret" if c.secret in r.stderr else "")


ATTACKS = [read_parent_environ, read_file_outside, write_posix, write_io, write_introspection,
           delete_outside, sysctl_write, spawn_fork, spawn_posix_spawn, spawn_ctypes,
           spawn_reloaded_os, socket_lowlevel, socket_ctypes, kill_parent, setsid_grandchild,
           fork_bomb, thread_bomb, memory_outside_limits, disk_fill, disk_outside_workdir,
           many_files, early_exit, environment]
# what the process isolation does not stop (no file-system isolation). The parent's environ is
# kept from it only where the parent has capabilities the child dropped (root); as root, the
# child may write sysctls (their owner bits are checked against the uid alone).
PROCESS_ESCAPES = {"read_file_outside", "write_posix", "write_io", "write_introspection",
                   "delete_outside", "disk_outside_workdir"}
if os.geteuid() != 0:
    PROCESS_ESCAPES.add("read_parent_environ")
else:
    PROCESS_ESCAPES.add("sysctl_write")


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda f: f.__name__)
def test_attack_is_blocked(attack, ctx):
    start = time.monotonic()
    evidence = attack(ctx)
    took = time.monotonic() - start
    outcome = f"ESCAPED: {evidence}" if evidence else "blocked"
    print(f"\n[sandbox attack] {ctx.mode:7} {attack.__name__:21} {took:6.2f} s  {outcome}")
    if ctx.mode == "process" and attack.__name__ in PROCESS_ESCAPES:
        assert evidence, "the process isolation was expected to let this through"
        pytest.xfail(f"the process sandbox has no file-system isolation: {evidence}")
    assert not evidence


# --- the outer layers without seccomp (bwrap only) -------------------------------------------------

def test_pid_namespace_kills_a_setsid_grandchild_without_seccomp(ctx):
    """With the seccomp filter off the fork succeeds; the PID namespace still ends the
    grandchild that left the session when bwrap is killed at the timeout."""
    if ctx.mode != "bwrap":
        pytest.skip("the process isolation relies on seccomp to stop forks")
    start = time.monotonic()
    evidence = setsid_grandchild(ctx, _seccomp=False)
    print(f"\n[sandbox attack] bwrap   setsid (no seccomp)  {time.monotonic() - start:6.2f} s  "
          f"{evidence or 'blocked'}")
    assert not evidence


def test_rlimit_nproc_does_not_bind_root(ctx):
    """Measured, not wished: as root (also in a user namespace) the kernel ignores RLIMIT_NPROC,
    which is why forks are stopped by seccomp. Bounded at 12 children."""
    if ctx.mode != "bwrap":
        pytest.skip("measured in the PID namespace only (children cannot outlive it)")
    r = ctx.run("""
        import posix
        n = 0
        try:
            while n < 12:
                if posix.fork() == 0:
                    import time
                    time.sleep(3)
                    posix._exit(0)
                n += 1
        finally:
            posix.write(2, f"forks={n}\\n".encode())
        """, nproc=4, _seccomp=False)
    forks = int(r.stderr.split("forks=")[1].split()[0])
    print(f"\n[sandbox] RLIMIT_NPROC=4 without seccomp, euid {os.geteuid()}: {forks} forks")
    if os.geteuid() == 0:
        assert forks == 12
    else:
        assert forks <= 4


# --- the verdict ------------------------------------------------------------------------------------

def test_pass_fail_and_verdict(ctx):
    ok = ctx.run("def add(a, b):\n    return a + b", "assert add(1, 2) == 3")
    assert ok.passed and ok.verified and ok.isolation == ctx.mode
    bad = ctx.run("def add(a, b):\n    return a - b", "assert add(1, 2) == 3")
    assert not bad.passed and "AssertionError" in bad.stderr
    # the tests are not in the sandbox while the solution runs: it cannot read them
    peek = ctx.run("import os, posix\nassert not [f for f in os.listdir('.') if 'test' in f]",
                   "assert True")
    assert peek.passed


@pytest.mark.xfail(strict=True, reason="known limit: code written against the protocol can "
                                       "skip the tests (docs/sandbox.md)")
def test_known_limit_protocol_emulation(ctx):
    r = ctx.run("""
        import json, posix
        fd = posix.open("/proc/self/cmdline", posix.O_RDONLY)
        cfg = json.loads(posix.read(fd, 1 << 20).rstrip(b"\\0").split(b"\\0")[-1])
        posix.write(cfg["wfd"], b"ready\\n")
        n = int.from_bytes(posix.read(cfg["rfd"], 8), "big")
        msg = b""
        while len(msg) < n:
            msg += posix.read(cfg["rfd"], n - len(msg))
        posix.write(cfg["wfd"], json.loads(msg)["nonce"].encode() + b"\\n")
        posix._exit(0)
        """, "assert False")
    assert not r.passed


# --- the refusal, and the process sandbox under the allow key ---------------------------------------

def test_refuses_without_bwrap_and_names_the_key(monkeypatch):
    monkeypatch.setenv("ZFLOW_BWRAP", "/nonexistent/bwrap")
    ok, why = sandbox.bwrap_status()
    assert not ok and "/nonexistent/bwrap" in why
    with pytest.raises(sandbox.SandboxUnavailable, match="allow_process_sandbox"):
        R.code_reward()
    with pytest.raises(ValueError, match="allow_process_sandbox: true"):
        R.build_rewards([{"name": "code", "timeout_s": 5}])
    with pytest.raises(sandbox.SandboxUnavailable):
        sandbox.run_python("pass", isolation="bwrap")
    # with the key: the process sandbox, which still scores
    fn = R.code_reward(timeout_s=5, allow_process_sandbox=True)
    code = ["```python\ndef add(a, b):\n    return a + b\n```", "def add(a, b):\n    return 0",
            "import posix\nposix._exit(0)"]
    assert fn(None, code, tests=["assert add(1, 2) == 3"] * 3) == [1.0, 0.0, 0.0]
    r = sandbox.run_python("import resource, os\nprint(resource.getrlimit(resource.RLIMIT_NPROC))",
                           "assert set(os.environ) <= %r" % ENV_KEYS)
    assert r.passed and r.isolation == "process"


def test_schema_accepts_the_key():
    import yaml
    from zflow import schema

    doc = yaml.safe_load((SCRIPTS.parents[1] / "config" / "schemas" / "config.schema.yaml").read_text())
    item = doc["properties"]["posttrain"]["additionalProperties"]["properties"]["train"][
        "properties"]["rewards"]["items"]
    assert item["properties"]["allow_process_sandbox"]["type"] == "boolean"
    assert "default" not in item["properties"]["allow_process_sandbox"]  # not given to math & co
    schema._validator(item).validate({"name": "code", "allow_process_sandbox": True})
