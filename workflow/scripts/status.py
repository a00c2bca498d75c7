"""Where each training run stands, from its metrics, in the shape of nanotron's log line.

    python workflow/scripts/status.py [--configfile config/zagreus.yaml] [--base .]

One line per pretraining language and post-training run of the config that has started:
step / train_steps, loss, tokens/s, the time per step and the ETA, and whether it is running
(its metrics written in the last minutes), interrupted or done. Reads what the jobs write while
they train: <run_dir>/state/metrics.csv (hf backend, SFT, DPO, GRPO; zflow.metrics) or the
nanotron log (zflow.nanotron.parse_log). `make status` prints it after the dry run's job list.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import yaml

from zflow import metrics, paths, schema

WINDOW = 20  # the last logged rows the rates are measured over
STALE_S = 600  # metrics untouched for longer (and at least 3 steps' time): not running


def human(x: float | None) -> str:
    """182000 -> '182K' (nanotron's style); None -> '?'."""
    if x is None:
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.3g}{unit}"
    return f"{x:.3g}"


def duration(seconds: float | None) -> str:
    """Seconds as nanotron's ETA: '131 days, 1:45:39'."""
    return "?" if seconds is None else str(datetime.timedelta(seconds=round(seconds)))


def _num(v) -> float | None:
    try:
        return None if v in (None, "") else float(v)
    except (TypeError, ValueError):
        return None


def rates(rows: list[dict], window: int = WINDOW) -> tuple[float | None, float | None]:
    """(seconds per step, tokens per second) over the last ``window`` logged rows of the current
    attempt (``elapsed_s`` restarts when a run resumes: only the rows after the restart count).
    Tokens per second: the mean of the logged ``tokens_per_sec`` (both pretraining backends), else
    from ``consumed_tokens``; None for post-training, which logs neither."""
    pts = [(int(float(r["step"])), _num(r.get("elapsed_s")), r) for r in rows
           if _num(r.get("step")) is not None and _num(r.get("elapsed_s")) is not None]
    start = 0
    for i in range(1, len(pts)):
        if pts[i][1] < pts[i - 1][1] or pts[i][0] < pts[i - 1][0]:
            start = i  # a resumed attempt
    pts = pts[start:][-(window + 1):]
    logged = [_num(r.get("tokens_per_sec")) for _, _, r in pts[1:] or pts]
    logged = [x for x in logged if x is not None]
    if len(pts) < 2 or pts[-1][0] == pts[0][0] or pts[-1][1] <= pts[0][1]:
        return None, (sum(logged) / len(logged) if logged else None)
    dt, steps = pts[-1][1] - pts[0][1], pts[-1][0] - pts[0][0]
    if logged:
        return dt / steps, sum(logged) / len(logged)
    t0, t1 = _num(pts[0][2].get("consumed_tokens")), _num(pts[-1][2].get("consumed_tokens"))
    return dt / steps, ((t1 - t0) / dt if t0 is not None and t1 is not None else None)


def status_line(name: str, rows: list[dict], train_steps: int | None, state: str) -> str:
    """``name: step 120 / 300 (40.0%) | loss 2.04 | tokens/s 182K | s/step 8.79 | ETA 0:26:22 |
    running`` from a run's metrics rows (zflow.metrics: step, loss, elapsed_s, consumed_tokens)."""
    if not rows:
        return f"{name}: no step logged yet | {state}"
    step = int(float(rows[-1]["step"]))
    losses = [_num(r.get("loss")) for r in rows if _num(r.get("loss")) is not None]
    per_step, tps = rates(rows)
    parts = [f"step {step} / {train_steps if train_steps else '?'}"
             + (f" ({100 * step / train_steps:.1f}%)" if train_steps else "")]
    parts.append(f"loss {losses[-1]:.4g}" if losses else "loss ?")
    if tps is not None:
        parts.append(f"tokens/s {human(tps)}")
    if per_step is not None:
        parts.append(f"s/step {per_step:.3g}")
    left = max(0, train_steps - step) if train_steps else None
    eta = left * per_step if left is not None and per_step is not None else None
    parts.append("ETA " + ("0:00:00" if left == 0 else duration(eta)))
    return f"{name}: " + " | ".join(parts + [state])


