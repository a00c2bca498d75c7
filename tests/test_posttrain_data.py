"""The embedded post-training sets and the English / IFEval-style eval tasks (tools/make_posttrain_data.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))  # the generators are tools, not workflow scripts

import make_posttrain_data as mpd  # noqa: E402

DATA = REPO / "data" / "embedded" / "posttrain"
TASKS = REPO / "resources" / "eval_tasks"
NEW_TASKS = ["mini_arc_en", "mini_hellaswag_en", "mini_mmlu_en", "mini_ifeval_it", "mini_ifeval_en"]
ROLES = {"system", "user", "assistant", "tool"}
ALLOWED_IDS = {
    "change_case:english_lowercase", "change_case:english_capital", "punctuation:no_comma", "keywords:existence",
    "keywords:forbidden_words", "detectable_format:json_format", "detectable_format:title", "startend:end_checker",
    "startend:quotation", "length_constraints:number_words", "detectable_content:postscript",
    "detectable_format:number_bullet_lists"}
# the arguments each instruction's build_description takes in lm-eval's ifeval
KWARGS = {"keywords:existence": {"keywords"}, "keywords:forbidden_words": {"forbidden_words"},
          "startend:end_checker": {"end_phrase"}, "length_constraints:number_words": {"num_words", "relation"},
          "detectable_content:postscript": {"postscript_marker"},
          "detectable_format:number_bullet_lists": {"num_bullets"}}


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Two runs of the generator into fresh folders."""
    runs = []
    for k in range(2):
        d = tmp_path_factory.mktemp(f"posttrain{k}")
        mpd.main(["--out-data", str(d / "data"), "--out-tasks", str(d / "tasks")])
        runs.append(d)
    return runs


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_output_is_deterministic_and_matches_the_committed_files(generated):
    a, b = generated
    assert files(a) == files(b)
    data = files(a / "data")
    assert sorted(data) == sorted(p.name for p in DATA.glob("*.jsonl"))
    assert data == {p.name: p.read_bytes() for p in DATA.glob("*.jsonl")}
    tasks = files(a / "tasks")
    assert {k.split("/")[0] for k in tasks} == set(NEW_TASKS)
    committed = {str(p.relative_to(TASKS)): p.read_bytes() for t in NEW_TASKS
                 for p in sorted((TASKS / t).iterdir()) if p.is_file()}
    assert tasks == committed
    for content in (*data.values(), *tasks.values()):
        assert len(content) < 2_000_000 and content.endswith(b"\n")


def conversations():
    """(file, row index, messages, tools) of every chat-shaped row."""
    names = {"system": "system", "human": "user", "gpt": "assistant"}
    for f, key in [("chat_it", "messages"), ("chat_en", "messages"), ("tools", "messages"),
                   ("openitaliandata", "conversation"), ("sharegpt_en", "conversations")]:
        for i, row in enumerate(jsonl(DATA / f"{f}.jsonl")):
            msgs = row[key]
            if key == "conversations":
                assert all(set(m) == {"from", "value"} and m["from"] in names for m in msgs), (f, i)
                msgs = [{"role": names[m["from"]], "content": m["value"]} for m in msgs]
            yield f, i, msgs, row.get("tools", [])


def test_messages_have_known_roles_and_an_assistant_answer():
    counts = {}
    for f, i, msgs, _ in conversations():
        counts[f] = counts.get(f, 0) + 1
        assert msgs and all(m["role"] in ROLES for m in msgs), (f, i)
        assert all(isinstance(m["content"], str) for m in msgs), (f, i)
        assert any(m["role"] == "assistant" and m["content"].strip() for m in msgs), (f, i)
        for m in msgs:  # only tool-call turns may be empty
            assert m["content"].strip() or m.get("tool_calls"), (f, i, m)
    assert counts == {"chat_it": 240, "chat_en": 240, "tools": 200, "openitaliandata": 200, "sharegpt_en": 100}


