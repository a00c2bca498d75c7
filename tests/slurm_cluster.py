"""A real Slurm cluster on this machine for the tests: Debian slurm-wlm + munge, two emulated
nodes (n1, n2 on 127.0.0.1) with fake GPU character devices for GRES. Started and stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import apt_packages

STATE = Path("/tmp/zflow-slurm")
GPUS = 2  # fake GPUs per node


def install() -> str | None:
    """Install slurm-wlm and munge when missing; return why not, or None."""
    return apt_packages.install(["slurm-wlm", "munge"], ["slurmctld", "munged"])


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


class Cluster:
    def __init__(self):
        self.host = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 2
        self.pids: list[Path] = []

    def write_config(self):
        if STATE.exists():  # daemons left by an interrupted earlier run: stop them first
            self.pids = sorted(STATE.glob("run/slurmd-*.pid")) + [
                STATE / "run" / "slurmctld.pid", STATE / "munge" / "munged.pid"]
            self.stop()
            self.pids = []
            shutil.rmtree(STATE)
        for d in ("spool/ctld", "spool/d", "log", "run", "dev", "munge"):
            (STATE / d).mkdir(parents=True)
        for i in range(GPUS):
            dev = STATE / "dev" / f"nvidia{i}"
            subprocess.run(["mknod", str(dev), "c", "1", "3"], check=True)
        mem = 4000
        Path("/etc/slurm").mkdir(exist_ok=True)
        Path("/etc/slurm/slurm.conf").write_text(f"""\
ClusterName=zflow
SlurmctldHost={self.host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire: also how long a requeued job waits before it starts again (default 120 s)
AuthInfo=socket={STATE}/munge/munge.socket,cred_expire=20
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
MinJobAge=600
SlurmdParameters=config_overrides
SlurmctldPort=16817
StateSaveLocation={STATE}/spool/ctld
SlurmdSpoolDir={STATE}/spool/d/%n
SlurmctldPidFile={STATE}/run/slurmctld.pid
SlurmdPidFile={STATE}/run/slurmd-%n.pid
SlurmctldLogFile={STATE}/log/slurmctld.log
SlurmdLogFile={STATE}/log/slurmd-%n.log
SchedulerParameters=defer_batch
NodeName=n[1-2] NodeHostname={self.host} NodeAddr=127.0.0.1 Port=17001-17002 CPUs={self.cpus} RealMemory={mem} Gres=gpu:{GPUS} State=UNKNOWN
PartitionName=debug Nodes=n[1-2] Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
""")
        Path("/etc/slurm/gres.conf").write_text(
            f"NodeName=n[1-2] Name=gpu File={STATE}/dev/nvidia[0-{GPUS - 1}]\n")

    def start(self):
        self.write_config()
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            subprocess.run(["mungekey", "--create"], check=False)
            if not key.exists():
                key.parent.mkdir(parents=True, exist_ok=True)
                key.write_bytes(os.urandom(1024))
        shutil.chown(key, "munge", "munge") if _has_user("munge") else None
        os.chmod(key, 0o400)
        shutil.chown(STATE / "munge", "munge", "munge") if _has_user("munge") else None
        runas = ["runuser", "-u", "munge", "--"] if _has_user("munge") else []
        subprocess.run([*runas, "munged", f"--socket={STATE}/munge/munge.socket",
                        f"--pid-file={STATE}/munge/munged.pid", f"--key-file={key}",
                        f"--log-file={STATE}/munge/munged.log", f"--seed-file={STATE}/munge/seed"],
                       check=True)
        self.pids.append(STATE / "munge" / "munged.pid")
        subprocess.run(["slurmctld"], check=True)
        self.pids.insert(0, STATE / "run" / "slurmctld.pid")
        for n in ("n1", "n2"):
            subprocess.run(["slurmd", "-N", n], check=True)
            self.pids.insert(0, STATE / "run" / f"slurmd-{n}.pid")
        deadline = time.time() + 60
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%T %D"], capture_output=True, text=True)
            if out.returncode == 0 and "idle 2" in out.stdout:
                return
            time.sleep(1)
        raise RuntimeError(f"Slurm nodes never became idle: {out.stdout} {out.stderr}\n"
                           + (STATE / "log/slurmctld.log").read_text()[-3000:])

    def stop(self):
        for pidfile in self.pids:  # slurmd first, then slurmctld, then munged
            pid = _pid(pidfile)
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    if not _alive(pid):
                        break
                    time.sleep(0.1)
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)

    def log(self, name="slurmctld.log") -> str:
        p = STATE / "log" / name
        return p.read_text() if p.exists() else ""


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
