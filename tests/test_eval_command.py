"""The command printed under every table (zflow.tables.command / provenance) gives the eval JSON's
numbers: the workflow's eval job (run_lm_eval.py) runs on a tiny model, then the printed command,
the model path put in for ``<model>``, runs through the real ``lm_eval`` command line from the
checkout root, and every metric of the task, the group and each subtask is the same.

Cases: the group mini_evalita from the checkout's own task folder (resources/eval_tasks, whose
YAMLs name their data files relative to themselves), and a log-likelihood task in a user's own
task folder outside the checkout. The group runs on one document per subtask: lm_eval's command
line always draws 100000 bootstrap samples for an F1 subtask's stderr (minutes on a CPU; the job
draws eval.bootstrap_iters), and lm-eval computes no stderr from a single document.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time

import pytest
import yaml
from conftest import REPO, env
from test_evals_groups import OFFLINE, _tiny_model

import run_lm_eval
from zflow import evals, tables
from zflow.plan import Plan

EMBEDDED = yaml.safe_load((REPO / "config/config.yaml").read_text())


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-model")
    _tiny_model(d)
    return d


# run_lm_eval.main sets torch's thread count: conftest's torch_threads puts it back
pytestmark = pytest.mark.usefixtures("torch_threads")


def eval_job(tmp_path, monkeypatch, model, task: str, limit, **over) -> dict:
    """run_lm_eval.main, from the checkout root as the workflow runs it, with the spec zflow.plan
    makes for a checkpoint of the embedded default (its include_path relative to the checkout),
    the tiny model in place of the checkpoint."""
    for k, v in OFFLINE.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(REPO)
    spec = Plan(EMBEDDED, base=REPO, check_files=False).spec(
        "evaluate", model="ita-step50", task=task)
    spec.update(model_path=str(model), limit=limit, output=str(tmp_path / "evals" / f"{task}.json"),
                **over)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    t0 = time.time()
    run_lm_eval.main(["--spec", str(tmp_path / "spec.json"), "--threads", "2"])
    print(f"eval job {task}: {time.time() - t0:.1f} s")
    rec = evals.read(spec["output"])
    assert not evals.is_failure(rec), rec
    return rec


def printed_command(rec: dict, model) -> str:
    """The table's command for this record (provenance: ``<model>`` for the model), with the
    model's path put in."""
    block = re.search(r"```\n(.*?)\n```", tables.provenance([rec]), re.S).group(1)
    assert block.count("\n") == 0, block  # one command per task
    assert block.count("<model>") == 1
    cmd = block.replace("<model>", shlex.quote(str(model)))
    assert cmd == tables.command(rec)
    return cmd


def run_command(cmd: str, tmp_path) -> dict:
    """``cmd`` through bash from the checkout root (the mktemp copy in ``tmp_path``), its results
    file (``--output_path``) read back."""
    out = tmp_path / "cli"
    e = {**env(), **OFFLINE, "TMPDIR": str(tmp_path)}
    t0 = time.time()
    p = subprocess.run(["bash", "-c", f"{cmd} --output_path {shlex.quote(str(out))}"], cwd=REPO,
                       env=e, capture_output=True, text=True, timeout=600)
    print(f"printed command: {time.time() - t0:.1f} s")
    assert p.returncode == 0, f"{cmd}\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
    found = sorted(out.glob("**/results_*.json"))
    assert len(found) == 1, found
    return json.loads(found[0].read_text())


def assert_same_numbers(rec: dict, cli: dict, stderr: bool) -> None:
    """Every metric of the record (the task's or group's own, each subtask's) equals the command
    line's, and so does the number of documents; ``stderr``: the standard errors too."""
    task = rec["lm_eval_task"]
    got = evals.summarize(cli, task)
    assert got["is_group"] == rec["is_group"]
    assert got["metrics"] == rec["metrics"] and rec["metrics"]
    assert got["n"] == rec["n_samples"]["effective"]
    key = lambda e: (e["name"], e["metric"])  # noqa: E731
    want = {key(e): e for e in rec["subtasks"]}
    have = {key(e): e for e in got["subtasks"]}
    assert have.keys() == want.keys()
    for k, e in want.items():
        assert (have[k]["value"], have[k]["n"]) == (e["value"], e["n"]), k
        if stderr:
            assert have[k]["stderr"] == e["stderr"], k
    if stderr:
        assert got["stderr"] == rec["stderr"]
    # the task's (group's) raw row too: every "<metric>,<filter>" value lm-eval reported
    raw = {k: v for k, v in rec["lm_eval_results"].items() if "," in k and "_stderr" not in k}
    assert raw and all(cli["results"][task][k] == v for k, v in raw.items()), raw


