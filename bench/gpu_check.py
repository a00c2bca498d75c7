"""The Python side of bench/gpu_check.sh: run one part, the trimmed pipeline (d), the machine's
facts, and the one table.

  gpu_check.py part --out DIR --timeout S NAME -- CMD ...   run one part's benchmark (its own
      --json DIR/NAME.json), its output appended to DIR/log.txt; the JSON gets ``check``
      (return code, seconds, timed out) and ``ok``; a part that wrote no JSON gets one saying why
  gpu_check.py pipeline --json PATH [--cpu-dry]             (d): the embedded default trimmed by
      bench/gpu_trim.yaml, run end to end by Snakemake with profiles/gpu in a copy of the tree;
      then checks that the pretraining, SFT and eval results record the dtype of the device
      (bfloat16 on a GPU, float32 on a CPU)
  gpu_check.py trim --out CONFIG                            write the trimmed config
  gpu_check.py env --out DIR                                DIR/env.json: GPU, driver, versions
  gpu_check.py table --out DIR                              print the table of (a)-(d), write
      DIR/table.md; exit status 1 when a part failed
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PARTS = {"pretrain": "(a) pretraining throughput", "loss_curve": "(b) loss curve, defaults vs eager",
         "eval": "(c) eval: seed's command vs workflow", "pipeline": "(d) profiles/gpu, trimmed default"}
# what a copy of the tree needs to run the workflow (the links at the root to profiles/ too)
TREE = ["Snakefile", "rules", "config", "workflow", "data", "resources", "profiles", "envs",
        "slurm", "local", "gpu"]
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str))


def read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------------------------
# one part


def run_logged(cmd: list[str], log: Path, timeout: float, cwd: Path = REPO, env=None) -> tuple:
    """(return code, seconds, timed out) of ``cmd``, its output appended to ``log``; at the
    timeout its whole process group is killed."""
    t0 = time.perf_counter()
    with log.open("a") as f:
        f.write(f"\n===== {' '.join(cmd)}\n")
        f.flush()
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            rc, timed_out = p.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            rc, timed_out = p.wait(), True
            f.write(f"\n===== killed after {timeout:.0f} s\n")
    return rc, round(time.perf_counter() - t0, 1), timed_out


def log_tail(log: Path, marker: str, n: int = 2500) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return text[text.rfind(marker):][-n:] if marker in text else text[-n:]


def part(name: str, out: Path, timeout: float, cmd: list[str]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    path, log = out / f"{name}.json", out / "log.txt"
    path.unlink(missing_ok=True)
    print(f"[gpu_check] {PARTS.get(name, name)}: {' '.join(cmd)}", flush=True)
    rc, seconds, timed_out = run_logged(cmd, log, timeout)
    data = read(path) or {"name": name}
    data["check"] = {"returncode": rc, "seconds": seconds, "timed_out": timed_out,
                     "timeout_s": timeout, "command": " ".join(cmd)}
    ok = rc == 0 and not timed_out and data.get("ok", True) is not False and len(data) > 2
    data["ok"] = ok
    if not ok and "error" not in data:
        why = (f"killed after {timeout:.0f} s" if timed_out else
               f"exit status {rc}" if rc else "no results written")
        data["error"] = f"{why}; the end of its output:\n{log_tail(log, ' '.join(cmd))}"
    write(path, data)
    print(f"[gpu_check] {name}: {'ok' if ok else 'FAILED'} ({seconds} s)", flush=True)
    return 0 if ok else 1


# ------------------------------------------------------------------------------------------------
# (d) the trimmed default through profiles/gpu


def merge(base, overlay):
    """``overlay`` merged into ``base``: mappings key by key, ``None`` removes, else replaces."""
    if not (isinstance(base, dict) and isinstance(overlay, dict)):
        return overlay
    out = dict(base)
    for k, v in overlay.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(base.get(k), v)
    return out


def trimmed_config() -> dict:
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return merge(base, yaml.safe_load((REPO / "bench" / "gpu_trim.yaml").read_text()))


def copy_tree(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in TREE:
        src = REPO / name
        if src.is_symlink():
            os.symlink(os.readlink(src), dest / name)
        elif src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    (dest / "config" / "config.yaml").write_text(yaml.safe_dump(trimmed_config(), sort_keys=False))
    return dest


def job_env(tmp: Path) -> dict:
    """The jobs' environment: offline, ``python`` (the rules' interpreter) this one, wherever it
    lives and whatever it is called (python3 on the GPU image), workflow/scripts importable.
    Where Slurm's binaries are installed with no controller, the Slurm executor plugin's probe
    (`scontrol show config`, ~9 s of retries) would slow Snakemake's start: a stand-in fails at
    once, as in tests/conftest.py."""
    env = {**os.environ, **OFFLINE}
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    if shutil.which("scontrol"):
        (bin_dir / "scontrol").write_text("#!/bin/sh\nexit 1\n")
        (bin_dir / "scontrol").chmod(0o755)
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env["PATH"]])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp / "wf" / "workflow" / "scripts"),
                                                      env.get("PYTHONPATH")]))
    return env


def rule_seconds(log: str) -> dict:
    """Seconds per rule (summed over its jobs) from Snakemake's output: each job's start and
    ``Finished jobid`` stamps."""
    from datetime import datetime

    stamp = start_of = None
    starts, per_rule = {}, {}
    for line in log.splitlines():
        m = re.fullmatch(r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", line.strip())
        if m:
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif re.match(r"(?:local)?(?:rule|checkpoint) \w+:", line):
            start_of = stamp
        elif (m := re.match(r"\s+jobid: (\d+)", line)) and start_of is not None:
            starts[m.group(1)], start_of = start_of, None
        elif (m := re.match(r"Finished jobid: (\d+) \(Rule: (\w+)\)", line)) and \
                m.group(1) in starts and stamp:
            sec = (stamp - starts.pop(m.group(1))).total_seconds()
            per_rule[m.group(2)] = per_rule.get(m.group(2), 0) + sec
    return per_rule


def recorded_dtypes(wd: Path) -> dict:
    """The dtype each training and eval result file records (path relative to ``wd``)."""
    from zflow import paths

    found = {}
    for f in sorted(wd.glob(paths.fmt(paths.TRAIN_SUMMARY, lang="*"))) + \
            sorted(wd.glob(paths.fmt(paths.POSTTRAIN_SUMMARY, name="*"))):
        s = read(f) or {}
        found[str(f.relative_to(wd))] = {"dtype": s.get("dtype"), "device": s.get("device")}
    for f in sorted(wd.glob(paths.fmt(paths.EVAL, model="*", task="*"))):
        s = (read(f) or {}).get("settings") or {}
        found[str(f.relative_to(wd))] = {"dtype": s.get("dtype"), "model_dtype": s.get("model_dtype"),
                                         "device": s.get("device"), "batch_size": s.get("batch_size"),
                                         "batch_sizes_used": s.get("batch_sizes_used")}
    return found


def pipeline(json_path: Path, cpu_dry: bool, timeout: float) -> int:
    import torch

    cuda = torch.cuda.is_available() and not cpu_dry
    expected = "bfloat16" if cuda else "float32"
    result = {"name": "pipeline", "profile": "profiles/gpu", "config": "config/config.yaml + "
              "bench/gpu_trim.yaml", "device": "cuda" if cuda else "cpu",
              "expected_dtype": expected}
    with tempfile.TemporaryDirectory(prefix="zflow-gpu-check-") as tmp:
        tmp = Path(tmp)
        wd = copy_tree(tmp / "wf")
        env = job_env(tmp)
        if not cuda:
            env["CUDA_VISIBLE_DEVICES"] = ""
        log = tmp / "snakemake.log"
        cmd = [sys.executable, "-m", "snakemake", "--profile", "profiles/gpu", "--scheduler",
               "greedy", "all"]
        rc, seconds, timed_out = run_logged(cmd, log, timeout, cwd=wd, env=env)
        text = log.read_text(errors="replace")
        done = re.findall(r"(\d+) of (\d+) steps \(\d+%\) done", text)
        result.update(command="snakemake --profile profiles/gpu --scheduler greedy all",
                      returncode=rc, seconds=seconds, timed_out=timed_out,
                      jobs_done=int(done[-1][0]) if done else 0,
                      jobs_total=int(done[-1][1]) if done else None,
                      rules=sorted(set(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", text, re.M))),
                      rule_seconds=rule_seconds(text))
        result["dtypes"] = recorded_dtypes(wd)
        kinds = {"pretrain": "results/pretrain/", "posttrain": "results/posttrain/",
                 "eval": "results/evals/"}
        problems = [f"no {k} result records a dtype" for k, pre in kinds.items()
                    if not any(f.startswith(pre) for f in result["dtypes"])]
        for f, d in result["dtypes"].items():
            got = d.get("model_dtype") or d.get("dtype")
            if got != expected:
                problems.append(f"{f}: {got}, not {expected}")
        if rc or timed_out or not done or done[-1][0] != done[-1][1]:
            problems.insert(0, f"snakemake: exit status {rc}" + (" (killed at the timeout)" if
                                                                   timed_out else ""))
            result["error"] = text[-3000:]
        result["problems"] = problems
        result["ok"] = not problems
    write(json_path, result)
    print(f"pipeline: {result['jobs_done']}/{result['jobs_total']} jobs, {seconds} s, dtypes "
          f"{sorted({d.get('model_dtype') or d.get('dtype') for d in result['dtypes'].values()}, key=str)}"
          f"{'' if result['ok'] else ', problems: ' + '; '.join(problems)}")
    return 0 if result["ok"] else 1


# ------------------------------------------------------------------------------------------------
# the machine, and the table


def env_facts(out: Path) -> dict:
    from importlib import metadata

    facts = {"python": platform.python_version(), "machine": platform.machine(),
             "node": platform.node(), "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        facts["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    except (OSError, subprocess.SubprocessError) as e:
        facts["nvidia_smi"] = f"not available ({type(e).__name__})"
    try:
        import torch

        facts["torch_cuda"] = torch.version.cuda
        facts["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            facts["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    versions = {}
    for pkg in ("torch", "triton", "transformers", "tokenizers", "accelerate", "lm_eval", "trl",
                "datasets", "datatrove", "snakemake", "liger_kernel", "numpy", "pyarrow", "pandas",
                "huggingface_hub"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    facts["versions"] = versions
    facts["wheels"] = sorted(p.name for p in (REPO / ".whl").glob("*.whl"))
    write(out / "env.json", facts)
    return facts


def fmt(x, spec=",.0f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


def rows_pretrain(d: dict) -> list[tuple]:
    out = []
    for r in d.get("rows") or []:
        out.append((r.get("name"), f"{fmt(r.get('tokens_per_s'))} tokens/s, "
                    f"{fmt(r.get('tflops_6n_attn'), '.1f')} TFLOPs/GPU (6N+attn), "
                    f"{fmt(r.get('tflops_nanotron'), '.1f')} (nanotron), "
                    f"MFU {fmt(mfu * 100 if isinstance(mfu := r.get('mfu'), float) else None, '.1f')}%, "
                    f"peak {fmt(r.get('peak_memory_gb'), '.1f')} GB "
                    f"({r.get('device')}, {r.get('dtype')}, seq {r.get('seq')}, "
                    f"micro batch {r.get('micro_batch')}; {features(r.get('features'))})"))
    return out


def features(f: dict | None) -> str:
    """The hf backend's speed features that were on (zflow.accel), e.g. "bf16, liger, sdpa"."""
    on = [k if v.get("state") == "on" else f"{k} {v.get('state')}"
          for k, v in (f or {}).items() if v.get("state") not in ("off", None)]
    return "features: " + (", ".join(on) or "none")


