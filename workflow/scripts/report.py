"""Checkpoint progression table (the seed's Table 1) and figures for one language.

Reads results/evals/<model>/<task>.json files and the pretraining metrics CSV; writes the
table as Markdown (the seed's shape, Checkpoint | <task> (<metric>) ... | Media, Media being the
mean of the row's available metrics and "—" a value not evaluated; headers, title and decimals
from the spec: Tables 1, 3, 4, 5 differ) and CSV, a PNG of the progression (the seed's Figures
1-4) and a PNG of the training loss curve. A nanotron checkpoint whose converted model's loss on
its fixed batch departs from the run's training loss at that step (zflow.parity.loss_flag: the
record the convert_checkpoint job writes in the model's marker) is marked ⚠ in the table, with a
note saying by how much.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from zflow import evals, metrics, parity, tables
from zflow.io import save_png, spec_cli, write_text


def stage_of(stages, step):
    """The data stage that trained step ``step``: the last of ``stages`` ([name, start_step],
    start_step = steps trained before it) starting before it; None without stages or step."""
    names = [n for n, start in stages or [] if step is not None and start < max(step, 1)]
    return names[-1] if names else None


def build_rows(columns, records, stages=None):
    """One row per model: {model, step, stage, <column>: value or None, media}. A column is a
    task key or ``<task>/<subtask>`` (one subtask of a group task); ``stage``: the data stage
    (``stages``: [[name, start_step]]) the checkpoint was taken in."""
    by_model, tasks = {}, {}
    for r in records:
        by_model.setdefault(r["model"], {"model": r["model"], "step": r.get("step"),
                                         "stage": stage_of(stages, r.get("step"))})
        tasks[(r["model"], r["task"])] = r
    rows = []
    for row in by_model.values():
        for ref, _, metric in columns:
            task, sub = evals.parse_column(ref)
            rec = tasks.get((row["model"], task))
            try:
                row[ref] = evals.value(rec, metric, sub) if rec else None
            except evals.EvalError:
                row[ref] = None
        present = [row[c[0]] for c in columns if row[c[0]] is not None and math.isfinite(row[c[0]])]
        row["media"] = sum(present) / len(present) if present else None
        rows.append(row)
    rows.sort(key=lambda r: (r["step"] is None, r["step"] or 0, r["model"]))
    return rows


def checkpoint_label(row, stages=None):
    """The step (``2k``), with its data stage when the run has several: ``150 (stable)``."""
    step = row["step"]
    if step is None:
        return row["model"]
    label = f"{step // 1000}k" if step >= 1000 and step % 1000 == 0 else str(step)
    return f"{label} ({row['stage']})" if len(stages or []) > 1 and row.get("stage") else label


def table(spec: dict, columns, rows, records) -> tuple[tables.Table, str]:
    """The progression table (the seed's headers and decimals, from the spec) and its CSV
    (machine-readable: task keys, full precision)."""
    t = tables.Table(spec["title"], [spec["first"]] + [h for _, h, _ in columns] + [spec["mean_label"]],
                     decimals=spec["decimals"])
    stages = spec.get("stages")
    staged = len(stages or []) > 1  # the stage of each checkpoint: in its label and a column
    t.rows = [[checkpoint_label(r, stages)] + [r.get(c) for c, _, _ in columns] + [r["media"]]
              for r in rows]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["checkpoint", "step", "model"] + ["stage"] * staged + [c for c, _, _ in columns]
               + ["media"])
    for r in rows:
        w.writerow([checkpoint_label(r), r["step"], r["model"]] + [r["stage"] or ""] * staged
                   + ["" if r.get(c) is None else f"{r[c]:.6f}" for c, _, _ in columns]
                   + ["" if r["media"] is None else f"{r['media']:.6f}"])
    shots = {e["task"]: e["num_fewshot"] for e in records}
    t.notes = ["Tasks: " + ", ".join(f"{c} ({shots.get(evals.parse_column(c)[0], 0)}-shot)"
                                     for c, _, _ in columns)
               + f". {spec['mean_label']} = mean of the row's available metrics.", "",
               tables.provenance(records)]
    return t, buf.getvalue()


def conversion_flags(rows, records, train_metrics) -> dict:
    """{model: flag} of the checkpoints whose converted model's loss on its fixed batch (the
    ``parity`` record of its marker, written by convert_checkpoint: nanotron runs) is above the
    run's training loss at that step by more than the margin (zflow.parity.loss_flag)."""
    paths_ = {r["model"]: r.get("model_path") for r in records if r.get("model_path")}
    try:
        train = metrics.read(train_metrics) if train_metrics else []
    except OSError:
        train = []
    flags = {}
    for row in rows:
        if row.get("step") is None or not paths_.get(row["model"]):
            continue
        f = parity.loss_flag(parity.read_record(paths_[row["model"]]), train, row["step"])
        if f:
            flags[row["model"]] = f
    return flags


