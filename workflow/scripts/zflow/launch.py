"""Start a training script on every GPU of a job: torchrun, one per node, via srun on Slurm."""

from __future__ import annotations

import os
import subprocess


def slurm_master() -> str:
    """Address of the allocation's first node (SLURM_JOB_NODELIST is stripped inside jobs)."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return "127.0.0.1"
    nodes = subprocess.run(["squeue", "-h", "-j", job, "-o", "%N"], capture_output=True,
                           text=True, check=True).stdout.strip()
    first = subprocess.run(["scontrol", "show", "hostnames", nodes], capture_output=True,
                           text=True, check=True).stdout.split()[0]
    info = subprocess.run(["scontrol", "show", "node", first], capture_output=True, text=True).stdout
    for field in info.split():
        if field.startswith("NodeAddr="):
            return field.split("=", 1)[1]
    return first


def torchrun(python: str | None = None) -> list[str]:
    """torchrun of ``python``'s own environment (``<python> -m torch.distributed.run``: the same
    interpreter on every node, whatever PATH holds there), else the ``torchrun`` on PATH."""
    return [python, "-m", "torch.distributed.run"] if python else ["torchrun"]


def command(script_and_args: list[str], nodes: int, nproc_per_node: int,
            master: str | None = None, port: int | None = None, python: str | None = None,
            always_torchrun: bool = False) -> list[str]:
    """The launch command: plain for one process (unless ``always_torchrun``), torchrun for
    several, srun for several nodes (one torchrun per node). ``python``: the interpreter that
    runs the script and torchrun (default: ``python`` and ``torchrun`` from PATH)."""
    if nodes * nproc_per_node == 1 and not always_torchrun:
        return [python or "python", *script_and_args]
    job = os.environ.get("SLURM_JOB_ID", "0")
    port = port or 29400 + int(job) % 1000
    if nodes == 1:
        return [*torchrun(python), "--standalone", f"--nproc_per_node={nproc_per_node}",
                *script_and_args]
    master = master or slurm_master()
    run = [*torchrun(python), f"--nnodes={nodes}", f"--nproc_per_node={nproc_per_node}",
           "--rdzv_backend=c10d", f"--rdzv_endpoint={master}:{port}", f"--rdzv_id={job}",
           *script_and_args]
    return ["srun", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1", *run]


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ


def world() -> tuple[int, bool]:
    """(processes of the job, whether this one is rank 0), from torchrun's environment."""
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")) == 0


def start_distributed(cuda: bool) -> None:
    """Join the job's process group (nccl on GPUs, gloo on CPUs) when there are several."""
    import torch

    if world()[0] > 1:
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
        torch.distributed.barrier()


def end_distributed() -> None:
    import torch

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def relaunch(script: str, argv: list[str], nodes: int, nproc_per_node: int) -> None:
    """Start ``script`` on every process of the job and exit with its status, unless this process
    is already one of them (or the job has a single process: then return and run in place)."""
    if nodes * nproc_per_node == 1 or under_torchrun():
        return
    cmd = command([script, *argv], nodes, nproc_per_node)
    print("launching:", " ".join(cmd[:8]), "...", flush=True)
    raise SystemExit(subprocess.call(cmd))
