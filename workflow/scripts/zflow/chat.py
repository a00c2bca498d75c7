"""Chat, preference and prompt datasets for post-training: read, check, normalise.

Users' files come in the shapes of the field: a ``messages`` list (TRL's conversational format),
the seed's OpenItalianData ``conversation`` field (Axolotl ``field_messages: conversation``),
ShareGPT ``conversations`` (from/value), preference rows (``prompt``/``chosen``/``rejected`` in
every TRL preference format, the prompt explicit or implicit: see ``preference``), and
GRPO prompt rows (``prompt``, or DeepScaleR's ``problem``, plus the columns the rewards of
zflow.rewards read: see ``PROMPT_COLUMNS``).
Every row is checked before any training starts; a bad row is reported as ``<file> row <n>:``.

Normalised rows have ``messages`` (role/content, plus ``tool_calls`` with JSON-string arguments and
``name`` on tool turns) and ``tools`` as one JSON string, so rows with different tool schemas fit in
one Arrow table without null-filled keys leaking into the rendered prompt.
"""

from __future__ import annotations

import json
from pathlib import Path

ROLES = ("system", "user", "assistant", "tool")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                  "assistant": "assistant", "tool": "tool", "function_response": "tool",
                  "observation": "tool"}
FORMATS = ("auto", "messages", "conversation", "sharegpt", "preference", "prompt")
# GRPO prompt rows: the columns the rewards read (zflow.rewards), each None where a row has none;
# other columns are dropped. ``problem`` is taken for ``prompt`` (DeepScaleR's rows).
PROMPT_COLUMNS = ("answer", "reasoning", "tests", "choice_answer", "instruction_id_list",
                  "instruction_kwargs", "tools", "expected_call")
PROMPT_FIELDS = ("prompt", "problem")
CHOICE_LETTERS = "ABCDEFGHIJ"
SUFFIXES = (".jsonl", ".json", ".parquet")


class DataError(ValueError):
    pass


def data_files(path) -> list[Path]:
    """The data files of a dataset entry: one file, or every json/jsonl/parquet file in a folder."""
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in SUFFIXES
                      and ".cache" not in f.parts)
    raise DataError(f"{path}: no such file or directory")


def read_rows(path) -> list[dict]:
    """Rows of one json/jsonl/parquet file; a syntax error names the file and line. A ``.json``
    file is JSON lines or one JSON array of rows (DeepScaleR's ``deepscaler.json``)."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    from zflow.inputs import InputError, read_text

    try:  # a byte-order mark is not part of the JSON; a byte that is not UTF-8 is named
        text = read_text(path, "JSON lines")
    except InputError as e:
        raise DataError(str(e)) from None
    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e})") from None
    rows = []
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataError(f"{path} line {i + 1}: not valid JSON ({e})") from None
    return rows


def detect(row: dict) -> str:
    if "chosen" not in row and "rejected" not in row and {"completion", "label"} <= set(row):
        return "unpaired"  # TRL's unpaired preference (KTO): no training here takes it
    for fmt, key in (("preference", "chosen"), ("preference", "rejected"), ("messages", "messages"),
                     ("conversation", "conversation"), ("sharegpt", "conversations"),
                     *(("prompt", k) for k in PROMPT_FIELDS)):
        if key in row:
            return fmt
    return "unknown"


def _maybe_json(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _message(m, where: str, i: int) -> dict:
    if not isinstance(m, dict):
        raise DataError(f"{where}: message {i} is not an object")
    if "from" in m and "role" not in m:  # ShareGPT turn
        role = SHAREGPT_ROLES.get(m["from"])
        if role is None:
            raise DataError(f"{where}: message {i} has unknown ShareGPT role '{m['from']}' "
                            f"(known: {', '.join(sorted(SHAREGPT_ROLES))})")
        m = {"role": role, "content": m.get("value")}
    role = m.get("role")
    if role not in ROLES:
        raise DataError(f"{where}: message {i} has unknown role {role!r} (known: {', '.join(ROLES)})")
    content = m.get("content")
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise DataError(f"{where}: message {i} ({role}) content is not a string")
    out = {"role": role, "content": content}
    calls = _maybe_json(m.get("tool_calls"))
    if calls:
        if role != "assistant":
            raise DataError(f"{where}: message {i} ({role}) has tool_calls; only assistant turns may")
        out["tool_calls"] = []
        for call in calls:
            fn = call.get("function", call) if isinstance(call, dict) else None
            if not isinstance(fn, dict) or not fn.get("name"):
                raise DataError(f"{where}: message {i} has a tool call without a function name")
            args = fn.get("arguments", {})
            args = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
            out["tool_calls"].append({"type": "function",
                                      "function": {"name": fn["name"], "arguments": args}})
    if role == "tool" and m.get("name"):
        out["name"] = m["name"]
    return out


def _messages(raw, where: str) -> list[dict]:
    raw = _maybe_json(raw)
    if not isinstance(raw, list) or not raw:
        raise DataError(f"{where}: expected a non-empty list of messages")
    return [_message(m, where, i) for i, m in enumerate(raw)]


def _tools(raw, where: str) -> list[dict]:
    raw = _maybe_json(raw) or []
    if not isinstance(raw, list):
        raise DataError(f"{where}: 'tools' is not a list of function definitions")
    names = []
    for t in raw:
        fn = t.get("function", t) if isinstance(t, dict) else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise DataError(f"{where}: a tool definition has no function name")
        names.append(fn["name"])
    return raw


def conversation(row: dict, fmt: str, where: str) -> dict:
    """One chat row → {"messages": [...], "tools": "<json>"}, checked."""
    key = {"messages": "messages", "conversation": "conversation", "sharegpt": "conversations"}[fmt]
    if key not in row:
        raise DataError(f"{where}: no '{key}' field (format '{fmt}'; fields: {', '.join(row)})")
    msgs = _messages(row[key], where)
    tools = _tools(row.get("tools"), where)
    names = {(t.get("function", t))["name"] for t in tools}
    if not any(m["role"] == "assistant" and (m["content"].strip() or m.get("tool_calls"))
               for m in msgs):
        raise DataError(f"{where}: no assistant turn (nothing to train on)")
    for i, m in enumerate(msgs):
        for call in m.get("tool_calls", []):
            if call["function"]["name"] not in names:
                raise DataError(f"{where}: message {i} calls '{call['function']['name']}', "
                                f"which is not among the row's tools ({', '.join(sorted(names)) or 'none'})")
    return {"messages": msgs, "tools": json.dumps(tools, ensure_ascii=False)}


def _blank(value) -> bool:
    return value is None or (isinstance(value, (str, list)) and not (
        value.strip() if isinstance(value, str) else value))


def _maybe_messages(value):
    """A message list stored as a JSON string, parsed; any other value as it is (a text answer
    that happens to be JSON stays text)."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        parsed = _maybe_json(value)
        if isinstance(parsed, list) and parsed and all(
                isinstance(m, dict) and ("role" in m or "from" in m) for m in parsed):
            return parsed
    return value