def flag_conversions(t: tables.Table, rows, flags: dict, stages=None) -> None:
    """Mark the flagged checkpoints' labels (⚠) and explain each in a note."""
    if not flags:
        return
    for trow, row in zip(t.rows, rows):
        if row["model"] in flags:
            trow[0] = f"{trow[0]} ⚠"
    t.notes = [parity.flag_note(checkpoint_label(r, stages), flags[r["model"]])
               for r in rows if r["model"] in flags] + [""] + t.notes


def progression_figure(lang: str, columns, rows, path, mean_label: str = "Media") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in rows]
    for t, label, metric in columns:
        pts = [(s, r.get(t)) for s, r in zip(steps, rows) if r.get(t) is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=label)
    pts = [(s, r["media"]) for s, r in zip(steps, rows) if r["media"] is not None]
    if pts:
        ax.plot(*zip(*pts), marker="s", linestyle="--", color="black", label=mean_label)
    ax.set_xlabel("training step")
    ax.set_ylabel("score")
    ax.set_title(f"Checkpoint progression ({lang})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def loss_figure(lang: str, train_metrics, path, stages=None) -> None:
    """Training loss and throughput (zflow.metrics.PRETRAIN: the same for both backends), with
    a vertical line and the stage's name where each data stage after the first starts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = metrics.read(train_metrics)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    pts = metrics.series(rows, "loss")
    if pts:
        ax.plot(*zip(*pts), lw=1)
    ax.set_ylabel("training loss")
    ax.set_title(f"Pretraining ({lang})")
    ax.grid(alpha=0.3)
    tps = metrics.series(rows, "tokens_per_sec")
    if tps:
        ax2.plot(*zip(*tps), lw=1, color="tab:green")
    ax2.set_xlabel("training step")
    ax2.set_ylabel("tokens/s")
    ax2.grid(alpha=0.3)
    for i, (name, start) in enumerate(stages if len(stages or []) > 1 else []):
        if i:
            for a in (ax, ax2):
                a.axvline(start, color="tab:red", ls=":", lw=1)
        ax.text(start, 1.0, f" {name}", transform=ax.get_xaxis_transform(), va="top",
                fontsize=8, color="tab:red")
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def main(argv=None):
    spec, _ = spec_cli(__doc__, argv, counts=())
    columns = [tuple(c) for c in spec["columns"]]
    records, failures = evals.load(spec["evals"])  # a failed eval: its cells "—", listed
    rows = build_rows(columns, records + failures, spec.get("stages"))
    out = spec["outputs"]
    t, csv_text = table(spec, columns, rows, records)
    t.notes = tables.failure_notes(failures) + t.notes
    flags = conversion_flags(rows, records + failures, spec.get("train_metrics"))
    flag_conversions(t, rows, flags, spec.get("stages"))
    for model, f in flags.items():
        print(f"conversion check: {model}: loss {f['loss']:.3f} vs training {f['train_loss']:.3f}"
              f" (margin {f['margin']:.3f})", flush=True)
    write_text(out["md"], t.markdown())
    write_text(out["html"], t.html())
    write_text(out["csv"], csv_text)
    Path(out["png"]).parent.mkdir(parents=True, exist_ok=True)
    progression_figure(spec["lang"], columns, rows, out["png"], spec["mean_label"])
    loss_figure(spec["lang"], spec["train_metrics"], out["loss"], spec.get("stages"))
    print(f"table: {out['md']} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
