"""Machine-verifiable checks of a qualitative answer, and the rule score they give.

A task's ``checks`` is a list of mappings with a ``type``; each check scores the visible answer
(reasoning removed) from 0 to 1, and the rule score is 5 × their mean. Text matching ignores case
and needs word boundaries at both ends of a phrase; an *item* is one phrase or a list of
alternative phrases (``[Divina Commedia, Divine Comedy]``), found when any of them is.

* ``contains_all``: ``values`` (items). Score: the share of items found.
* ``contains_any``: ``values`` (items). Score: 1 when any is found.
* ``contains_at_least``: ``values`` (items), ``count``. Score: min(found, count) / count.
* ``contains_number``: ``value``, optional ``tolerance`` (absolute, default 0). Score: 1 when a
  number in the text is within it. ``1.234,5`` and ``1,234.5`` are both read; signs are not.
* ``classification``: ``expected`` ({word: label item}). A word takes the label named in the
  same segment (text split at newlines, commas, semicolons and sentence ends; the nearest label
  when several), else the last label named before it (headings, ``Fruit: apple, pear``); its
  first labelled mention counts. Score: the share of words given their label.
* ``verdict``: ``accept`` and ``reject`` (items). Score: 1 when the earliest phrase of either
  list found in the text is an accepted one (a yes/no answer stated before the explanation).
* ``code_function``: ``name`` (a name or a list of accepted names), ``cases`` ([[argument,
  expected], ...]), optional ``timeout`` (seconds, default 5). The answer's Python code (fenced
  blocks, else the ``def`` and its body) runs in a subprocess and the function is called once
  per case. Score: the share of cases returning the expected value; a timeout scores 0.

The code runs in :mod:`zflow.sandbox` with ``isolation="auto"``: under bubblewrap where it runs
(its own namespaces, read-only file system, empty environment, nothing outlives the timeout), else
the weaker process sandbox (resource, process and network limits, but the file system is
readable): docs/sandbox.md says what each guarantees. Unlike the GRPO code reward (which refuses
without bubblewrap unless ``allow_process_sandbox`` is set), a rule check scores a handful of
answers on a login or eval node, so it falls back rather than stop the benchmark.
"""

from __future__ import annotations

import json
import re
import unicodedata

__all__ = ["CHECK_KEYS", "check_problem", "run_checks", "rule_score", "numbers", "find_item",
           "extract_code", "run_function"]

# type: (required keys, optional keys)
CHECK_KEYS = {
    "contains_all": ({"values"}, set()),
    "contains_any": ({"values"}, set()),
    "contains_at_least": ({"values", "count"}, set()),
    "contains_number": ({"value"}, {"tolerance"}),
    "classification": ({"expected"}, set()),
    "verdict": ({"accept", "reject"}, set()),
    "code_function": ({"name", "cases"}, {"timeout"}),
}


def _is_item(x) -> bool:
    if isinstance(x, str):
        return x.strip() != ""
    return isinstance(x, list) and len(x) > 0 and all(isinstance(a, str) and a.strip() for a in x)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_problem(check) -> tuple[str, str] | None:
    """(key, problem) for an invalid check mapping; None when it is valid."""
    if not isinstance(check, dict):
        return "checks", f"each check must be a mapping with a 'type', got {check!r}"
    kind = check.get("type")
    if kind not in CHECK_KEYS:
        return "type", f"unknown check type {kind!r} (known: {', '.join(CHECK_KEYS)})"
    required, optional = CHECK_KEYS[kind]
    if missing := sorted(required - set(check)):
        return missing[0], f"missing in a {kind} check"
    if unknown := sorted(set(check) - required - optional - {"type"}):
        return unknown[0], (f"not a key of a {kind} check "
                            f"(keys: {', '.join(sorted(required | optional))})")
    return _value_problem(kind, check)


