"""After a full run, exactly the jobs a change makes stale are scheduled (dry runs)."""

from __future__ import annotations

import copy
import os
import re

import pytest
from conftest import load_config, snakemake, write_config


def scheduled(wd) -> set[tuple]:
    p = snakemake(wd, "all", "--dry-run", timeout=300)
    out = p.stdout
    if "Nothing to be done" in out:
        return set()
    jobs = set()
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        m = re.match(r"(?:local)?rule (\w+):", block)
        if m:
            wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
            jobs.add((m.group(1), wc.group(1) if wc else ""))
    return jobs


@pytest.fixture
def wf(demo_run):
    wd, _ = demo_run
    original = load_config(wd)
    yield wd, copy.deepcopy(original)
    write_config(wd, original)


def evals(steps, tasks):
    return {("evaluate", f"model=ita-step{s}, task={t}") for s in steps for t in tasks}


TAIL = {("report", "lang=ita"), ("all", "")}


def test_nothing_changed(wf):
    wd, _ = wf
    assert scheduled(wd) == set()


def test_task_setting_reruns_only_that_task(wf):
    wd, cfg = wf
    cfg["tasks"]["arc_it"]["num_fewshot"] = 2
    write_config(wd, cfg)
    steps = cfg["languages"]["ita"]["eval"]["checkpoints"]
    assert scheduled(wd) == evals(steps, ["arc_it"]) | TAIL


def test_new_checkpoint_adds_only_its_evals(wf):
    wd, cfg = wf
    cfg["languages"]["ita"]["eval"]["checkpoints"].append(100)
    write_config(wd, cfg)
    assert scheduled(wd) == evals([100], cfg["languages"]["ita"]["eval"]["tasks"]) | TAIL


def test_new_task_adds_only_its_evals(wf):
    wd, cfg = wf
    cfg["tasks"]["arc_it_5shot"] = {**cfg["tasks"]["arc_it"], "num_fewshot": 5}
    cfg["languages"]["ita"]["eval"]["tasks"].append("arc_it_5shot")
    write_config(wd, cfg)
    steps = cfg["languages"]["ita"]["eval"]["checkpoints"]
    assert scheduled(wd) == evals(steps, ["arc_it_5shot"]) | TAIL


def test_pretraining_hyperparameter_reruns_pretraining_and_downstream(wf):
    wd, cfg = wf
    cfg["languages"]["ita"]["pretrain"]["learning_rate"] = 0.002
    write_config(wd, cfg)
    lc = cfg["languages"]["ita"]
    assert scheduled(wd) == ({("pretrain", "lang=ita")}
                             | evals(lc["eval"]["checkpoints"], lc["eval"]["tasks"]) | TAIL)


def test_editing_the_report_script_reruns_only_reports(wf):
    wd, _ = wf
    script = wd / "workflow/scripts/report.py"
    text, st = script.read_text(), script.stat()
    try:
        script.write_text(text + "\n# an edit\n")
        assert scheduled(wd) == TAIL
    finally:
        script.write_text(text)
        os.utime(script, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert scheduled(wd) == set()