def test_group_mini_evalita_from_the_checkout(tmp_path, monkeypatch, model):
    rec = eval_job(tmp_path, monkeypatch, model, "evalita", limit=1)
    assert rec["include_path"] == "resources/eval_tasks"
    assert rec["localized_data_files"]  # the checkout's task YAMLs name their data relatively
    assert rec["is_group"] and len({e["name"] for e in rec["subtasks"]}) == 6
    cmd = printed_command(rec, model)
    assert cmd.startswith("T=$(mktemp -d) && PYTHONPATH=workflow/scripts python -m zflow.evals "
                          'localize resources/eval_tasks "$T" && lm_eval --model hf ')
    assert "--tasks mini_evalita --num_fewshot 0 --include_path \"$T\"" in cmd
    assert "--limit 1" in cmd and "dtype=float32" in cmd
    assert f"--batch_size {rec['settings']['batch_size']} --device cpu" in cmd
    cli = run_command(cmd, tmp_path)
    assert_same_numbers(rec, cli, stderr=False)  # one document: no stderr either way


def test_log_likelihood_task_from_a_users_own_folder(tmp_path, monkeypatch, model):
    """A folder outside the checkout (a space in its path), the task one level down, its data in
    a folder beside the YAML (named relative to the YAML, as the job reads it)."""
    user = tmp_path / "my tasks"
    (user / "arc" / "data").mkdir(parents=True)
    shutil.copy(REPO / "resources/eval_tasks/mini_arc_it/test.jsonl", user / "arc/data/rows.jsonl")
    cfg = yaml.safe_load((REPO / "resources/eval_tasks/mini_arc_it/mini_arc_it.yaml").read_text())
    cfg.update(task="my_arc", dataset_kwargs={"data_files": {"test": "data/rows.jsonl"}})
    (user / "arc" / "my_arc.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    rec = eval_job(tmp_path, monkeypatch, model, "arc_it", limit=12, include_path=str(user),
                   lm_eval_task="my_arc")
    assert rec["localized_data_files"] == ["arc/my_arc.yaml"]
    assert rec["metrics"].keys() == {"acc", "acc_norm"} and rec["n_samples"]["effective"] == 12
    cmd = printed_command(rec, model)
    assert f"localize {shlex.quote(str(user))} \"$T\" && " in cmd
    assert "--tasks my_arc --num_fewshot 0" in cmd and "--limit 12" in cmd
    assert_same_numbers(rec, run_command(cmd, tmp_path), stderr=True)


def test_a_folder_without_local_data_runs_as_it_is():
    """No relative data_files (hub data sets, absolute paths): no copy, the folder itself."""
    rec = {"model_path": "m", "lm_eval_task": "ifeval-ita", "include_path": "tasks/ifeval-ita",
           "localized_data_files": [], "num_fewshot": 0, "limit": None,
           "settings": {"dtype": "bfloat16", "batch_size": "auto", "max_batch_size": 64,
                        "device": "cuda:0", "apply_chat_template": True, "bootstrap_iters": 100000}}
    assert tables.command(rec, "<model>") == (
        "lm_eval --model hf --model_args pretrained=<model>,dtype=bfloat16 --tasks ifeval-ita "
        "--num_fewshot 0 --include_path tasks/ifeval-ita --apply_chat_template "
        "--fewshot_as_multiturn false --batch_size auto --max_batch_size 64 --device cuda:0 "
        "--seed 0,1234,1234,1234")
    assert "Bootstrap:" not in tables.provenance([rec])
    # a record written before localized_data_files: the copy, which reproduces either way
    old = {k: v for k, v in rec.items() if k != "localized_data_files"}
    assert tables.command(old).startswith("T=$(mktemp -d) && ")