def rows_loss(d: dict) -> list[tuple]:
    steps = d.get("steps")
    steps = steps[-1] if isinstance(steps, list) and steps else steps
    finals = {k: v for k, v in d.items() if k.startswith("final")}
    return [("defaults vs eager", f"{steps} steps: max abs diff {fmt(d.get('max_abs_diff'), '.4g')}, "
             f"max rel diff {fmt(d.get('max_rel_diff'), '.3g')}"
             + "".join(f", {k} {fmt(v, '.4f')}" for k, v in finals.items())
             + f" ({d.get('device')}, {d.get('dtype')})")]


def rows_eval(d: dict) -> list[tuple]:
    out = []
    seed = d.get("seed") or {}
    for key, label in (("seed", "seed's command (batch 1)"), ("workflow", "workflow eval (defaults)"),
                       ("workflow_seed_settings", "workflow, reproduce_seed_command")):
        x = d.get(key)
        if not x:
            continue
        s, sc = x.get("settings") or {}, x.get("scores") or {}
        setting = (f"batch 1, {seed.get('model_dtype')}" if key == "seed" else
                   f"batch {s.get('batch_size')} (used {s.get('batch_sizes_used')}), {s.get('model_dtype')}")
        diff = "" if key == "seed" else f", max abs diff vs seed {fmt(x.get('max_abs_diff_vs_seed'), '.2g')}"
        out.append((label, f"{fmt(x.get('seconds'), '.1f')} s, {setting}: acc "
                    f"{fmt(sc.get('acc'), '.4f')}, acc_norm {fmt(sc.get('acc_norm'), '.4f')}{diff}"))
    if d.get("speedup") is not None:
        m = d.get("model") or {}
        out.append(("speedup", f"{d['speedup']}x ({d.get('items')} items, "
                    f"{fmt((m.get('parameters') or 0) / 1e6, '.1f')}M parameters, {d.get('device')})"))
    return out


