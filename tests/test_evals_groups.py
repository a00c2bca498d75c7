"""zflow.evals: lm-eval groups (aggregate, no aggregate, nested) run for real on a tiny model.

The model and its tokenizer are built here (random weights, a byte-level BPE trained on a few
sentences); the tasks are tests/data/group_tasks, localized as the eval job does (evals.localize_tasks).
Everything runs offline on the CPU in a few seconds.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from zflow import evals
from zflow.evals import EvalError

REPO = Path(__file__).resolve().parents[1]
TASKS = REPO / "tests" / "data" / "group_tasks"
ROWS = {"mini_group_it_capitali": "capitali.jsonl", "mini_group_it_animali": "animali.jsonl",
        "mini_group_it_colori": "colori.jsonl"}
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}


def rows(task: str) -> int:
    return sum(1 for line in (TASKS / ROWS[task]).read_text().splitlines() if line.strip())


def _tiny_model(d: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<eos>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    text = [json.loads(line)["query"] + " " + " ".join(json.loads(line)["choices"])
            for f in ROWS.values() for line in (TASKS / f).read_text().splitlines()]
    tok.train_from_iterator(text, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<eos>", eos_token="<eos>",
                                   pad_token="<pad>")
    fast.save_pretrained(d)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                      max_position_embeddings=256, bos_token_id=fast.bos_token_id,
                      eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(d)


@pytest.fixture(scope="module")
def lm_eval_run(tmp_path_factory):
    """run(name) -> simple_evaluate's output for tasks=[name], as run_lm_eval.py calls it."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in OFFLINE.items():
            mp.setenv(k, v)
        import torch

        torch.set_num_threads(2)
        import lm_eval
        from lm_eval.tasks import TaskManager

        model = tmp_path_factory.mktemp("tiny-llama")
        _tiny_model(model)
        tasks = tmp_path_factory.mktemp("tasks")
        evals.localize_tasks(TASKS, tasks)
        tm = TaskManager(include_path=str(tasks), include_defaults=False)
        cache: dict[str, dict] = {}

        def run(name: str) -> dict:
            if name not in cache:
                cache[name] = lm_eval.simple_evaluate(
                    model="hf", model_args={"pretrained": str(model), "dtype": "float32"},
                    tasks=[name], num_fewshot=0, batch_size=1, device="cpu", task_manager=tm,
                    log_samples=False, random_seed=0, numpy_random_seed=1234,
                    torch_random_seed=1234, fewshot_random_seed=1234)
            return cache[name]

        yield run


def _record(tmp_path: Path, summary: dict, task: str) -> dict:
    """Round trip through a JSON file, as results/evals/<model>/<task>.json."""
    f = tmp_path / f"{task}.json"
    f.write_text(json.dumps({"task": task, **summary}))
    return evals.read(f)


def _weighted(entries: list[dict]) -> float:
    return sum(e["value"] * e["n"] for e in entries) / sum(e["n"] for e in entries)


def _check_leaf(e: dict) -> None:
    assert 0.0 <= e["value"] <= 1.0, e
    assert isinstance(e["stderr"], float) and math.isfinite(e["stderr"]), e
    assert e["n"] == rows(e["name"]), e


# ------------------------------------------------------------------------------------------------
# find_task_files


def test_find_task_files_tasks_and_groups(tmp_path):
    assert evals.find_task_files(TASKS, "mini_group_it") == [TASKS / "_mini_group_it.yaml"]
    assert evals.find_task_files(TASKS, "mini_group_noagg_it") == [TASKS / "_mini_group_noagg_it.yaml"]
    assert evals.find_task_files(TASKS, "mini_group_nested_it") == [
        TASKS / "_mini_group_nested_it.yaml"]
    # a task with a !function tag, its other keys coming from an include
    assert evals.find_task_files(TASKS, "mini_group_it_colori") == [
        TASKS / "mini_group_it_colori.yaml"]
    for absent in ("_mini_template", "mini_group", "Mini group (it)", "utils"):
        assert evals.find_task_files(TASKS, absent) == []

    d = tmp_path / "tasks"
    shutil.copytree(TASKS, d)
    (d / "sub" / "deeper").mkdir(parents=True)
    (d / "sub" / "deeper" / "g.yaml").write_text("group: deep_group\ntask: [mini_group_it_colori]\n")
    (d / "broken.yaml").write_text("task: broken\n  bad: [indent\n")
    (d / "other_tag.yaml").write_text("task: tagged\ndoc_to_text: !other {a: 1}\n")
    (d / "dict_group.yaml").write_text("group: {name: dict_group}\ntask: [x]\n")
    (d / "list_task.yaml").write_text("task: [list_task]\n")
    (d / "old_style.yaml").write_text("group: old_group\ntask: old_task\n")
    (d / "missing_include.yaml").write_text("include: nowhere.yaml\ntask: orphan\n")
    (d / "__pycache__").mkdir()
    (d / "__pycache__" / "hidden.yaml").write_text("task: hidden\n")
    assert evals.find_task_files(d, "deep_group") == [d / "sub" / "deeper" / "g.yaml"]
    assert evals.find_task_files(d, "tagged") == [d / "other_tag.yaml"]
    assert evals.find_task_files(d, "broken") == []
    # lm-eval skips dict / list names, and reads "group: + task: <str>" as a group only
    assert evals.find_task_files(d, "list_task") == []
    assert evals.find_task_files(d, "old_group") == [d / "old_style.yaml"]
    assert evals.find_task_files(d, "old_task") == []
    assert evals.find_task_files(d, "orphan") == []
    assert evals.find_task_files(d, "hidden") == []


