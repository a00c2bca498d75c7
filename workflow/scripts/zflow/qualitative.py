"""The qualitative benchmark: prompt suites, the visible answer, and the flags raised on it.

A suite (``config/qualitative/<lang>.yaml``) is ``{language: <suite language>, tasks: [...]}``;
each task has ``id`` (lower-case letters, digits, ``_``), ``category``, ``turns`` (the user
messages, sent one after the other; the reply to the last is the scored answer), ``language``
(the language the answer should be in: a translation task's differs from the suite's),
``rubric`` (the facts a correct answer holds, for a judge) and optional ``checks``
(machine-verifiable rules, :mod:`zflow.checks`).

Reasoning blocks (``<think>…</think>``) stay in the answer record and are cut from the text that
is flagged and scored. The answer record (:func:`answer_task`) holds ``task``, ``language``
(the suite's), ``expected_language``, ``turns``, ``replies`` (one chat result per turn, see
:func:`zflow.endpoint.chat`), ``answer`` (the raw last reply), ``tokens_generated``,
``finish_reason`` and ``latency_s`` (the last turn's; ``latency_total_s`` sums the turns).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from zflow.checks import check_problem

__all__ = ["Task", "SuiteError", "load_suite", "languages", "split_reasoning", "visible_text",
           "repetition_loop", "wrong_language", "truncated", "empty", "flags", "answer_task"]

TASK_KEYS = {"id", "category", "turns", "language", "rubric", "checks"}
THINK = ("<think>", "</think>")


class SuiteError(ValueError):
    pass


@dataclass(frozen=True)
class Task:
    id: str
    category: str
    turns: tuple[str, ...]
    language: str  # the expected answer language
    rubric: tuple[str, ...]
    checks: tuple[dict, ...] = ()
    suite: str = ""  # the suite's language


@lru_cache(maxsize=1)
def languages() -> frozenset[str]:
    """The language codes langdetect can detect (the valid ``language`` values)."""
    import langdetect

    return frozenset(p.name for p in (Path(langdetect.__file__).parent / "profiles").iterdir())


def _strings(value) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(s, str) and s.strip() for s in value)


def _task_problem(raw) -> tuple[str, str] | None:
    """(key, problem) for an invalid task mapping; None when it is valid."""
    if not isinstance(raw, dict):
        return "task", "must be a mapping"
    for key in ("id", "category", "turns", "language", "rubric"):
        if key not in raw:
            return key, "missing"
    if unknown := sorted(set(raw) - TASK_KEYS):
        return unknown[0], f"unknown key (keys: {', '.join(sorted(TASK_KEYS))})"
    if not (isinstance(raw["id"], str) and re.fullmatch(r"[a-z0-9_]+", raw["id"])):
        return "id", "must be lower-case letters, digits and '_'"
    if not (isinstance(raw["category"], str) and raw["category"].strip()):
        return "category", "must be a non-empty string"
    if raw["language"] not in languages():
        return "language", f"{raw['language']!r} is not a language code langdetect knows"
    for key in ("turns", "rubric"):
        if not _strings(raw[key]):
            return key, "must be a non-empty list of non-empty strings"
    checks = raw.get("checks", [])
    if not isinstance(checks, list):
        return "checks", "must be a list"
    for i, check in enumerate(checks):
        if problem := check_problem(check):
            return f"checks[{i}].{problem[0]}", problem[1]
    return None


def load_suite(path) -> list[Task]:
    """The tasks of a suite file; an invalid one raises SuiteError naming file, task and key."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise SuiteError(f"{path}: cannot read the suite ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), list) or not doc["tasks"]:
        raise SuiteError(f"{path}: must be a mapping with a non-empty 'tasks' list")
    if doc.get("language") not in languages():
        raise SuiteError(f"{path}: language: {doc.get('language')!r} is not a language code "
                         "langdetect knows")
    tasks, seen = [], {}
    for i, raw in enumerate(doc["tasks"], 1):
        where = f"{path}: task {i}" + (f" (id {raw['id']!r})" if isinstance(raw, dict)
                                       and "id" in raw else "")
        if problem := _task_problem(raw):
            raise SuiteError(f"{where}: {problem[0]}: {problem[1]}")
        if raw["id"] in seen:
            raise SuiteError(f"{where}: id: duplicate of task {seen[raw['id']]}")
        seen[raw["id"]] = i
        tasks.append(Task(raw["id"], raw["category"], tuple(raw["turns"]), raw["language"],
                          tuple(raw["rubric"]), tuple(raw.get("checks", [])), doc["language"]))
    return tasks


