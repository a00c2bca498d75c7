"""Final qualitative scores: rule, judge and human scores combined; the scoring sheet; the
leaderboard.

Scores are keyed by ``(model, language, task)``, ``language`` being the suite's. The final score
of an answer (:func:`combine`): a human score from the filled sheet wins; else, with both a judge
and a rule score, the lower of the two (a failed machine check caps what the judge gave; passing
checks never raise a poor judge score); else whichever of the two exists; else None (unscored).

The scoring sheet is a CSV file (UTF-8 with a BOM, for spreadsheets) with the columns
:data:`COLUMNS`; a person fills ``human_score`` (0–5, decimals allowed) and ``notes``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from zflow.qualitative import visible_text

__all__ = ["COLUMNS", "SheetError", "combine", "final_scores", "write_sheet", "read_sheet",
           "leaderboard"]

COLUMNS = ("model", "language", "task", "turns", "answer", "rubric", "flags", "rule_score",
           "judge_score", "human_score", "notes")
FLAG_NAMES = ("empty", "truncated", "repetition_loop", "wrong_language", "unclosed_reasoning")


class SheetError(ValueError):
    pass


def combine(rule: float | None, judge: float | None, human: float | None
            ) -> tuple[float | None, str | None]:
    """(final score, its source: "human", "judge+rule", "judge", "rule" or None)."""
    if human is not None:
        return float(human), "human"
    if judge is not None and rule is not None:
        return float(min(judge, rule)), "judge+rule"
    if judge is not None:
        return float(judge), "judge"
    if rule is not None:
        return float(rule), "rule"
    return None, None


def final_scores(rule: dict, judge: dict, human: dict) -> dict:
    """{key: {"score", "source"}} for every key of the three mappings (key → score or None)."""
    keys = list(dict.fromkeys([*rule, *judge, *human]))
    out = {}
    for k in keys:
        score, source = combine(rule.get(k), judge.get(k), human.get(k))
        out[k] = {"score": score, "source": source}
    return out


# ---- the sheet ---------------------------------------------------------------------------

def _flag_text(flags: dict | None) -> str:
    flags = flags or {}
    names = [n for n in FLAG_NAMES if flags.get(n)]
    if flags.get("wrong_language") and flags.get("detected_language"):
        names[names.index("wrong_language")] += f" ({flags['detected_language']})"
    if flags.get("repetition_loop") and flags.get("loop_evidence"):
        names[names.index("repetition_loop")] += f" (x{flags['loop_evidence']['count']})"
    return ", ".join(names)


def _cell(text: str) -> str:
    """Text a spreadsheet will not read as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _number(value) -> str:
    return "" if value is None else f"{value:g}"


def write_sheet(path, records) -> None:
    """Write the scoring sheet; each record has model, language, task, turns (list), answer
    (reasoning blocks are cut here if still present), rubric (list), flags (dict), rule_score
    and judge_score."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in records:
            turns = "\n".join(f"{i}) {t}" for i, t in enumerate(r["turns"], 1))
            rubric = "\n".join(f"* {fact}" for fact in r["rubric"])
            w.writerow([r["model"], r["language"], r["task"], turns, _cell(visible_text(r["answer"] or "")),
                        rubric, _flag_text(r.get("flags")), _number(r.get("rule_score")),
                        _number(r.get("judge_score")), "", ""])


def _human(value: str, where: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        score = float(value.replace(",", "."))
    except ValueError:
        score = -1.0
    if not 0 <= score <= 5:
        raise SheetError(f"{where}: human_score {value!r} is not a number from 0 to 5")
    return score


def read_sheet(path) -> dict:
    """{(model, language, task): human score} for the rows with a human_score filled in."""
    path = Path(path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = csv.DictReader(f)
        missing = [c for c in ("model", "language", "task", "human_score")
                   if c not in (rows.fieldnames or [])]
        if missing:
            raise SheetError(f"{path}: missing column(s) {', '.join(missing)}")
        out, seen = {}, set()
        for n, row in enumerate(rows, 2):
            key = (row["model"], row["language"], row["task"])
            where = f"{path} row {n} ({'/'.join(map(str, key))})"
            score = _human(row["human_score"] or "", where)
            if key in seen:
                raise SheetError(f"{where}: a second row for the same model, language and task")
            seen.add(key)
            if score is not None:
                out[key] = score
    return out


# ---- the leaderboard ---------------------------------------------------------------------

def _value(v):
    return v.get("score") if isinstance(v, dict) else v


def _language_board(table: dict, models: list, pass_threshold: float) -> dict:
    totals = {}
    for m in models:
        got = [row[m] for row in table.values() if row.get(m) is not None]
        totals[m] = {"total": round(sum(got), 2), "scored": len(got), "tasks": len(table),
                     "average": round(sum(got) / len(got), 2) if got else None}
    winners, failures = {}, []
    for task, row in table.items():
        scored = {m: s for m, s in row.items() if s is not None}
        if not scored:
            continue
        best = max(scored.values())
        winners[task] = {"score": best, "models": [m for m, s in scored.items() if s == best]}
        if best < pass_threshold:
            failures.append(task)
    ranking = sorted(models, key=lambda m: -totals[m]["total"])
    return {"tasks": list(table), "table": table, "models": totals, "ranking": ranking,
            "winners": winners, "universal_failures": failures}


def leaderboard(scores: dict, tasks: dict | None = None, pass_threshold: float = 3,
                pair: tuple[str, str] = ("it", "en")) -> dict:
    """Per language (``languages``): the per-task ``table`` {task: {model: score}}, each model's
    ``total`` (sum of its task scores: /100 for 20 tasks), ``average`` per scored task, the
    ``ranking``, task ``winners`` (best score, every model reaching it) and ``universal_failures``
    (scored tasks where no model reaches ``pass_threshold``). Across languages: ``delta`` per
    model (pair[1] total − pair[0] total) and the tasks failed universally in every language.

    ``scores``: {(model, language, task): score | None | {"score": ...}}; ``tasks``:
    {language: [task ids]} fixes the task order and lists tasks nobody was scored on."""
    langs: dict[str, dict] = {}
    for (model, lang, task), v in scores.items():
        entry = langs.setdefault(lang, {"models": [], "table": {t: {} for t in
                                                                  (tasks or {}).get(lang, [])}})
        if model not in entry["models"]:
            entry["models"].append(model)
        entry["table"].setdefault(task, {})[model] = _value(v)
    boards = {}
    for lang, e in langs.items():
        table = {t: {m: row.get(m) for m in e["models"]} for t, row in e["table"].items()}
        boards[lang] = _language_board(table, e["models"], pass_threshold)
    a, b = pair
    models = list(dict.fromkeys(m for e in langs.values() for m in e["models"]))
    delta = {}
    for m in models:
        ta, tb = (boards[x]["models"].get(m, {}).get("total") if x in boards else None
                  for x in (a, b))
        delta[m] = {a: ta, b: tb, "delta": None if ta is None or tb is None
                    else round(tb - ta, 2)}
    common = [set(bd["universal_failures"]) for bd in boards.values()]
    everywhere = [t for t in (next(iter(boards.values()))["tasks"] if boards else [])
                  if common and all(t in s for s in common)]
    return {"languages": boards, "delta": delta, "universal_failures": everywhere}
