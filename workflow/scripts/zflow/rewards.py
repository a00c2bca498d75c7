"""Reward functions for GRPO (TRL's ``GRPOTrainer``), after the Domyn-Small recipe (§4.2-4.4).

Each factory takes its settings and returns a reward function with TRL 1.16's calling convention:
``f(prompts, completions, completion_ids=..., **columns) -> list[float | None]``. TRL passes every
dataset column except ``prompt`` as a keyword holding one value per completion, plus
``completion_ids`` (token ids of each completion), ``trainer_state``, ``log_extra`` and
``log_metric``; unknown keywords are ignored here. A completion is a string, or a conversation
(a list of ``{"role", "content"}`` messages) whose last message is the answer. Where a reasoning
closer (``</think>``) is present, the answer is the text after its last occurrence.

An item whose reference column is missing or None gets ``None``: TRL leaves that reward out for
that item, so one dataset can mix environments, each reading its own column by default; ``format``
and ``length`` score every item. Weights are TRL's: ``GRPOConfig(reward_weights=[...])`` weights
and sums the rewards (``build_rewards`` makes functions and weights from a config list).

Columns: ``answer`` (math: gold answer), ``reasoning`` (format: bool, default True), ``tests``
(code: statements such as asserts, run after the code), ``choice_answer`` (choice: gold letter or
0-based index), ``instruction_id_list`` and ``instruction_kwargs`` (ifeval: IFEval's ``kwargs``
renamed, as ``kwargs`` cannot be a keyword next to ``**kwargs``), ``tools`` and ``expected_call``
(tool: lists/dicts or JSON strings; JSON strings keep Arrow from null-filling schema keys).
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from zflow import sandbox

RewardFunc = Callable[..., list]

REASONING_CLOSER = "</think>"
BOXED = re.compile(r"\\boxed\s*\{")


# --- completions -------------------------------------------------------------------------------

def _content(message) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content


REASONING_FIELDS = ("reasoning_content", "thinking")


def completion_text(completion, closer: str = REASONING_CLOSER) -> str:
    """The text of a completion: the string itself, or the last message's content.

    A response parsed by the tokenizer's response schema (TRL does so when there is one) carries
    its reasoning in ``reasoning_content`` or ``thinking``; it comes back as ``reasoning closer
    content``, the text the model wrote.
    """
    if isinstance(completion, str):
        return completion
    if not completion:
        return ""
    message = completion[-1]
    reasoning = next((message[k] for k in REASONING_FIELDS if message.get(k)), None)
    return f"{reasoning}{closer}{_content(message)}" if reasoning else _content(message)


def answer_part(text: str, closer: str = REASONING_CLOSER) -> str:
    """The text after the last reasoning closer, or all of it when there is none."""
    return text.rpartition(closer)[2] if closer and closer in text else text


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (braces balanced), or None."""
    starts = [m.end() for m in BOXED.finditer(text)]
    if not starts:
        return None
    depth, start = 1, starts[-1]
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    return None


def _column(kwargs: Mapping, name: str, n: int) -> list:
    values = kwargs.get(name)
    return [None] * n if values is None else list(values)


def _named(fn: RewardFunc, name: str) -> RewardFunc:
    """Name a reward for TRL's logs (``rewards/<name>/mean``)."""
    fn.__name__ = fn.__qualname__ = name
    return fn


# --- math --------------------------------------------------------------------------------------

def _sympy_parse(text: str, configs, timeout_s: int | None) -> list:
    """math_verify's parse, or [] when it yields no sympy object (only a raw-string fallback)."""
    from math_verify import parse

    parsed = parse(text, extraction_config=configs, parsing_timeout=timeout_s, raise_on_error=True)
    return parsed if any(not isinstance(p, str) for p in parsed) else []


VERIFIER_ERROR = -1.0


