"""The newcomer's path: the commands of the README, as written, from a checkout.

`snakemake --profile slurm all_ita` finds the profile through the link `slurm -> profiles/slurm` at
the repository root (Snakemake looks for a bare profile name in the working directory first);
jobs run with the Python that runs Snakemake even when its venv is not on PATH."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, _shim_dir, copy_workflow, env, supply_task_folders
from zflow import paths as P

PROFILES = ("slurm", "local", "gpu")


def test_profile_links():
    for name in PROFILES:
        link = REPO / name
        assert link.is_symlink() and os.readlink(link) == f"profiles/{name}", name
        assert (link / "config.v8+.yaml").is_file(), name


def run_in(cwd: Path, *args, timeout=300):
    """``python -m snakemake ARGS`` with ``cwd`` as the working directory (no --directory)."""
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def test_slurm_profile_by_name(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    supply_task_folders(wd)  # the profile's config/zagreus.yaml reads tasks/ifeval-ita
    p = run_in(wd, "--profile", "slurm", "all_ita", "--dry-run")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "Using profile slurm" in out
    # the profile's production config, not the embedded default
    assert re.search(r"Config file\(s\):.*config/zagreus\.yaml", out), out[:3000]
    assert re.search(r"^checkpoint pretrain_nanotron:", p.stdout, re.M), p.stdout[-3000:]
    assert re.search(r"^pretrain_nanotron\s+1$", p.stdout, re.M)

    p = run_in(wd, "--profile", "local", "all", "--dry-run")
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    assert "Using profile local" in p.stdout + p.stderr
    assert re.search(r"^pretrain\s+1$", p.stdout, re.M), p.stdout[-3000:]


def test_jobs_use_snakemakes_python_without_venv_on_path(tmp_path):
    """The venv's snakemake by absolute path, the venv not on PATH: the job's `python` must still
    be the venv's (rules/common.smk puts it first on the jobs' PATH). On this PATH `python` is
    missing or a system Python without pyarrow/tokenizers/transformers (checked below), so without
    that glue train_tokenizer fails ("python: command not found" / ModuleNotFoundError)."""
    bare = f"{_shim_dir()}{os.pathsep}/usr/bin{os.pathsep}/bin"
    system_python = shutil.which("python", path=bare)
    if system_python:
        has_deps = subprocess.run([system_python, "-c", "import pyarrow, tokenizers, transformers"],
                                  capture_output=True).returncode == 0
        if has_deps:
            pytest.skip(f"{system_python} has the job's packages: the test would not discriminate")

    wd = copy_workflow(tmp_path / "wf")
    e = {k: v for k, v in env().items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")}
    e["PATH"] = bare
    target = P.fmt(P.TOKENIZER, tokenizer="bpe_ita_eng_4k")
    snakemake_bin = Path(sys.executable).parent / "snakemake"
    p = subprocess.run([str(snakemake_bin), "--cores", "2", target], cwd=wd, env=e,
                       capture_output=True, text=True, timeout=300)
    log = wd / P.log("train_tokenizer", "bpe_ita_eng_4k")
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:] + (
        log.read_text()[-2000:] if log.exists() else "")
    assert (wd / target / "tokenizer.json").is_file()
    meta = json.loads((wd / target / "zflow_tokenizer.json").read_text())
    assert meta["versions"]["transformers"], meta  # written by a Python that has transformers


def test_make_run_target():
    if not shutil.which("make"):
        pytest.skip("no make")
    # -n: print only; -o: never rebuild the venv from here
    make = ["make", "-C", str(REPO), "-s", "-n", "-o", ".venv/.installed", "run"]
    e = {k: v for k, v in env().items() if k not in ("CONFIG", "PROFILE", "TARGET", "ARGS",
                                                     "MAKEFLAGS", "MFLAGS")}

    def line(*args, **extra):
        p = subprocess.run([*make, *args], env={**e, **extra}, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        (cmd,) = [ln.split() for ln in p.stdout.splitlines() if ln.startswith("snakemake ")]
        return cmd

    assert line() == ["snakemake", "--profile", "local", "all"]
    assert line("TARGET=all_ita", "PROFILE=slurm") == [
        "snakemake", "--profile", "slurm", "all_ita"]
    assert line("TARGET=all_ita", "PROFILE=slurm", "CONFIG=config/zagreus.yaml") == [
        "snakemake", "--profile", "slurm", "all_ita", "--configfile", "config/zagreus.yaml"]
    assert line(CONFIG="config/x.yaml")[-2:] == ["--configfile", "config/x.yaml"]
    assert line("ARGS=--dry-run")[-1] == "--dry-run"
