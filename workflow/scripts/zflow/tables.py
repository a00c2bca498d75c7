"""The report's tables, from eval records: one builder per shape of the seeds' report.

A table is a :class:`Table`: a title, a header, rows of cells (text, a number, or ``None`` for a
value not evaluated, printed "—") and the number of decimals the seed prints. Means are taken over
the unrounded values and rounded only when printed. Records are eval JSONs (``zflow.evals.read``)
looked up by ``(model, task key)``; a column is a task key or ``<task>/<subtask>``.

* :func:`models` — models × column groups, a mean per group and a total (Tables 7 and 8).
* :func:`leaderboard` — models ranked by their mean over a suite, medals for the first three
  (Table 6).
* :func:`breakdown` — one group task of one model: its overall score and each subtask with its
  own metric (Table 2).
* :func:`stages` — benchmarks × the stages of a post-training chain (Domyn-Small's Table 6:
  SFT, + GRPO, + DPO, + multi-environment GRPO).
* :func:`versus` — the same breakdown for a base model and a post-trained one, with the signed
  difference, "=" for a tie (Table 9).

A failed eval (a failure record, zflow.evals) is no record: its cells are "—", and
:func:`failure_notes` lists it, with its error and log, under every table that reads it.
"""

from __future__ import annotations

import csv
import html
import io
import math
import shlex
from dataclasses import dataclass, field

from zflow import evals

MEDALS = ("🥇", "🥈", "🥉")
CSS = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
       "th,td{border:1px solid #bbb;padding:.3em .7em;text-align:right}"
       "th:first-child,td:first-child{text-align:left}th{background:#eee}"
       "pre{white-space:pre-wrap;font-size:.85em;color:#333}")
MISSING = "—"


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list] = field(default_factory=list)
    decimals: int = 4
    notes: list[str] = field(default_factory=list)

    def cell(self, v) -> str:
        if v is None:
            return MISSING
        if isinstance(v, float):
            return f"{v:.{self.decimals}f}"
        return str(v)

    def markdown(self, level: int = 2) -> str:
        lines = [f"{'#' * level} {self.title}", "", "| " + " | ".join(self.header) + " |",
                 "|" + "|".join("---" for _ in self.header) + "|"]
        lines += ["| " + " | ".join(self.cell(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines + [""] + self.notes + [""])

    def html(self) -> str:
        """A self-contained page (the HTML report shows it as it is): title, table, notes."""
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{esc(self.cell(v))}</td>" for v in row) + "</tr>\n"
                       for row in self.rows)
        text = "\n".join(ln for ln in "\n".join(self.notes).splitlines() if ln.strip() != "```")
        notes = f"<pre>{esc(text)}</pre>" if text else ""
        return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{esc(self.title)}</title>"
                f"<style>{CSS}</style></head>\n<body><h2>{esc(self.title)}</h2>\n<table><thead><tr>"
                f"{head}</tr></thead><tbody>\n{body}</tbody></table>\n{notes}</body></html>\n")

    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.header)
        w.writerows([["" if v is None else f"{v:.6f}" if isinstance(v, float) else v for v in row]
                     for row in self.rows])
        return buf.getvalue()

    def column(self, name: str) -> list:
        i = self.header.index(name)
        return [row[i] for row in self.rows]


def mean(values) -> float | None:
    xs = [v for v in values if v is not None and math.isfinite(v)]
    return sum(xs) / len(xs) if xs else None


def lookup(records: dict, model: str, column: str, metric: str, missing_ok: bool = True):
    """A column's value for one model; None when the model was not evaluated on the task."""
    task, sub = evals.parse_column(column)
    rec = records.get((model, task))
    if rec is None:
        return None
    try:
        return evals.value(rec, metric, sub)
    except evals.EvalError:
        if missing_ok:
            return None
        raise


# What run_lm_eval.py passes to simple_evaluate beyond its spec: the random, numpy, torch and
# few-shot seeds (also lm_eval's command-line default, printed so the command does not depend on
# it), and the bootstrap draws lm_eval's command line always makes (it has no option for them).
SEEDS = "0,1234,1234,1234"
CLI_BOOTSTRAP_ITERS = 100000


def _q(text) -> str:
    return shlex.quote(str(text))


