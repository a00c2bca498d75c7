"""Dry run of the production config (no network, no GPU): the exact jobs it would run."""

from __future__ import annotations

import re
import shutil
from collections import defaultdict

import pytest
import yaml
from conftest import copy_workflow, snakemake, supply_task_folders


def jobs(out: str) -> dict:
    """rule -> list of wildcard dicts, from a dry run's job listing."""
    found = defaultdict(list)
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", out):
        m = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block)
        if not m:
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        found[m.group(1)].append(dict(kv.split("=", 1) for kv in wc.group(1).split(", ")) if wc else {})
    return found


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("prod") / "wf")
    supply_task_folders(wd)  # the fork's ifeval-ita, which a user copies to tasks/ifeval-ita
    cfg = yaml.safe_load((wd / "config/zagreus.yaml").read_text())
    return wd, cfg


def test_all_ita_lists_the_expected_jobs(prod):
    wd, cfg = prod
    p = snakemake(wd, "--dry-run", "all_ita", "--configfile", "config/zagreus.yaml", timeout=600)
    j = jobs(p.stdout)
    lc = cfg["languages"]["ita"]
    sources = set(lc["data"])
    assert len(sources) == 10
    # the pretraining sources and the open SFT set (OpenItalianData)
    chat = {"openitaliandata", "deepscaler", "dolci_dpo"}  # SFT, GRPO and DPO sets from the hub
    assert {w["source"] for w in j["download"]} == sources | chat
    assert len(j["download"]) == 13
    # a hub source's shard groups (one tokenize job each) are known once its download (a
    # checkpoint) is done: before, each source's tokenize_stats job stands for them
    assert {(w["tokenizer"], w["source"]) for w in j["tokenize_stats"]} == {("llama32", s) for s in sources}
    assert len(j["tokenize_stats"]) == 10 and "tokenize" not in j
    assert len(j["nanotron_config"]) == 1 and len(j["pretrain_nanotron"]) == 1
    steps = lc["eval"]["checkpoints"]
    assert steps[0] == 95000 and steps[-1] == 775000 and len(steps) == 12
    assert sorted(int(w["step"]) for w in j["convert_checkpoint"]) == steps
    models = [f"ita-step{s}" for s in steps] + ["qwen3-0.6b", "qwen3-0.6b-base", "lfm2-350m"]
    assert lc["eval"]["baselines"] == models[-3:]
    want = {(m, t) for m in models for t in lc["eval"]["tasks"]}
    # Table 7: the post-trained model and two baselines on the EN/IT columns (IFEval added)
    compare = [t for ts in cfg["compare"]["groups"].values() for t in ts]
    post = list(cfg["posttrain"])
    assert post == ["open-zagreus", "open-zagreus-grpo", "open-zagreus-dpo", "open-zagreus-grpo-multi"]
    want |= {(m, t) for m in [*post, "qwen3-0.6b", "lfm2-350m"] for t in compare}
    # Table 9: the post-trained model on Evalita (its base's is a progression column already)
    want |= {("open-zagreus", "evalita_mp")}
    assert {(w["model"], w["task"]) for w in j["evaluate"]} == want
    assert len(j["evaluate"]) == len(want) == (12 + 3) * 7 + 8 * 4 + 2 * 2 + 1
    assert sorted(w["name"] for w in j["posttrain"]) == sorted(post)
    assert [w["lang"] for w in j["report"]] == ["ita"] and [w["lang"] for w in j["compare"]] == ["ita"]
    # the seed's Tables 2, 8 and 9 (Table 6 is Portuguese), and the post-training chain
    assert sorted(w["table"] for w in j["table"]) == ["chain_stages", "evalita_base", "evalita_sft",
                                                      "open_zagreus_it"]
    assert "pretrain" not in j and "train_tokenizer" not in j  # nanotron backend, hub tokenizer
    assert not (wd / "results").exists()


def test_all_covers_four_languages(prod):
    wd, cfg = prod
    p = snakemake(wd, "--dry-run", "all", "--configfile", "config/zagreus.yaml", timeout=600)
    j = jobs(p.stdout)
    assert sorted(w["lang"] for w in j["pretrain_nanotron"]) == ["fra", "ita", "por", "spa"]
    want = {(m, t) for lang, lc in cfg["languages"].items()
            for m in [f"{lang}-step{s}" for s in lc["eval"]["checkpoints"]] + lc["eval"]["baselines"]
            for t in lc["eval"]["tasks"]}
    compare = [t for ts in cfg["compare"]["groups"].values() for t in ts]
    want |= {(m, t) for m in [*cfg["posttrain"], "qwen3-0.6b", "lfm2-350m"] for t in compare}
    want |= {("open-zagreus", "evalita_mp")}  # Table 9
    pt = cfg["tables"]["pt_leaderboard"]  # Table 6: two checkpoints and a baseline, nine tasks
    want |= {(m, t) for m in pt["models"] for t in pt["columns"]}
    # a baseline's English evals are shared by the four languages: run once
    assert len(j["evaluate"]) == len(want) == 240 + 8 * 4 + 2 * 2 + 1 + 3 * 9
    assert len(j["table"]) == 5 and len(j["report_md"]) == 1
    assert {(w["model"], w["task"]) for w in j["evaluate"]} == want
    # shared sources (fineweb-edu shards, starcoder) are downloaded and tokenized once
    assert len(j["download"]) == len({s for lc in cfg["languages"].values() for s in lc["data"]}) + 3


