"""Checkpoint progression table (the seed's Table 1) and figures for one language.

Reads results/evals/<model>/<task>.json files and the pretraining metrics CSV; writes the
table as Markdown and CSV (Checkpoint | <task> (<metric>) ... | Media, Media being the mean of
the row's available metrics), a PNG of the progression (the seed's Figure 1) and a PNG of the
training loss curve.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zflow.io import read_json, versions, write_text  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--lang", required=True)
    p.add_argument("--column", action="append", required=True, metavar="TASK:LABEL:METRIC",
                   help="a table column, in order (repeatable)")
    p.add_argument("--eval", action="append", default=[], help="an eval JSON (repeatable)")
    p.add_argument("--train-metrics", required=True)
    p.add_argument("--table-md", required=True)
    p.add_argument("--table-csv", required=True)
    p.add_argument("--progression-png", required=True)
    p.add_argument("--loss-png", required=True)
    return p.parse_args(argv)


def save_png(fig, path):
    tmp = Path(path).with_name(f".{Path(path).stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)


def fmt(v):
    return "—" if v is None else f"{v:.4f}"


def build_rows(columns, evals):
    """One row per model: {checkpoint, step, <task>: value or None, media}."""
    by_model = {}
    for e in evals:
        row = by_model.setdefault(e["model"], {"model": e["model"], "step": e.get("step")})
        row[e["task"]] = e["metrics"].get(e["metric"])
    rows = []
    for row in by_model.values():
        vals = [row.get(t) for t, _, _ in columns]
        present = [v for v in vals if v is not None and math.isfinite(v)]
        row["media"] = sum(present) / len(present) if present else None
        rows.append(row)
    rows.sort(key=lambda r: (r["step"] is None, r["step"] or 0, r["model"]))
    return rows


def checkpoint_label(row):
    step = row["step"]
    if step is None:
        return row["model"]
    return f"{step // 1000}k" if step >= 1000 and step % 1000 == 0 else str(step)


def main(argv=None):
    args = parse_args(argv)
    columns = [tuple(c.split(":", 2)) for c in args.column]
    evals = [read_json(p) for p in args.eval]
    rows = build_rows(columns, evals)
    headers = ["Checkpoint"] + [f"{label} ({metric})" for _, label, metric in columns] + ["Media"]

    md = [f"## Checkpoint progression — {args.lang}", "",
          "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["checkpoint", "step", "model"] + [t for t, _, _ in columns] + ["media"])
    for r in rows:
        md.append("| " + " | ".join([checkpoint_label(r)] + [fmt(r.get(t)) for t, _, _ in columns]
                                    + [fmt(r["media"])]) + " |")
        w.writerow([checkpoint_label(r), r["step"], r["model"]]
                   + ["" if r.get(t) is None else f"{r[t]:.6f}" for t, _, _ in columns]
                   + ["" if r["media"] is None else f"{r['media']:.6f}"])
    v = versions()
    shots = {e["task"]: e["num_fewshot"] for e in evals}
    md += ["", "Tasks: " + ", ".join(f"{t} ({shots.get(t, 0)}-shot)" for t, _, _ in columns)
           + ". Media = mean of the row's available metrics.",
           f"lm-eval {v['lm_eval']}, transformers {v['transformers']}, torch {v['torch']}.", ""]
    write_text(args.table_md, "\n".join(md))
    write_text(args.table_csv, buf.getvalue())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in rows]
    for t, label, metric in columns:
        pts = [(s, r.get(t)) for s, r in zip(steps, rows) if r.get(t) is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=f"{label} ({metric})")
    pts = [(s, r["media"]) for s, r in zip(steps, rows) if r["media"] is not None]
    if pts:
        ax.plot(*zip(*pts), marker="s", linestyle="--", color="black", label="Media")
    ax.set_xlabel("training step")
    ax.set_ylabel("score")
    ax.set_title(f"Checkpoint progression ({args.lang})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(args.progression_png).parent.mkdir(parents=True, exist_ok=True)
    save_png(fig, args.progression_png)
    plt.close(fig)

    with open(args.train_metrics) as f:
        trows = list(csv.DictReader(f))
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    key = "loss" if trows and "loss" in trows[0] else "lm_loss"  # hf backend / nanotron log
    pts = [(int(float(r["step"])), float(r[key])) for r in trows if r.get(key) not in (None, "")]
    if pts:
        ax.plot(*zip(*pts), lw=1)
    ax.set_ylabel("training loss")
    ax.set_title(f"Pretraining ({args.lang})")
    ax.grid(alpha=0.3)
    tps = [(int(float(r["step"])), float(r["tokens_per_sec"])) for r in trows
           if r.get("tokens_per_sec") not in (None, "")]
    if tps:
        ax2.plot(*zip(*tps), lw=1, color="tab:green")
    ax2.set_xlabel("training step")
    ax2.set_ylabel("tokens/s")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    save_png(fig, args.loss_png)
    plt.close(fig)
    print(f"table: {args.table_md} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