def math_score(completion: str, gold: str, timeout_s: int | None = 5) -> float | None:
    """1.0 correct, 0.0 incorrect, VERIFIER_ERROR, or None when the gold answer does not parse.

    The prediction is the last ``\\boxed{...}``; no box, an unparsable box, a verifier exception or
    a timeout are all verifier errors (malformed output).
    """
    from math_verify import LatexExtractionConfig, parse, verify
    from math_verify.errors import TimeoutException

    gold_parsed = parse(str(gold), parsing_timeout=timeout_s)
    if not any(not isinstance(p, str) for p in gold_parsed):
        return None
    boxed = last_boxed(completion)
    if boxed is None:
        return VERIFIER_ERROR
    try:
        pred = _sympy_parse(f"\\boxed{{{boxed}}}", [LatexExtractionConfig()], timeout_s)
        if not pred:
            return VERIFIER_ERROR
        return 1.0 if verify(gold_parsed, pred, timeout_seconds=timeout_s, raise_on_error=True) else 0.0
    except (Exception, TimeoutException):
        return VERIFIER_ERROR


def math_reward(scale: float = 3.0, error: float = -0.8, timeout_s: int | None = 5,
                column: str = "answer", closer: str = REASONING_CLOSER) -> RewardFunc:
    """Correctness by math_verify, times ``scale``: 1 correct, 0 incorrect, ``error`` malformed.

    math_verify's timeouts use SIGALRM, so with ``timeout_s`` set this runs on the main thread only
    (TRL calls synchronous rewards there); ``timeout_s=None`` runs unguarded anywhere.
    """
    if timeout_s is not None and (not isinstance(timeout_s, int) or timeout_s < 1):
        raise ValueError("math reward: timeout_s must be a whole number of seconds >= 1, or None")

    def reward(prompts, completions, **kwargs):
        if timeout_s is not None and threading.current_thread() is not threading.main_thread():
            raise RuntimeError("math reward: math_verify's timeout needs the main thread "
                               "(or set timeout_s: null)")
        out = []
        for completion, gold in zip(completions, _column(kwargs, column, len(completions))):
            score = None if gold is None else math_score(
                answer_part(completion_text(completion, closer), closer), gold, timeout_s)
            out.append(None if score is None else scale * (error if score == VERIFIER_ERROR else score))
        return out

    return _named(reward, "math")


# --- format ------------------------------------------------------------------------------------

def format_score(text: str, reasoning: bool, closer: str = REASONING_CLOSER) -> float:
    """Mean of the checks met. Reasoning on: one closer, one box after it. Off: no closer, one box."""
    closers = text.count(closer)
    if reasoning:
        after = text.rpartition(closer)[2] if closers else ""
        checks = [closers == 1, len(BOXED.findall(after)) == 1]
    else:
        checks = [closers == 0, len(BOXED.findall(text)) == 1]
    return sum(checks) / len(checks)


def format_reward(closer: str = REASONING_CLOSER, column: str = "reasoning",
                  default_reasoning: bool = True) -> RewardFunc:
    """Format checks in [0, 1]; reasoning mode per item from ``column`` (missing: the default)."""

    def reward(prompts, completions, **kwargs):
        modes = _column(kwargs, column, len(completions))
        return [format_score(completion_text(c, closer), default_reasoning if m is None else bool(m), closer)
                for c, m in zip(completions, modes)]

    return _named(reward, "format")


# --- length ------------------------------------------------------------------------------------

def length_penalty(length: float, max_tokens: int, start: int = 0, penalty: float = 0.25) -> float:
    """0 up to ``start`` tokens, then linear down to ``-penalty`` at ``max_tokens`` and beyond."""
    if length <= start:
        return 0.0
    return -penalty * min(1.0, (length - start) / (max_tokens - start))


def length_reward(max_tokens: int, start: int = 0, penalty: float = 0.25,
                  chars_per_token: float = 4.0) -> RewardFunc:
    """Soft length penalty; ``max_tokens`` is the response cap (max completion length).

    Length is ``len(completion_ids[i])`` when TRL passes token ids (it always does), else
    ``ceil(characters / chars_per_token)`` of the completion text, a tokenizer-free estimate.
    """
    if not 0 <= start < max_tokens:
        raise ValueError(f"length reward: need 0 <= start < max_tokens, got {start}, {max_tokens}")

    def reward(prompts, completions, completion_ids=None, **kwargs):
        if completion_ids is not None:
            lengths = [len(ids) for ids in completion_ids]
        else:
            lengths = [math.ceil(len(completion_text(c)) / chars_per_token) for c in completions]
        return [length_penalty(n, max_tokens, start, penalty) for n in lengths]

    return _named(reward, "length")


# --- code --------------------------------------------------------------------------------------

FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_code(text: str) -> str:
    """The last ```python (or untagged) fenced block, or the whole text when there is none."""
    blocks = FENCE.findall(text)
    return blocks[-1] if blocks else text


def code_reward(timeout_s: float = 10.0, memory_mb: int = 1024, cpu_s: int | None = None,
                fsize_mb: int = 16, disk_mb: int = 64, max_files: int = 10_000, workers: int = 4,
                column: str = "tests", closer: str = REASONING_CLOSER,
                allow_process_sandbox: bool = False) -> RewardFunc:
    """1.0 when the completion's code followed by the item's tests exits cleanly in the sandbox.

    The sandbox is bubblewrap's (:mod:`zflow.sandbox`, ``docs/sandbox.md``); where bwrap cannot
    run the factory refuses (:class:`zflow.sandbox.SandboxUnavailable`, a ValueError) unless
    ``allow_process_sandbox`` accepts the weaker process sandbox (no file-system isolation).
    """
    isolation = "auto" if allow_process_sandbox else "bwrap"
    ok, why = sandbox.bwrap_status()
    if not ok and allow_process_sandbox:
        ok, why_not = sandbox.process_status()
        if not ok:
            raise sandbox.SandboxUnavailable(f"code reward: no sandbox runs here: {why}; {why_not}")
    elif not ok:
        raise sandbox.SandboxUnavailable(
            f"code reward: its sandbox needs bubblewrap, which cannot run here: {why}. Install "
            "it (Debian: apt-get install bubblewrap), or accept the weaker process sandbox (no "
            "file-system isolation: the code can read and write what the trainer's user can) "
            "with `allow_process_sandbox: true` in this reward's settings, e.g. "
            "{name: code, allow_process_sandbox: true}")

    def score(completion, tests) -> float | None:
        if tests is None:
            return None
        tests = "\n".join(tests) if isinstance(tests, (list, tuple)) else str(tests)
        code = extract_code(answer_part(completion_text(completion, closer), closer))
        result = sandbox.run_python(code, tests, timeout_s=timeout_s, memory_mb=memory_mb,
                                    cpu_s=cpu_s, fsize_mb=fsize_mb, disk_mb=disk_mb,
                                    max_files=max_files, isolation=isolation)
        return 1.0 if result.passed else 0.0

    def reward(prompts, completions, **kwargs):
        tests = _column(kwargs, column, len(completions))
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            return list(pool.map(score, completions, tests))

    return _named(reward, "code")


# --- multiple choice ---------------------------------------------------------------------------

def extract_choice(text: str, letters: str = "ABCDEFGHIJ") -> str | None:
    """The chosen letter: last ``\\boxed{X}``, else last "answer: X" / "answer is (X)", else a lone
    final letter (``X``, ``(X)``, ``X.``). Letters are upper case only ("a" is also a word)."""
    ls = re.escape(letters)
    boxed = last_boxed(text)
    if boxed is not None:
        m = re.fullmatch(rf"\s*(?:\\text\{{)?\s*\(?([{ls}])\)?\s*\}}?\s*", boxed)
        return m.group(1) if m else None
    found = re.findall(rf"answer(?:\s+is)?\s*[:：]?\s*\*{{0,2}}\(?([{ls}])\b", text, re.IGNORECASE)
    found = [f for f in found if f in letters]
    if found:
        return found[-1]
    m = re.search(rf"(?:^|\s)\(?([{ls}])\)?\.?\s*$", text)
    return m.group(1) if m else None


def _gold_letter(gold, letters: str) -> str:
    if isinstance(gold, int):
        return letters[gold]
    return str(gold).strip().strip("()").upper()


def choice_reward(letters: str = "ABCDEFGHIJ", column: str = "choice_answer",
                  closer: str = REASONING_CLOSER) -> RewardFunc:
    """1.0 when the extracted letter equals the gold letter (or 0-based index), else 0.0."""

    def reward(prompts, completions, **kwargs):
        out = []
        for completion, gold in zip(completions, _column(kwargs, column, len(completions))):
            if gold is None:
                out.append(None)
                continue
            chosen = extract_choice(answer_part(completion_text(completion, closer), closer), letters)
            out.append(1.0 if chosen == _gold_letter(gold, letters) else 0.0)
        return out

    return _named(reward, "choice")


# --- instruction following (IFEval) ------------------------------------------------------------

