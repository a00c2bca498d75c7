"""After a full run, exactly the jobs a change makes stale are scheduled (dry runs)."""

from __future__ import annotations

import copy
import os

import pytest
from conftest import load_config, scheduled, write_config


@pytest.fixture
def wf(demo_run):
    wd, _ = demo_run
    original = load_config(wd)
    yield wd, copy.deepcopy(original)
    write_config(wd, original)


def evals(steps, tasks):
    return {("evaluate", f"model=ita-step{s}, task={t}") for s in steps for t in tasks}


TAIL = {("report", "lang=ita"), ("report_md", ""), ("all", "")}
COMPARE = {("compare", "lang=ita"), ("report_md", ""), ("all", "")}
# the release of nesso-instruct (config `release:`): its card holds the model's evals
RELEASE = {("release", "model=nesso-instruct"), ("all", "")}
# the chain SFT -> GRPO -> DPO -> multi-environment GRPO, and two more SFT variants
POST = ("nesso-instruct", "nesso-agentic", "open-zagreus", "nesso-instruct-grpo",
        "nesso-instruct-dpo", "nesso-instruct-grpo-multi")


def model_evals(models, tasks):
    return {("evaluate", f"model={m}, task={t}") for m in models for t in tasks}


def compare_tasks(cfg):
    return [t for ts in cfg["compare"]["groups"].values() for t in ts]


def tables_reading(cfg, jobs):
    """The report's `tables:` jobs that read an eval among the scheduled ``jobs``."""
    evaluated = set()
    for rule, wc in jobs:
        if rule == "evaluate":
            d = dict(kv.split("=", 1) for kv in wc.split(", "))
            evaluated.add((d["model"], d["task"]))
    out = set()
    for name, t in cfg["tables"].items():
        if t["kind"] in ("breakdown", "versus"):
            need = {(m, t["task"]) for m in (t.get("base"), t["model"]) if m}
        else:
            need = {(m, c.split("/", 1)[0]) for m in t["models"] for c in t["columns"]}
        if need & evaluated:
            out.add(("table", f"lang={t['lang']}, table={name}"))
    return out


def qualitative(cfg, models, scored=None):
    """Answers of ``models`` and scores of ``scored`` (default: the same models) on every suite,
    and the qualitative report."""
    suites = cfg["qualitative"]["suites"] if "suites" in cfg["qualitative"] else ("it", "en")
    scored = models if scored is None else scored
    return ({("qualitative_answer", f"model={m}, suite={s}") for m in models for s in suites}
            | {("qualitative_score", f"model={m}, suite={s}") for m in scored for s in suites}
            | {("qualitative_report", ""), ("all", "")})


def test_nothing_changed(wf):
    wd, _ = wf
    assert scheduled(wd) == set()


def test_task_setting_reruns_only_that_task(wf):
    wd, cfg = wf
    cfg["tasks"]["arc_it"]["num_fewshot"] = 2
    write_config(wd, cfg)
    steps = cfg["languages"]["ita"]["eval"]["checkpoints"]
    # its evals, on the checkpoints and the post-trained models, and the tables showing them
    want = evals(steps, ["arc_it"]) | model_evals(POST, ["arc_it"]) | TAIL | COMPARE | RELEASE
    assert tables_reading(cfg, want) == {("table", "lang=ita, table=open_zagreus_it"),
                                         ("table", "lang=ita, table=chain_stages")}
    assert scheduled(wd) == want | tables_reading(cfg, want)


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
    loglik = [t for t in compare_tasks(cfg) if not cfg["tasks"][t].get("chat_template")]
    want = ({("pretrain", "lang=ita")}
            | evals(lc["eval"]["checkpoints"], lc["eval"]["tasks"])
            | {("posttrain", f"name={n}") for n in POST}
            | model_evals(POST, compare_tasks(cfg)) | model_evals(["ita-step300"], loglik)
            | model_evals(["ita-step300", "open-zagreus"], ["evalita"])
            | model_evals(cfg["tables"]["pt_leaderboard"]["models"], ["pt"])
            | TAIL | COMPARE | RELEASE | qualitative(cfg, cfg["qualitative"]["models"]))
    want |= tables_reading(cfg, want)
    assert len(tables_reading(cfg, want)) == len(cfg["tables"])
    assert scheduled(wd) == want