def test_tool_calls_name_a_tool_offered_in_their_row():
    calls = structured = 0
    for i, row in enumerate(jsonl(DATA / "tools.jsonl")):
        offered = [t["function"]["name"] for t in row["tools"]]
        assert len(offered) == len(set(offered)) <= 3, i
        for t in row["tools"]:
            params = t["function"]["parameters"]
            assert t["type"] == "function" and params["type"] == "object"
            assert set(params["required"]) <= set(params["properties"])
        if not row["tools"]:  # structured output: the answer is a JSON object
            structured += 1
            assert isinstance(json.loads(row["messages"][-1]["content"]), dict), i
            continue
        for k, m in enumerate(row["messages"]):
            for call in m.get("tool_calls", []):
                calls += 1
                fn = call["function"]
                assert fn["name"] in offered, (i, fn["name"], offered)
                assert isinstance(fn["arguments"], dict), i
                nxt = row["messages"][k + 1]
                assert nxt["role"] == "tool" and nxt["name"] == fn["name"], i
                json.loads(nxt["content"])
    assert calls == 160 and structured == 40


def test_preference_rows():
    for lang in ("it", "en"):
        rows = jsonl(DATA / f"preferences_{lang}.jsonl")
        assert len(rows) == 150
        for i, row in enumerate(rows):
            assert set(row) == {"prompt", "chosen", "rejected"}, i
            assert [m["role"] for m in row["prompt"]] == ["user"]
            assert [m["role"] for m in row["chosen"]] == [m["role"] for m in row["rejected"]] == ["assistant"]
            assert row["chosen"] != row["rejected"], i
            assert all(m["content"].strip() for k in row for m in row[k])


@pytest.mark.parametrize("lang", ["it", "en"])
def test_ifeval_rows(lang):
    folder = TASKS / f"mini_ifeval_{lang}"
    rows = jsonl(folder / "test.jsonl")
    assert len(rows) == 30 and len({r["key"] for r in rows}) == 30
    for r in rows:
        assert set(r) == {"key", "prompt", "instruction_id_list", "kwargs"}
        ids = r["instruction_id_list"]
        assert 1 <= len(ids) <= 2 and set(ids) <= ALLOWED_IDS, r["key"]
        assert len(r["kwargs"]) == len(ids), r["key"]
        for iid, kw in zip(ids, r["kwargs"]):
            assert set(kw) == KWARGS.get(iid, set()), (r["key"], iid, kw)
            assert all(v for v in kw.values())  # lm-eval drops falsy arguments
    if lang == "it":  # the case checks want English text (langdetect)
        assert not any(i.startswith("change_case:") for r in rows for i in r["instruction_id_list"])
    text = (folder / "utils.py").read_text()
    assert "from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results" in text
    yaml_text = (folder / f"mini_ifeval_{lang}.yaml").read_text()
    assert f"task: mini_ifeval_{lang}\n" in yaml_text and "    test: test.jsonl\n" in yaml_text
    assert "process_results: !function utils.process_results" in yaml_text


def test_english_multiple_choice_tasks():
    for name, n in (("mini_arc_en", 40), ("mini_hellaswag_en", 40)):
        rows = jsonl(TASKS / name / "test.jsonl")
        assert len(rows) == n
        for r in rows:
            assert set(r) == {"id", "query", "choices", "gold"} and len(set(r["choices"])) == 4
            assert 0 <= r["gold"] < 4
    test, dev = jsonl(TASKS / "mini_mmlu_en" / "test.jsonl"), jsonl(TASKS / "mini_mmlu_en" / "dev.jsonl")
    assert len(test) == 40 and len(dev) == 5
    for r in test + dev:
        assert set(r) == {"id", "instruction", "option_a", "option_b", "option_c", "option_d", "answer"}
        assert r["answer"] in "ABCD"
    assert "\\nAnswer:\"" in (TASKS / "mini_mmlu_en" / "mini_mmlu_en.yaml").read_text()


# --- preference formats (TRL's dataset-formats guide) and GRPO prompt files ------------------------

def _u(text):
    return {"role": "user", "content": text}


def _a(text):
    return {"role": "assistant", "content": text}


Q, YES, NO = "What color is the sky?", "Blue.", "Green."
SYSTEM = {"role": "system", "content": "Be brief."}
EXPECTED = {"prompt": [_u(Q)], "chosen": [_a(YES)], "rejected": [_a(NO)]}
DOLCI_EXTRA = {"prompt_id": "p0", "preference_type": "delta", "chosen_model": "m1",
               "rejected_model": "m2"}