def command(rec: dict, model: str | None = None) -> str:
    """The command line, run from the checkout root, that gives an eval record's numbers (what
    run_lm_eval.py passes to ``simple_evaluate``); ``model`` replaces the model path (e.g.
    ``<model>``, printed as it is).

    A task folder whose YAMLs name their data files relative to themselves (the record's
    ``localized_data_files``; a record without that key is taken to need it) is first copied with
    those paths made absolute, as the eval job does (``python -m zflow.evals localize``): lm_eval
    itself resolves them against the working directory. Few-shot turns under a chat template,
    the batch-size cap of ``auto`` and the seeds are printed as the job set them."""
    s = rec.get("settings") or {}
    inc = rec.get("include_path")
    localize = bool(inc) and rec.get("localized_data_files") != []
    shots = rec.get("num_fewshot") or 0
    margs = f"pretrained={model or rec.get('model_path')},dtype={s.get('dtype', 'auto')}"
    parts = [f'T=$(mktemp -d) && PYTHONPATH=workflow/scripts python -m zflow.evals localize '
             f'{_q(inc)} "$T" &&'] if localize else []
    parts += ["lm_eval --model hf", f"--model_args {margs if model else _q(margs)}",
              f"--tasks {_q(rec.get('lm_eval_task', rec.get('task')))}", f"--num_fewshot {shots}"]
    if inc:
        parts.append("--include_path " + ('"$T"' if localize else _q(inc)))
    if s.get("apply_chat_template"):
        parts.append(f"--apply_chat_template --fewshot_as_multiturn {'true' if shots else 'false'}")
    if rec.get("limit") is not None:
        parts.append(f"--limit {rec['limit']}")
    batch = s.get("batch_size", 1)
    parts.append(f"--batch_size {batch}")
    if str(batch).startswith("auto") and s.get("max_batch_size"):
        parts.append(f"--max_batch_size {s['max_batch_size']}")
    parts.append(f"--device {s.get('device', 'cuda:0')} --seed {SEEDS}")
    return " ".join(parts)


def provenance(records) -> str:
    """The commands (one per task, ``<model>`` standing for each row's model, run from the
    checkout root) and the package versions behind a table, as Markdown; a note when the evals'
    bootstrap draws (``eval.bootstrap_iters``) differ from what lm_eval's command line makes."""
    recs = list(records.values()) if isinstance(records, dict) else list(records)
    cmds = sorted({command(r, "<model>") for r in recs})
    vers = sorted({", ".join(f"{k} {(r.get('versions') or {}).get(k, '?')}"
                             for k in ("lm_eval", "transformers", "torch")) for r in recs})
    lines = ["Commands (from the checkout root; `<model>`: the model's folder or hub id):", "",
             "```", *cmds, "```", "", "Versions: " + "; ".join(vers) + "."]
    draws = sorted({(r.get("settings") or {}).get("bootstrap_iters") for r in recs} - {None})
    if any(d != CLI_BOOTSTRAP_ITERS for d in draws):
        lines += ["", f"Bootstrap: the evals drew {', '.join(map(str, draws))} samples for the "
                  "stderr of F1-like metrics (eval.bootstrap_iters); lm_eval's command line has no "
                  f"option for it and draws {CLI_BOOTSTRAP_ITERS}: the same values, those stderrs "
                  "differ slightly."]
    return "\n".join(lines)


def signed(d: float | None, decimals: int = 4) -> str:
    """A difference as the seed prints it: "+0.0087", "−0.0054" (a minus sign), "=" for a tie."""
    if d is None:
        return MISSING
    if abs(d) < 0.5 * 10 ** -decimals:
        return "="
    return f"{d:+.{decimals}f}".replace("-", "−")


def load(paths) -> tuple[dict, list[dict]]:
    """Eval records by ``(model, task key)``, and the failure records (zflow.evals: a failed
    eval is no record, its cells are "—"; :func:`failure_notes` lists it under the table)."""
    results, failures = evals.load(paths)
    return {(r["model"], r["task"]): r for r in results}, failures


def records(paths) -> dict:
    """Eval records by ``(model, task key)`` (failed evals left out)."""
    return load(paths)[0]


def failure_notes(failures) -> list[str]:
    """Markdown lines under a table: each failed eval it reads (model, task, the error's last
    line) and the log to read; nothing when none failed."""
    if not failures:
        return []
    lines = ['Failed evals (their cells are "—"; the next `snakemake` run retries them):', ""]
    for f in sorted(failures, key=lambda f: (str(f.get("model")), str(f.get("task")))):
        lines.append(f"- {f.get('model')} × {f.get('task')}: {f.get('error') or 'unknown error'} "
                     f"(log: `{f.get('log') or '?'}`)")
    return lines + [""]


def models(title: str, names: list[str], groups: dict, records: dict, first: str = "Model",
           mean_label: str = "Media_{group}", total_label: str | None = "Media_Totale",
           decimals: int = 4) -> Table:
    """Models × column groups (``groups``: name -> [(ref, header, metric)]): each group's columns,
    its mean, and (with more than one group and a ``total_label``) the mean of the group means."""
    header = [first]
    for g, cols in groups.items():
        header += [h for _, h, _ in cols] + [mean_label.format(group=g)]
    total = total_label is not None and len(groups) > 1
    header += [total_label] if total else []
    t = Table(title, header, decimals=decimals)
    for m in names:
        row, means = [m], []
        for cols in groups.values():
            vals = [lookup(records, m, ref, metric) for ref, _, metric in cols]
            means.append(mean(vals))
            row += vals + [means[-1]]
        t.rows.append(row + ([mean(means)] if total else []))
    return t