# ---- the visible answer ------------------------------------------------------------------

def split_reasoning(answer: str, reasoning_tags=THINK) -> tuple[str, str, bool]:
    """(visible text, reasoning text, True when a reasoning block was left unclosed).

    Every ``open…close`` block is reasoning; an ``open`` without its ``close`` (the answer was
    truncated) makes the rest reasoning; a ``close`` before any ``open`` (the chat template
    opened the block in the prompt) makes everything before it reasoning."""
    open_tag, close_tag = reasoning_tags
    visible, reasoning, rest = [], [], answer or ""
    first_close, first_open = rest.find(close_tag), rest.find(open_tag)
    if first_close != -1 and (first_open == -1 or first_close < first_open):
        reasoning.append(rest[:first_close])
        rest = rest[first_close + len(close_tag):]
    while (start := rest.find(open_tag)) != -1:
        visible.append(rest[:start])
        end = rest.find(close_tag, start + len(open_tag))
        if end == -1:
            reasoning.append(rest[start + len(open_tag):])
            return "".join(visible).strip(), "\n".join(reasoning).strip(), True
        reasoning.append(rest[start + len(open_tag):end])
        rest = rest[end + len(close_tag):]
    visible.append(rest)
    return "".join(visible).strip(), "\n".join(reasoning).strip(), False


def visible_text(answer: str, reasoning_tags=THINK) -> str:
    """The answer without its reasoning blocks: what is flagged and scored."""
    return split_reasoning(answer, reasoning_tags)[0]


# ---- flags -------------------------------------------------------------------------------

_MARKER = re.compile(r"^\s*(?:[-*•>]|\d+[.)])\s+")
_RULE_LINE = re.compile(r"^[\s|:\-=*_#~+.]*$")  # markdown rules and table separators
_TOKEN = re.compile(r"\w+|[^\w\s]")


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """(lower-cased token, start, end) outside list markers and markdown rule lines."""
    out, offset = [], 0
    for line in text.splitlines(keepends=True):
        if not _RULE_LINE.match(line):
            skip = m.end() if (m := _MARKER.match(line)) else 0
            out += [(t.group().lower(), offset + t.start(), offset + t.end())
                    for t in _TOKEN.finditer(line, skip)]
        offset += len(line)
    return out