PREFERENCE_FORMATS = {
    "standard explicit": ({"prompt": Q, "chosen": YES, "rejected": NO}, EXPECTED),
    "standard implicit prompt": ({"chosen": f"{Q} {YES}", "rejected": f"{Q} {NO}"}, EXPECTED),
    "conversational explicit": ({"prompt": [_u(Q)], "chosen": [_a(YES)], "rejected": [_a(NO)]},
                                EXPECTED),
    "conversational implicit prompt (Dolci-Instruct-DPO)": (
        {**DOLCI_EXTRA, "chosen": [_u(Q), _a(YES)], "rejected": [_u(Q), _a(NO)]}, EXPECTED),
    "conversational implicit, a prompt string beside it": (
        {"prompt": Q, "chosen": [_u(Q), _a(YES)], "rejected": [_u(Q), _a(NO)]}, EXPECTED),
    "conversational explicit, the prompt repeated in both": (
        {"prompt": [_u(Q)], "chosen": [_u(Q), _a(YES)], "rejected": [_u(Q), _a(NO)]}, EXPECTED),
    "conversational implicit, message lists as JSON strings": (
        {"chosen": json.dumps([_u(Q), _a(YES)]), "rejected": json.dumps([_u(Q), _a(NO)])},
        EXPECTED),
    "conversational implicit, multi-turn with a system prompt": (
        {"chosen": [SYSTEM, _u("Hi"), _a("Hello!"), _u(Q), _a(YES)],
         "rejected": [SYSTEM, _u("Hi"), _a("Hello!"), _u(Q), _a(NO)]},
        {"prompt": [SYSTEM, _u("Hi"), _a("Hello!"), _u(Q)], "chosen": [_a(YES)],
         "rejected": [_a(NO)]}),
}


@pytest.mark.parametrize("name", PREFERENCE_FORMATS)
@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_every_trl_preference_format_is_accepted_and_normalised(tmp_path, name, suffix):
    from zflow import chat

    row, expected = PREFERENCE_FORMATS[name]
    f = tmp_path / f"prefs{suffix}"
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([row, row]), f)
    elif suffix == ".json":  # one JSON array
        f.write_text(json.dumps([row, row], indent=2))
    else:
        f.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    for fmt in ("auto", "preference"):
        assert chat.load(f, fmt, "dpo") == [expected, expected], (name, fmt)


def test_dolci_rows_train_like_the_explicit_ones(tmp_path):
    """The same preference in TRL's four formats gives the same rows for the DPO trainer."""
    from zflow import chat

    f = tmp_path / "mixed.jsonl"
    f.write_text("".join(json.dumps(PREFERENCE_FORMATS[n][0]) + "\n" for n in (
        "standard explicit", "standard implicit prompt", "conversational explicit",
        "conversational implicit prompt (Dolci-Instruct-DPO)")))
    rows = chat.load(f, "auto", "dpo")
    assert rows == [EXPECTED] * 4 and all(set(r) == {"prompt", "chosen", "rejected"} for r in rows)


@pytest.mark.parametrize("row, message", [
    ({"prompt": Q, "completion": YES, "label": True}, "an unpaired preference row"),
    ({"prompt": Q, "chosen": YES, "rejected": YES}, "'chosen' and 'rejected' are identical"),
    ({"chosen": [_u(Q), _a(YES)], "rejected": [_u(Q), _a(YES)]}, "are identical"),
    ({"chosen": f"{Q} {YES}", "rejected": f"{Q} {YES}"}, "are identical"),
    ({"chosen": [_u(Q), _a(YES)], "rejected": [_u("Other?"), _a(NO)]}, "no common prompt"),
    ({"chosen": YES, "rejected": NO}, "no common prompt"),
    ({"chosen": [_u(Q), _a(YES), _u("more?")], "rejected": [_u(Q), _a(NO)]},
     "'chosen' does not end with a non-empty assistant turn"),
    ({"prompt": [_u(Q)], "chosen": [_a(YES), _u("x")], "rejected": [_a(NO)]},
     "'chosen' does not end with a non-empty assistant turn"),
    ({"prompt": [_u(Q)], "chosen": [_a(YES)], "rejected": [_a("")]},
     "'rejected' does not end with a non-empty assistant turn"),
    ({"chosen": [_u(Q), _a(YES)], "rejected": [_u(Q), _a(YES), _u("?"), _a(NO)]},
     "'chosen' has no answer after the common prompt"),
    ({"chosen": [_u(Q), _a("A"), _u("x"), _a(YES)], "rejected": [_u(Q), _a("A"), _u("y"), _a(NO)]},
     "differ at message 2 (chosen: user), before the assistant's answer"),
    ({"chosen": [SYSTEM, _u(Q), _a(YES)], "rejected": [SYSTEM, _u("Other?"), _a(NO)]},
     "differ at message 1"),
    ({"prompt": [_u(Q), _a("A")], "chosen": [_a(YES)], "rejected": [_a(NO)]},
     "the prompt ends with an assistant turn"),
    ({"prompt": "", "chosen": YES, "rejected": NO}, "'prompt' is empty"),
    ({"prompt": Q, "chosen": "", "rejected": NO}, "missing chosen"),
    ({"prompt": Q, "chosen": YES, "rejected": "  "}, "missing rejected"),
    ({"prompt": Q, "chosen": YES, "rejected": [_a(NO)]}, "not both texts or both message lists"),
])
def test_bad_preference_rows_are_refused_naming_file_and_row(tmp_path, row, message):
    from zflow import chat

    good = PREFERENCE_FORMATS["conversational implicit prompt (Dolci-Instruct-DPO)"][0]
    f = tmp_path / "prefs.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in (good, good, row)))
    for fmt in ("auto", "preference"):
        with pytest.raises(chat.DataError) as e:
            chat.load(f, fmt, "dpo")
        assert str(e.value).startswith(f"{f} row 2: ") and message in str(e.value), str(e.value)


