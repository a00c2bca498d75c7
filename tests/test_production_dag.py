"""Dry run of the production config (no network, no GPU): the exact jobs it would run."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
import yaml
from conftest import copy_workflow, snakemake


def jobs(out: str) -> dict:
    """rule -> list of wildcard dicts, from a dry run's job listing."""
    found = defaultdict(list)
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        m = re.match(r"(?:local)?rule (\w+):", block)
        if not m:
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        found[m.group(1)].append(dict(kv.split("=", 1) for kv in wc.group(1).split(", ")) if wc else {})
    return found


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("prod") / "wf")
    cfg = yaml.safe_load((wd / "config/zagreus.yaml").read_text())
    return wd, cfg


def test_all_ita_lists_the_expected_jobs(prod):
    wd, cfg = prod
    p = snakemake(wd, "--dry-run", "all_ita", "--configfile", "config/zagreus.yaml", timeout=600)
    j = jobs(p.stdout)
    lc = cfg["languages"]["ita"]
    sources = set(lc["data"])
    assert len(sources) == 10
    assert {w["source"] for w in j["download"]} == sources and len(j["download"]) == 10
    assert {(w["tokenizer"], w["source"]) for w in j["tokenize"]} == {("llama32", s) for s in sources}
    assert len(j["tokenize"]) == 10
    assert len(j["nanotron_config"]) == 1 and len(j["pretrain_nanotron"]) == 1
    steps = lc["eval"]["checkpoints"]
    assert steps[0] == 95000 and steps[-1] == 775000 and len(steps) == 12
    assert sorted(int(w["step"]) for w in j["convert_checkpoint"]) == steps
    want = {(f"ita-step{s}", t) for s in steps for t in lc["eval"]["tasks"]}
    assert {(w["model"], w["task"]) for w in j["evaluate"]} == want
    assert len(j["evaluate"]) == len(want) == 12 * 7
    assert [w["lang"] for w in j["report"]] == ["ita"]
    assert "pretrain" not in j and "train_tokenizer" not in j  # nanotron backend, hub tokenizer
    assert not (wd / "results").exists()


def test_all_covers_four_languages(prod):
    wd, cfg = prod
    p = snakemake(wd, "--dry-run", "all", "--configfile", "config/zagreus.yaml", timeout=600)
    j = jobs(p.stdout)
    assert sorted(w["lang"] for w in j["pretrain_nanotron"]) == ["fra", "ita", "por", "spa"]
    n_evals = sum(len(lc["eval"]["checkpoints"]) * len(lc["eval"]["tasks"])
                  for lc in cfg["languages"].values())
    assert len(j["evaluate"]) == n_evals
    # shared sources (fineweb-edu shards, starcoder) are downloaded and tokenized once
    assert len(j["download"]) == len({s for lc in cfg["languages"].values() for s in lc["data"]})
