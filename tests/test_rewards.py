"""GRPO reward functions (zflow.rewards), their code sandbox (zflow.sandbox) and dynamic sampling."""

from __future__ import annotations

import json
import random
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from zflow import rewards as R  # noqa: E402
from zflow import sandbox  # noqa: E402


def chat(text):
    """A conversational completion, as TRL passes it."""
    return [{"role": "assistant", "content": text}]


def call(fn, completions, **columns):
    """Call a reward the way TRL 1.16's GRPOTrainer does (extra keywords included)."""
    return fn(prompts=["q"] * len(completions), completions=completions, completion_ids=None,
              trainer_state=None, log_extra=lambda *a, **k: None, log_metric=lambda *a, **k: None,
              **columns)


# --- math --------------------------------------------------------------------------------------

def test_math_correct_incorrect_and_malformed():
    fn = R.math_reward()
    completions = [r"so it is \boxed{\frac{1}{2}}", chat(r"<think>hmm</think> \boxed{0.5}"),
                   r"\boxed{3}", "the answer is one half", r"\boxed{\frac{1}{}}", r"\boxed{1/2",
                   chat("")]
    got = call(fn, completions, answer=["0.5"] * len(completions))
    assert got == pytest.approx([3.0, 3.0, 0.0, -2.4, -2.4, -2.4, -2.4])
    assert fn.__name__ == "math"


def test_math_settings_and_missing_gold():
    fn = R.math_reward(scale=1.0, error=-0.5)
    got = call(fn, [r"\boxed{4}", r"\boxed{4}", "x", r"\boxed{4}"], answer=["4", None, "4", "hello"])
    assert got == [1.0, None, -0.5, None]  # None: no gold, or a gold math_verify cannot parse
    assert call(fn, [r"\boxed{4}"]) == [None]  # no answer column at all


def test_math_timeout_needs_the_main_thread():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(RuntimeError, match="main thread"):
            pool.submit(call, R.math_reward(), [r"\boxed{1}"], answer=["1"]).result()
        unguarded = pool.submit(call, R.math_reward(timeout_s=None), [r"\boxed{1}"], answer=["1"])
        assert unguarded.result() == [3.0]


def test_math_refuses_timeout_below_one_second():
    with pytest.raises(ValueError, match="timeout_s"):
        R.math_reward(timeout_s=0)
    with pytest.raises(ValueError, match="timeout_s"):
        R.math_reward(timeout_s=2.5)  # math_verify's SIGALRM timeout takes whole seconds


def test_last_boxed_balances_braces():
    assert R.last_boxed(r"\boxed{1} then \boxed{\frac{a}{b}} end") == r"\frac{a}{b}"
    assert R.last_boxed(r"\boxed{\frac{1}{2}") is None
    assert R.last_boxed("none") is None


# --- format ------------------------------------------------------------------------------------

def test_format_reasoning_on():
    fn = R.format_reward()
    completions = [r"think</think> so \boxed{1}", chat(r"think</think>\boxed{1}"),
                   r"\boxed{1} no closer", r"a</think>b</think>\boxed{1}", r"t</think> \boxed{1} \boxed{2}",
                   r"\boxed{1}</think> none after"]
    assert call(fn, completions) == [1.0, 1.0, 0.0, 0.5, 0.5, 0.5]


def test_format_reasoning_off_per_item():
    fn = R.format_reward()
    completions = [r"just \boxed{1}", r"x</think>\boxed{1}", "no box", r"x</think>\boxed{1}"]
    assert call(fn, completions, reasoning=[False, False, False, True]) == [1.0, 0.5, 0.5, 1.0]
    assert call(R.format_reward(closer="</reason>"), [r"a</reason>\boxed{2}"]) == [1.0]


def test_parsed_response_reasoning_field_counts_as_closed():
    # TRL parses completions with the tokenizer's response schema when it has one
    parsed = [{"role": "assistant", "reasoning_content": r"maybe \boxed{3}", "content": r"\boxed{2}"}]
    assert call(R.format_reward(), [parsed]) == [1.0]
    assert call(R.math_reward(), [parsed], answer=["2"]) == [3.0]


