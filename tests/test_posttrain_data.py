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
