"""What a target would cost: per rule and in total, the jobs that would run (the same set as
``snakemake -n``: only what is stale) with their tokens, GPU-hours, CPU-hours, disk and wall time.

    python workflow/scripts/cost_plan.py --target all_ita --configfile config/zagreus.yaml
    make plan TARGET=all_ita CONFIG=config/zagreus.yaml [PROFILE=slurm]

Run from the workflow's directory. The job list is a real dry run (``snakemake <target>
--dry-run``, with --configfile / --profile passed through) parsed job by job; the config is the
one that dry run names in its header; the arithmetic is ``zflow.cost``; the figures are the
config's ``cost`` section, printed with their sources. For each nanotron run it lists what
checkpoint retention (``pretrain.keep_checkpoints``, zflow.retention) keeps and removes by the
end of the run, and, when none is set, what a typical policy (newest 2) would. The profile is passed as is (its
threads / cpus_per_task give the cores of CPU jobs). With Slurm's binaries installed and no
controller answering ``scontrol ping``, the Slurm plugin's import-time probe would add ~9 s to
the dry run: a stand-in ``scontrol`` that fails at once is put first on the dry run's PATH (the
plugin takes the failure as "unknown"; a dry run submits nothing). Like ``make status``, the dry
run writes job spec files under .snakemake/zflow/specs/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from zflow import cost
from zflow.plan import ConfigError, Plan

COLUMNS = ["rule", "jobs", "tokens", "GPU-h", "CPU-h", "disk", "wall"]


def parse_jobs(out: str) -> list[cost.Job]:
    """The jobs of a dry run's listing: rule, wildcards, cores (threads or cpus_per_task)."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", out):
        m = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block)
        if not m:
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        threads = re.search(r"^\s+threads: (\d+)$", block, re.M)
        cpus = re.search(r"^\s+resources: .*\bcpus_per_task=(\d+)", block, re.M)
        cores = max(int(threads.group(1)) if threads else 1, int(cpus.group(1)) if cpus else 1)
        jobs.append(cost.Job(m.group(1), dict(kv.split("=", 1) for kv in wc.group(1).split(", "))
                             if wc else {}, cores))
    return jobs


def config_files(out: str) -> list[str]:
    """The config files a dry run loaded, from its header (``Config file(s): [...]``)."""
    m = re.search(r"^\s*Config file\(s\): \[(.*)\]$", out, re.M)
    if not m:
        raise SystemExit("cost_plan: no 'Config file(s)' line in the dry run's output")
    return re.findall(r"'([^']+)'", m.group(1))


def dry_run_env(tmp: str) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if shutil.which("scontrol", path=env["PATH"]):
        try:
            up = subprocess.run(["scontrol", "ping"], capture_output=True, timeout=5,
                                env=env).returncode == 0
        except subprocess.TimeoutExpired:
            up = False
        if not up:
            stand_in = Path(tmp) / "scontrol"
            stand_in.write_text("#!/bin/sh\nexit 1\n")
            stand_in.chmod(0o755)
            env["PATH"] = f"{tmp}{os.pathsep}{env['PATH']}"
    return env


def dry_run(target: str, configfiles: list[str], profile: str | None) -> str:
    cmd = [sys.executable, "-m", "snakemake", target, "--dry-run"]
    cmd += ["--profile", profile] if profile else ["--cores", "all"]
    if configfiles:
        cmd += ["--configfile", *configfiles]
    with tempfile.TemporaryDirectory(prefix="zflow-plan-") as tmp:
        p = subprocess.run(cmd, capture_output=True, text=True, env=dry_run_env(tmp))
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-3000:] + p.stderr[-6000:])
        raise SystemExit(f"cost_plan: the dry run failed ({p.returncode}): {' '.join(cmd)}")
    return p.stdout + p.stderr


# ------------------------------------------------------------ printing


def tokens_str(n: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}"