def _text_split(chosen: str, rejected: str) -> tuple[str, str, str]:
    """(prompt, chosen answer, rejected answer) of a standard implicit-prompt row: the prompt is
    the two texts' common prefix (TRL's extract_prompt), whitespace at the cut dropped."""
    n = 0
    for a, b in zip(chosen, rejected):
        if a != b:
            break
        n += 1
    return chosen[:n].rstrip(), chosen[n:].strip(), rejected[n:].strip()


def _common_prefix(a: list[dict], b: list[dict]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def preference(row: dict, where: str) -> dict:
    """One preference row → {"prompt", "chosen", "rejected"} message lists, checked.

    Every preference format of TRL's dataset-formats guide: standard (strings) or conversational
    (message lists), each with an explicit ``prompt`` or an implicit one. Implicit: ``chosen`` and
    ``rejected`` each hold the whole text or conversation; the prompt is their common prefix
    (conversational: the messages both start with; standard: the common text, cut where they
    differ) and the answers what follows it (allenai/Dolci-Instruct-DPO's rows). A ``prompt``
    string next to whole conversations is ignored, as TRL's maybe_extract_prompt does; a
    ``prompt`` message list that both conversations repeat is removed from their start. A
    string prompt is one user turn, a string answer one assistant turn. Other columns (ids,
    model names, preference types) are dropped. Refused: unpaired rows (prompt / completion /
    label: KTO's format), empty fields, identical chosen and rejected, implicit rows with no
    common prompt or that differ before the assistant's answer, a prompt ending with an
    assistant turn, an answer not ending with a non-empty assistant turn.
    """
    if "chosen" not in row and "rejected" not in row and "completion" in row and "label" in row:
        raise DataError(f"{where}: an unpaired preference row (prompt/completion/label, KTO's "
                        f"format); DPO needs a chosen and a rejected answer per prompt")
    missing = [k for k in ("chosen", "rejected") if _blank(row.get(k))]
    if missing:
        raise DataError(f"{where}: missing {', '.join(missing)} (a preference row needs a non-empty "
                        f"chosen and rejected, with a prompt or with the prompt inside both)")
    chosen, rejected = _maybe_messages(row["chosen"]), _maybe_messages(row["rejected"])
    prompt = _maybe_messages(row.get("prompt"))
    if isinstance(chosen, str) != isinstance(rejected, str):
        raise DataError(f"{where}: 'chosen' and 'rejected' are not both texts or both message lists")
    if "prompt" in row and prompt is not None and _blank(prompt):
        raise DataError(f"{where}: 'prompt' is empty")
    if isinstance(chosen, str):
        if prompt is None:  # standard, implicit prompt
            prompt, chosen, rejected = _text_split(chosen, rejected)
            if chosen == rejected == "":
                raise DataError(f"{where}: 'chosen' and 'rejected' are identical")
            if not prompt:
                raise DataError(f"{where}: 'chosen' and 'rejected' have no common prompt (implicit "
                                f"prompt: both must start with it)")
        out = {"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
               "rejected": [{"role": "assistant", "content": rejected}]}
    else:
        chosen = _messages(chosen, f"{where} (chosen)")
        rejected = _messages(rejected, f"{where} (rejected)")
        whole = chosen[0]["role"] != "assistant" or rejected[0]["role"] != "assistant"
        if prompt is None or (isinstance(prompt, str) and whole):  # conversational, implicit
            n = _common_prefix(chosen, rejected)
            if chosen == rejected:
                raise DataError(f"{where}: 'chosen' and 'rejected' are identical")
            if n == 0:
                raise DataError(f"{where}: 'chosen' and 'rejected' have no common prompt (implicit "
                                f"prompt: both conversations must start with the same messages)")
            prompt, chosen, rejected = chosen[:n], chosen[n:], rejected[n:]
            for key, msgs in (("chosen", chosen), ("rejected", rejected)):
                if not msgs:
                    raise DataError(f"{where}: '{key}' has no answer after the common prompt")
                if msgs[0]["role"] != "assistant":
                    raise DataError(f"{where}: 'chosen' and 'rejected' differ at message {n} "
                                    f"({key}: {msgs[0]['role']}), before the assistant's answer "
                                    f"(implicit prompt: only the answer may differ)")
        elif isinstance(prompt, list):
            p = _messages(prompt, f"{where} (prompt)")
            if all(len(m) > len(p) and m[:len(p)] == p for m in (chosen, rejected)):
                chosen, rejected = chosen[len(p):], rejected[len(p):]  # prompt repeated in both
        out = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    if isinstance(out["prompt"], str):
        out["prompt"] = [{"role": "user", "content": out["prompt"]}]
    out["prompt"] = _messages(out["prompt"], f"{where} (prompt)")
    for key in ("chosen", "rejected"):
        out[key] = _messages(out[key], f"{where} ({key})")
        if out[key][-1]["role"] != "assistant" or not out[key][-1]["content"].strip():
            raise DataError(f"{where}: '{key}' does not end with a non-empty assistant turn")
    if out["prompt"][-1]["role"] == "assistant":
        raise DataError(f"{where}: the prompt ends with an assistant turn")
    if out["chosen"] == out["rejected"]:
        raise DataError(f"{where}: 'chosen' and 'rejected' are identical")
    return out


def _string_list(value, where: str, key: str) -> list[str]:
    value = _maybe_json(value)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip()
                                                           for v in value):
        raise DataError(f"{where}: '{key}' is not a non-empty string or list of strings")
    return value


