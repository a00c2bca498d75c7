"""The qualitative benchmark's core: suites, flags, rule checks, judge, endpoint, scores."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from zflow import checks, endpoint, judge, qualitative, scoresheet
from zflow.qualitative import Task

REPO = Path(__file__).resolve().parents[1]
SUITES = {lang: REPO / "config" / "qualitative" / f"{lang}.yaml" for lang in ("it", "en")}
WITH_CHECKS = {"math_reasoning", "classification", "logical_reasoning", "code_generation",
               "trivia", "list_generation"}


@pytest.fixture(scope="module")
def suites():
    return {lang: {t.id: t for t in qualitative.load_suite(p)} for lang, p in SUITES.items()}


# ---- suites ------------------------------------------------------------------------------

def test_shipped_suites_load(suites):
    assert len(suites["it"]) == len(suites["en"]) == 20
    assert list(suites["it"]) == list(suites["en"])  # same ids, same order: IT vs EN
    for lang, tasks in suites.items():
        assert all(t.suite == lang for t in tasks.values())
        assert {i for i, t in tasks.items() if t.checks} >= WITH_CHECKS
        assert len(tasks["vegetarian_followup"].turns) == 2
        assert len(tasks["recipe_followup"].turns) == 2
        assert len(tasks["multi_turn_advice"].turns) >= 3
    assert suites["it"]["translation"].language == "en"
    assert suites["en"]["translation"].language == "it"


GOOD = {"id": "t1", "category": "c", "turns": ["hi"], "language": "en", "rubric": ["says hi"]}


@pytest.mark.parametrize("change, words", [
    ({"turns": None}, ["turns", "missing"]),
    ({"language": "xx"}, ["language", "'xx'"]),
    ({"checks": [{"type": "regex", "pattern": "a"}]}, ["checks[0].type", "regex"]),
    ({"checks": [{"type": "contains_number"}]}, ["checks[0].value", "missing"]),
    ({"rubrik": ["x"]}, ["rubrik", "unknown key"]),
])
def test_suite_errors_name_file_task_and_key(tmp_path, change, words):
    task = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump({"language": "en", "tasks": [GOOD | {"id": "t0"}, task]}))
    with pytest.raises(qualitative.SuiteError) as e:
        qualitative.load_suite(f)
    msg = str(e.value)
    assert str(f) in msg and "task 2" in msg and "'t1'" in msg
    assert all(w in msg for w in words), msg


def test_duplicate_id_is_an_error(tmp_path):
    f = tmp_path / "dup.yaml"
    f.write_text(yaml.safe_dump({"language": "en", "tasks": [GOOD, GOOD]}))
    with pytest.raises(qualitative.SuiteError,
                       match=r"task 2 \(id 't1'\): id: duplicate of task 1"):
        qualitative.load_suite(f)


# ---- flags -------------------------------------------------------------------------------

PARAGRAPH = ("The sun sets behind the mountains and paints the sky red and gold, while the wind "
             "carries the scent of pine trees down into the quiet valley. ")
RECIPE = """Ingredients (serves 4):
- 320 g spaghetti
- 150 g guanciale
- 4 egg yolks and 1 whole egg
- 50 g grated Pecorino Romano
- freshly ground black pepper
- salt for the pasta water

Steps:
1. Bring a large pot of salted water to the boil and cook the spaghetti.
2. Cut the guanciale into strips and brown it in a pan without oil.
3. In a bowl, beat the yolks and the egg with the pecorino and plenty of pepper.
4. Drain the pasta al dente, keeping a cup of the cooking water.
5. Toss the pasta with the guanciale off the heat, then add the egg mixture.
6. Stir quickly, adding cooking water until the sauce is creamy.
7. Serve at once with more pecorino and pepper.