def test_find_task_files_agrees_with_lm_eval_index(tmp_path):
    from lm_eval.tasks._index import Kind, TaskIndex

    d = tmp_path / "tasks"
    shutil.copytree(TASKS, d)
    (d / "old_style.yaml").write_text("group: old_group\ntask: old_task\n")
    (d / "dict_group.yaml").write_text("group: {name: dict_group}\ntask: [x]\n")
    index = {k: e for k, e in TaskIndex.build([d]).items() if e.kind != Kind.TAG}
    assert set(index) == {"mini_group_it", "mini_group_noagg_it", "mini_group_nested_it",
                          "mini_group_it_capitali", "mini_group_it_animali",
                          "mini_group_it_colori", "old_group"}
    for name, entry in index.items():
        assert evals.find_task_files(d, name)[0].resolve() == Path(entry.yaml_path).resolve()


# ------------------------------------------------------------------------------------------------
# summarize on real lm-eval output


def test_group_with_aggregate(lm_eval_run, tmp_path):
    out = lm_eval_run("mini_group_it")
    assert out["group_subtasks"] == {"mini_group_it": ["mini_group_it_capitali",
                                                       "mini_group_it_animali"]}
    s = evals.summarize(out, "mini_group_it")
    assert s["is_group"] is True
    assert set(s["metrics"]) == {"acc"} and set(s["stderr"]) == {"acc"}
    assert [(e["name"], e["metric"]) for e in s["subtasks"]] == [
        ("mini_group_it_capitali", "acc"), ("mini_group_it_capitali", "acc_norm"),
        ("mini_group_it_animali", "acc")]
    for e in s["subtasks"]:
        _check_leaf(e)
        assert e["is_group"] is False and e["parent"] == "mini_group_it"
    accs = [e for e in s["subtasks"] if e["metric"] == "acc"]
    assert s["metrics"]["acc"] == pytest.approx(_weighted(accs))  # aggregate: mean, weight_by_size
    assert s["metrics"]["acc"] == out["results"]["mini_group_it"]["acc,none"]
    assert s["n"] == rows("mini_group_it_capitali") + rows("mini_group_it_animali")

    rec = _record(tmp_path, s, "it_group")
    assert evals.value(rec, "acc") == s["metrics"]["acc"]
    cap = {e["metric"]: e["value"] for e in s["subtasks"]
           if e["name"] == "mini_group_it_capitali"}
    assert evals.value(rec, "acc", "mini_group_it_capitali") == cap["acc"]
    assert evals.value(rec, "acc_norm", "mini_group_it_capitali") == cap["acc_norm"]
    # animali reports acc only: asking for acc_norm falls back to it
    assert evals.value(rec, "acc_norm", "mini_group_it_animali") == accs[1]["value"]
    with pytest.raises(EvalError) as e:
        evals.value(rec, "f1", "mini_group_it_capitali")
    for word in ("it_group", "mini_group_it_capitali", "f1", "acc", "acc_norm"):
        assert word in str(e.value)
    with pytest.raises(EvalError, match="acc_norm.*it has: acc"):
        evals.value(rec, "acc_norm")
    with pytest.raises(EvalError, match="no subtask 'nope'.*mini_group_it_animali"):
        evals.value(rec, "acc", "nope")


