"""The qualitative benchmark's jobs: answering (a tiny local model, an endpoint), scoring (a judge
behind a real `transformers serve` on 127.0.0.1, the filled sheet), the report, and which jobs a
change re-runs."""

from __future__ import annotations

import copy
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_workflow, env, scheduled, snakemake

from zflow.plan import Plan

SCRIPTS = REPO / "workflow" / "scripts"
CHATML = REPO / "resources" / "chat_templates" / "chatml.jinja"
SUITES = {s: REPO / "config" / "qualitative" / f"{s}.yaml" for s in ("it", "en")}
JUDGE_SAYS = "SCORE: 4"


def _tokenizer(d: Path, chat: bool, extra: tuple = ()):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([p.read_text() for p in SUITES.values()], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                   eos_token="<|im_end|>" if chat else "<|endoftext|>",
                                   pad_token="<|endoftext|>")
    fast.add_tokens(list(extra))
    if chat:
        fast.chat_template = CHATML.read_text()
    fast.save_pretrained(d)
    return fast


def tiny_model(d: Path, chat: bool = True) -> Path:
    """A random 1-layer Llama with a BPE tokenizer (ChatML template when ``chat``)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    fast = _tokenizer(d, chat)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                      max_position_embeddings=4096, bos_token_id=fast.bos_token_id,
                      eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(d)
    return d


def constant_judge(d: Path) -> Path:
    """A real model whose greedy reply is always the token ``SCORE: 4``: every position's state is
    the same (equal embeddings, layers adding nothing) and only that token's logit is non-zero."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    fast = _tokenizer(d, chat=True, extra=(JUDGE_SAYS,))
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                      max_position_embeddings=4096, tie_word_embeddings=False,
                      bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                      pad_token_id=fast.pad_token_id)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        model.model.embed_tokens.weight.fill_(1.0)
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.lm_head.weight.zero_()
        model.lm_head.weight[fast.convert_tokens_to_ids(JUDGE_SAYS)] = 1.0
    model.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("qual_models")
    return {"chat": tiny_model(root / "chat"), "base": tiny_model(root / "base", chat=False),
            "judge4": constant_judge(root / "judge4")}