def _value_problem(kind: str, c: dict) -> tuple[str, str] | None:
    for key in ("values", "accept", "reject"):
        if key in c and not (isinstance(c[key], list) and c[key] and all(map(_is_item, c[key]))):
            return key, "must be a non-empty list of phrases (or lists of alternative phrases)"
    if kind == "contains_at_least" and not (isinstance(c["count"], int) and
                                            0 < c["count"] <= len(c["values"])):
        return "count", "must be a positive integer no larger than the number of values"
    if kind == "contains_number":
        if not _is_number(c["value"]):
            return "value", "must be a number"
        if not _is_number(c.get("tolerance", 0)) or c.get("tolerance", 0) < 0:
            return "tolerance", "must be a non-negative number"
    if kind == "classification" and not (
            isinstance(c["expected"], dict) and c["expected"]
            and all(isinstance(w, str) and _is_item(lab) for w, lab in c["expected"].items())):
        return "expected", "must map each word to a label (or a list of alternative labels)"
    if kind == "code_function":
        names = c["name"] if isinstance(c["name"], list) else [c["name"]]
        if not names or not all(isinstance(n, str) and n.isidentifier() for n in names):
            return "name", "must be a Python identifier or a list of them"
        if not (isinstance(c["cases"], list) and c["cases"] and
                all(isinstance(x, list) and len(x) == 2 for x in c["cases"])):
            return "cases", "must be a non-empty list of [argument, expected] pairs"
        if not _is_number(c.get("timeout", 5)) or c.get("timeout", 5) <= 0:
            return "timeout", "must be a positive number of seconds"
    return None


# ---- text matching -------------------------------------------------------------------------

def _norm(text: str) -> str:
    return unicodedata.normalize("NFC", text).replace("\u2019", "'").replace("\u2018", "'")


def _phrase_re(phrase: str) -> re.Pattern:
    body = r"\s+".join(re.escape(w) for w in _norm(phrase).split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def find_item(text: str, item) -> re.Match | None:
    """The earliest match of a phrase or of any of a list of alternative phrases."""
    found = [m for alt in ([item] if isinstance(item, str) else item)
             if (m := _phrase_re(alt).search(_norm(text)))]
    return min(found, key=lambda m: (m.start(), -len(m.group()))) if found else None


def _found_share(text: str, items) -> tuple[int, list]:
    missing = [it for it in items if find_item(text, it) is None]
    return len(items) - len(missing), missing


_NUMBER = re.compile(r"\d(?:[\d.,]*\d)?")


def _readings(token: str) -> set[float]:
    """The values a number token can mean, with '.' or ',' as the decimal separator."""
    out = set()
    for dec, thousands in ((".", ","), (",", ".")):
        whole, _, frac = token.partition(dec)
        if dec in frac or thousands in frac:
            continue
        groups = whole.split(thousands)
        if len(groups) > 1 and not (len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])):
            continue
        out.add(float("".join(groups) + ("." + frac if frac else "")))
    return out


def numbers(text: str) -> set[float]:
    """Every value the numbers written in ``text`` can be read as."""
    return {v for tok in _NUMBER.findall(text) for v in _readings(tok)}


# ---- the checks ----------------------------------------------------------------------------

def _contains_all(text, c):
    n, missing = _found_share(text, c["values"])
    return n / len(c["values"]), {"missing": missing}


def _contains_any(text, c):
    n, _ = _found_share(text, c["values"])
    return float(n > 0), {"found": n}


def _contains_at_least(text, c):
    n, _ = _found_share(text, c["values"])
    return min(n, c["count"]) / c["count"], {"found": n, "needed": c["count"]}


def _contains_number(text, c):
    tol = c.get("tolerance", 0) + 1e-9 * max(1.0, abs(c["value"]))
    hit = any(abs(v - c["value"]) <= tol for v in numbers(text))
    return float(hit), {"value": c["value"]}


_SEGMENTS = re.compile(r"\n|[,;]|(?<=[.!?])\s")


def _occurrences(segment: str, items: dict) -> list[tuple[int, str]]:
    return [(m.start(), key) for key, alts in items.items() for alt in alts
            for m in _phrase_re(alt).finditer(segment)]


def _classification(text, c):
    labels, want = {}, {}
    for word, item in c["expected"].items():
        alts = [item] if isinstance(item, str) else item
        labels.setdefault(alts[0].lower(), set()).update(alts)
        want[word] = alts[0].lower()
    words = {w: [w] for w in want}
    given, current = {}, None
    for segment in _SEGMENTS.split(_norm(text)):
        named = _occurrences(segment, labels)
        for pos, word in _occurrences(segment, words):
            label = min(named, key=lambda x: abs(x[0] - pos))[1] if named else current
            if label is not None:
                given.setdefault(word, label)
        if named:
            current = max(named)[1]
    right = sum(given.get(w) == lab for w, lab in want.items())
    return right / len(want), {"given": {w: given.get(w) for w in want}}