def rows_pipeline(d: dict) -> list[tuple]:
    files = d.get("dtypes") or {}
    dtypes = sorted({str(v.get("model_dtype") or v.get("dtype")) for v in files.values()})
    return [("snakemake --profile profiles/gpu", f"{d.get('jobs_done')}/{d.get('jobs_total')} jobs in "
             f"{fmt(d.get('seconds'), '.0f')} s ({len(d.get('rules') or [])} rules), on "
             f"{d.get('device')}; dtypes recorded: {', '.join(dtypes) or 'none'} "
             f"(expected {d.get('expected_dtype')}, {len(files)} result files)")]


ROWS = {"pretrain": rows_pretrain, "loss_curve": rows_loss, "eval": rows_eval,
        "pipeline": rows_pipeline}


def table(out: Path) -> tuple[str, bool]:
    lines = ["| part | run | result | status |", "|---|---|---|---|"]
    ok = True
    for name, title in PARTS.items():
        d = read(out / f"{name}.json")
        if d is None:
            lines.append(f"| {title} | — | not run | FAILED |")
            ok = False
            continue
        status = "ok" if d.get("ok") else "FAILED"
        ok &= bool(d.get("ok"))
        seconds = (d.get("check") or {}).get("seconds")
        rows = []
        if d.get("ok") or len(d) > 4:  # a failed part's numbers too, when it wrote any
            try:
                rows = ROWS[name](d)
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                rows = [("unreadable", f"{type(e).__name__}: {e}")]
        if not d.get("ok"):
            err = str(d.get("error") or "; ".join(d.get("problems") or []) or "failed")
            rows.append(("error", err.strip().splitlines()[0][:200] if err.strip() else "failed"))
        for i, (run, res) in enumerate(rows or [("—", "—")]):
            part_cell = f"{title} ({fmt(seconds, '.0f')} s)" if i == 0 else ""
            lines.append(f"| {part_cell} | {run} | {res.replace('|', '/')} | "
                         f"{status if i == 0 else ''} |")
    return "\n".join(lines), ok


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("part")
    a.add_argument("name")
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--timeout", type=float, required=True)
    a.add_argument("cmd", nargs=argparse.REMAINDER)
    b = sub.add_parser("pipeline")
    b.add_argument("--json", type=Path, required=True)
    b.add_argument("--cpu-dry", action="store_true")
    b.add_argument("--timeout", type=float, default=600)
    c = sub.add_parser("trim")
    c.add_argument("--out", type=Path, required=True)
    for name in ("env", "table"):
        sub.add_parser(name).add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.what == "part":
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        raise SystemExit(part(args.name, args.out, args.timeout, cmd))
    if args.what == "pipeline":
        raise SystemExit(pipeline(args.json, args.cpu_dry, args.timeout))
    if args.what == "trim":
        args.out.write_text(yaml.safe_dump(trimmed_config(), sort_keys=False))
    elif args.what == "env":
        print(json.dumps(env_facts(args.out), indent=1))
    else:
        text, ok = table(args.out)
        (args.out / "table.md").write_text(text + "\n")
        print(text)
        raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