def _choice(value, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DataError(f"{where}: 'choice_answer' is not a letter or a 0-based index")
    if isinstance(value, int):
        if not 0 <= value < len(CHOICE_LETTERS):
            raise DataError(f"{where}: 'choice_answer' index {value} is out of range")
        return CHOICE_LETTERS[value]
    letter = value.strip().strip("()").upper()
    if len(letter) != 1 or letter not in CHOICE_LETTERS:
        raise DataError(f"{where}: 'choice_answer' {value!r} is not a letter A-J")
    return letter


def _instructions(ids, args, where: str) -> tuple[list[str], str]:
    ids = _string_list(ids, where, "instruction_id_list")
    args = _maybe_json(args)
    if args is None:
        args = [{}] * len(ids)
    if not isinstance(args, list) or len(args) != len(ids) or not all(
            a is None or isinstance(a, dict) for a in args):
        raise DataError(f"{where}: 'instruction_kwargs' is not a list of {len(ids)} objects, one per "
                        f"instruction of 'instruction_id_list'")
    return ids, json.dumps([a or {} for a in args], ensure_ascii=False)


def _expected_call(value, tools: list[dict], where: str) -> str:
    call = _maybe_json(value)
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise DataError(f"{where}: 'expected_call' is not an object with a function 'name'")
    names = {(t.get("function", t))["name"] for t in tools}
    if call["name"] not in names:
        raise DataError(f"{where}: 'expected_call' names '{call['name']}', which is not among the "
                        f"row's tools ({', '.join(sorted(names)) or 'none'})")
    args = _maybe_json(call.get("arguments", {}))
    if not isinstance(args, dict):
        raise DataError(f"{where}: 'expected_call' arguments are not an object")
    return json.dumps({"name": call["name"], "arguments": args}, ensure_ascii=False)


def prompt(row: dict, where: str) -> dict:
    """One GRPO row → {"prompt": [...messages], <PROMPT_COLUMNS>}, checked.

    ``prompt`` is a string (one user turn) or a message list that does not end with an assistant
    turn. The reward columns, each optional but at least one verifiable: ``answer`` (math: text or
    number), ``tests`` (code: statements run after the code), ``choice_answer`` (a letter or a
    0-based index), ``instruction_id_list`` with ``instruction_kwargs`` (IFEval), ``tools`` with
    ``expected_call`` ({name, arguments}); ``reasoning`` (bool) fixes the row's reasoning mode.
    ``tools``, ``expected_call`` and ``instruction_kwargs`` become JSON strings.
    """
    key = next((k for k in PROMPT_FIELDS if k in row), None)
    value = row.get(key) if key else None
    if value in (None, "", []):
        raise DataError(f"{where}: no 'prompt' or 'problem' (format 'prompt'; fields: "
                        f"{', '.join(row)})")
    msgs = _messages([{"role": "user", "content": value}] if isinstance(value, str) else value,
                     f"{where} ({key})")
    if msgs[-1]["role"] == "assistant":
        raise DataError(f"{where}: '{key}' ends with an assistant turn")
    out = {"prompt": msgs, **dict.fromkeys(PROMPT_COLUMNS)}
    if row.get("answer") is not None:
        answer = row["answer"]
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)) or not str(answer).strip():
            raise DataError(f"{where}: 'answer' is not a non-empty text or number")
        out["answer"] = str(answer)
    if row.get("reasoning") is not None:
        if not isinstance(row["reasoning"], bool):
            raise DataError(f"{where}: 'reasoning' is not true or false")
        out["reasoning"] = row["reasoning"]
    if row.get("tests") is not None:
        out["tests"] = _string_list(row["tests"], where, "tests")
    if row.get("choice_answer") is not None:
        out["choice_answer"] = _choice(row["choice_answer"], where)
    if row.get("instruction_id_list") is not None:
        out["instruction_id_list"], out["instruction_kwargs"] = _instructions(
            row["instruction_id_list"], row.get("instruction_kwargs"), where)
    elif row.get("instruction_kwargs") is not None:
        raise DataError(f"{where}: 'instruction_kwargs' without 'instruction_id_list'")
    tools = _tools(row.get("tools"), where)
    if tools:
        out["tools"] = json.dumps(tools, ensure_ascii=False)
    if row.get("expected_call") is not None:
        out["expected_call"] = _expected_call(row["expected_call"], tools, where)
    if all(out[k] is None for k in ("answer", "tests", "choice_answer", "instruction_id_list",
                                    "expected_call")):
        raise DataError(f"{where}: nothing to verify (none of answer, tests, choice_answer, "
                        f"instruction_id_list, expected_call)")
    return out