def bytes_str(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def num_str(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}" if v >= 1 else f"{v:.2g}"


def hours_str(h: float) -> str:
    if h >= 48:
        return f"{h / 24:,.1f} d"
    return f"{num_str(h)} h" if h >= 1 else f"{h * 60:.2g} min"


def cell(row: cost.Row, name: str, fmt) -> str:
    v, unknown = getattr(row, name), name in row.unknown
    if not v:
        return "?" if unknown else "—"
    return fmt(v) + (" + ?" if unknown else "")


def table(rows: list[cost.Row], total: cost.Row) -> str:
    def line(r, bold=False):
        cells = [r.rule, str(r.jobs), cell(r, "tokens", tokens_str),
                 cell(r, "gpu_hours", num_str), cell(r, "cpu_hours", num_str),
                 cell(r, "disk_bytes", bytes_str), cell(r, "wall_hours", hours_str)]
        if bold:
            cells = [f"**{c}**" for c in cells]
        return "| " + " | ".join(cells) + " |"

    head = ["| " + " | ".join(COLUMNS) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(COLUMNS) - 1)) + "|"]
    return "\n".join(head + [line(r) for r in rows] + [line(total, bold=True)])


def step_ranges(steps: list[int], among: list[int]) -> str:
    """``steps`` as runs of consecutive entries of ``among``: '5,000–90,000 (18), 100,000'."""
    pos = {s: i for i, s in enumerate(among)}
    runs: list[list[int]] = []
    for s in sorted(steps):
        if runs and pos[s] == pos[runs[-1][-1]] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    return ", ".join(f"{r[0]:,}" if len(r) == 1 else f"{r[0]:,}–{r[-1]:,} ({len(r)})"
                     for r in runs)


def retention_lines(plan, lang: str) -> tuple[list[str], list[dict]]:
    """What checkpoint retention keeps and removes of ``lang``'s nanotron run (the config's
    policy; with none, also the typical one)."""
    r = cost.kept_checkpoints(plan, lang)
    found = [r]
    key = f"languages.{lang}.pretrain.keep_checkpoints"
    head = (f"- {lang}: {len(r['steps'])} checkpoints by step {r['steps'][-1]:,}, "
            f"{bytes_str(r['bytes_each'])} each (model + optimizer state); ")

    def kept_removed(x):
        named = len(x["needed"])
        return (f"{len(x['kept'])} kept ({bytes_str(x['kept_bytes'])}: the {named} steps the "
                f"config names + the newest {x['policy']['newest']}), {len(x['removed'])} "
                f"removed ({bytes_str(x['removed_bytes'])}) — removed steps: "
                f"{step_ranges(x['removed'], x['steps']) or 'none'}")

    if r["policy"]:
        lines = [head + f"{key}: newest {r['policy']['newest']}: " + kept_removed(r),
                 "  removed before each pretrain_nanotron job launches nanotron and when it "
                 "ends: within one job every checkpoint it saves stays on disk (the whole run: "
                 f"{bytes_str(len(r['steps']) * r['bytes_each'])}); "
                 f"`python -m zflow.retention --configfile … --lang {lang} --every 3600` "
                 "removes them while it trains"]
    else:
        typical = cost.kept_checkpoints(plan, lang, {"newest": cost.TYPICAL_NEWEST})
        found.append(typical)
        lines = [head + f"{key} unset: all {len(r['kept'])} kept "
                 f"({bytes_str(r['kept_bytes'])}), none removed",
                 f"  with {{newest: {cost.TYPICAL_NEWEST}}}: " + kept_removed(typical)]
    return lines, found


