"""Score one answers file of the qualitative benchmark: the scores JSONL and its scoring sheet.

Each answer's visible text (reasoning blocks cut) gets the task's rule score (zflow.checks), a
judge's score (zflow.judge: an OpenAI-compatible endpoint, or a model of the registry served by
``transformers serve`` on 127.0.0.1 for the length of this job, zflow.serve; a reply without one
``SCORE: n`` line is asked again, then marked ``unparsed``, never guessed) and, where the filled
scoring sheet (spec ``sheet``) holds one, a person's score, which wins (zflow.scoresheet.combine).
The job's scoring sheet (answers, rubric, flags, rule and judge scores) is written beside it.

Each record: model, suite, task, category, the answer's visible text, flags, latency and tokens,
``rule_score`` with every check, ``judge`` (score, status, every raw reply, the prompt, model and
settings), ``human_score``, ``score`` and its ``source``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from zflow import checks, judge, scoresheet
from zflow.endpoint import chat
from zflow.io import spec_cli, write_text
from zflow.qualitative import load_suite, visible_text


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip()]


def human_scores(spec: dict) -> dict:
    """{task: score} of this model and suite in the filled sheet (none when it does not exist)."""
    sheet = spec["sheet"]
    if not sheet or not Path(sheet).is_file():
        return {}
    return {t: v for (m, s, t), v in scoresheet.read_sheet(sheet).items()
            if m == spec["model"] and s == spec["suite"]}


@contextlib.contextmanager
def judge_client(spec: dict, threads: int):
    """Yield (client(messages) -> chat result, the judge's record) or (None, None)."""
    j = spec["judge"]
    if not j:
        yield None, None
        return
    settings = {"max_tokens": j["max_tokens"], "temperature": j["temperature"], "seed": j["seed"],
                "retries": j["retries"]}
    about = {"kind": j["kind"], **settings, "system_prompt": judge.SYSTEM}

    def client_for(url: str, model: str, api_key_env):
        return lambda messages: chat(url, model, messages, max_tokens=j["max_tokens"],
                                     temperature=j["temperature"], seed=j["seed"],
                                     timeout=spec["timeout_s"], retries=spec["request_retries"],
                                     api_key_env=api_key_env)

    if j["kind"] == "endpoint":
        yield client_for(j["url"], j["model"], j["api_key_env"]), {
            **about, "url": j["url"], "model": j["model"]}
        return
    from zflow.serve import local_server

    device = spec["device"]  # `transformers serve --device auto` picks a GPU when there is one
    with local_server(j["path"], device=device, dtype=spec["dtype"], threads=threads,
                      startup_timeout=j["startup_timeout_s"]) as url:
        yield client_for(url, j["path"], None), {
            **about, "model": j["name"], "path": j["path"], "server": "transformers serve",
            "device": device}


def conversation(answer: dict, tags) -> list[dict]:
    """The user turns with the earlier replies' visible text: what the judge reads."""
    msgs = []
    for i, turn in enumerate(answer["turns"]):
        msgs.append({"role": "user", "content": turn})
        if i < len(answer["turns"]) - 1:
            msgs.append({"role": "assistant",
                         "content": visible_text(answer["replies"][i]["text"], tags)})
    return msgs


def score(answer: dict, task, client, about, human: dict, tags) -> dict:
    visible = visible_text(answer["answer"] or "", tags)
    results = checks.run_checks(task, visible) if task.checks else []
    rule = checks.rule_score(task, visible)
    verdict = None
    if client:
        turns = conversation(answer, tags)
        verdict = {**judge.judge(client, task, turns, visible, task.language, about["retries"]),
                   "prompt": judge.judge_prompt(task, turns, visible, task.language)[1]["content"]}
    judged = verdict["score"] if verdict else None
    final, source = scoresheet.combine(rule, judged, human.get(task.id))
    return {"model": answer["model"], "suite": answer["suite"], "task": task.id,
            "category": task.category, "expected_language": task.language,
            "turns": answer["turns"], "answer": answer["answer"], "visible": visible,
            "flags": answer["flags"], "latency_s": answer["latency_s"],
            "latency_total_s": answer["latency_total_s"],
            "tokens_generated": answer["tokens_generated"],
            "tokens_per_s": answer.get("tokens_per_s"), "finish_reason": answer["finish_reason"],
            "rule_score": rule, "checks": results, "judge": verdict, "judge_score": judged,
            "human_score": human.get(task.id), "score": final, "source": source,
            "rubric": list(task.rubric), "run": answer["run"]}


def main(argv=None) -> None:
    spec, args = spec_cli(__doc__, argv)
    tasks = {t.id: t for t in load_suite(spec["suite_file"])}
    answers = read_jsonl(spec["answers"])
    human = human_scores(spec)
    tags = tuple(spec["reasoning_tags"])
    with judge_client(spec, args.threads) as (client, about):
        records = []
        for a in answers:
            r = score(a, tasks[a["task"]], client, about, human, tags)
            print(f"{r['task']}: rule {r['rule_score']}, judge {r['judge_score']} "
                  f"({(r['judge'] or {}).get('status', 'no judge')}), human {r['human_score']}"
                  f" -> {r['score']} ({r['source']})", file=sys.stderr, flush=True)
            records.append({**r, "judge_settings": about})
    out = spec["outputs"]
    write_text(out["scores"], "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    scoresheet.write_sheet(out["sheet"], [{**r, "language": r["suite"]} for r in records])


if __name__ == "__main__":
    main()
