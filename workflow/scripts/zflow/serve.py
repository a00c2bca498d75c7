"""A local OpenAI-compatible server for one model directory, for the length of one job.

``local_server(model_dir, ...)`` runs ``transformers serve <model_dir>`` (transformers' own
FastAPI/uvicorn server, ``pip install transformers[serving]``: fastapi, uvicorn, openai; it works
offline with a local directory) on ``127.0.0.1`` and a free port, and yields its URL for
:func:`zflow.endpoint.chat`. Its lifecycle, all inside the job that uses it:

1. start: the server is its own process group (``start_new_session``), told to die with the job
   (Linux ``PR_SET_PDEATHSIG``), with the job's thread count (``OMP_NUM_THREADS``); its output
   goes to the job's log;
2. ready: ``GET /health`` answers 200 and one tiny chat completion succeeds, polled until
   ``startup_timeout`` seconds; a server that exits or is not ready in time raises ServerError
   (its exit status; the log holds its output);
3. stop, always (``finally``; a SIGTERM to the job, e.g. Snakemake cancelling it, becomes an
   exception so that this still runs): SIGTERM to the server's process group, SIGKILL after
   ``grace`` seconds.

The model's name in requests is ``model_dir`` as given (the server is pinned to it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from zflow.endpoint import EndpointError, chat

__all__ = ["ServerError", "free_port", "serve_command", "local_server"]


class ServerError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _transformers_cli() -> str:
    beside = Path(sys.executable).with_name("transformers")
    found = str(beside) if beside.exists() else shutil.which("transformers")
    if not found:
        raise ServerError("the `transformers` command (transformers serve) is not installed "
                          "beside this Python nor on PATH")
    return found


def serve_command(model_dir: str, port: int, device: str = "cpu", dtype: str = "auto",
                  host: str = "127.0.0.1") -> list[str]:
    return [_transformers_cli(), "serve", str(model_dir), "--host", host, "--port", str(port),
            "--device", device, "--dtype", dtype, "--log-level", "warning",
            "--format", "quiet"]


def _die_with_parent() -> None:  # runs in the child before exec (Linux only)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _wait_ready(proc: subprocess.Popen, url: str, model: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"the judge server exited with status {proc.returncode} before it "
                              "was ready (its output is in the job's log)")
        if _healthy(url):
            try:
                chat(url, model, [{"role": "user", "content": "ping"}], max_tokens=1,
                     timeout=max(1.0, deadline - time.monotonic()), retries=0)
                return
            except EndpointError:
                pass
        time.sleep(0.25)
    raise ServerError(f"the judge server at {url} was not ready within {timeout:g} s")


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM to the server's process group, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _raise_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def local_server(model_dir: str, device: str = "cpu", dtype: str = "auto", threads: int = 1,
                 startup_timeout: float = 300.0, grace: float = 10.0):
    """Yield the URL of ``transformers serve <model_dir>`` on 127.0.0.1; stop it on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    cmd = serve_command(model_dir, port, device, dtype)
    print(f"judge server: {' '.join(cmd)}", file=sys.stderr, flush=True)
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                            preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    try:
        start = time.monotonic()
        _wait_ready(proc, url, str(model_dir), startup_timeout)
        print(f"judge server ready at {url} in {time.monotonic() - start:.1f} s",
              file=sys.stderr, flush=True)
        yield url
    finally:
        stop(proc, grace)
        signal.signal(signal.SIGTERM, previous)