def test_group_without_aggregate(lm_eval_run, tmp_path):
    out = lm_eval_run("mini_group_noagg_it")
    assert "groups" not in out  # lm-eval leaves the key out when no group aggregates
    assert set(out["results"]["mini_group_noagg_it"]) == {"alias", "name"}
    s = evals.summarize(out, "mini_group_noagg_it")
    assert s["is_group"] is True and s["metrics"] == {} and s["stderr"] == {}
    assert [(e["name"], e["metric"]) for e in s["subtasks"]] == [
        ("mini_group_it_animali", "acc"), ("mini_group_it_colori", "acc")]
    for e in s["subtasks"]:
        _check_leaf(e)
    assert s["n"] == rows("mini_group_it_animali") + rows("mini_group_it_colori")

    rec = _record(tmp_path, s, "noagg")
    assert evals.value(rec, "acc", "mini_group_it_colori") == s["subtasks"][1]["value"]
    with pytest.raises(EvalError, match="noagg.*no metric 'acc'.*pick a subtask"):
        evals.value(rec, "acc")


def test_nested_group(lm_eval_run):
    out = lm_eval_run("mini_group_nested_it")
    s = evals.summarize(out, "mini_group_nested_it")
    assert s["is_group"] is True
    assert [(e["name"], e["metric"], e["is_group"], e["parent"]) for e in s["subtasks"]] == [
        ("mini_group_it", "acc", True, "mini_group_nested_it"),
        ("mini_group_it_capitali", "acc", False, "mini_group_it"),
        ("mini_group_it_capitali", "acc_norm", False, "mini_group_it"),
        ("mini_group_it_animali", "acc", False, "mini_group_it"),
        ("mini_group_it_colori", "acc", False, "mini_group_nested_it")]
    leaves = [e for e in s["subtasks"] if not e["is_group"]]
    for e in leaves:
        _check_leaf(e)
    leaf_acc = [e for e in leaves if e["metric"] == "acc"]
    assert s["metrics"]["acc"] == pytest.approx(_weighted(leaf_acc))
    sub = s["subtasks"][0]
    assert sub["value"] == pytest.approx(_weighted(leaf_acc[:2]))
    assert sub["n"] == rows("mini_group_it_capitali") + rows("mini_group_it_animali")
    assert s["n"] == sum(rows(t) for t in ROWS)
    # the inner group's summary from the same output is the one it has when run alone
    inner = evals.summarize(out, "mini_group_it")
    assert inner["metrics"] == pytest.approx(
        evals.summarize(lm_eval_run("mini_group_it"), "mini_group_it")["metrics"])


def test_plain_task(lm_eval_run):
    out = lm_eval_run("mini_group_it_colori")
    s = evals.summarize(out, "mini_group_it_colori")
    assert s["is_group"] is False and s["subtasks"] == []
    assert set(s["metrics"]) == {"acc"} and set(s["stderr"]) == {"acc"}
    assert 0.0 <= s["metrics"]["acc"] <= 1.0
    assert s["n"] == rows("mini_group_it_colori")
    with pytest.raises(EvalError, match="no results for 'mini_group_it'"):
        evals.summarize(out, "mini_group_it")


# ------------------------------------------------------------------------------------------------
# units: filters, parse_column, value, read


def test_summarize_filters_and_non_numbers():
    out = {"results": {"t": {"name": "t", "alias": "t", "sample_len": 7,
                             "exact_match,strict-match": 0.25, "exact_match_stderr,strict-match": 0.1,
                             "exact_match,flexible-extract": 0.5,
                             "exact_match_stderr,flexible-extract": "N/A",
                             "f1,none": "N/A", "bleu,none": float("nan"), "acc,none": 1}},
           "group_subtasks": {}, "n-samples": {"t": {"original": 9, "effective": 7}}}
    s = evals.summarize(out, "t")
    assert s["metrics"] == {"exact_match,strict-match": 0.25,
                            "exact_match,flexible-extract": 0.5, "acc": 1.0}
    assert s["stderr"] == {"exact_match,strict-match": 0.1}
    assert s["n"] == 7
    rec = {"task": "t", **s}
    assert evals.value(rec, "exact_match,flexible-extract") == 0.5
    with pytest.raises(EvalError, match="no metric 'exact_match'"):  # two filters: ambiguous
        evals.value(rec, "exact_match")
    one = {"task": "t", "metrics": {"exact_match,strict-match": 0.25}, "subtasks": []}
    assert evals.value(one, "exact_match") == 0.25  # a bare name finds its only filter


def test_parse_column():
    assert evals.parse_column("arc_it") == ("arc_it", None)
    assert evals.parse_column("evalita/evalita-mp_te") == ("evalita", "evalita-mp_te")
    assert evals.parse_column(" pt_leaderboard / assin2_rte ") == ("pt_leaderboard", "assin2_rte")
    for bad in ("", "/x", "t/", "  "):
        with pytest.raises(EvalError, match="bad column reference"):
            evals.parse_column(bad)