def leaderboard(title: str, names: list[str], columns, records: dict, first: str = "Model",
                mean_label: str = "Media", decimals: int = 4) -> Table:
    """Models ranked by their mean over ``columns`` (highest first; ties keep the given order);
    the rank column holds a medal for the first three."""
    scored = []
    for m in names:
        vals = [lookup(records, m, ref, metric) for ref, _, metric in columns]
        scored.append((m, vals, mean(vals)))
    scored.sort(key=lambda s: (s[2] is None, -(s[2] or 0.0)))
    t = Table(title, ["Rank", first] + [h for _, h, _ in columns] + [mean_label], decimals=decimals)
    for i, (m, vals, avg) in enumerate(scored):
        rank = f"{MEDALS[i]} {i + 1}" if i < len(MEDALS) and avg is not None else str(i + 1)
        t.rows.append([rank, m] + vals + [avg])
    return t


def tokens(records: dict, model: str, column: str) -> float | None:
    """Mean tokens generated per item on a column's task (None: not a generation task)."""
    rec = records.get((model, evals.parse_column(column)[0]))
    return ((rec or {}).get("generated_tokens") or {}).get("mean")


def stages(title: str, names: list[str], columns, records: dict, headers: dict,
           first: str = "Benchmark", decimals: int = 4) -> Table:
    """One row per column (benchmark), one column per model (stage, headed ``headers[model]``),
    as Domyn-Small's Table 6 lays out its post-training chain; a generation task's row is followed
    by the mean tokens generated per item ("<benchmark> (tokens)", one decimal)."""
    t = Table(title, [first] + [headers.get(m, m) for m in names], decimals=decimals)
    for ref, h, metric in columns:
        t.rows.append([h] + [lookup(records, m, ref, metric) for m in names])
        toks = [tokens(records, m, ref) for m in names]
        if any(v is not None for v in toks):
            t.rows.append([f"{h} (tokens)"] + [None if v is None else f"{v:.1f}" for v in toks])
    return t


def group_rows(record: dict, labels: dict, metrics: dict, overall: str | None = None) -> list:
    """(key, label, metric, value) of a group task: its overall score (the aggregate's metric
    chosen by ``metrics[task]`` or the record's metric) then each direct subtask with its own metric
    (``metrics[subtask]``, else the first one it reports). A plain task gives its one row."""
    task = record.get("task", "?")
    agg = record.get("metrics") or {}
    out = []
    if agg:
        metric = metrics.get(task) or (record.get("metric") if record.get("metric") in agg
                                       else next(iter(agg)))
        out.append((task, labels.get(task, overall or f"{task} (overall)"), metric,
                    evals.value(record, metric)))
    firsts: dict[str, str] = {}
    group = record.get("lm_eval_task") or task  # subtasks name lm-eval's group as their parent
    for e in record.get("subtasks") or []:
        if e.get("parent") == group:
            firsts.setdefault(e["name"], e["metric"])
    for name, first_metric in firsts.items():
        metric = metrics.get(name, first_metric)
        out.append((name, labels.get(name, name), metric, evals.value(record, metric, name)))
    return out


def breakdown(title: str, record: dict, labels: dict, metrics: dict, decimals: int = 4) -> Table:
    t = Table(title, ["Task", "Metric", "Value"], decimals=decimals)
    t.rows = [[label, metric, v] for _, label, metric, v in group_rows(record, labels, metrics)]
    return t


def versus(title: str, base: tuple[str, dict], model: tuple[str, dict], labels: dict,
           metrics: dict, delta_label: str = "Δ (SFT – Base)", decimals: int = 4) -> Table:
    """Base vs post-trained on one group task: Task | Metric | base | model | signed Δ. The rows
    are the base's; a row the other model lacks is "—"."""
    (bname, brec), (mname, mrec) = base, model
    mrows = group_rows(mrec, labels, metrics, "Overall") if mrec else []
    brows = group_rows(brec, labels, metrics, "Overall") if brec else []
    other = {key: v for key, _, _, v in mrows}
    t = Table(title, ["Task", "Metric", bname, mname, delta_label], decimals=decimals)
    for key, label, metric, b in brows:
        m = other.get(key)
        t.rows.append([label, metric, b, m, signed(None if m is None else m - b, decimals)])
    if not brows:  # the base's eval failed: the model's rows, the base "—"
        t.rows = [[label, metric, None, m, MISSING] for _, label, metric, m in mrows]
    return t