def load(path, fmt: str = "auto", kind: str = "sft", label: str | None = None) -> list[dict]:
    """All rows of a dataset entry (file or folder), normalised for ``kind`` ('sft', 'dpo' or
    'grpo')."""
    out = []
    files = data_files(path)
    if not files:
        raise DataError(f"{label or path}: '{path}' holds no .jsonl/.json/.parquet file")
    for f in files:
        rows = read_rows(f)
        if not rows:
            raise DataError(f"{f}: no rows")
        for i, row in enumerate(rows):
            where = f"{f} row {i}"
            if not isinstance(row, dict):
                raise DataError(f"{where}: not an object")
            rfmt = detect(row) if fmt == "auto" else fmt
            if kind == "grpo":
                if rfmt != "prompt":
                    raise DataError(f"{where}: GRPO needs prompt rows ('prompt' and the reward "
                                    f"columns; fields: {', '.join(row)})")
                out.append(prompt(row, where))
            elif kind == "dpo":
                if rfmt not in ("preference", "unpaired"):  # unpaired: refused naming KTO
                    raise DataError(f"{where}: DPO needs prompt/chosen/rejected rows "
                                    f"(fields: {', '.join(row)})")
                out.append(preference(row, where))
            else:
                if rfmt in ("preference", "prompt", "unpaired"):
                    raise DataError(f"{where}: a {rfmt} row in an SFT dataset")
                if rfmt == "unknown":
                    raise DataError(f"{where}: neither 'messages', 'conversation' nor "
                                    f"'conversations' (fields: {', '.join(row)})")
                out.append(conversation(row, rfmt, where))
    return out