def test_value_and_read(tmp_path):
    rec = {"task": "g", "metrics": {"acc": 0.5, "bad": float("nan")},
           "subtasks": [{"name": "a", "metric": "acc", "value": 0.25, "stderr": None, "n": 4},
                        {"name": "a", "metric": "acc_norm", "value": 0.75, "stderr": None, "n": 4},
                        {"name": "b", "metric": "f1", "value": 0.125, "stderr": None, "n": 2},
                        {"name": "c", "metric": "acc", "value": None, "stderr": None, "n": 2}]}
    assert evals.value(rec, "acc") == 0.5
    assert evals.value(rec, "acc", "a") == 0.25
    assert evals.value(rec, "acc_norm", "a") == 0.75
    assert evals.value(rec, "acc", "b") == 0.125  # b's only metric
    with pytest.raises(EvalError, match=r"task g, subtask a: no metric 'f1'.*acc, acc_norm"):
        evals.value(rec, "f1", "a")
    with pytest.raises(EvalError, match=r"task g: metric 'bad' is not a finite number"):
        evals.value(rec, "bad")
    with pytest.raises(EvalError, match=r"task g, subtask c: metric 'acc' is not a finite"):
        evals.value(rec, "acc", "c")
    with pytest.raises(EvalError, match=r"task g: no metric 'f1' \(it has: acc, bad\)"):
        evals.value(rec, "f1")

    old = tmp_path / "old.json"  # written before groups: no "subtasks"
    old.write_text(json.dumps({"task": "arc_it", "metric": "acc", "value": 0.3,
                               "metrics": {"acc": 0.3, "acc_norm": 0.4}}))
    r = evals.read(old)
    assert r["subtasks"] == [] and evals.value(r, "acc_norm") == 0.4
    with pytest.raises(EvalError, match="arc_it.*no subtask 'x'.*none"):
        evals.value(r, "acc", "x")
    for name, text in [("nometrics.json", '{"task": "t"}'), ("list.json", "[1]"),
                       ("trunc.json", '{"metrics": {'), ("subs.json", '{"metrics": {}, "subtasks": 3}')]:
        (tmp_path / name).write_text(text)
        with pytest.raises(EvalError, match=name):
            evals.read(tmp_path / name)
    with pytest.raises(EvalError, match="missing.json"):
        evals.read(tmp_path / "missing.json")


# ------------------------------------------------------------------------------------------------
# the eval job (run_lm_eval.py) on a group, and the tables reading one subtask


def test_eval_job_keeps_the_group_and_every_subtask(tmp_path, monkeypatch):
    """Defect: a local group was dropped to results[<group>]; its subtasks' metrics were lost."""
    from run_lm_eval import main

    for k, v in OFFLINE.items():
        monkeypatch.setenv(k, v)
    _tiny_model(tmp_path / "model")
    spec = {"model": "tiny", "model_path": str(tmp_path / "model"), "step": None,
            "task": "group_it", "lm_eval_task": "mini_group_it", "include_path": str(TASKS),
            "num_fewshot": 0, "metric": "acc", "limit": None, "apply_chat_template": False,
            "batch_size": 1, "max_batch_size": 8, "device": "cpu", "dtype": "float32",
            "bootstrap_iters": 1000, "reproduce_seed_command": False,
            "output": str(tmp_path / "evals/tiny/group_it.json"), "keyed_on": {"model": "x"}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    main(["--spec", str(tmp_path / "spec.json")])
    rec = evals.read(tmp_path / "evals/tiny/group_it.json")
    assert rec["is_group"] is True and rec["value"] == rec["metrics"]["acc"]
    names = {(e["name"], e["metric"]) for e in rec["subtasks"]}
    assert names == {("mini_group_it_capitali", "acc"), ("mini_group_it_capitali", "acc_norm"),
                     ("mini_group_it_animali", "acc")}
    for e in rec["subtasks"]:
        _check_leaf(e)
    accs = [e for e in rec["subtasks"] if e["metric"] == "acc"]
    assert rec["metrics"]["acc"] == pytest.approx(_weighted(accs))
    assert rec["n_samples"]["effective"] == sum(e["n"] for e in accs)
    assert rec["keyed_on"] == {"model": "x"} and rec["versions"]["lm_eval"]

    # a table column names the aggregate or one subtask (report.py's progression table)
    from report import build_rows

    cols = [("group_it", "Gruppo", "acc"), ("group_it/mini_group_it_animali", "Animali", "acc")]
    row = build_rows(cols, [rec])[0]
    assert row["group_it"] == rec["metrics"]["acc"]
    assert row["group_it/mini_group_it_animali"] == accs[1]["value"]
    assert row["media"] == pytest.approx((accs[1]["value"] + rec["metrics"]["acc"]) / 2)