# --- length ------------------------------------------------------------------------------------

def test_length_penalty_from_token_ids():
    fn = R.length_reward(max_tokens=100)
    ids = [[1] * n for n in (0, 50, 100, 150)]
    got = fn(prompts=["q"] * 4, completions=["c"] * 4, completion_ids=ids)
    assert got == pytest.approx([0.0, -0.125, -0.25, -0.25])


def test_length_penalty_start_and_text_fallback():
    fn = R.length_reward(max_tokens=100, start=50)
    ids = [[1] * n for n in (10, 50, 75, 100)]
    assert fn(["q"] * 4, ["c"] * 4, completion_ids=ids) == pytest.approx([0, 0, -0.125, -0.25])
    # no token ids: ceil(characters / 4) tokens
    assert fn(["q"] * 2, ["x" * 300, chat("x" * 1000)]) == pytest.approx([-0.125, -0.25])
    with pytest.raises(ValueError):
        R.length_reward(max_tokens=100, start=100)


# --- code --------------------------------------------------------------------------------------

@pytest.fixture
def sandbox_tmp(tmp_path, monkeypatch):
    """Sandboxes made under tmp_path/sandboxes, to check they are all removed."""
    root = tmp_path / "sandboxes"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


FUNC = "```python\ndef add(a, b):\n    return a + b\n```"
TESTS = "assert add(1, 2) == 3\nassert add(-1, 1) == 0"


def test_code_pass_fail_syntax_error(sandbox_tmp):
    fn = R.code_reward(timeout_s=5)
    completions = [f"Here:\n{FUNC}", chat(f"<think>```python\nbroken(\n```</think>{FUNC}"),
                   "def add(a, b):\n    return a + b", "```python\ndef add(a, b):\n    return a - b\n```",
                   "```python\ndef add(a, b) return a\n```", FUNC]
    tests = [TESTS] * 5 + [None]
    assert call(fn, completions, tests=tests) == [1.0, 1.0, 1.0, 0.0, 0.0, None]
    assert list(sandbox_tmp.iterdir()) == []


def test_code_infinite_loop_is_killed_quickly(sandbox_tmp):
    fn = R.code_reward(timeout_s=1)
    start = time.monotonic()
    assert call(fn, ["```python\nwhile True:\n    pass\n```"], tests=[""]) == [0.0]
    assert time.monotonic() - start < 5
    assert sandbox.run_python("while True:\n    pass", timeout_s=0.5).timed_out
    assert list(sandbox_tmp.iterdir()) == []


def test_code_exit_before_tests_fails(sandbox_tmp):
    fn = R.code_reward(timeout_s=5)
    early_exits = ["import sys\nsys.exit(0)", "import os\nos._exit(0)"]
    assert call(fn, early_exits, tests=["assert False"] * 2) == [0.0, 0.0]


def test_sandbox_memory_bomb_is_stopped(sandbox_tmp):
    result = sandbox.run_python("x = bytearray(8 * 2**30)", "", timeout_s=5, memory_mb=512)
    assert not result.passed and "MemoryError" in result.stderr


def test_sandbox_refuses_writes_outside_its_directory(sandbox_tmp, tmp_path):
    outside = tmp_path / "escaped.txt"
    attempts = [f"open({str(outside)!r}, 'w').write('x')",
                f"import pathlib\npathlib.Path({str(outside)!r}).write_text('x')",
                f"import os\nos.close(os.open({str(outside)!r}, os.O_CREAT | os.O_WRONLY))",
                f"import os\nos.system('touch {outside}')",
                f"import subprocess\nsubprocess.run(['touch', {str(outside)!r}])"]
    for code in attempts:
        result = sandbox.run_python(code, "", timeout_s=5)
        assert not result.passed and "PermissionError" in result.stderr, code
        assert not outside.exists(), code
    # relative writes land in the sandbox's own directory, and go with it
    inside = sandbox.run_python("open('note.txt', 'w').write('x')", "assert open('note.txt').read() == 'x'")
    assert inside.passed
    assert list(sandbox_tmp.iterdir()) == []