def follows_instructions(response: str, instruction_ids: Sequence[str],
                         instruction_kwargs: Sequence[Mapping | None]) -> bool:
    """IFEval's strict check with lm-eval's instruction classes: every instruction is followed.

    None-valued arguments are dropped (Arrow fills a struct's missing keys with None).
    """
    from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_DICT

    if not response.strip():
        return False
    for instruction_id, args in zip(instruction_ids, instruction_kwargs, strict=True):
        instruction = INSTRUCTION_DICT[instruction_id](instruction_id)
        instruction.build_description(**{k: v for k, v in (args or {}).items() if v is not None})
        if not instruction.check_following(response):
            return False
    return True


def ifeval_reward(ids_column: str = "instruction_id_list", kwargs_column: str = "instruction_kwargs",
                  closer: str = REASONING_CLOSER) -> RewardFunc:
    """1.0 when all the item's IFEval instructions are followed (strict), else 0.0."""

    def reward(prompts, completions, **kwargs):
        n = len(completions)
        rows = zip(completions, _column(kwargs, ids_column, n), _column(kwargs, kwargs_column, n))
        out = []
        for completion, ids, args in rows:
            if ids is None:
                out.append(None)
                continue
            args = json.loads(args) if isinstance(args, str) else (args or [{}] * len(ids))
            response = answer_part(completion_text(completion, closer), closer)
            out.append(1.0 if follows_instructions(response, ids, args) else 0.0)
        return out

    return _named(reward, "ifeval")


# --- tool calls --------------------------------------------------------------------------------

TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def _json_objects(text: str) -> list[dict]:
    """Every JSON object that starts at a ``{`` in the text and decodes (nested ones skipped)."""
    decoder, found, end = json.JSONDecoder(), [], 0
    for m in re.finditer(r"\{", text):
        if m.start() < end:
            continue
        try:
            obj, end = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            found.append(obj)
    return found


def extract_tool_call(completion, closer: str = REASONING_CLOSER) -> dict | None:
    """The last tool call as ``{"name", "arguments"}`` (arguments decoded), or None.

    Sources in order: the last message's ``tool_calls`` (a parsed response), ``<tool_call>`` tags,
    then any JSON object with a ``name`` in the answer text.
    """
    if not isinstance(completion, str) and completion and completion[-1].get("tool_calls"):
        call = completion[-1]["tool_calls"][-1]
        call = call.get("function", call)
    else:
        text = answer_part(completion_text(completion, closer), closer)
        tagged = TOOL_CALL.findall(text)
        if tagged:
            try:
                call = json.loads(tagged[-1].strip())
            except json.JSONDecodeError:
                return None
        else:
            calls = [o for o in _json_objects(text) if "name" in o]
            call = calls[-1] if calls else None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return None
    try:
        arguments = _json(call.get("arguments", {}))
    except json.JSONDecodeError:
        return None
    return {"name": call["name"], "arguments": arguments} if isinstance(arguments, dict) else None


def _tool_schemas(tools) -> dict[str, dict]:
    """Tool name -> JSON schema of its parameters, from OpenAI-style specs (or bare functions)."""
    specs = (spec.get("function", spec) for spec in _json(tools))
    return {s["name"]: s.get("parameters") or {"type": "object"} for s in specs}


def tool_call_correct(call: dict | None, tools, expected) -> bool:
    """The call names an offered tool, its arguments validate, and it equals the expected call."""
    import jsonschema

    schemas = _tool_schemas(tools)
    if call is None or call["name"] not in schemas:
        return False
    if not jsonschema.validators.validator_for(schemas[call["name"]])(schemas[call["name"]]).is_valid(
            call["arguments"]):
        return False
    expected = _json(expected)
    return call["name"] == expected["name"] and call["arguments"] == _json(expected.get("arguments", {}))


def tool_reward(tools_column: str = "tools", expected_column: str = "expected_call",
                closer: str = REASONING_CLOSER) -> RewardFunc:
    """1.0 when the completion's tool call is offered, schema-valid and the expected one, else 0.0."""

    def reward(prompts, completions, **kwargs):
        n = len(completions)
        rows = zip(completions, _column(kwargs, tools_column, n), _column(kwargs, expected_column, n))
        return [None if expected is None or tools is None else
                float(tool_call_correct(extract_tool_call(c, closer), tools, expected))
                for c, tools, expected in rows]

    return _named(reward, "tool")


