"""Bad input gets one clear error naming the config key or file, before any job runs."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, copy_workflow, load_config, snakemake, supply_task_folders, write_config

from zflow.plan import Plan
from zflow.schema import ConfigError


@pytest.fixture(scope="module")
def wf(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("cfg") / "wf")
    return wd, load_config(wd)


def dry_run_error(wd, cfg, *targets):
    write_config(wd, cfg)
    p = snakemake(wd, "--dry-run", *(targets or ("all",)), check=False, timeout=300)
    assert p.returncode != 0, p.stdout
    assert not (wd / "results").exists(), "a job ran despite the bad config"
    return p.stdout + p.stderr


def test_default_config_is_valid(wf):
    wd, cfg = wf
    write_config(wd, cfg)
    p = snakemake(wd, "--dry-run", "all", timeout=300)
    out = p.stdout
    for rule in ("train_tokenizer", "tokenize", "pretrain", "evaluate", "report"):
        assert rule in out


def test_missing_source_dir(wf):
    wd, cfg = wf
    bad = copy.deepcopy(cfg)
    bad["sources"]["fineweb_eng"]["path"] = "data/nowhere"
    out = dry_run_error(wd, bad)
    assert "sources.fineweb_eng.path" in out and "data/nowhere" in out


def test_empty_source_dir(wf):
    wd, cfg = wf
    (wd / "data" / "empty").mkdir(exist_ok=True)
    bad = copy.deepcopy(cfg)
    bad["sources"]["fineweb_eng"]["path"] = "data/empty"
    out = dry_run_error(wd, bad)
    assert "sources.fineweb_eng.path" in out and "holds no files" in out


def test_parquet_without_text_column(wf):
    wd, cfg = wf
    d = wd / "data" / "notext"
    d.mkdir(exist_ok=True)
    pq.write_table(pa.table({"body": ["ciao mondo"]}), d / "000.parquet")
    bad = copy.deepcopy(cfg)
    bad["sources"]["fineweb_eng"]["path"] = "data/notext"
    out = dry_run_error(wd, bad)
    assert "sources.fineweb_eng.text_key" in out and "000.parquet" in out and "'text'" in out


def test_unknown_task(wf):
    wd, cfg = wf
    bad = copy.deepcopy(cfg)
    bad["languages"]["ita"]["eval"]["tasks"].append("winogrande_it")
    out = dry_run_error(wd, bad)
    assert "languages.ita.eval.tasks" in out and "winogrande_it" in out


def test_task_missing_from_include_path(wf):
    wd, cfg = wf
    bad = copy.deepcopy(cfg)
    bad["tasks"]["arc_it"]["lm_eval_task"] = "mini_arc_xx"
    out = dry_run_error(wd, bad)
    assert "tasks.arc_it.lm_eval_task" in out and "mini_arc_xx" in out


def test_configfile_duplicate_key(wf, tmp_path):
    """A --configfile is read again strictly (zflow.inputs) before the plan: a key given twice,
    which YAML resolves silently, is refused with the file, the line and the key."""
    wd, cfg = wf
    write_config(wd, cfg)
    text = (wd / "config" / "config.yaml").read_text()
    bad = tmp_path / "mine.yaml"
    bad.write_text(text + "offline: false\n")
    p = snakemake(wd, "--dry-run", "all", "--configfile", str(bad), check=False, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and not (wd / "results").exists(), out[-3000:]
    line = len(text.splitlines()) + 1
    assert f"'{bad}' line {line}, column 1: duplicate key 'offline' (first at line" in out, out
    assert "Traceback" not in out


def test_configfile_syntax_error_is_snakemakes(wf, tmp_path):
    """Snakemake reads a --configfile before the workflow starts: a syntax error (here a tab)
    stops it with its own message, which names neither the file nor the line; `python -m
    zflow.inputs FILE` names both (docs/config-errors.md). The embedded config/config.yaml is
    read strictly before Snakemake reads it: there the file and line come first."""
    wd, cfg = wf
    write_config(wd, cfg)
    bad = tmp_path / "tab.yaml"
    bad.write_text("offline: true\nsources:\n\tfoo: {path: x}\n")
    p = snakemake(wd, "--dry-run", "all", "--configfile", str(bad), check=False, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and not (wd / "results").exists(), out[-3000:]
    assert "Config file is not valid JSON or YAML" in out, out[-3000:]
    q = subprocess.run([sys.executable, "-m", "zflow.inputs", str(bad)], capture_output=True,
                       text=True, cwd=REPO / "workflow" / "scripts", timeout=60)
    assert q.returncode == 1
    assert f"'{bad}' line 3, column 1: not valid YAML" in q.stderr and "a tab character" in q.stderr
    shutil.copy2(bad, wd / "config" / "config.yaml")
    try:
        p = snakemake(wd, "--dry-run", "all", check=False, timeout=300)
    finally:
        write_config(wd, cfg)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "'config/config.yaml' line 3, column 1" in out, out[-3000:]


def test_unknown_target_language(wf):
    wd, cfg = wf
    out = dry_run_error(wd, cfg, "all_deu")
    assert "unknown target language 'deu'" in out and "languages" in out


@pytest.mark.parametrize("weight", [0, -0.5])
def test_non_positive_mixture_weight(wf, weight):
    wd, cfg = wf
    bad = copy.deepcopy(cfg)
    bad["languages"]["ita"]["data"]["starcoder"] = weight
    out = dry_run_error(wd, bad)
    assert "starcoder" in out and ("exclusiveMinimum" in out or "must be > 0" in out
                                   or "less than or equal to the minimum" in out)


def test_unknown_key(wf):
    wd, cfg = wf
    bad = copy.deepcopy(cfg)
    bad["languages"]["ita"]["pretrain"]["learning_rat"] = 0.1
    out = dry_run_error(wd, bad)
    assert "learning_rat" in out


def test_checkpoint_not_saved(wf):
    wd, cfg = wf
    bad = copy.deepcopy(cfg)
    bad["languages"]["ita"]["eval"]["checkpoints"] = [175]
    out = dry_run_error(wd, bad)
    assert "languages.ita.eval.checkpoints" in out and "175" in out


# ------------------------------------------------------------ task folders the user supplies


@pytest.fixture(scope="module")
def prod_wf(tmp_path_factory):
    """A copy of the workflow for config/zagreus.yaml, without its tasks/ folder (each test below
    sets up what it needs there)."""
    return copy_workflow(tmp_path_factory.mktemp("prod-cfg") / "wf")


def prod_dry_run(wd):
    return snakemake(wd, "--dry-run", "all_ita", "--configfile", "config/zagreus.yaml",
                     check=False, timeout=300)


def ifeval_lines(wd, out: str) -> list[str]:
    """The error lines about tasks.ifeval_it (Snakemake may print the message more than once)."""
    return sorted({ln.strip() for ln in out.splitlines() if "tasks.ifeval_it." in ln})


def test_production_ifeval_ita_folder_missing(prod_wf):
    """config/zagreus.yaml reads the fork's ifeval-ita from tasks/ifeval-ita: without it, one
    error naming both keys, the folder and what to copy there; no job, no stand-in."""
    wd = prod_wf
    shutil.rmtree(wd / "tasks", ignore_errors=True)
    p = prod_dry_run(wd)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and not (wd / "results").exists(), out[-3000:]
    lines = ifeval_lines(wd, out)
    assert len(lines) == 1, lines
    for part in ("tasks.ifeval_it.include_path: folder 'tasks/ifeval-ita' does not exist",
                 f"({wd / 'tasks/ifeval-ita'})", "tasks.ifeval_it.lm_eval_task 'ifeval-ita'",
                 "lm_eval/tasks/ifeval-ita", "https://github.com/mii-llm/lm-evaluation-harness",
                 "`task: ifeval-ita`"):
        assert part in lines[0], (part, lines[0])
    assert "mini_ifeval_it" not in out


def test_production_ifeval_ita_folder_without_the_task(prod_wf):
    """A folder that holds other tasks (here the embedded stand-in, not renamed)."""
    wd = prod_wf
    shutil.rmtree(wd / "tasks", ignore_errors=True)
    shutil.copytree(REPO / "resources/eval_tasks/mini_ifeval_it", wd / "tasks/ifeval-ita")
    p = prod_dry_run(wd)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and not (wd / "results").exists(), out[-3000:]
    lines = ifeval_lines(wd, out)
    assert len(lines) == 1, lines
    for part in ("tasks.ifeval_it.lm_eval_task: no YAML under 'tasks/ifeval-ita' "
                 "(tasks.ifeval_it.include_path) defines task or group 'ifeval-ita'",
                 "its YAMLs define mini_ifeval_it", "lm_eval/tasks/ifeval-ita"):
        assert part in lines[0], (part, lines[0])


def test_production_ifeval_ita_folder_supplied(prod_wf):
    wd = prod_wf
    shutil.rmtree(wd / "tasks", ignore_errors=True)
    assert supply_task_folders(wd) == [wd / "tasks/ifeval-ita"]
    p = prod_dry_run(wd)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    assert "task=ifeval_it" in p.stdout


def test_task_folder_checks_of_any_task(tmp_path):
    """The same check for a task of the user's own (the validator, without Snakemake): a YAML
    at any depth is found, a group too; a file, a missing folder, a folder without the task
    each give one error with the generic advice."""
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())

    def check(folder, name="my_task"):
        c = copy.deepcopy(cfg)
        c["tasks"]["arc_it"].update(include_path=str(folder), lm_eval_task=name)
        try:
            Plan(c, base=REPO)
        except ConfigError as e:
            return [ln for ln in str(e).splitlines() if "tasks.arc_it." in ln]
        return []

    deep = tmp_path / "mine" / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "t.yaml").write_text("task: my_task\ndataset_path: json\n")
    (deep / "g.yaml").write_text("group: my_group\ntask: [my_task]\n")
    assert check(tmp_path / "mine") == [] and check(tmp_path / "mine", "my_group") == []
    [err] = check(tmp_path / "mine", "other")
    assert err.endswith("tasks.arc_it.lm_eval_task: no YAML under "
                        f"'{tmp_path / 'mine'}' (tasks.arc_it.include_path) defines task or group "
                        "'other' (its YAMLs define my_group, my_task): copy the lm-eval YAML "
                        "defining 'other' with the files it reads there, or point "
                        "tasks.arc_it.include_path at a folder where some YAML, at any depth, "
                        "defines `task: other` or `group: other`"), err
    [err] = check(tmp_path / "nowhere")
    assert f"tasks.arc_it.include_path: folder '{tmp_path / 'nowhere'}' does not exist" in err
    [err] = check(deep / "t.yaml")
    assert "tasks.arc_it.include_path:" in err and "is a file, not a folder" in err
    (tmp_path / "empty").mkdir()
    [err] = check(tmp_path / "empty")
    assert "(it holds no task YAML)" in err