| Ingredient | Grams |
|---|---|---|---|---|---|
"""


def test_loop_detected():
    flag, ev = qualitative.repetition_loop("Here is my paragraph.\n" + PARAGRAPH * 5)
    assert flag and ev["kind"] == "span" and ev["count"] == 5 and "mountains" in ev["span"]
    flag, ev = qualitative.repetition_loop("Dear Anna,\nsee you soon.\n"
                                           + "Have a nice day!\n" * 12)
    assert flag and ev["count"] == 12 and "nice day" in ev["span"]
    lines = "\n".join(f"Step {i}: think about it.\nI will answer the question now."
                      for i in range(7))
    flag, ev = qualitative.repetition_loop(lines)
    assert flag and ev == {"kind": "line", "span": "i will answer the question now .", "count": 7}
    assert qualitative.repetition_loop("AI is a program that learns ^" + ")" * 30)[0]


def test_no_loop_in_varied_text_or_a_recipe():
    varied = ("Remote work saves commuting time and lets people organise their day. On the other "
              "hand, it can blur the line between work and private life, and some teams find "
              "it harder to share ideas. A mix of office and home days often works best.")
    assert qualitative.repetition_loop(varied) == (False, None)
    assert qualitative.repetition_loop(RECIPE) == (False, None)
    stretches = "\n".join(f"{i}. {name}: lie on your back.\nHold for 30 seconds.\nRepeat 3 times."
                          for i, name in enumerate(["Knee to chest", "Cat-cow", "Twist",
                                                    "Piriformis", "Cobra"], 1))
    assert qualitative.repetition_loop(stretches) == (False, None)


def test_wrong_language():
    italian = "La capitale d'Italia è Roma, una città antica piena di storia, di arte e di vita."
    flag, info = qualitative.wrong_language(italian, "en")
    assert flag and info["detected"] == "it"
    assert qualitative.wrong_language(italian, "it") == (False, {"detected": "it",
                                                                  "probability": 1.0})
    assert qualitative.wrong_language("Roma.", "en") == (False, {"detected": None,
                                                                 "probability": None})
    assert qualitative.wrong_language("", "en")[0] is False


def test_think_block_is_not_scored(suites):
    task = suites["en"]["trivia"]
    answer = "<think>Michelangelo painted it from 1508 to 1512 for Julius II.</think>I am not sure."
    assert checks.rule_score(task, qualitative.visible_text(answer)) == 0
    assert checks.rule_score(task, answer) == 5  # the same facts, were the block scored
    visible, reasoning, unclosed = qualitative.split_reasoning("<think>let me see, Michelangelo")
    assert (visible, unclosed) == ("", True) and "Michelangelo" in reasoning
    assert qualitative.visible_text("reasoning here</think>\n\nRome.") == "Rome."


def test_flags_of_a_record(suites):
    task = suites["en"]["identity"]
    rec = {"answer": "<think>" + "x " * 50, "tokens_generated": 256, "finish_reason": "length"}
    f = qualitative.flags(rec, task, {"max_new_tokens": 256})
    assert f["empty"] and f["truncated"] and f["unclosed_reasoning"] and not f["wrong_language"]
    ok = {"answer": "I am an AI assistant. The capital of Italy is Rome, a beautiful city.",
          "tokens_generated": 20, "finish_reason": "stop"}
    f = qualitative.flags(ok, task, {"max_new_tokens": 256})
    assert not any(f[k] for k in ("empty", "truncated", "repetition_loop", "wrong_language"))
    assert qualitative.truncated(256, 256) and not qualitative.truncated(None, 256)
    assert qualitative.empty("  \n") and not qualitative.empty("ok")


# ---- rule scores -------------------------------------------------------------------------

def test_percentage_rule(suites):
    task = suites["it"]["math_reasoning"]
    right = "Sconto: 320 × 0,15 = 48,00 €. Si paga 320 − 48 = 272 €."
    assert checks.rule_score(task, right) == 5
    assert checks.rule_score(task, "Lo sconto è 48 euro.") == 2.5
    assert checks.rule_score(task, "240 × 0.15 = 0.15, quindi 15%.") == 0


def test_classification_rule(suites):
    task = suites["en"]["classification"]
    right = "Fruit: apple, strawberry\nAnimal: tiger, rabbit\nColour: yellow, blue"
    assert checks.rule_score(task, right) == 5
    table = "| Word | Category |\n|---|---|\n| apple | fruit |\n| tiger | animal |\n" \
            "| yellow | color |\n| strawberry | fruit |\n| rabbit | animal |\n| blue | colour |"
    assert checks.rule_score(task, table) == 5
    all_colours = "Colours: apple, tiger, yellow, strawberry, rabbit, blue."
    assert checks.rule_score(task, all_colours) == pytest.approx(5 * 2 / 6, abs=0.01)


def test_factorial_rule(suites):
    task = suites["en"]["code_generation"]
    good = ("```python\ndef factorial(n):\n    result = 1\n    for i in range(2, n + 1):\n"
            "        result *= i\n    return result\n\nprint(factorial(5))\n```")
    assert checks.rule_score(task, good) == 5
    bare = "def factorial(n):\n    return 1 if n < 2 else n * factorial(n - 1)\n\nRecursive."
    assert checks.rule_score(task, bare) == 5
    fibonacci = ("```python\ndef factorial(n):\n"
                 "    return n if n < 2 else factorial(n-1) + factorial(n-2)\n```")
    assert checks.rule_score(task, fibonacci) == 1.25  # right for n = 1 only
    assert checks.rule_score(task, "I cannot write code.") == 0


def test_infinite_loop_is_killed():
    task = Task("f", "code", ("x",), "en", ("r",), ({"type": "code_function", "name": "factorial",
                                                     "cases": [[5, 120]], "timeout": 1},))
    start = time.monotonic()
    loop = "```python\ndef factorial(n):\n    while True:\n        pass\n```"
    result = checks.run_checks(task, loop)
    assert time.monotonic() - start < 10
    assert result[0]["score"] == 0 and "killed" in result[0]["detail"]["error"]


# ---- judge -------------------------------------------------------------------------------

def test_parse_judge():
    assert judge.parse_judge("Correct and complete.\nSCORE: 5") == 5
    assert judge.parse_judge("<think>SCORE: 1</think>Fine.\n**SCORE: 3**") == 3
    for reply in ("SCORE: 7", "SCORE: -1", "SCORE: 3.5", "SCORE: 4/5", "great answer!", "",
                  None, "SCORE: 2\nSCORE: 4"):
        assert judge.parse_judge(reply) is None, reply


def test_judge_retries_then_marks_unparsed(suites):
    task = suites["it"]["trivia"]
    seen = []

    def garbage(messages):
        seen.append(messages)
        return "I think it is pretty good, maybe 4 out of 5?"

    rec = judge.judge(garbage, task, task.turns, "Michelangelo, 1508-1512.", retries=2)
    assert rec == {"score": None, "status": "unparsed",
                   "replies": ["I think it is pretty good, maybe 4 out of 5?"] * 3}
    assert len(seen) == 3 and seen[-1][-1]["content"] == judge.RETRY
    prompt = seen[0][1]["content"]
    assert "Michelangelo" in prompt and all(fact in prompt for fact in task.rubric)
    assert "Italian" in prompt and "SCORE: n" in seen[0][0]["content"]

    replies = iter(["SCORE: 9", {"text": "Right artist and years.\nSCORE: 4"}])
    rec = judge.judge(lambda m: next(replies), task, task.turns, "Michelangelo", retries=2)
    assert rec["score"] == 4 and rec["status"] == "ok" and len(rec["replies"]) == 2


# ---- endpoint ----------------------------------------------------------------------------

class _Server:
    """A local OpenAI-style server; ``plan`` lists what each request gets: a status code,
    "hang", or a reply dict."""

    def __init__(self):
        self.plan, self.requests = [], []
        outer = self
        self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body,
                                       "auth": self.headers.get("Authorization")})
                step = outer.plan.pop(0) if outer.plan else 200
                if step == "hang":
                    outer.release.wait(5)
                    return
                if isinstance(step, int) and step != 200:
                    self.send_response(step)
                    self.end_headers()
                    return
                reply = step if isinstance(step, dict) else {
                    "choices": [{"message": {"role": "assistant", "content": "Roma."},
                                 "finish_reason": "stop"}],
                    "usage": {"completion_tokens": 3}}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


MSGS = [{"role": "user", "content": "Capitale d'Italia?"}]


def test_chat_against_a_local_server(server, monkeypatch):
    monkeypatch.setenv("ZFLOW_TEST_KEY", "sk-secret-123")
    out = endpoint.chat(server.url, "m", MSGS, max_tokens=16, seed=0, timeout=5,
                        api_key_env="ZFLOW_TEST_KEY")
    assert out["text"] == "Roma." and out["tokens_generated"] == 3
    assert out["finish_reason"] == "stop" and out["truncated"] is False and out["latency_s"] >= 0
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-secret-123"
    assert req["body"]["max_tokens"] == 16 and req["body"]["seed"] == 0
    assert "sk-secret-123" not in json.dumps(out)

    server.plan = [{"choices": [{"message": {"content": "Ro", "reasoning_content": "hmm"},
                                 "finish_reason": "length"}]}]
    out = endpoint.chat(server.url + "/v1/", "m", MSGS, max_tokens=2, timeout=5)
    assert out == {"text": "<think>hmm</think>Ro", "tokens_generated": None,
                   "latency_s": out["latency_s"], "finish_reason": "length", "truncated": True}
    assert server.requests[1]["auth"] is None
    assert server.requests[1]["path"] == "/v1/chat/completions"


def test_chat_retries_a_500(server):
    server.plan = [500, 200]
    out = endpoint.chat(server.url, "m", MSGS, max_tokens=8, timeout=5, retries=2, backoff=0.01)
    assert out["text"] == "Roma." and len(server.requests) == 2
    server.plan = [503, 503]
    with pytest.raises(endpoint.EndpointError, match="HTTP 503.*attempt 2 of 2"):
        endpoint.chat(server.url, "m", MSGS, max_tokens=8, timeout=5, retries=1, backoff=0.01)
    server.plan = [404]
    with pytest.raises(endpoint.EndpointError, match="HTTP 404.*attempt 1 of 3"):
        endpoint.chat(server.url, "m", MSGS, max_tokens=8, timeout=5, retries=2, backoff=0.01)


def test_chat_times_out_and_hides_the_key(server, monkeypatch):
    monkeypatch.setenv("ZFLOW_TEST_KEY", "sk-secret-123")
    server.plan = ["hang"]
    start = time.monotonic()
    with pytest.raises(endpoint.EndpointError) as e:
        endpoint.chat(server.url, "m", MSGS, max_tokens=8, timeout=0.5, retries=0,
                      api_key_env="ZFLOW_TEST_KEY")
    assert time.monotonic() - start < 4
    assert "timed out" in str(e.value) and "sk-secret-123" not in str(e.value)
    assert e.value.__cause__ is None and e.value.__suppress_context__
    monkeypatch.delenv("ZFLOW_TEST_KEY")
    with pytest.raises(endpoint.EndpointError, match="ZFLOW_TEST_KEY"):
        endpoint.chat(server.url, "m", MSGS, max_tokens=8, api_key_env="ZFLOW_TEST_KEY")


def test_answer_task_plays_the_turns(suites):
    task = suites["it"]["vegetarian_followup"]
    sent = []

    def send(messages):
        sent.append(messages)
        return {"text": f"<think>r</think>risposta {len(sent)}", "tokens_generated": 5,
                "finish_reason": "stop", "latency_s": 0.5}

    rec = qualitative.answer_task(task, send)
    assert rec["answer"] == "<think>r</think>risposta 2" and rec["latency_total_s"] == 1.0
    assert sent[1][1] == {"role": "assistant", "content": "risposta 1"}
    assert [m["content"] for m in sent[1] if m["role"] == "user"] == list(task.turns)


# ---- scores, sheet, leaderboard ----------------------------------------------------------

def test_combine_rules():
    assert scoresheet.combine(2.5, 5, None) == (2.5, "judge+rule")
    assert scoresheet.combine(5, 3, None) == (3, "judge+rule")
    assert scoresheet.combine(None, 4, None) == (4, "judge")
    assert scoresheet.combine(5, None, None) == (5, "rule")
    assert scoresheet.combine(0, 1, 4) == (4, "human")
    assert scoresheet.combine(None, None, None) == (None, None)


def test_filled_sheet_overrides_judge(tmp_path, suites):
    tasks = [suites["it"]["trivia"], suites["it"]["quick_dinner"]]
    records = [{"model": "m1", "language": "it", "task": t.id, "turns": list(t.turns),
                "answer": "- Michelangelo\n- 1508", "rubric": list(t.rubric),
                "flags": {"repetition_loop": True, "loop_evidence": {"count": 5}},
                "rule_score": 5 if t.checks else None, "judge_score": 4} for t in tasks]
    sheet = tmp_path / "sheet.csv"
    scoresheet.write_sheet(sheet, records)
    text = sheet.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == ",".join(scoresheet.COLUMNS)
    assert "repetition_loop (x5)" in text and "'- Michelangelo" in text
    assert scoresheet.read_sheet(sheet) == {}

    rows = text.replace(",5,4,,", ",5,4,2,").replace(",,4,,", ",,4,1.5,")
    sheet.write_text(rows, encoding="utf-8")
    human = scoresheet.read_sheet(sheet)
    assert human == {("m1", "it", "trivia"): 2.0, ("m1", "it", "quick_dinner"): 1.5}
    rule = {("m1", "it", r["task"]): r["rule_score"] for r in records}
    judged = {("m1", "it", r["task"]): r["judge_score"] for r in records}
    final = scoresheet.final_scores(rule, judged, human)
    assert final[("m1", "it", "trivia")] == {"score": 2.0, "source": "human"}
    assert final[("m1", "it", "quick_dinner")] == {"score": 1.5, "source": "human"}

    sheet.write_text(rows.replace(",5,4,2,", ",5,4,6,"), encoding="utf-8")
    with pytest.raises(scoresheet.SheetError, match=r"sheet.csv row 2 \(m1/it/trivia\).*'6'"):
        scoresheet.read_sheet(sheet)


def _crafted():
    s = {}
    models = {"a": [5, 4, 1, 2], "b": [3, 4, 2, 5], "c": [1, 2, 2, 5]}
    for m, row in models.items():
        for lang, shift in (("it", 0), ("en", 1)):
            for t, v in zip(["t1", "t2", "t3", "t4"], row):
                s[(m, lang, t)] = min(5, v + shift) if t != "t3" else v
    s[("c", "en", "t4")] = None  # unscored
    return s


def test_leaderboard():
    board = scoresheet.leaderboard(_crafted())
    it = board["languages"]["it"]
    for m, total in it["models"].items():
        assert total["total"] == sum(it["table"][t][m] for t in it["tasks"])
    assert it["models"]["a"] == {"total": 12, "scored": 4, "tasks": 4, "average": 3.0}
    assert it["ranking"] == ["b", "a", "c"]
    assert it["winners"]["t1"] == {"score": 5, "models": ["a"]}
    assert it["winners"]["t2"] == {"score": 4, "models": ["a", "b"]}
    assert it["universal_failures"] == ["t3"]
    en = board["languages"]["en"]
    assert en["models"]["c"]["scored"] == 3 and en["table"]["t4"]["c"] is None
    assert board["delta"]["a"] == {"it": 12, "en": 14, "delta": 2}
    assert board["universal_failures"] == ["t3"]
    with_order = scoresheet.leaderboard(_crafted(), tasks={"it": ["t4", "t9"]})
    assert with_order["languages"]["it"]["tasks"][:2] == ["t4", "t9"]
    assert "t9" not in with_order["languages"]["it"]["winners"]