def test_extending_training_reruns_no_existing_eval(wf):
    wd, cfg = wf
    lc = cfg["languages"]["ita"]
    lc["pretrain"]["train_steps"] = 400  # the decay schedule is explicit: the run is extended
    lc["eval"]["checkpoints"].append(400)
    write_config(wd, cfg)
    # the release's card reports the pretraining run it descends from (settings, compute)
    assert scheduled(wd) == ({("pretrain", "lang=ita")} | evals([400], lc["eval"]["tasks"]) | TAIL
                             | RELEASE)


def test_sft_setting_reruns_only_that_model(wf):
    wd, cfg = wf
    cfg["posttrain"]["open-zagreus"]["train"] = {**cfg["posttrain"]["open-zagreus"]["train"],
                                                 "learning_rate": 5.0e-4}
    write_config(wd, cfg)
    want = ({("posttrain", "name=open-zagreus")}
            | model_evals(["open-zagreus"], [*compare_tasks(cfg), "evalita"]) | COMPARE
            | qualitative(cfg, ["open-zagreus"]))
    # Table 8 and Table 9 show open-zagreus
    assert tables_reading(cfg, want) == {("table", "lang=ita, table=open_zagreus_it"),
                                         ("table", "lang=ita, table=evalita_sft")}
    assert scheduled(wd) == want | tables_reading(cfg, want)


def test_dpo_setting_reruns_only_dpo(wf):
    wd, cfg = wf
    cfg["posttrain"]["nesso-instruct-dpo"]["train"]["beta"] = 0.2
    write_config(wd, cfg)
    # the DPO model and the multi-environment GRPO stage trained from it
    later = ["nesso-instruct-dpo", "nesso-instruct-grpo-multi"]
    want = ({("posttrain", f"name={n}") for n in later}
            | model_evals(later, compare_tasks(cfg)) | COMPARE)
    assert tables_reading(cfg, want) == {("table", "lang=ita, table=chain_stages")}
    assert scheduled(wd) == want | tables_reading(cfg, want)


def test_new_lm_eval_version_reruns_every_eval_and_nothing_upstream(wf, tmp_path):
    """An upgraded harness (here: lm_eval's installed metadata says 0.4.12) makes every eval
    stale, and nothing upstream: the eval specs are keyed on the versions that change scores."""
    import importlib.metadata

    wd, cfg = wf
    real = importlib.metadata.version("lm_eval")
    fake = tmp_path / "site"
    (fake / "lm_eval-0.4.12.dist-info").mkdir(parents=True)
    (fake / "lm_eval-0.4.12.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: lm_eval\nVersion: 0.4.12\n")
    upgraded = {"PYTHONPATH": str(fake)}
    lc = cfg["languages"]["ita"]
    every = (evals(lc["eval"]["checkpoints"], lc["eval"]["tasks"])
             | model_evals(POST, compare_tasks(cfg))
             | model_evals(["ita-step300"], compare_tasks(cfg))
             - {("evaluate", f"model=ita-step300, task={t}") for t in ("ifeval_en", "ifeval_it")}
             | model_evals(["ita-step300", "open-zagreus"], ["evalita"])
             | model_evals(cfg["tables"]["pt_leaderboard"]["models"], ["pt"]))
    # (ita-step300's three Italian tasks are in both the progression and Table 9's base row)
    assert real != "0.4.12" and len(every) == 9 + 6 * 8 + (6 - 3) + 2 + 3
    tables = tables_reading(cfg, every)
    assert len(tables) == len(cfg["tables"])
    assert scheduled(wd, extra_env=upgraded) == every | TAIL | COMPARE | RELEASE | tables
    assert scheduled(wd) == set()


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
