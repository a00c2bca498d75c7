"""Post-trained models against baselines (the seed's Table 7) and base-vs-SFT deltas (Table 9).

Table 7: one row per model; per column group (e.g. EN, IT) the group's tasks then ``Media_<group>``
(the mean of the group's tasks), and ``Media_Totale``, the mean of the group means (as in the
seed: Qwen3-0.6B's 0.3545 = mean(0.3736, 0.3353)). Table 9: for every SFT model, its base and the
SFT model on the log-likelihood tasks both took, the difference ``Δ (SFT – Base)`` and an Overall
row (the mean). Values come from results/evals/<model>/<task>.json; a missing eval is an error.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zflow.io import die, read_json, versions, write_text  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--spec", required=True,
                   help="JSON: {groups: {G: [[task, label, metric]]}, models: [...], "
                        "deltas: [[sft, base]], delta_tasks: [...]}")
    p.add_argument("--evals-dir", default="results/evals")
    p.add_argument("--table-md", required=True)
    p.add_argument("--table-csv", required=True)
    p.add_argument("--figure", required=True)
    p.add_argument("--delta-md", required=True)
    p.add_argument("--delta-csv", required=True)
    return p.parse_args(argv)


def value(evals_dir: Path, model: str, task: str, metric: str) -> float:
    path = evals_dir / model / f"{task}.json"
    if not path.exists():
        die(f"missing eval {path}")
    v = read_json(path)["metrics"].get(metric)
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        die(f"{path}: metric '{metric}' is missing or not a number")
    return float(v)


def mean(xs):
    return sum(xs) / len(xs) if xs else None


def table7(spec: dict, evals_dir: Path) -> tuple[list[str], list[list]]:
    header = ["Model"]
    for g, cols in spec["groups"].items():
        header += [label for _, label, _ in cols] + [f"Media_{g}"]
    header.append("Media_Totale")
    rows = []
    for m in spec["models"]:
        row, means = [m], []
        for _, cols in spec["groups"].items():
            vals = [value(evals_dir, m, t, metric) for t, _, metric in cols]
            means.append(mean(vals))
            row += vals + [means[-1]]
        row.append(mean(means))
        rows.append(row)
    return header, rows


def table9(spec: dict, evals_dir: Path) -> list[dict]:
    metric_of = {t: metric for cols in spec["groups"].values() for t, _, metric in cols}
    out = []
    for sft, base in spec["deltas"]:
        per = []
        for t in spec["delta_tasks"]:
            b = value(evals_dir, base, t, metric_of[t])
            s = value(evals_dir, sft, t, metric_of[t])
            per.append({"sft_model": sft, "base_model": base, "task": t, "metric": metric_of[t],
                        "base": b, "sft": s, "delta": s - b})
        if per:
            b, s = mean([r["base"] for r in per]), mean([r["sft"] for r in per])
            out.append({"sft_model": sft, "base_model": base, "task": "Overall", "metric": "mean",
                        "base": b, "sft": s, "delta": s - b})
            out += per
    return out


def f4(v) -> str:
    return "—" if v is None else f"{v:.4f}"


def signed(d: float) -> str:
    return "=" if abs(d) < 5e-5 else f"{d:+.4f}".replace("-", "−")


def markdown7(header, rows, footer: str) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join([r[0]] + [f4(v) for v in r[1:]]) + " |" for r in rows]
    return "\n".join(lines) + "\n\n" + footer


def markdown9(rows, footer: str) -> str:
    out = []
    for sft in dict.fromkeys(r["sft_model"] for r in rows):
        sub = [r for r in rows if r["sft_model"] == sft]
        base = sub[0]["base_model"]
        out += [f"### {sft} vs its base {base}", "",
                f"| Task | Metric | {base} | {sft} | Δ (SFT – Base) |",
                "|---|---|---|---|---|"]
        out += [f"| {r['task']} | {r['metric']} | {f4(r['base'])} | {f4(r['sft'])} | "
                f"{signed(r['delta'])} |" for r in sub]
        out.append("")
    if not rows:
        out.append("No SFT model with a base to compare.\n")
    return "\n".join(out) + "\n" + footer


def to_csv(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([[r[0]] + [f"{v:.6f}" for v in r[1:]] for r in rows])
    return buf.getvalue()


def figure(header, rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [i for i, h in enumerate(header) if h.startswith("Media_")]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(rows)), 4))
    width = 0.8 / max(len(cols), 1)
    for j, c in enumerate(cols):
        xs = [i + j * width for i in range(len(rows))]
        ax.bar(xs, [r[c] for r in rows], width, label=header[c])
    ax.set_xticks([i + width * (len(cols) - 1) / 2 for i in range(len(rows))])
    ax.set_xticklabels([r[0] for r in rows], rotation=20, ha="right")
    ax.set_ylabel("score")
    ax.set_title("Post-trained models and baselines (Table 7)")
    ax.legend()
    fig.tight_layout()
    tmp = Path(path).with_name(f".{Path(path).stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    spec = json.loads(args.spec)
    evals_dir = Path(args.evals_dir)
    header, rows = table7(spec, evals_dir)
    deltas = table9(spec, evals_dir)
    v = versions(("lm_eval", "transformers", "trl", "torch"))
    footer = ("Metrics: " + ", ".join(f"{label} = {t} ({metric})" for cols in spec["groups"].values()
                                      for t, label, metric in cols)
              + ".  \nVersions: " + ", ".join(f"{k} {v[k]}" for k in ("lm_eval", "transformers",
                                                                      "trl", "torch")) + "\n")
    write_text(args.table_md, markdown7(header, rows, footer))
    write_text(args.table_csv, to_csv(header, rows))
    write_text(args.delta_md, markdown9(deltas, footer))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["sft_model", "base_model", "task", "metric", "base", "sft",
                                        "delta"], lineterminator="\n")
    w.writeheader()
    w.writerows(deltas)
    write_text(args.delta_csv, buf.getvalue())
    figure(header, rows, args.figure)
    print(markdown7(header, rows, footer))
    print(markdown9(deltas, ""))


if __name__ == "__main__":
    main()