def test_sandbox_blocks_network(sandbox_tmp):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    try:
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)"
        assert call(R.code_reward(timeout_s=5), [code], tests=["pass"]) == [0.0]
        raw = f"import socket\nsocket.socket().connect(('127.0.0.1', {port}))"
        for attempt in (code, raw):
            assert "network disabled" in sandbox.run_python(attempt, timeout_s=5).stderr
        with pytest.raises(TimeoutError):
            server.accept()  # nobody connected
    finally:
        server.close()


def test_sandbox_keeps_local_machinery_working(sandbox_tmp):
    code = "import asyncio, json, tempfile\nasyncio.run(asyncio.sleep(0))\ntempfile.TemporaryFile().close()"
    assert sandbox.run_python(code, "assert json.loads('[1]') == [1]").passed


def test_sandbox_environment_is_stripped(sandbox_tmp, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    code = ("import os\nassert not [k for k in os.environ if 'proxy' in k.lower()]\n"
            "assert os.getcwd() == os.environ['HOME']")
    assert sandbox.run_python(code).passed


def test_extract_code_takes_last_python_block():
    text = "```python\na = 1\n```\ntext\n```py\nb = 2\n```\n```bash\nls\n```"
    assert R.extract_code(text) == "b = 2\n"
    assert R.extract_code("x = 3") == "x = 3"


# --- multiple choice ---------------------------------------------------------------------------

def test_choice_extraction_and_match():
    fn = R.choice_reward()
    completions = ["Reasoning... Answer: B", r"so \boxed{B}", chat("It must be (C)."),
                   "The answer is a bit unclear; answer is **B**", r"\boxed{D}", "no letter here",
                   r"\boxed{42}", chat("<think>A? maybe</think> D")]
    golds = ["B", "B", "C", "B", "B", "A", "B", 3]
    assert call(fn, completions, choice_answer=golds) == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert call(fn, ["B", "B"], choice_answer=[None, "B"], answer=["B", None]) == [None, 1.0]


# --- instruction following ---------------------------------------------------------------------

def test_ifeval_strict_all_instructions():
    fn = R.ifeval_reward()
    ids = ["punctuation:no_comma", "length_constraints:number_words"]
    args = [{}, {"num_words": 5, "relation": "at least", "num_highlights": None}]
    completions = ["one two three four five six", "one, two, three, four, five, six",
                   "one two three", chat("<think>a, b, c</think>one two three four five"), "   "]
    got = call(fn, completions, instruction_id_list=[ids] * 5, instruction_kwargs=[args] * 5)
    assert got == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert call(fn, ["ok"], instruction_id_list=[None], instruction_kwargs=[None]) == [None]
    as_json = call(fn, ["one two three four five"], instruction_id_list=[ids],
                   instruction_kwargs=[json.dumps(args)])
    assert as_json == [1.0]


# --- tool calls --------------------------------------------------------------------------------

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                     "days": {"type": "integer", "minimum": 1}},
                   "required": ["city"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
EXPECTED = {"name": "get_weather", "arguments": {"city": "Rome", "days": 2}}


def tagged(obj):
    return f"<tool_call>\n{json.dumps(obj)}\n</tool_call>"


def test_tool_call_rewards():
    fn = R.tool_reward()
    parsed = {"type": "function", "function": {"name": "get_weather",
                                               "arguments": json.dumps(EXPECTED["arguments"])}}
    completions = [
        tagged(EXPECTED),  # valid
        chat("Let me check. " + json.dumps(EXPECTED)),  # untagged JSON in a conversation
        [{"role": "assistant", "content": "", "tool_calls": [parsed]}],  # a parsed response
        tagged({"name": "get_forecast", "arguments": {"city": "Rome", "days": 2}}),  # not offered
        tagged({"name": "get_weather", "arguments": {"city": "Rome", "days": "two"}}),  # schema
        tagged({"name": "get_weather", "arguments": {"city": "Rome", "days": 0}}),  # schema
        tagged({"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}),  # wrong call
        tagged({"name": "get_time", "arguments": {}}),  # offered but not expected
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome",</tool_call>',  # bad JSON
        "I cannot call a tool.",
    ]
    n = len(completions)
    got = call(fn, completions, tools=[[WEATHER, TIME]] * n, expected_call=[EXPECTED] * n)
    assert got == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_tool_columns_as_json_strings_and_missing():
    fn = R.tool_reward()
    got = call(fn, [tagged(EXPECTED), tagged(EXPECTED)], tools=[json.dumps([WEATHER]), None],
               expected_call=[json.dumps(EXPECTED), None])
    assert got == [1.0, None]


# --- registry ----------------------------------------------------------------------------------

def test_build_rewards_by_name_with_weights():
    funcs, weights = R.build_rewards([{"name": "math", "scale": 1.0}, {"name": "format", "weight": 0.5},
                                      {"name": "length", "max_tokens": 10, "weight": 2}])
    assert [f.__name__ for f in funcs] == ["math", "format", "length"]
    assert weights == [1.0, 0.5, 2.0]
    assert call(funcs[0], [r"\boxed{2}"], answer=["2"]) == [1.0]
    with pytest.raises(ValueError, match="unknown reward 'nope'"):
        R.build_rewards([{"name": "nope"}])
    with pytest.raises(ValueError, match="'format'"):
        R.build_rewards([{"name": "format", "scale": 2}])
    assert set(R.REWARDS) == {"math", "format", "length", "code", "choice", "ifeval", "tool"}


# --- dynamic sampling --------------------------------------------------------------------------

def test_zero_variance_groups_and_mask():
    rewards = [1, 1, 0, 1, 0, 0, 2, 2]
    assert R.zero_variance_groups(rewards, 2) == [0, 2, 3]
    assert R.keep_mask(rewards, 2) == [False, False, True, True, False, False, False, False]
    with pytest.raises(ValueError):
        R.zero_variance_groups(rewards, 3)


def test_resample_drops_flat_groups_and_draws_more():
    rng, drawn = random.Random(3), []

    def generate_batch():
        # three prompts, four completions each; binary rewards, so groups are often flat
        drawn.append(len(drawn))
        items = [f"b{drawn[-1]}c{i}" for i in range(12)]
        return items, [float(rng.random() < 0.25) for _ in range(12)]

    out = R.resample(generate_batch, group_size=4, groups_needed=6, max_batches=10)
    # batch 0 keeps its three groups, batch 1 drops group 1, batch 2 drops groups 1 and 2
    assert out.dropped == [(1, 1), (2, 1), (2, 2)]
    assert out.batches == len(drawn) == 3
    kept = [f"b{b}c{c}" for b, groups in ((0, (0, 1, 2)), (1, (0, 2)), (2, (0,)))
            for g in groups for c in range(4 * g, 4 * g + 4)]
    assert out.items == kept and out.groups(4) == 6
    for g in range(6):
        assert len(set(out.rewards[4 * g:4 * g + 4])) > 1


def test_resample_cuts_extra_groups_and_stops_at_max_batches():
    batches = iter([(list("abcdef"), [0, 1, 1, 1, 0, 1])])
    out = R.resample(lambda: next(batches), group_size=2, groups_needed=1, max_batches=5)
    assert out.items == ["a", "b"] and out.batches == 1 and out.dropped == [(0, 1)]
    flat = R.resample(lambda: (["x"] * 4, [0.5] * 4), group_size=2, groups_needed=1, max_batches=3)
    assert flat.batches == 3 and flat.items == []
    assert flat.dropped == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