def config(models: dict, qualitative: dict) -> dict:
    """The embedded config with the tiny models as baselines and this qualitative section."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["baselines"] = {**cfg.get("baselines", {}),
                        **{f"tiny-{k}": {"model": str(v)} for k, v in models.items()}}
    cfg["qualitative"] = qualitative
    return cfg


def run_job(script: str, spec: dict, cwd: Path, timeout: int = 300,
            extra_env: dict | None = None) -> subprocess.CompletedProcess:
    f = cwd / f"{script}.{spec.get('model', 'all')}.{spec.get('suite', '')}.spec.json"
    f.write_text(json.dumps(spec))
    p = subprocess.run([sys.executable, str(SCRIPTS / f"{script}.py"), "--spec", str(f)],
                       cwd=cwd, env={**env(), **(extra_env or {})}, capture_output=True,
                       text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-6000:]
    return p


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_suite(path: Path, tasks: list[dict], language: str = "it") -> str:
    path.write_text(yaml.safe_dump({"language": language, "tasks": tasks}, allow_unicode=True))
    return str(path)


MATH = {"category": "arithmetic", "language": "it",
        "turns": ["Una bici costa 320 euro con lo sconto del 15%. Quanto risparmi e quanto paghi?"],
        "rubric": ["48 euro di sconto", "272 euro alla fine"],
        "checks": [{"type": "contains_number", "value": 48},
                   {"type": "contains_number", "value": 272}]}
TASKS = [
    {"id": "math", **MATH},
    {"id": "dinner", "category": "advice", "language": "it",
     "turns": ["Dammi tre idee per una cena veloce.", "Ora rendile vegetariane."],
     "rubric": ["tre idee", "nessuna carne"]},
    {"id": "poem", "category": "writing", "language": "it",
     "turns": ["Scrivi due righe sul mare."], "rubric": ["due righe sul mare"]},
]


# ---- answering -------------------------------------------------------------------------------

def test_answers_record_latency_tokens_speed_and_settings(models, tmp_path):
    suite = write_suite(tmp_path / "it.yaml", TASKS)
    q = {"suites": {"it": suite}, "models": ["tiny-chat", "tiny-base"],
         "decoding": {"max_new_tokens": 6, "repetition_penalty": 1.3, "seed": 3}}
    plan = Plan(config(models, q), base=REPO, check_files=False)
    for name, fmt in (("tiny-chat", "chat"), ("tiny-base", "plain")):
        spec = plan.spec("qualitative_answer", model=name, suite="it")
        assert spec["keyed_on"]["versions"].startswith("transformers=")
        run_job("qualitative_answer", spec, tmp_path)
        recs = read_jsonl(tmp_path / spec["output"])
        assert [r["task"] for r in recs] == ["math", "dinner", "poem"]
        for r in recs:
            assert r["model"] == name and r["suite"] == "it"
            assert 0 < r["tokens_generated"] <= 6 and r["latency_s"] > 0 and r["tokens_per_s"] > 0
            assert r["finish_reason"] in ("stop", "length")
            assert len(r["replies"]) == len(r["turns"])
            assert all(x["latency_s"] > 0 and x["tokens_generated"] > 0 for x in r["replies"])
            assert r["latency_total_s"] >= r["latency_s"] - 0.001  # a sum rounded to ms
            assert set(r["flags"]) >= {"empty", "truncated", "repetition_loop", "wrong_language"}
            assert r["flags"]["truncated"] == (r["finish_reason"] == "length")
            run = r["run"]
            assert run["prompt_format"] == fmt and run["decoding"]["repetition_penalty"] == 1.3
            assert run["decoding"]["max_new_tokens"] == 6 and run["decoding"]["seed"] == 3
            assert run["versions"]["torch"] and run["versions"]["transformers"]


def test_an_endpoint_model_answers_through_a_real_server(models, tmp_path, monkeypatch):
    from zflow.serve import local_server

    for k, v in env().items():
        monkeypatch.setenv(k, v)
    suite = write_suite(tmp_path / "it.yaml", TASKS[:2])
    secret = "sk-never-written-0123456789"
    with local_server(str(models["chat"]), startup_timeout=120) as url:
        q = {"suites": {"it": suite}, "decoding": {"max_new_tokens": 5},
             "models": [{"name": "served", "url": url, "model": str(models["chat"]),
                         "api_key_env": "ZFLOW_TEST_KEY"}]}
        spec = Plan(config(models, q), base=REPO, check_files=False).spec(
            "qualitative_answer", model="served", suite="it")
        assert spec["keyed_on"] == {"model": f"endpoint:{url}:{models['chat']}"}
        p = run_job("qualitative_answer", spec, tmp_path, extra_env={"ZFLOW_TEST_KEY": secret})
    text = (tmp_path / spec["output"]).read_text()
    assert secret not in text + p.stdout + p.stderr
    recs = [json.loads(line) for line in text.splitlines()]
    assert [len(r["replies"]) for r in recs] == [1, 2]
    for r in recs:
        assert 0 < r["tokens_generated"] <= 5 and r["latency_s"] > 0 and r["tokens_per_s"] > 0
        assert r["run"]["source"] == "endpoint" and r["run"]["url"] == url


# ---- scoring ---------------------------------------------------------------------------------

def answer_record(model: str, suite: str, task: dict, text: str, flags=None) -> dict:
    reply = {"text": text, "tokens_generated": 5, "latency_s": 0.5, "tokens_per_s": 10.0,
             "finish_reason": "stop", "truncated": False}
    return {"model": model, "suite": suite, "task": task["id"], "language": suite,
            "expected_language": task["language"], "turns": task["turns"],
            "replies": [reply] * len(task["turns"]), "answer": text, "tokens_generated": 5,
            "finish_reason": "stop", "latency_s": 0.5, "latency_total_s": 0.5 * len(task["turns"]),
            "tokens_per_s": 10.0, "category": task["category"],
            "flags": flags or {"empty": False, "truncated": False, "repetition_loop": False,
                               "wrong_language": False, "unclosed_reasoning": False},
            "run": {"prompt_format": "chat", "versions": {"torch": "x"}}}


def test_think_blocks_are_not_scored(models, tmp_path):
    tasks = [{"id": "math_a", **MATH}, {"id": "math_b", **MATH}]
    suite = write_suite(tmp_path / "it.yaml", tasks)
    q = {"suites": {"it": suite}, "models": ["tiny-chat"], "sheet": None}
    spec = Plan(config(models, q), base=REPO, check_files=False).spec(
        "qualitative_score", model="tiny-chat", suite="it")
    answers = tmp_path / spec["answers"]
    answers.parent.mkdir(parents=True)
    answers.write_text("".join(json.dumps(r) + "\n" for r in [
        answer_record("tiny-chat", "it", tasks[0],
                      "<think>15% di 320 = 48, resta 272</think>Non lo so."),
        answer_record("tiny-chat", "it", tasks[1],
                      "<think>forse 50 e 270</think>Risparmi 48 euro, paghi 272.")]))
    run_job("qualitative_score", spec, tmp_path)
    a, b = read_jsonl(tmp_path / spec["outputs"]["scores"])
    assert a["visible"] == "Non lo so." and a["rule_score"] == 0 and a["score"] == 0
    assert b["rule_score"] == 5 and b["score"] == 5 and b["source"] == "rule"
    assert a["judge"] is None and a["judge_score"] is None
    with open(tmp_path / spec["outputs"]["sheet"], encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert [r["answer"] for r in rows] == ["Non lo so.", "Risparmi 48 euro, paghi 272."]


def _server_gone(model_dir: Path) -> bool:
    p = subprocess.run(["pgrep", "-f", f"serve {model_dir}"], capture_output=True, text=True)
    return p.returncode == 1


def test_judge_behind_a_real_server_unparsed_then_scored_and_the_sheet_wins(models, tmp_path):
    suite = write_suite(tmp_path / "it.yaml", TASKS)
    sheet = tmp_path / "filled.csv"
    base = {"suites": {"it": suite}, "models": ["tiny-chat"], "sheet": str(sheet)}
    answers = [answer_record("tiny-chat", "it", TASKS[0], "Risparmi 48 euro e paghi 272 euro."),
               answer_record("tiny-chat", "it", TASKS[1], "Frittata, pasta al pomodoro, ceci."),
               answer_record("tiny-chat", "it", TASKS[2], "Onde lente, sale e luce.")]
    out = tmp_path / "results/qualitative/tiny-chat/it.answers.jsonl"
    out.parent.mkdir(parents=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in answers))

    # a random tiny judge: its replies hold no `SCORE: n` line -> asked again, then unparsed
    q = {**base, "judge": {"model": "tiny-chat", "max_tokens": 8, "retries": 1}}
    spec = Plan(config(models, q), base=REPO, check_files=False).spec(
        "qualitative_score", model="tiny-chat", suite="it")
    assert spec["judge"]["kind"] == "local" and spec["keyed_on"]["judge"] == str(models["chat"])
    p = run_job("qualitative_score", spec, tmp_path)
    assert "judge server ready at http://127.0.0.1:" in p.stderr
    assert _server_gone(models["chat"])
    recs = {r["task"]: r for r in read_jsonl(tmp_path / spec["outputs"]["scores"])}
    for r in recs.values():
        assert r["judge"]["status"] == "unparsed" and r["judge_score"] is None
        assert len(r["judge"]["replies"]) == 2  # retries + 1, every raw reply kept
        assert r["judge_settings"]["server"] == "transformers serve"
        assert "Rubric" in r["judge"]["prompt"] and r["judge_settings"]["system_prompt"]
    assert recs["math"]["score"] == 5 and recs["math"]["source"] == "rule"
    assert recs["poem"]["score"] is None and recs["poem"]["source"] is None

    # a judge that says `SCORE: 4`; the filled sheet's score for `poem` wins over it
    with open(sheet, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["model", "language", "task", "human_score"])
        w.writerows([["tiny-chat", "it", "poem", "2"], ["tiny-chat", "it", "dinner", ""],
                     ["other", "it", "math", "1"]])
    q = {**base, "judge": {"model": "tiny-judge4", "max_tokens": 1, "retries": 1}}
    spec = Plan(config(models, q), base=REPO, check_files=False).spec(
        "qualitative_score", model="tiny-chat", suite="it")
    assert spec["keyed_on"]["human"] == {"poem": 2.0}
    run_job("qualitative_score", spec, tmp_path)
    assert _server_gone(models["judge4"])
    recs = {r["task"]: r for r in read_jsonl(tmp_path / spec["outputs"]["scores"])}
    assert {t: r["judge_score"] for t, r in recs.items()} == {"math": 4, "dinner": 4, "poem": 4}
    assert all(r["judge"]["status"] == "ok" and len(r["judge"]["replies"]) == 1
               for r in recs.values())
    assert (recs["math"]["score"], recs["math"]["source"]) == (4, "judge+rule")
    assert (recs["dinner"]["score"], recs["dinner"]["source"]) == (4, "judge")
    assert (recs["poem"]["score"], recs["poem"]["source"], recs["poem"]["human_score"]) == \
        (2, "human", 2)


# ---- the report ------------------------------------------------------------------------------

def score_record(model, suite, task, score, **kw) -> dict:
    return {"model": model, "suite": suite, "task": task, "score": score,
            "source": kw.get("source", "judge" if score is not None else None),
            "rule_score": None, "judge_score": score, "human_score": None,
            "judge": {"status": "ok" if score is not None else "unparsed"},
            "flags": {"empty": False, "truncated": kw.get("truncated", False),
                      "repetition_loop": kw.get("loop", False), "wrong_language": False},
            "latency_s": kw.get("latency", 1.0), "tokens_generated": 10, "tokens_per_s": 10.0,
            "turns": ["q"], "answer": "a", "rubric": ["r"],
            "run": {"prompt_format": "chat", "versions": {"transformers": "5"}}}


def test_report_totals_equal_the_per_task_sums(models, tmp_path):
    tasks = [{"id": t, "category": "c", "language": lang, "turns": ["q"], "rubric": ["r"]}
             for t, lang in (("t1", "it"), ("t2", "it"), ("t3", "en"))]
    suites = {s: write_suite(tmp_path / f"{s}.yaml", tasks, s) for s in ("it", "en")}
    q = {"suites": suites, "models": ["tiny-chat", "tiny-base"], "pass_threshold": 3,
         "decoding": {"max_new_tokens": 7}}
    spec = Plan(config(models, q), base=REPO, check_files=False).spec("qualitative_report")
    scores = {("tiny-chat", "it"): [5, 2.5, None], ("tiny-base", "it"): [1, 2, 0],
              ("tiny-chat", "en"): [4, 4, 1], ("tiny-base", "en"): [3, None, 2]}
    for (m, s), values in scores.items():
        f = tmp_path / f"results/qualitative/{m}/{s}.scores.jsonl"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(json.dumps(score_record(m, s, t["id"], v, loop=v == 0)) + "\n"
                             for t, v in zip(tasks, values)))
    run_job("qualitative_report", spec, tmp_path)
    out = {k: tmp_path / v for k, v in spec["outputs"].items()}
    board = list(csv.DictReader(out["leaderboard"].open()))
    per_task = list(csv.DictReader(out["per_task"].open()))
    for row in board:
        cells = [r[row["Model"]] for r in per_task if r["Suite"] == row["Suite"]]
        *task_cells, total = cells
        assert float(row["Score"]) == pytest.approx(sum(float(c) for c in task_cells if c))
        assert float(total) == float(row["Score"])
        assert float(row["Max"]) == 15
    got = {(r["Suite"], r["Model"]): float(r["Score"]) for r in board}
    assert got == {("it", "tiny-chat"): 7.5, ("it", "tiny-base"): 3, ("en", "tiny-chat"): 9,
                   ("en", "tiny-base"): 5}
    assert [r["Model"] for r in board if r["Suite"] == "it"] == ["tiny-chat", "tiny-base"]
    delta = {r["Model"]: float(r["Δ (en − it)"]) for r in csv.DictReader(out["delta"].open())}
    assert delta == {"tiny-chat": 1.5, "tiny-base": 2}
    fails = {(r["Suite"], r["Task"]) for r in csv.DictReader(out["failures"].open())}
    assert fails == {("it", "t2"), ("it", "t3"), ("en", "t3"), ("every suite", "t3")}
    flags = {(r["Model"], r["Suite"]): r for r in csv.DictReader(out["flags"].open())}
    assert flags[("tiny-base", "it")]["repetition_loop"] == "1"
    md = out["md"].read_text()
    assert "max_new_tokens=7" in md and "transformers" in md and "leaderboard.png" in md
    assert out["png"].stat().st_size > 1000
    sheet = list(csv.DictReader(out["sheet"].open(encoding="utf-8-sig")))
    assert len(sheet) == 12 and sheet[0]["human_score"] == ""


# ---- staleness -------------------------------------------------------------------------------

def jobs(models, suites, rules=("qualitative_answer", "qualitative_score")) -> set:
    return {(r, f"model={m}, suite={s}") for r in rules for m in models for s in suites}


def test_a_change_reruns_only_the_jobs_it_affects(models, tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    for k in ("chat", "base"):
        shutil.copytree(models[k], wd / "models" / k)
    cfg = yaml.safe_load((wd / "config/config.yaml").read_text())
    cfg["baselines"] = {"tiny-a": {"model": "models/chat"}, "tiny-b": {"model": "models/base"}}
    cfg["qualitative"] = {"models": ["tiny-a", "tiny-b"], "decoding": {"max_new_tokens": 3}}

    def write(c):
        (wd / "config/config.yaml").write_text(yaml.safe_dump(c, sort_keys=False))

    write(cfg)
    target = "results/reports/qualitative/qualitative.md"
    snakemake(wd, target, timeout=600)
    assert (wd / "results/qualitative/tiny-b/en.scores.jsonl").is_file()
    assert scheduled(wd, target) == set()
    report = {("qualitative_report", "")}
    both, ab = ("it", "en"), ("tiny-a", "tiny-b")

    c = copy.deepcopy(cfg)  # a decoding setting: every answer, every score
    c["qualitative"]["decoding"]["repetition_penalty"] = 1.2
    write(c)
    assert scheduled(wd, target) == jobs(ab, both) | report

    c = copy.deepcopy(cfg)  # a judge: every score, no answer
    c["qualitative"]["judge"] = {"url": "http://127.0.0.1:9", "model": "judge"}
    write(c)
    assert scheduled(wd, target) == jobs(ab, both, ["qualitative_score"]) | report

    c = copy.deepcopy(cfg)  # another model under one name: its answers and scores only
    c["baselines"]["tiny-b"] = {"model": "models/chat"}
    write(c)
    assert scheduled(wd, target) == jobs(["tiny-b"], both) | report
    write(cfg)

    sheet = wd / "config/qualitative/human_scores.csv"  # one filled row: that score job only
    sheet.write_text("model,language,task,human_score\ntiny-a,en,identity,3\n")
    assert scheduled(wd, target) == jobs(["tiny-a"], ["en"], ["qualitative_score"]) | report
    sheet.unlink()

    suite = wd / "config/qualitative/en.yaml"  # one suite: its jobs only
    suite.write_text(suite.read_text() + "\n# an edit\n")
    assert scheduled(wd, target) == jobs(ab, ["en"]) | report
