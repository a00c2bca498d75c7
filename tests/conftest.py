"""Shared fixtures: a copy of the workflow in a temp dir and one real run of the default."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

# slurm, local, gpu: the links at the root to profiles/ (`--profile slurm` from the checkout)
COPY = ["Snakefile", "rules", "config", "workflow", "data", "resources", "profiles", "envs",
        "slurm", "local", "gpu"]


# With Slurm's binaries installed but no controller running, the Slurm executor plugin's
# import-time probe (`scontrol show config`, retried for ~9 s) slows every Snakemake call. Outside
# the real-Slurm tests, a stand-in `scontrol` that fails at once takes its place (the plugin
# treats a failure as "unknown" and moves on); the Slurm fixture sets ZFLOW_TEST_SLURM_UP.
SHIM = Path(__file__).resolve().parent / ".shim"


def _shim_dir() -> str:
    SHIM.mkdir(exist_ok=True)
    f = SHIM / "scontrol"
    if not f.exists():
        f.write_text("#!/bin/sh\nexit 1\n")
        f.chmod(0o755)
    return str(SHIM)


def env():
    e = dict(os.environ)
    e["PATH"] = f"{Path(sys.executable).parent}:{e.get('PATH', '')}"
    if not e.get("ZFLOW_TEST_SLURM_UP"):
        e["PATH"] = f"{_shim_dir()}:{e['PATH']}"
    e.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
             TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    return e


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


# Stand-ins for the task folders a config asks the user to supply (a task's include_path, for a
# task lm-eval does not ship): the embedded task of the same shape, its task renamed.
STANDIN_TASKS = {"ifeval-ita": "mini_ifeval_it"}


def supply_task_folders(workdir: Path, configfile: str = "config/zagreus.yaml") -> list[Path]:
    """In a copy of the workflow, a stand-in for every task folder ``configfile`` names that is
    not there (``tasks.<key>.include_path``; config/zagreus.yaml's tasks/ifeval-ita, which a user
    copies from the fork): a copy of the embedded task STANDIN_TASKS[lm_eval_task] with its
    ``task:`` renamed to the configured lm_eval_task. Returns the folders made."""
    cfg = yaml.safe_load((workdir / configfile).read_text())
    made = []
    for key, task in cfg.get("tasks", {}).items():
        inc, name = task.get("include_path"), task["lm_eval_task"]
        if not inc or (workdir / inc).exists():
            continue
        if name not in STANDIN_TASKS:
            raise KeyError(f"{configfile}: no stand-in for tasks.{key} ({name} in {inc})")
        src = REPO / "resources" / "eval_tasks" / STANDIN_TASKS[name]
        shutil.copytree(src, workdir / inc, ignore=shutil.ignore_patterns("__pycache__"))
        y = workdir / inc / f"{src.name}.yaml"
        y.write_text(re.sub(r"^task: .*$", f"task: {name}", y.read_text(), count=1, flags=re.M))
        made.append(workdir / inc)
    return made


def snakemake(workdir: Path, *args, check=True, timeout=1800, extra_env=None):
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(workdir),
           "--snakefile", str(workdir / "Snakefile"), *args]
    p = subprocess.run(cmd, cwd=workdir, env={**env(), **(extra_env or {})}, capture_output=True,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({p.returncode}):\n"
                             f"{p.stdout[-4000:]}\n{p.stderr[-8000:]}")
    return p


def kill_once(cmd, marker: Path, timeout: float = 300) -> None:
    """Run ``cmd`` and SIGKILL it as soon as ``marker`` exists (a job killed mid-run)."""
    import signal
    import time

    p = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not marker.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert marker.exists(), f"no {marker} before the kill"


def nanotron_step_files(root: Path, steps, latest: int) -> None:
    """Checkpoint directories that pass nanotron.check_complete's file checks (no weights),
    with ``latest.txt`` at ``latest`` (later steps are still being written)."""
    for step in steps:
        d = root / str(step)
        d.mkdir(parents=True)
        (d / "checkpoint_metadata.json").write_text(json.dumps({"metas": {"last_train_step": step}}))
        (d / "model_config.json").write_text("{}")
        (d / "config.yaml").write_text("")
    (root / "latest.txt").write_text(str(latest))


def scheduled(workdir: Path, *targets: str, extra_env=None) -> set[tuple]:
    """(rule, wildcards) of every job a dry run of ``targets`` (default: all) lists; empty when
    nothing to do."""
    out = snakemake(workdir, *(targets or ("all",)), "--dry-run", timeout=300,
                    extra_env=extra_env).stdout
    if "Nothing to be done" in out:
        return set()
    jobs = set()
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", out):
        m = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block)
        if m:
            wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
            jobs.add((m.group(1), wc.group(1) if wc else ""))
    return jobs


# config sections that name the post-trained models: the tables, the report's order, the
# qualitative benchmark's models and judge, the releases
DOWNSTREAM = ("compare", "tables", "report", "qualitative", "release")


def without_downstream(cfg: dict) -> dict:
    for key in DOWNSTREAM:
        cfg.pop(key, None)
    return cfg


def spine(cfg: dict, *more: str) -> dict:
    """The embedded default without post-training and what is built on it (and ``more`` keys)."""
    for key in ("posttrain", *more):
        cfg.pop(key, None)
    return without_downstream(cfg)


def load_config(workdir: Path) -> dict:
    return yaml.safe_load((workdir / "config" / "config.yaml").read_text())


def write_config(workdir: Path, cfg: dict) -> None:
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


@pytest.fixture(scope="session", autouse=True)
def results_root(tmp_path_factory):
    """Removals are refused outside the results folder (zflow.io.owned): tests run scripts on
    their own temporary paths, so the folder is pytest's temporary root (workflow runs under it
    still write only results/; tests/test_safe_names.py checks the default, ./results);"""
    base = tmp_path_factory.getbasetemp()
    # and one lm-eval task index for every workflow copy (zflow.taskindex: 20-40 s to build)
    new = {"ZFLOW_RESULTS_ROOT": str(base), "ZFLOW_CACHE_DIR": str(base / "zflow-cache")}
    old = {k: os.environ.get(k) for k in new}
    os.environ.update(new)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The embedded default, run once end to end through Snakemake (target `all`)."""
    wd = copy_workflow(tmp_path_factory.mktemp("demo") / "wf")
    p = snakemake(wd, "all")
    return wd, p


@pytest.fixture
def torch_threads():
    """run_lm_eval.main sets torch's thread count: put it back for the other tests."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
