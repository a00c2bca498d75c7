"""`make smoke`: config/zagreus.yaml's own DAG, end to end on one CPU.

    python -m zflow.smoke.run [--dir .smoke] [--target all_ita] [--dry-run]

1. copies the workflow into ``<dir>/wf`` (results there survive: a second run resumes);
2. writes the stand-ins (zflow.smoke.standins) and the smoke config, ``config/smoke.run.yaml`` =
   the production config shrunk by config/smoke.yaml (zflow.smoke.shrink);
3. lists the rules the production target runs (a dry run of config/zagreus.yaml itself, in a
   copy of its own: ``<dir>/production``) and runs
   the same target on the smoke config with the local profile;
4. fails unless every production rule ran, except the hub download and the nanotron trainer
   (its job runs, with the stand-in trainer in place of nanotron's run_train.py), and writes
   ``<dir>/smoke.json``: the target, the time, jobs per rule, and the stand-ins used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

from zflow.smoke import shrink, standins

REPO = Path(__file__).resolve().parents[4]
COPY = ["Snakefile", "rules", "config", "workflow", "data", "resources", "profiles", "envs",
        "tools", "slurm", "local", "gpu"]
# production rules the smoke run cannot run: the hub download (no hub here); nanotron itself
# runs as a stand-in inside pretrain_nanotron, which does run
NOT_RUN = {"download"}
RULE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):", re.M)


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = REPO / name
        if src.is_symlink():
            if not (dest / name).is_symlink():
                (dest / name).symlink_to(os.readlink(src))
        elif src.is_dir():
            shutil.copytree(src, dest / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{Path(sys.executable).parent}:{e.get('PATH', '')}"
    e.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
             TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    return e


def snakemake(wd: Path, *args, log: Path | None = None) -> subprocess.CompletedProcess:
    """Snakemake on the copy; with ``log``, its output goes there as it runs (read back after)."""
    cmd = [sys.executable, "-m", "snakemake", "--directory", str(wd), "--snakefile",
           str(wd / "Snakefile"), *args]
    if log is None:
        return subprocess.run(cmd, cwd=wd, env=env(), capture_output=True, text=True)
    with open(log, "w") as f:
        rc = subprocess.call(cmd, cwd=wd, env=env(), stdout=f, stderr=subprocess.STDOUT)
    return subprocess.CompletedProcess(cmd, rc, log.read_text(), "")


FINISHED = re.compile(r"^Finished jobid: \d+ \(Rule: (\w[\w.-]*)\)", re.M)


def finished_jobs(wd: Path) -> Counter:
    """Jobs per rule that finished in the copy ``wd``, over every Snakemake run there."""
    out = Counter()
    for log in sorted((wd / ".snakemake/log").glob("*.snakemake.log")):
        out.update(FINISHED.findall(log.read_text(errors="replace")))
    return out


def targets(target: str, cfg: dict) -> list[str]:
    """The overlay's target, plus what only `all` would run otherwise: the qualitative benchmark
    and every release with its (dry-run) upload."""
    return [target, *(["qualitative"] if cfg.get("qualitative") else []),
            *(f"upload_{m}" for m in cfg.get("release") or {})]


def production_rules(wd: Path, target: str, prod: dict, tasks: Path) -> Counter:
    """The jobs per rule of ``target`` on the production config itself (a dry run in its own
    copy ``wd``, with no results). A task folder the user supplies (include_path, e.g. the
    seed's ifeval-ita) is taken from the stand-ins (``tasks``) for this listing only."""
    for key, task in prod.get("tasks", {}).items():
        inc = task.get("include_path")
        if inc and not (wd / inc).exists():
            src = tasks / task["lm_eval_task"]
            if src.exists():
                shutil.copytree(src, wd / inc / task["lm_eval_task"])
    p = snakemake(wd, *targets(target, prod), "--dry-run", "--cores", "1", "--configfile",
                  "config/zagreus.yaml")
    if p.returncode:
        sys.exit(f"smoke: the production dry run of {target} failed:\n{p.stdout[-3000:]}"
                 f"\n{p.stderr[-3000:]}")
    return Counter(RULE.findall(p.stdout))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=".smoke", type=Path)
    ap.add_argument("--target", default=None, help="default: the overlay's `target`")
    ap.add_argument("--overlay", default=REPO / "config/smoke.yaml", type=Path)
    ap.add_argument("--production", default=REPO / "config/zagreus.yaml", type=Path)
    ap.add_argument("--dry-run", action="store_true", help="write the config, list the jobs")
    a = ap.parse_args(argv)

    t0 = time.time()
    prod = yaml.safe_load(a.production.read_text())
    overlay = yaml.safe_load(a.overlay.read_text())
    shrink.check_overlay(overlay)
    target = a.target or overlay["target"]
    # one lm-eval task index (zflow.taskindex, 20-40 s to build) for both copies
    os.environ.setdefault("ZFLOW_CACHE_DIR", str(a.dir.resolve() / "cache"))
    wd = copy_workflow(a.dir.resolve() / "wf")
    if a.production.resolve() != (REPO / "config/zagreus.yaml").resolve():
        shutil.copy2(a.production, wd / "config/zagreus.yaml")
    used = standins.write(prod, overlay, shrink.hub_needs(prod), wd)
    cfg = shrink.shrink(prod, overlay, used)
    (wd / "config/smoke.run.yaml").write_text(
        "# written by `make smoke` (zflow.smoke.run): config/zagreus.yaml shrunk by "
        "config/smoke.yaml\n" + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    print(f"smoke: stand-ins and config/smoke.run.yaml written in {time.time() - t0:.0f} s",
          flush=True)
    prod_wd = copy_workflow(a.dir.resolve() / "production")
    shutil.copy2(wd / "config/zagreus.yaml", prod_wd / "config/zagreus.yaml")
    wanted = production_rules(prod_wd, target, prod, wd / "smoke/tasks")

    args = [*targets(target, cfg), "--profile", "profiles/local", "--cores", "2", "--configfile",
            "config/smoke.run.yaml"]
    if a.dry_run:
        args.insert(0, "--dry-run")
    print(f"smoke: snakemake {' '.join(targets(target, cfg))} (its output: "
          f"{a.dir / 'snakemake.log'})", flush=True)
    p = snakemake(wd, *args, log=a.dir / "snakemake.log")
    if p.returncode:
        sys.exit(f"smoke: snakemake {target} failed ({p.returncode}); the last lines of "
                 f"{a.dir / 'snakemake.log'}:\n{(p.stdout + p.stderr)[-6000:]}\n"
                 f"(`make smoke` again resumes: finished jobs are kept)")
    # every job finished in this copy, by this run or the runs it resumes (Snakemake's logs)
    ran = Counter(RULE.findall(p.stdout)) if a.dry_run else finished_jobs(wd)
    # the target rules themselves carry the config's names (upload_ita-step775000 there,
    # upload_ita-step20 here): compare the rules of rules/*.smk
    names = set(targets(target, prod)) | set(targets(target, cfg))
    missing = sorted(set(wanted) - set(ran) - NOT_RUN - names)
    summary = {
        "target": target, "seconds": round(time.time() - t0, 1), "dry_run": a.dry_run,
        "jobs": dict(sorted(ran.items())), "production_jobs": dict(sorted(wanted.items())),
        "not_run": sorted(NOT_RUN & set(wanted)), "missing": missing,
        "standins": used.describe(),
        "note": "the nanotron trainer is a stand-in (tools/smoke/nanotron/run_train.py): "
                "nanotron itself does not run in the smoke run",
    }
    (a.dir / "smoke.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: summary[k] for k in ("target", "seconds", "jobs", "missing")}, indent=1))
    if missing and not a.dry_run:
        sys.exit(f"smoke: production rules that did not run: {', '.join(missing)}")
    return summary


if __name__ == "__main__":
    main()