def run_state(live: Path, done: bool, rows: list[dict], now: float | None = None) -> str:
    """done, running (the live metrics written within max(10 min, 3 steps)) or interrupted."""
    if done:
        return "done"
    now = time.time() if now is None else now
    per_step = rates(rows)[0] or 0.0
    age = now - live.stat().st_mtime
    return "running" if age <= max(STALE_S, 3 * per_step) else \
        f"interrupted (last logged {duration(age)} ago)"


def _steps_of_state(run: Path) -> int | None:
    """max_steps of a post-training run, from its newest Trainer state (epochs become steps)."""
    states = sorted(run.glob(f"{paths.STATE}/checkpoint-*/trainer_state.json"),
                    key=lambda p: int(p.parent.name.split("-")[-1]))
    for f in reversed(states):
        try:
            return int(json.loads(f.read_text())["max_steps"])
        except (OSError, ValueError, KeyError):
            continue
    return None


def runs(config: dict, base: Path) -> list[tuple[str, list[dict], int | None, str]]:
    """(name, metrics rows, train_steps, state) of every run of the config that has started."""
    out = []
    for lang, lc in config["languages"].items():
        pre, run = lc["pretrain"], base / paths.fmt(paths.PRETRAIN_RUN, lang=lang)
        done = (base / paths.fmt(paths.TRAIN_SUMMARY, lang=lang)).exists()
        if pre["backend"] == "nanotron":
            from zflow import nanotron

            live = base / paths.fmt(paths.NANOTRON_LOG, lang=lang)
            if not live.exists():
                continue
            parsed = nanotron.parse_log(live.read_text().splitlines())
            rows = nanotron.metrics_rows(parsed)
            steps = parsed[-1]["train_steps"] if parsed else pre["train_steps"]
        else:
            live = run / paths.STATE_METRICS
            if not live.exists():
                continue
            rows, steps = metrics.read(live), pre["train_steps"]
        done = done and bool(rows) and int(float(rows[-1]["step"])) >= steps
        out.append((f"pretrain {lang}", rows, steps, run_state(live, done, rows)))
    for name, pc in config["posttrain"].items():
        run = base / paths.fmt(paths.POSTTRAIN_RUN, name=name)
        live = run / paths.STATE_METRICS
        if not live.exists():
            continue
        rows = metrics.read(live)
        steps = pc["train"]["max_steps"] if pc["train"]["max_steps"] > 0 else _steps_of_state(run)
        done = (base / paths.fmt(paths.POSTTRAIN_SUMMARY, name=name)).exists()
        out.append((f"posttrain {name} ({pc['method']})", rows, steps, run_state(live, done, rows)))
    return out


def load_config(files: list[str]) -> dict:
    """The configs merged as Snakemake merges --configfile's (later keys win), with defaults."""
    def merge(a: dict, b: dict) -> dict:
        for k, v in b.items():
            a[k] = merge(a.get(k) or {}, v) if isinstance(v, dict) and isinstance(a.get(k), dict) \
                else v
        return a

    cfg: dict = {}
    for f in files:
        cfg = merge(cfg, yaml.safe_load(Path(f).read_text()) or {})
    return schema.load(cfg)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configfile", nargs="+", default=["config/config.yaml"])
    ap.add_argument("--base", default=".", help="the workflow's directory (results/ under it)")
    args = ap.parse_args(argv)
    base = Path(args.base)
    found = runs(load_config(args.configfile), base)
    print("Training runs:" if found else "Training runs: none started")
    for name, rows, steps, state in found:
        print("  " + status_line(name, rows, steps, state))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