def test_prefetch_check_with_a_cold_cache_lists_everything_missing(tmp_path):
    import os
    import subprocess
    import sys

    from conftest import REPO, env

    e = env()
    e["HF_HOME"] = str(tmp_path / "hf")
    p = subprocess.run([sys.executable, str(REPO / "workflow/scripts/prefetch.py"), "--check-only",
                        "--model", "Qwen/Qwen3-0.6B", "--model", "meta-llama/Llama-3.2-1B",
                        "--task", "arc_it", "--task", "ifeval-ita", "--output",
                        str(tmp_path / "p.json")], env=e, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    err = p.stderr
    assert err.count("error: the Hugging Face cache lacks") == 1
    for item in ("model Qwen/Qwen3-0.6B", "model meta-llama/Llama-3.2-1B", "task arc_it",
                 "task ifeval-ita: not an lm-eval task"):
        assert item in err, err[-2000:]
    assert not os.path.exists(tmp_path / "p.json")


class _Res(dict):
    __getattr__ = dict.__getitem__


def _value(v: str):
    return int(v) if v.isdigit() else v


def sbatch_calls(out: str) -> dict:
    """rule -> the sbatch command the slurm plugin builds from the dry run's resources."""
    from types import SimpleNamespace

    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    calls = {}
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", out):
        m = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block)
        r = re.search(r"^\s+resources: (.*)$", block, re.M)
        if not m or not r or m.group(1) in calls:
            continue
        res = _Res((k, _value(v)) for k, v in (kv.split("=", 1) for kv in r.group(1).split(", ")))
        job = SimpleNamespace(resources=res, threads=res.get("cpus_per_task", 1), name=m.group(1),
                              is_group=lambda: False)
        params = {"run_uuid": "x", "slurm_logfile": "log", "comment_str": m.group(1),
                  "account": f"-A {res.get('slurm_account')}",
                  "partition": f"-p {res.get('slurm_partition')}", "workdir": "."}
        calls[m.group(1)] = get_submit_command(job, params) + set_gres_string(job)
    return calls


def test_slurm_profile_sbatch_options(tmp_path):
    # starcoder downloaded (one shard and the download's manifest): its tokenize job is listed
    wd = copy_workflow(tmp_path / "wf")
    supply_task_folders(wd)
    shard = wd / "data/hub/starcoderdata/python/python/000_00000.parquet"
    shard.parent.mkdir(parents=True)
    shutil.copy(wd / "data/embedded/starcoder/000_00000.parquet", shard)
    (wd / "results/downloads").mkdir(parents=True)
    (wd / "results/downloads/starcoder.json").write_text('{"files": ["python/000_00000.parquet"]}')
    p = snakemake(wd, "--dry-run", "--profile", "profiles/slurm", "all_ita", timeout=600)
    assert [w for w in jobs(p.stdout)["tokenize"]] == [
        {"tokenizer": "llama32", "source": "starcoder", "group": "g00000"}]
    calls = sbatch_calls(p.stdout)
    pre = calls["pretrain_nanotron"].split()
    for opt in ("--nodes=8", "--gres=gpu:8", "--ntasks=8", "--cpus-per-task=32"):
        assert opt in pre, calls["pretrain_nanotron"]
    assert pre[pre.index("-t") + 1] == "5760"  # 4 days, in minutes
    assert "-p" in pre and pre[pre.index("-p") + 1] == "gpu"
    assert not any(o.startswith("--ntasks-per-gpu") for o in pre)
    ev = calls["evaluate"].split()
    assert "--gpus=1" in ev and not any(o.startswith("--nodes=") and o != "--nodes=1" for o in ev)
    tok = calls["tokenize"].split()
    assert not any("gpu" in o for o in tok) and "--cpus-per-task=32" in tok
    assert tok[tok.index("-p") + 1] == "cpu"
    # (that the local report is never submitted is asserted against the real Slurm: test_slurm)