def report(plan, target, files, costs, rows, total, seconds) -> str:
    gpu = plan.config["cost"]["gpu"]
    out = [f"Cost plan of `{target}` ({', '.join(files)}): {total.jobs} jobs would run "
           f"(snakemake --dry-run, {seconds:.1f} s). GPU-hours on {gpu} (cost.gpu).", "",
           table(rows, total), "",
           "wall: a rule's longest job (its jobs side by side); total: the rules one after "
           f"another. Every job one after another: {hours_str(total.serial_wall_hours)}. "
           "? unknown, — none or not estimated. tokens: tokenized + trained + post-trained.", "",
           "Figures (config `cost`; defaults and where they come from: "
           "config/schemas/config.schema.yaml):"]
    out += [f"- {f['what']}: {f['value']:,} {f['unit']} — {f['source']}"
            for f in cost.figures(plan)]
    out.append(f"- disk per parameter: exported model {cost.WEIGHT_BYTES} bytes (bf16), training "
               f"state {cost.STATE_BYTES} bytes (fp32 weights + Adam moments) — zflow/cost.py")
    big = [c for c in costs if c.rule in ("pretrain_segment", "pretrain", "pretrain_nanotron",
                                            "posttrain")]
    if big:
        out += ["", "Training jobs:"]
        out += [f"- {c.rule} {','.join(map(str, c.wildcards.values()))}: {c.note}" for c in big]
    nano = [c.wildcards["lang"] for c in costs if c.rule == "pretrain_nanotron"]
    if nano:
        out += ["", "Checkpoint retention (nanotron keeps every checkpoint unless "
                "`languages.<lang>.pretrain.keep_checkpoints` is set; zflow/retention.py):"]
        out += [line for lang in nano for line in retention_lines(plan, lang)[0]]
    unknown: dict[str, dict[str, list[str]]] = {}
    for c in costs:
        for part in filter(None, c.unknown.split("; ")):
            why, _, what = part.partition(": ")
            names = unknown.setdefault(c.rule, {}).setdefault(why, [])
            names += [what] if what not in names else []
    if unknown:
        out += ["", "Unknown (printed ?): set `cost.source_tokens.<name>` for hub data not "
                "downloaded yet."]
        out += [f"- {rule}: " + "; ".join(f"{why}: {', '.join(sorted(names))}"
                                         for why, names in reasons.items())
                for rule, reasons in unknown.items()]
    skipped = sorted({c.rule for c in costs if c.note == "not estimated"})
    if skipped:
        out += ["", f"No cost estimated (targets, configs, tables: minutes of CPU at most): "
                f"{', '.join(skipped)}; nor downloads' time (network) or conversions' GPU "
                "minutes."]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default="all")
    ap.add_argument("--configfile", nargs="+", default=[],
                    help="config file(s), passed to snakemake (default: the profile's or the "
                         "embedded config/config.yaml)")
    ap.add_argument("--profile", help="a Snakemake profile, passed to snakemake")
    ap.add_argument("--json", help="also write rows, totals, figures and jobs to this file")
    args = ap.parse_args(argv)
    start = time.time()
    out = dry_run(args.target, args.configfile, args.profile)
    seconds = time.time() - start
    files = [os.path.relpath(f) if os.path.isabs(f) else f for f in config_files(out)]
    jobs = [] if "Nothing to be done" in out else parse_jobs(out)
    try:
        plan = Plan(cost.read_config(files))
        costs, rows, total = cost.estimate(plan, jobs)
    except ConfigError as e:
        raise SystemExit(f"cost_plan: {e}") from None
    print(report(plan, args.target, files, costs, rows, total, seconds))
    print(f"\n(cost plan in {time.time() - start:.1f} s)")
    if args.json:
        def plain(x):
            d = asdict(x)
            if "unknown" in d and isinstance(d["unknown"], set):
                d["unknown"] = sorted(d["unknown"])
            return d
        Path(args.json).write_text(json.dumps(
            {"target": args.target, "config_files": files, "figures": cost.figures(plan),
             "rows": [plain(r) for r in rows], "total": plain(total),
             "jobs": [plain(c) for c in costs],
             "retention": [x for c in costs if c.rule == "pretrain_nanotron"
                           for x in retention_lines(plan, c.wildcards["lang"])[1]]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