def _longest_tandem(tokens: list, threshold: int, max_period: int = 400):
    """(region length, period, start) of the longest run of one unit repeated back to back at
    least ``threshold`` times; None when there is none."""
    words = [t[0] for t in tokens]
    best = None
    for p in range(1, min(max_period, len(words) // threshold) + 1):
        run = 0
        for i, same in enumerate(a == b for a, b in zip(words, words[p:])):
            run = run + 1 if same else 0
            if (run + p) // p >= threshold and (best is None or run + p > best[0]):
                best = (run + p, p, i - run + 1)
    return best


def repetition_loop(text: str, n: int = 8, threshold: int = 4,
                    line_threshold: int = 6, line_words: int = 3) -> tuple[bool, dict | None]:
    """(flag, evidence) for a degenerate repetition loop.

    Flagged: a unit of tokens (words and punctuation marks) repeated back to back at least
    ``threshold`` times over at least ``n`` tokens (a paragraph, a sentence, ``))))``); or one
    line of at least ``line_words`` words, list markers aside, appearing ``line_threshold``
    times anywhere. Evidence: ``{"kind": "span"|"line", "span": text, "count": repeats}``."""
    tokens = _tokens(text or "")
    tandem = _longest_tandem(tokens, threshold)
    if tandem and tandem[0] >= n:
        length, period, start = tandem
        unit = text[tokens[start][1]:tokens[start + period - 1][2]]
        return True, {"kind": "span", "span": unit[:300], "count": length // period}
    lines = Counter(" ".join(_TOKEN.findall(_MARKER.sub("", ln).lower()))
                    for ln in (text or "").splitlines())
    for line, count in lines.most_common():
        if count < line_threshold:
            break
        if len(re.findall(r"\w+", line)) >= line_words:
            return True, {"kind": "line", "span": line[:300], "count": count}
    return False, None


_FENCED = re.compile(r"```.*?(?:```|\Z)", re.S)


def wrong_language(text: str, expected: str, min_words: int = 5) -> tuple[bool, dict]:
    """(flag, {"detected", "probability"}): langdetect (seed 0) on the text outside code
    blocks. Texts under ``min_words`` words are undetermined (detected None), never flagged."""
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    prose = _FENCED.sub(" ", text or "")
    if len(re.findall(r"[^\W\d_]{2,}", prose)) < min_words:
        return False, {"detected": None, "probability": None}
    DetectorFactory.seed = 0
    try:
        best = detect_langs(prose)[0]
    except LangDetectException:
        return False, {"detected": None, "probability": None}
    return best.lang != expected, {"detected": best.lang, "probability": round(best.prob, 3)}


def truncated(tokens_generated: int | None, max_new_tokens: int | None) -> bool:
    """True when generation used the whole token budget."""
    return tokens_generated is not None and bool(max_new_tokens) and \
        tokens_generated >= max_new_tokens


def empty(text: str) -> bool:
    """True when nothing but whitespace is left."""
    return not (text or "").strip()


def flags(answer_record: dict, task: Task, decoding: dict) -> dict:
    """The flags of one answer record (see the module docstring); ``decoding`` gives
    ``max_new_tokens`` and optionally ``reasoning_tags``."""
    tags = tuple(decoding.get("reasoning_tags", THINK))
    visible, _, unclosed = split_reasoning(answer_record.get("answer") or "", tags)
    loop, loop_evidence = repetition_loop(visible)
    wrong, lang = wrong_language(visible, task.language)
    return {
        "empty": empty(visible),
        "truncated": answer_record.get("finish_reason") == "length" or truncated(
            answer_record.get("tokens_generated"), decoding.get("max_new_tokens")),
        "repetition_loop": loop,
        "loop_evidence": loop_evidence,
        "wrong_language": wrong,
        "detected_language": lang["detected"],
        "unclosed_reasoning": unclosed,
    }


def answer_task(task: Task, send, system: str | None = None, reasoning_tags=THINK) -> dict:
    """Play the task's turns through ``send(messages) -> chat result`` and return the answer
    record; earlier replies go back into the conversation without their reasoning."""
    messages = [{"role": "system", "content": system}] if system else []
    replies = []
    for turn in task.turns:
        messages.append({"role": "user", "content": turn})
        reply = send(list(messages))
        replies.append(reply)
        messages.append({"role": "assistant",
                         "content": visible_text(reply["text"], reasoning_tags)})
    last = replies[-1]
    return {"task": task.id, "language": task.suite, "expected_language": task.language,
            "turns": list(task.turns), "replies": replies, "answer": last["text"],
            "tokens_generated": last.get("tokens_generated"),
            "finish_reason": last.get("finish_reason"), "latency_s": last.get("latency_s"),
            "latency_total_s": round(sum(r.get("latency_s") or 0 for r in replies), 3)}