# --- dynamic sampling -------------------------------------------------------------------------
#
# A group (the ``group_size`` consecutive completions of one prompt, as TRL's RepeatSampler lays
# them out) whose rewards are all equal has zero advantage everywhere and teaches nothing. Wired in
# zflow.grpo: its GRPOTrainer subclass overrides ``_generate_and_score_completions(inputs)``, finds
# the scored batch's flat groups with ``zero_variance_groups`` and replaces them with groups of
# further generation batches, up to ``dynamic_sampling_batches``, as ``resample`` does on plain
# lists. An unscorable reward (None or NaN: every reward function left the item out) is ignored,
# as TRL's advantages ignore it.

def _groups(rewards: Sequence[float], group_size: int) -> list[Sequence[float]]:
    if group_size < 1 or len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size}")
    return [rewards[i:i + group_size] for i in range(0, len(rewards), group_size)]


def _scored(group) -> set:
    return {r for r in group if r is not None and not (isinstance(r, float) and math.isnan(r))}


def zero_variance_groups(rewards: Sequence[float | None], group_size: int) -> list[int]:
    """Indices of the groups whose scored rewards are all equal (or that have none scored)."""
    return [g for g, group in enumerate(_groups(rewards, group_size)) if len(_scored(group)) <= 1]


def keep_mask(rewards: Sequence[float], group_size: int) -> list[bool]:
    """Per completion: True where its group's rewards differ (the completion is worth training on)."""
    dropped = set(zero_variance_groups(rewards, group_size))
    return [i // group_size not in dropped for i in range(len(rewards))]


@dataclass
class Resampled:
    """Kept completions and rewards, batches drawn, and the (batch, group) pairs dropped."""

    items: list = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    batches: int = 0
    dropped: list[tuple[int, int]] = field(default_factory=list)

    def groups(self, group_size: int) -> int:
        return len(self.rewards) // group_size


def resample(generate_batch: Callable[[], tuple[Sequence, Sequence[float]]], group_size: int,
             groups_needed: int, max_batches: int) -> Resampled:
    """Draw ``(items, rewards)`` batches, keeping groups with reward variance, until
    ``groups_needed`` groups are kept (extra ones are cut) or ``max_batches`` batches are drawn;
    then fewer groups may come back, and the caller decides whether to train on them."""
    out = Resampled()
    while out.groups(group_size) < groups_needed and out.batches < max_batches:
        items, rewards = generate_batch()
        if len(items) != len(rewards):
            raise ValueError(f"batch has {len(items)} items but {len(rewards)} rewards")
        out.dropped += [(out.batches, g) for g in zero_variance_groups(rewards, group_size)]
        kept = [i for i, keep in enumerate(keep_mask(rewards, group_size)) if keep]
        out.items += [items[i] for i in kept]
        out.rewards += [rewards[i] for i in kept]
        out.batches += 1
    n = min(out.groups(group_size), groups_needed) * group_size
    out.items, out.rewards = out.items[:n], out.rewards[:n]
    return out


# --- registry ----------------------------------------------------------------------------------

REWARDS: dict[str, Callable[..., RewardFunc]] = {
    "math": math_reward,
    "format": format_reward,
    "length": length_reward,
    "code": code_reward,
    "choice": choice_reward,
    "ifeval": ifeval_reward,
    "tool": tool_reward,
}


def build_rewards(specs: Sequence[Mapping]) -> tuple[list[RewardFunc], list[float]]:
    """Reward functions and weights from ``[{"name": "math", "weight": 1.0, <settings>...}, ...]``.

    Pass them as ``GRPOTrainer(reward_funcs=funcs, args=GRPOConfig(reward_weights=weights))``.
    """
    funcs, weights = [], []
    for spec in specs:
        settings = dict(spec)
        name = settings.pop("name", None)
        weight = float(settings.pop("weight", 1.0))
        if name not in REWARDS:
            raise ValueError(f"unknown reward {name!r}; known: {', '.join(REWARDS)}")
        try:
            funcs.append(REWARDS[name](**settings))
        except TypeError as e:
            raise ValueError(f"reward {name!r}: {e}") from None
        weights.append(weight)
    return funcs, weights
