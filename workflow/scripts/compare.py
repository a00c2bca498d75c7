"""Post-trained models against baselines (the seed's Table 7) and base-vs-SFT deltas (Table 9).

Table 7: one row per model; per column group (e.g. EN, IT) the group's tasks then ``Media_<group>``
(the mean of the group's tasks), and ``Media_Totale``, the mean of the group means (as in the
seed: Qwen3-0.6B's 0.3545 = mean(0.3736, 0.3353)). Table 9: for every SFT model, its base and the
SFT model on the log-likelihood tasks both took, the difference ``Δ (SFT – Base)`` and an Overall
row (the mean). Values come from results/evals/<model>/<task>.json; a missing eval is an error.
"""

from __future__ import annotations

import csv
import io

from zflow import evals, paths
from zflow.io import die, save_png, spec_cli, versions, write_text


def value(model: str, column: str, metric: str) -> float:
    """A column (a task key, or ``<task>/<subtask>``) of one model, from its eval JSON."""
    task, sub = evals.parse_column(column)
    path = paths.fmt(paths.EVAL, model=model, task=task)
    try:
        return evals.value(evals.read(path), metric, sub)
    except (OSError, evals.EvalError) as e:
        die(f"{path}: {e}")


def mean(xs):
    return sum(xs) / len(xs) if xs else None


def table7(spec: dict) -> tuple[list[str], list[list]]:
    header = ["Model"]
    for g, cols in spec["groups"].items():
        header += [label for _, label, _ in cols] + [f"Media_{g}"]
    header.append("Media_Totale")
    rows = []
    for m in spec["models"]:
        row, means = [m], []
        for _, cols in spec["groups"].items():
            vals = [value(m, t, metric) for t, _, metric in cols]
            means.append(mean(vals))
            row += vals + [means[-1]]
        row.append(mean(means))
        rows.append(row)
    return header, rows


def table9(spec: dict) -> list[dict]:
    metric_of = {t: metric for cols in spec["groups"].values() for t, _, metric in cols}
    out = []
    for sft, base in spec["deltas"]:
        per = []
        for t in spec["delta_tasks"]:
            b = value(base, t, metric_of[t])
            s = value(sft, t, metric_of[t])
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
    save_png(fig, path)


def main(argv=None):
    spec, _ = spec_cli(__doc__, argv, counts=())
    out = spec["outputs"]
    header, rows = table7(spec)
    deltas = table9(spec)
    v = versions(("lm_eval", "transformers", "trl", "torch"))
    footer = ("Metrics: " + ", ".join(f"{label} = {t} ({metric})" for cols in spec["groups"].values()
                                      for t, label, metric in cols)
              + ".  \nVersions: " + ", ".join(f"{k} {v[k]}" for k in ("lm_eval", "transformers",
                                                                      "trl", "torch")) + "\n")
    write_text(out["md"], markdown7(header, rows, footer))
    write_text(out["csv"], to_csv(header, rows))
    write_text(out["delta_md"], markdown9(deltas, footer))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["sft_model", "base_model", "task", "metric", "base", "sft",
                                        "delta"], lineterminator="\n")
    w.writeheader()
    w.writerows(deltas)
    write_text(out["delta_csv"], buf.getvalue())
    figure(header, rows, out["png"])
    print(markdown7(header, rows, footer))
    print(markdown9(deltas, ""))


if __name__ == "__main__":
    main()
