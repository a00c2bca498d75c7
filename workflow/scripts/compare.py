"""Post-trained models against baselines (the seed's Table 7, Figures 6-8) and base-vs-SFT deltas.

Table 7: one row per model; per column group (e.g. EN, IT) the group's tasks then its mean
(``Media_<group>``), and the mean of the group means (``Media_Totale``; as in the seed: Qwen3-0.6B's
0.3545 = mean(0.3736, 0.3353)); headers from the spec. Figure 6: the total per model; Figures 7-8:
one chart per group of its columns. The delta table: for every SFT model, its base and the SFT
model on the log-likelihood tasks both took, the difference ``Δ (SFT – Base)`` and an Overall row
(the mean). Values come from the eval JSONs the spec lists; a missing one is an error.
"""

from __future__ import annotations

import csv
import io

from zflow import evals, figures, tables
from zflow.io import die, spec_cli, write_text


def table7(spec: dict, records: dict, failed=()) -> tables.Table:
    """Table 7; a failed eval (``failed``: (model, task) pairs) is "—"."""
    groups = {g: [tuple(c) for c in cols] for g, cols in spec["groups"].items()}
    for m in spec["models"]:
        for cols in groups.values():
            for ref, _, _ in cols:
                key = (m, evals.parse_column(ref)[0])
                if key not in records and key not in failed:
                    die(f"no eval of {ref} for model {m} (Table 7 needs every cell)")
    try:
        return tables.models(spec["title"], spec["models"], groups, records, "Model",
                             spec["mean_label"], spec["total_label"], spec["decimals"])
    except evals.EvalError as e:
        die(str(e))


def table9(spec: dict, records: dict, failed=()) -> list[dict]:
    """Table 9's rows; a failed eval's value and delta are None ("—")."""
    metric_of = {t: metric for cols in spec["groups"].values() for t, _, metric in cols}
    out = []
    for sft, base in spec["deltas"]:
        per = []
        for t in spec["delta_tasks"]:
            b = tables.lookup(records, base, t, metric_of[t], missing_ok=False)
            s = tables.lookup(records, sft, t, metric_of[t], missing_ok=False)
            for m, v in ((base, b), (sft, s)):
                if v is None and (m, evals.parse_column(t)[0]) not in failed:
                    die(f"no eval of {t} for {m} (delta table)")
            per.append({"sft_model": sft, "base_model": base, "task": t, "metric": metric_of[t],
                        "base": b, "sft": s, "delta": delta(s, b)})
        if per:
            b, s = tables.mean([r["base"] for r in per]), tables.mean([r["sft"] for r in per])
            out.append({"sft_model": sft, "base_model": base, "task": "Overall", "metric": "mean",
                        "base": b, "sft": s, "delta": delta(s, b)})
            out += per
    return out


def delta(s, b):
    return None if s is None or b is None else s - b


def markdown9(rows, footer: str) -> str:
    out = ["## Post-trained models against their bases (log-likelihood tasks)", ""]
    for sft in dict.fromkeys(r["sft_model"] for r in rows):
        sub = [r for r in rows if r["sft_model"] == sft]
        base = sub[0]["base_model"]
        t = tables.Table(f"{sft} vs its base {base}", ["Task", "Metric", base, sft, "Δ (SFT – Base)"])
        t.rows = [[r["task"], r["metric"], r["base"], r["sft"], tables.signed(r["delta"])] for r in sub]
        out.append(t.markdown(level=3))
    if not rows:
        out.append("No SFT model with a base to compare.\n")
    return "\n".join(out) + "\n" + footer


def delta_csv(rows) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["sft_model", "base_model", "task", "metric", "base", "sft",
                                        "delta"], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def charts(spec: dict, t: tables.Table, out: dict) -> None:
    """Figure 6 (every group mean and the total), then one chart per group (Figures 7-8)."""
    means = [h for h in t.header if h in {spec["mean_label"].format(group=g) for g in spec["groups"]}]
    totals = means + ([spec["total_label"]] if spec["total_label"] in t.header else [])
    figures.bars(out["png"], t.title, [r[0] for r in t.rows],
                 {h: t.column(h) for h in totals})
    for g, cols in spec["groups"].items():
        heads = [h for _, h, _ in cols] + [spec["mean_label"].format(group=g)]
        figures.bars(out[f"png_{g}"], f"{t.title}: {g}", heads,
                     {r[0]: [r[t.header.index(h)] for h in heads] for r in t.rows})


def main(argv=None):
    spec, _ = spec_cli(__doc__, argv, counts=())
    out = spec["outputs"]
    records, failures = tables.load(spec["evals"])
    failed = {(f["model"], f["task"]) for f in failures}
    t = table7(spec, records, failed)
    deltas = table9(spec, records, failed)
    notes = "\n".join(tables.failure_notes(failures))
    footer = ("Metrics: " + ", ".join(f"{label} = {c} ({metric})" for cols in spec["groups"].values()
                                      for c, label, metric in cols) + ".\n\n" + tables.provenance(records))
    footer = notes + "\n" + footer if notes else footer
    t.notes = [footer]
    write_text(out["md"], t.markdown())
    write_text(out["csv"], t.csv())
    write_text(out["html"], t.html())
    write_text(out["delta_md"], markdown9(deltas, footer))
    write_text(out["delta_csv"], delta_csv(deltas))
    charts(spec, t, out)
    print(t.markdown())
    print(markdown9(deltas, ""))


if __name__ == "__main__":
    main()