DEEPSCALER = [{"problem": "Compute $1+1$.", "answer": "2", "solution": ""},
              {"problem": "What is $\\frac{1}{2}+\\frac{1}{2}$?", "answer": "1",
               "solution": "Add the halves: $1$."},
              {"problem": "How many primes are below 10?", "answer": 4, "solution": ""}]


def test_deepscaler_json_array_loads_as_grpo_prompts(tmp_path):
    """agentica-org/DeepScaleR-Preview-Dataset's deepscaler.json: one JSON array (indented, a
    byte-order mark too) of problem / answer / solution."""
    from zflow import chat

    d = tmp_path / "deepscaler"
    d.mkdir()
    f = d / "deepscaler.json"
    f.write_text("\ufeff" + json.dumps(DEEPSCALER, indent=2), encoding="utf-8")
    for path, fmt in ((f, "prompt"), (f, "auto"), (d, "prompt")):
        rows = chat.load(path, fmt, "grpo")
        assert [r["prompt"] for r in rows] == [[{"role": "user", "content": r["problem"]}]
                                               for r in DEEPSCALER]
        assert [r["answer"] for r in rows] == ["2", "1", "4"]
        assert all(set(r) == {"prompt", *chat.PROMPT_COLUMNS} for r in rows)  # solution dropped


@pytest.mark.parametrize("row, message", [
    ({"answer": "2", "solution": ""}, "no 'prompt' or 'problem'"),
    ({"problem": "", "answer": "2", "solution": ""}, "no 'prompt' or 'problem'"),
    ({"problem": "Compute 1+1.", "solution": "2"}, "nothing to verify"),
    ({"problem": "Compute 1+1.", "answer": "", "solution": ""}, "'answer' is not a non-empty"),
])
def test_bad_deepscaler_rows_name_file_and_row(tmp_path, row, message):
    from zflow import chat

    f = tmp_path / "deepscaler.json"
    f.write_text(json.dumps([DEEPSCALER[0], row, DEEPSCALER[1]], indent=2))
    with pytest.raises(chat.DataError) as e:
        chat.load(f, "prompt", "grpo")
    assert str(e.value).startswith(f"{f} row 1: ") and message in str(e.value), str(e.value)
    f.write_text(json.dumps(DEEPSCALER, indent=2)[:-3])  # a truncated array
    with pytest.raises(chat.DataError, match="not valid JSON"):
        chat.load(f, "prompt", "grpo")


def test_a_chat_file_that_is_not_utf8_is_named_with_its_byte_and_line(tmp_path):
    """Past the config check's bounded read (large sets): the job's reader names the place."""
    from zflow import chat

    f = tmp_path / "chat.jsonl"
    f.write_bytes(b'{"messages": []}\n{"messages": "\xff"}\n')
    with pytest.raises(chat.DataError, match=r"chat\.jsonl'?: not UTF-8 .*line 2"):
        chat.read_rows(f)
