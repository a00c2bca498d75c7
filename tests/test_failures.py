"""Failures stay local: a failed eval leaves every other eval and the report done, is listed with
its log under each table reading it, and is run again by the next invocation; an out-of-memory is
retried by Snakemake with half the batch."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_workflow, load_config, scheduled, snakemake, spine, write_config

sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from zflow import evals  # noqa: E402

import run_lm_eval  # noqa: E402

EVALS = "results/evals/ita-step20"
LOG = "results/logs/evals/ita-step20/broken.log"


def broken_task(wd: Path) -> Path:
    """An lm-eval task (a copy of mini_arc_it) whose dataset file does not exist."""
    d = wd / "resources" / "broken_tasks" / "mini_broken"
    d.mkdir(parents=True)
    doc = yaml.safe_load((wd / "resources/eval_tasks/mini_arc_it/mini_arc_it.yaml").read_text())
    doc["task"] = "mini_broken"
    doc["dataset_kwargs"]["data_files"]["test"] = "missing.jsonl"
    (d / "mini_broken.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return d


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """One checkpoint (step 20) on three tasks, one of which cannot load its data."""
    wd = copy_workflow(tmp_path_factory.mktemp("failures") / "wf")
    cfg = spine(load_config(wd))
    task_dir = broken_task(wd)
    cfg["tasks"]["broken"] = {"lm_eval_task": "mini_broken",
                              "include_path": "resources/broken_tasks", "metric": "acc_norm"}
    lc = cfg["languages"]["ita"]
    lc["pretrain"].pop("stages", None)  # one data stage: the default's second starts at step 150
    lc["pretrain"].update(train_steps=20, checkpoint_interval=20, lr_warmup_steps=5,
                          lr_decay_starting_step=10, lr_decay_steps=10)
    lc["eval"].update(tasks=["arc_it", "hellaswag_it", "broken"], checkpoints=[20])
    cfg["tables"] = {"failing": {"kind": "models", "lang": "ita", "title": "Two tasks, one failed",
                                 "models": ["ita-step20"], "columns": ["arc_it", "broken"]}}
    write_config(wd, cfg)
    p = snakemake(wd, "all", "--printshellcmds")
    return wd, p, task_dir


def test_failed_eval_leaves_the_others_and_the_report_done(failed_run):
    wd, p, _ = failed_run
    for task in ("arc_it", "hellaswag_it"):
        rec = evals.read(wd / EVALS / f"{task}.json")
        assert rec.get("status") != evals.FAILED and 0 <= rec["value"] <= 1, rec
    fail = json.loads((wd / EVALS / "broken.json").read_text())
    assert fail["status"] == "failed" and fail["model"] == "ita-step20" and fail["task"] == "broken"
    assert "missing.jsonl" in fail["error"] and not fail["out_of_memory"], fail
    assert fail["log"] == LOG
    log = (wd / LOG).read_text()
    assert "Traceback" in log and "FAILED" in log and fail["error"] in log
    # the readers: the failure is missing, not a value
    rec = evals.read(wd / EVALS / "broken.json")
    with pytest.raises(evals.EvalError, match="failed"):
        evals.value(rec, "acc_norm")
    # the batch size of the first attempt, and two OOM retries left, on the job's command line
    assert "--batch-size 32 --max-batch-size 32 --retries-left 2" in p.stdout + p.stderr

    listed = f"- ita-step20 × broken: {fail['error']} (log: `{LOG}`)"
    prog = (wd / "results/reports/ita/progression.md").read_text()
    header = next(ln for ln in prog.splitlines() if ln.startswith("| Checkpoint"))
    row = next(ln for ln in prog.splitlines() if ln.startswith("| 20 |"))
    cells = dict(zip([c.strip() for c in header.strip("|").split("|")],
                     [c.strip() for c in row.strip("|").split("|")]))
    arc = evals.read(wd / EVALS / "arc_it.json")["value"]
    hs = evals.read(wd / EVALS / "hellaswag_it.json")["value"]
    assert cells["broken (acc_norm)"] == "—", cells
    assert cells["arc_it (acc_norm)"] == f"{arc:.4f}"
    assert cells["Media"] == f"{(arc + hs) / 2:.4f}"  # the mean of the evals that ran
    assert listed in prog
    with open(wd / "results/reports/ita/progression.csv", newline="") as f:
        assert next(csv.DictReader(f))["broken"] == ""

    table = (wd / "results/reports/ita/tables/failing.md").read_text()
    assert f"| ita-step20 | {arc:.4f} | — | {arc:.4f} |" in table, table
    assert listed in table

    report = (wd / "results/reports/report.md").read_text()
    assert "## Failed evals" in report and report.count(listed) == 3  # on top, under 2 tables
    with open(wd / "results/reports/evals.csv", newline="") as f:
        rows = {r["task"]: r for r in csv.DictReader(f)}
    assert rows["broken"]["value"] == "" and LOG in rows["broken"]["failed"]
    assert rows["arc_it"]["failed"] == "" and float(rows["arc_it"]["value"]) == pytest.approx(arc)


def test_next_invocation_retries_the_failed_eval_only(failed_run):
    wd, _, task_dir = failed_run
    fail = json.loads((wd / EVALS / "broken.json").read_text())
    assert scheduled(wd, "all") == {("evaluate", "model=ita-step20, task=broken"),
                                    ("report", "lang=ita"), ("table", "lang=ita, table=failing"),
                                    ("report_md", ""), ("all", "")}

    # the data comes back: the re-run writes a result (keeping the failure's token in its spec),
    # the failure is gone from the report, and nothing is left to do
    src = wd / "resources/eval_tasks/mini_arc_it/test.jsonl"
    (task_dir / "missing.jsonl").write_text(src.read_text())
    snakemake(wd, "all")
    rec = evals.read(wd / EVALS / "broken.json")
    assert not evals.is_failure(rec) and 0 <= rec["value"] <= 1
    assert rec["rerun_after"] == fail["failure_id"]
    prog = (wd / "results/reports/ita/progression.md").read_text()
    assert "Failed evals" not in prog and "Failed evals" not in \
        (wd / "results/reports/report.md").read_text()
    assert scheduled(wd, "all") == set()


# ------------------------------------------------------------------ out of memory (no GPU here)


def test_batch_size_per_attempt():
    assert [evals.batch_for_attempt(32, 64, a) for a in (1, 2, 3, 4)] == \
        [(32, 64), (16, 64), (8, 64), (4, 64)]
    assert [evals.batch_for_attempt(3, 64, a)[0] for a in (1, 2, 3)] == [3, 1, 1]  # never 0
    assert evals.batch_for_attempt("16", 64, 2) == (8, 64)
    # lm-eval's auto batch size: the largest batch it may pick is halved
    assert [evals.batch_for_attempt("auto", 64, a) for a in (1, 2, 3)] == \
        [("auto", 64), ("auto", 32), ("auto", 16)]


def test_plan_gives_the_rule_its_batches_and_retries():
    from zflow.plan import Plan

    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    plan = Plan(cfg, REPO, check_files=False)
    assert plan.eval_retries() == 2  # the schema's default
    assert [plan.eval_batch(a) for a in (1, 2, 3)] == [(32, 32), (16, 32), (8, 32)]


def oom(cuda_runtime: bool = False):
    import torch

    if cuda_runtime:  # an older or wrapped form: a RuntimeError with CUDA's message
        try:
            raise RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be ...")
        except RuntimeError as e:
            try:
                raise ValueError("while running loglikelihood requests") from e
            except ValueError as outer:
                return outer
    return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; "
                                  "79.15 GiB total capacity)")


def test_oom_detection():
    assert evals.is_oom(oom()) and evals.is_oom(oom(cuda_runtime=True))
    assert evals.is_oom(RuntimeError("HIP out of memory. Tried to allocate 1 GiB"))
    assert not evals.is_oom(FileNotFoundError("missing.jsonl"))
    assert not evals.is_oom(MemoryError())  # host memory: no smaller batch helps
    assert not evals.is_oom(RuntimeError("expected scalar type Float but found Half"))


SPEC = {"model": "m", "model_path": "results/models/m", "step": 5, "task": "t",
        "lm_eval_task": "mini_t", "include_path": None, "num_fewshot": 0, "metric": "acc",
        "limit": None, "apply_chat_template": False, "batch_size": 32, "max_batch_size": 32,
        "device": "cpu", "dtype": "float32", "bootstrap_iters": 0, "reproduce_seed_command": False,
        "keyed_on": {}}


# run_lm_eval.main sets torch's thread count: conftest's torch_threads puts it back
pytestmark = pytest.mark.usefixtures("torch_threads")


def run_main(tmp_path, monkeypatch, exc, retries_left, batch="32"):
    out = tmp_path / "m" / "t.json"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**SPEC, "output": str(out)}))
    seen = {}

    def fail(spec, s):
        seen.update(s)
        raise exc

    monkeypatch.setattr(run_lm_eval, "run_lm_eval", fail)
    run_lm_eval.main(["--spec", str(spec), "--batch-size", batch, "--max-batch-size", "32",
                      "--retries-left", str(retries_left), "--log", "results/logs/evals/m/t.log"])
    return out, seen


def test_oom_with_retries_left_fails_the_job_for_a_smaller_batch(tmp_path, monkeypatch):
    with pytest.raises(SystemExit) as e:
        run_main(tmp_path, monkeypatch, oom(), retries_left=1, batch="16")
    assert e.value.code == 1 and not (tmp_path / "m" / "t.json").exists()


def test_oom_on_the_last_attempt_or_batch_one_and_other_errors_are_recorded(tmp_path, monkeypatch):
    out, seen = run_main(tmp_path, monkeypatch, oom(), retries_left=0, batch="8")
    rec = json.loads(out.read_text())
    assert seen["batch_size"] == 8  # the attempt's batch size, not the spec's 32
    assert rec["status"] == "failed" and rec["out_of_memory"] and rec["settings"]["batch_size"] == 8
    assert rec["error"].startswith("OutOfMemoryError: CUDA out of memory")
    assert rec["log"] == "results/logs/evals/m/t.log"
    assert evals.rerun_token(out) == rec["failure_id"]

    out.unlink()
    out, _ = run_main(tmp_path, monkeypatch, oom(), retries_left=2, batch="1")  # cannot shrink
    assert json.loads(out.read_text())["out_of_memory"]

    out.unlink()  # a missing file would only fail again: recorded at once, no retry
    out, _ = run_main(tmp_path, monkeypatch, FileNotFoundError("no such file: x.jsonl"),
                      retries_left=2)
    rec = json.loads(out.read_text())
    assert rec["error"] == "FileNotFoundError: no such file: x.jsonl" and not rec["out_of_memory"]
