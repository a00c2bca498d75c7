"""Bad input gets one clear error naming the config key or file, before any job runs."""

from __future__ import annotations

import copy

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import copy_workflow, load_config, snakemake, write_config


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