def _verdict(text, c):
    hits = [(m.start(), -len(m.group()), side) for side in ("accept", "reject")
            for item in c[side] if (m := find_item(text, item))]
    first = min(hits)[2] if hits else None
    return float(first == "accept"), {"first": first}


def _code_function(text, c):
    names = c["name"] if isinstance(c["name"], list) else [c["name"]]
    blocks = extract_code(text, names)
    if not blocks:
        return 0.0, {"error": "no Python code defining " + " or ".join(names)}
    passed, error = run_function(blocks, names, c["cases"], c.get("timeout", 5))
    score = sum(passed) / len(c["cases"])
    return score, {"passed": passed, **({"error": error} if error else {})}


_RUNNERS = {"contains_all": _contains_all, "contains_any": _contains_any,
            "contains_at_least": _contains_at_least, "contains_number": _contains_number,
            "classification": _classification, "verdict": _verdict,
            "code_function": _code_function}


def run_checks(task, visible: str) -> list[dict]:
    """One ``{"type", "score" (0–1), "detail"}`` per check of the task, on the visible answer."""
    out = []
    for c in task.checks:
        score, detail = _RUNNERS[c["type"]](visible, c)
        out.append({"type": c["type"], "score": round(score, 4), "detail": detail})
    return out


def rule_score(task, visible: str) -> float | None:
    """5 × the mean check score (0–5, two decimals); None for a task without checks."""
    if not task.checks:
        return None
    results = run_checks(task, visible)
    return round(5 * sum(r["score"] for r in results) / len(results), 2)


# ---- code --------------------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_IMPORT = re.compile(r"^(?:import \w[\w.]*(?: as \w+)?|from [\w.]+ import [\w, ]+)\s*$", re.M)


def extract_code(text: str, names) -> list[str]:
    """Python blocks of an answer: fenced ones (an unclosed fence runs to the end), or else the
    text's import lines and the first ``def <name>(`` with its indented body."""
    fenced = [body for lang, body in _FENCE.findall(text)
              if lang.lower() in ("", "python", "py", "python3")]
    if fenced:
        return fenced
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines)
                  if re.match(rf"def\s+({'|'.join(map(re.escape, names))})\s*\(", ln)), None)
    if start is None:
        return []
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][:1] in " \t"):
        end += 1
    return ["\n".join(_IMPORT.findall(text) + lines[start:end]) + "\n"]


_RESULT = "zflow-code-function-result: "


def _driver(blocks: list[str]) -> str:
    """Code that runs each block (as module ``answer``, so ``__main__`` guards stay idle; an
    error ends only its block) into the namespace ``_ns``."""
    return (f"import json as _json, sys as _sys\n_ns = {{'__name__': 'answer'}}\n"
            f"for _block in _json.loads({json.dumps(json.dumps(blocks))}):\n"
            "    try:\n        exec(compile(_block, 'answer.py', 'exec'), _ns)\n"
            "    except BaseException:\n        pass\n")


def _calls(names, cases: list) -> str:
    """Code that calls the first defined of ``names`` on each case and writes the outcomes."""
    return (f"_fn = next((_ns[n] for n in {list(names)!r} if callable(_ns.get(n))), None)\n"
            f"_passed = []\nfor _arg, _want in _json.loads({json.dumps(json.dumps(cases))}):\n"
            "    try:\n        _passed.append(bool(_fn is not None and _fn(_arg) == _want))\n"
            "    except BaseException:\n        _passed.append(False)\n"
            f"_sys.stderr.write('\\n{_RESULT}' + _json.dumps(_passed) + '\\n')\n")


def run_function(blocks: list[str], names, cases: list, timeout: float) -> tuple[list, str | None]:
    """Run ``blocks`` in :func:`zflow.sandbox.run_python` and call the first defined of
    ``names`` on each case. Returns (one bool per case, an error or None)."""
    from zflow.sandbox import run_python

    run = run_python(_driver(blocks), _calls(names, cases), timeout_s=timeout)
    if run.timed_out:
        return [False] * len(cases), f"timed out after {timeout} s (killed)"
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith(_RESULT)]
    if not lines:
        return [False] * len(cases), f"the code exited with status {run.returncode}"
    return [bool(p) for p in json.loads(lines[-1][len(_RESULT):])], None
