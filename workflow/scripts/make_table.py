"""One table of the report beside the progression and Table 7: a group task's breakdown (the seed's
Table 2), a base-vs-post-trained comparison on a group (Table 9, Figure 9), a leaderboard (Table 6,
Figure 5), a models table (Table 8) or the stages of a post-training chain (Domyn-Small's Table 6).

Reads the eval JSONs listed in the spec; writes the table as Markdown (the seed's shape, with the
commands and versions that produced it) and CSV, and its figure as PNG.
"""

from __future__ import annotations

from zflow import figures, tables
from zflow.io import die, spec_cli, write_text


def build(spec: dict, records: dict, failed=()) -> tables.Table:
    """The table; a failed eval (``failed``: (model, task) pairs) gives "—" cells, or no rows for
    a breakdown of it."""
    kind, title, dec = spec["kind"], spec["title"], spec["decimals"]
    cols = [tuple(c) for c in spec.get("columns", [])]
    if kind in ("breakdown", "versus"):
        need = [spec["model"]] + ([spec["base"]] if kind == "versus" else [])
        missing = [m for m in need if (m, spec["task"]) not in records
                   and (m, spec["task"]) not in failed]
        if missing:
            die(f"table {spec['name']}: no eval of task {spec['task']} for {', '.join(missing)}")
    if kind == "breakdown":
        rec = records.get((spec["model"], spec["task"]))
        if rec is None:
            return tables.Table(title, ["Task", "Metric", "Value"], decimals=dec)
        return tables.breakdown(title, rec, spec["labels"], spec["metrics"], dec)
    if kind == "versus":
        return tables.versus(title, (spec["base"], records.get((spec["base"], spec["task"]))),
                             (spec["model"], records.get((spec["model"], spec["task"]))),
                             spec["labels"], spec["metrics"], spec["delta_label"], dec)
    if kind == "stages":
        return tables.stages(title, spec["models"], cols, records, spec["labels"], spec["first"],
                             dec)
    if kind == "leaderboard":
        return tables.leaderboard(title, spec["models"], cols, records, spec["first"],
                                  spec["mean_label"], dec)
    return tables.models(title, spec["models"], {"": cols}, records, spec["first"],
                         spec["mean_label"], None, dec)


def figure(spec: dict, t: tables.Table, path) -> None:
    kind = spec["kind"]
    if kind == "breakdown":
        figures.bars(path, t.title, [f"{r[0]} ({r[1]})" for r in t.rows],
                     {spec["model"]: [r[2] for r in t.rows]}, horizontal=True)
    elif kind == "versus":
        figures.bars(path, t.title, [f"{r[0]} ({r[1]})" for r in t.rows],
                     {spec["base"]: [r[2] for r in t.rows], spec["model"]: [r[3] for r in t.rows]},
                     horizontal=True)
    elif kind == "stages":  # accuracy against generated tokens, else one bar per stage
        rows = {r[0]: r[1:] for r in t.rows}
        gen = {h: [(float(x), y, stage) for x, y, stage in zip(rows[f"{h} (tokens)"], rows[h],
                                                                t.header[1:])
                   if x is not None and y is not None]
               for h in rows if f"{h} (tokens)" in rows}
        if any(gen.values()):
            figures.accuracy_tokens(path, f"{t.title}: score vs generated tokens", gen)
        else:
            figures.bars(path, t.title, [r[0] for r in t.rows],
                         {h: [r[1 + j] for r in t.rows] for j, h in enumerate(t.header[1:])})
    else:  # leaderboard / models: one bar per model in each column, the mean last
        first = 2 if kind == "leaderboard" else 1
        figures.bars(path, t.title, t.header[first:],
                     {r[first - 1]: r[first:] for r in t.rows})


def main(argv=None):
    spec, _ = spec_cli(__doc__, argv, counts=())
    records, failures = tables.load(spec["evals"])
    t = build(spec, records, {(f["model"], f["task"]) for f in failures})
    t.notes = tables.failure_notes(failures) + (
        [spec["caption"], "", tables.provenance(records)] if spec.get("caption") else
        [tables.provenance(records)])
    out = spec["outputs"]
    write_text(out["md"], t.markdown())
    write_text(out["csv"], t.csv())
    write_text(out["html"], t.html())
    figure(spec, t, out["png"])
    print(t.markdown())


if __name__ == "__main__":
    main()
