"""The qualitative benchmark's report: Markdown, one CSV per table, the leaderboard's figure and
the scoring sheet of every answer (to fill in, then save at the config's ``qualitative.sheet``).

Tables (the seed's "SLM Benchmark" Parts I-III): the leaderboard per suite (total /5 x tasks,
average per scored task), the per-task scores, the delta between the first two suites per model
(IT vs EN), flags and latency per model and suite, task winners and universal failures (tasks
no model reaches ``pass_threshold`` on). A score is the final one (human > judge and rules,
zflow.scoresheet.combine); an unscored answer (no check, no parsed judge reply, no human score)
counts in no total and shows "—". Decoding settings, the judge and package versions follow.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from zflow import figures, scoresheet
from zflow.io import spec_cli, versions, write_text
from zflow.qualitative import load_suite
from zflow.tables import Table

FLAGS = ("empty", "truncated", "repetition_loop", "wrong_language", "unclosed_reasoning")


def read_scores(files) -> list[dict]:
    return [json.loads(line) for f in files
            for line in Path(f).read_text(encoding="utf-8").splitlines() if line.strip()]


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def leaderboard_table(board: dict, suite: str) -> Table:
    b = board["languages"][suite]
    n = len(b["tasks"])
    t = Table(f"Leaderboard — {suite} (score / {5 * n})",
              ["Rank", "Model", "Score", "Max", "Avg / task", "Scored tasks"], decimals=2)
    for i, m in enumerate(b["ranking"], 1):
        s = b["models"][m]
        t.rows.append([i, m, float(s["total"]), 5 * n, s["average"], s["scored"]])
    return t


def per_task_table(board: dict, suite: str, categories: dict, models: list) -> Table:
    b = board["languages"][suite]
    t = Table(f"Per-task scores — {suite}", ["Task", "Category", *models], decimals=2)
    for task in b["tasks"]:
        row = b["table"][task]
        t.rows.append([task, categories.get(task, ""),
                       *[None if row.get(m) is None else float(row[m]) for m in models]])
    t.rows.append(["TOTAL", f"/{5 * len(b['tasks'])}",
                   *[float(b["models"][m]["total"]) if m in b["models"] else None
                     for m in models]])
    return t


def delta_table(board: dict, pair: list, models: list) -> Table | None:
    if len(pair) < 2:
        return None
    a, b = pair
    t = Table(f"{a.upper()} vs {b.upper()} — score delta", ["Model", a, b, f"Δ ({b} − {a})"],
              decimals=2)
    for m in models:
        ta = board["languages"].get(a, {}).get("models", {}).get(m, {}).get("total")
        tb = board["languages"].get(b, {}).get("models", {}).get(m, {}).get("total")
        t.rows.append([m, ta if ta is None else float(ta), tb if tb is None else float(tb),
                       None if ta is None or tb is None else float(round(tb - ta, 2))])
    return t


def flags_table(records: list, models: list, suites: list) -> Table:
    t = Table("Flags and latency per model",
              ["Model", "Suite", "Answers", *FLAGS, "Judge unparsed", "Human scored",
               "Latency mean (s)", "Latency max (s)", "Tokens mean", "Tokens/s mean"], decimals=2)
    for m in models:
        for s in suites:
            rs = [r for r in records if r["model"] == m and r["suite"] == s]
            if not rs:
                continue
            n = Counter(f for r in rs for f in FLAGS if r["flags"].get(f))
            lat = [r["latency_s"] for r in rs if r["latency_s"] is not None]
            t.rows.append([m, s, len(rs), *[n[f] for f in FLAGS],
                           sum(1 for r in rs if (r["judge"] or {}).get("status") == "unparsed"),
                           sum(1 for r in rs if r["human_score"] is not None),
                           _mean(lat), max(lat) if lat else None,
                           _mean([r["tokens_generated"] for r in rs]),
                           _mean([r["tokens_per_s"] for r in rs])])
    return t


def winners_table(board: dict, suites: list) -> Table:
    t = Table("Task winners", ["Suite", "Task", "Best score", "Winner(s)"], decimals=2)
    for s in suites:
        for task, w in board["languages"][s]["winners"].items():
            t.rows.append([s, task, float(w["score"]), ", ".join(w["models"])])
    return t


def failures_table(board: dict, suites: list, threshold: float) -> Table:
    t = Table(f"Universal failures (no model reaches {threshold:g})",
              ["Suite", "Task", "Best score"], decimals=2)
    for s in suites:
        b = board["languages"][s]
        for task in b["universal_failures"]:
            t.rows.append([s, task, float(b["winners"][task]["score"])])
    for task in board["universal_failures"]:
        t.rows.append(["every suite", task, None])
    return t


def settings_md(spec: dict, records: list) -> str:
    d = spec["decoding"]
    lines = ["## Settings", "", "Decoding: " + ", ".join(f"{k}={d[k]}" for k in (
        "max_new_tokens", "temperature", "top_p", "repetition_penalty", "seed")) + ".", ""]
    j = spec["judge"]
    if j:
        where = j["url"] if j["kind"] == "endpoint" else \
            f"{j['path']} (transformers serve, 127.0.0.1)"
        lines.append(f"Judge: {j.get('name') or j['model']} at {where}; "
                     f"max_tokens={j['max_tokens']}, temperature={j['temperature']}, "
                     f"seed={j['seed']}, retries={j['retries']}.")
    else:
        lines.append("Judge: none (rule checks and human scores only).")
    sources = Counter(r["source"] or "unscored" for r in records)
    lines += ["", "Scores by source: " + ", ".join(f"{k} {v}" for k, v in sorted(sources.items()))
              + ".", ""]
    seen = {}
    for r in records:
        run = r.get("run") or {}
        seen.setdefault(r["model"], (run.get("prompt_format"), run.get("versions", {})))
    lines += ["Models (prompt format; versions when answering):", ""]
    for m, (fmt, v) in seen.items():
        lines.append(f"- {m}: {fmt}; " + ", ".join(f"{k} {x}" for k, x in v.items() if x))
    here = versions()
    lines += ["", "Report: " + ", ".join(f"{k} {x}" for k, x in here.items() if x) + ".", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    spec, _ = spec_cli(__doc__, argv, counts=())
    suites = list(spec["suites"])
    tasks = {s: load_suite(p) for s, p in spec["suites"].items()}
    categories = {t.id: t.category for ts in tasks.values() for t in ts}
    records = read_scores(spec["scores"])
    models = spec["models"]
    scores = {(r["model"], r["suite"], r["task"]): r["score"] for r in records}
    pair = spec["pair"]
    board = scoresheet.leaderboard(scores, {s: [t.id for t in ts] for s, ts in tasks.items()},
                                   spec["pass_threshold"],
                                   tuple(pair) if len(pair) == 2 else ("", ""))
    out = spec["outputs"]
    tables = {"leaderboard": [leaderboard_table(board, s) for s in suites],
              "per_task": [per_task_table(board, s, categories, models) for s in suites],
              "delta": [t for t in [delta_table(board, pair, models)] if t],
              "flags": [flags_table(records, models, suites)],
              "winners": [winners_table(board, suites)],
              "failures": [failures_table(board, suites, spec["pass_threshold"])]}
    for name, ts in tables.items():
        stack = name in ("leaderboard", "per_task")
        write_text(out[name], (stacked(ts, suites) if stack else ts[0]).csv() if ts else "\n")
    figures.bars(out["png"], "Qualitative leaderboard (score / 5 × tasks)", models,
                 {s: [board["languages"][s]["models"].get(m, {}).get("total") for m in models]
                  for s in suites})
    md = ["# Qualitative benchmark", "",
          f"{len(models)} models × {len(suites)} suites ({', '.join(suites)}); 0–5 per task.",
          "",
          f"![leaderboard]({Path(out['png']).name})", ""]
    md += [t.markdown() for ts in tables.values() for t in ts]
    write_text(out["md"], "\n".join(md) + "\n" + settings_md(spec, records))
    scoresheet.write_sheet(out["sheet"], [{**r, "language": r["suite"]} for r in records])


def stacked(tables: list, suites: list) -> Table:
    """Per-suite tables of one kind as one, with a leading ``Suite`` column (their CSV)."""
    return Table(tables[0].title, ["Suite", *tables[0].header],
                 [[s, *row] for t, s in zip(tables, suites) for row in t.rows], tables[0].decimals)


if __name__ == "__main__":
    main()
