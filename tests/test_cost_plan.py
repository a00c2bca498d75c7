"""The cost plan (zflow.cost, workflow/scripts/cost_plan.py): its arithmetic on hand-made numbers,
then the CLI on the production config, whose jobs are a real dry run's."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time

import pytest
import yaml
from conftest import REPO, copy_workflow, env, nanotron_step_files, snakemake, supply_task_folders
from test_production_dag import jobs as dry_run_jobs
from zflow import cost, identity, paths, schedule, schema
from zflow.cost import Job
from zflow.plan import ConfigError, Plan

EMBEDDED = yaml.safe_load((REPO / "config/config.yaml").read_text())
PROD = yaml.safe_load((REPO / "config/zagreus.yaml").read_text())


# ------------------------------------------------------------ arithmetic


def test_plain_arithmetic():
    assert cost.pretrain_tokens(10, 4, 2, 8, 128) == 10 * 4 * 2 * 8 * 128
    assert cost.hours(7_200_000, 1000) == 2.0  # 7.2M tokens at 1000/s = 7200 s
    assert cost.wall(8.0, 4) == 2.0 and cost.wall(None, 4) is None
    assert schedule.saved_steps(300, 50) == [50, 100, 150, 200, 250, 300]
    assert schedule.saved_steps(300, 50, after=150) == [200, 250, 300]
    assert schedule.saved_steps(300, 50, after=300) == []
    por = schedule.saved_steps(2_000_000, 3000)  # the final state is saved too
    assert len(por) == 666 + 1 and por[-2:] == [1_998_000, 2_000_000]
    assert cost.token_bytes(4096) == 2 and cost.token_bytes(128256) == 4


def test_n_params_of_the_zagreus_model():
    # 128256 x 960 tied embeddings + 32 x (q 960x960 + k, v 960x320 + o 960x960
    # + MLP 3 x 960 x 2560 + 2 norms of 960) + the final norm
    layer = 960 * 960 * 2 + 960 * 320 * 2 + 3 * 960 * 2560 + 2 * 960
    assert cost.n_params(PROD["languages"]["ita"]["model"]) == 128256 * 960 + 32 * layer + 960
    untied = {**PROD["languages"]["ita"]["model"], "tie_word_embeddings": False}
    assert cost.n_params(untied) - cost.n_params(PROD["languages"]["ita"]["model"]) == 128256 * 960


def hf_config(rate=1000.0):
    cfg = copy.deepcopy(EMBEDDED)
    pre = cfg["languages"]["ita"]["pretrain"]
    pre.update(train_steps=300, checkpoint_interval=50, micro_batch_size=16,
               batch_accumulation_per_replica=2, sequence_length=128, nodes=2, nproc_per_node=4)
    cfg["cost"] = {"pretrain_tokens_per_sec_per_gpu": rate}
    return cfg


def test_pretraining_tokens_gpu_hours_wall_and_disk():
    plan = Plan(hf_config(rate=1000.0), base=REPO)
    c = cost.job_cost(plan, Job("pretrain", {"lang": "ita"}))
    assert c.tokens == 300 * 16 * 2 * 8 * 128
    assert c.gpu_hours == c.tokens / (1000.0 * 3600)
    assert c.workers == 8 and c.wall_hours == c.gpu_hours / 8
    n = cost.n_params(plan.lang("ita")["model"])
    # 6 exported bf16 checkpoints + the 2 kept training states
    assert c.disk_bytes == 6 * n * cost.WEIGHT_BYTES + 2 * n * cost.STATE_BYTES


def test_resume_subtracts_what_is_on_disk(tmp_path):
    plan = Plan(hf_config(rate=1000.0), base=REPO)
    plan.base = tmp_path
    ident = plan.pretrain_identity("ita")
    for step, who in ((50, ident), (150, ident), (200, "another-run")):
        d = tmp_path / paths.fmt(paths.HF_CHECKPOINT, lang="ita", step=step)
        d.mkdir(parents=True)
        (d / paths.MARKER).write_text(json.dumps({"step": step, "identity": who}))
    assert plan.checkpoints_on_disk("ita") == [50, 150]
    c = cost.job_cost(plan, Job("pretrain", {"lang": "ita"}))
    assert c.tokens == (300 - 150) * 16 * 2 * 8 * 128
    assert c.gpu_hours == c.tokens / (1000.0 * 3600)
    n = cost.n_params(plan.lang("ita")["model"])
    assert c.disk_bytes == 3 * n * cost.WEIGHT_BYTES + 2 * n * cost.STATE_BYTES
    assert "resuming at step 150" in c.note


def test_nanotron_resume_and_disk(tmp_path):
    plan = Plan(PROD, check_files=False)
    plan.base = tmp_path
    root = tmp_path / paths.fmt(paths.NANOTRON_CHECKPOINTS, lang="ita")
    nanotron_step_files(root, (5000, 10000), latest=5000)  # 10000 still being written: resumes at 5000
    identity.claim(tmp_path / "results/pretrain/ita", "fp", [],
                   {"identity": plan.pretrain_identity("ita")})
    c = cost.job_cost(plan, Job("pretrain_nanotron", {"lang": "ita"}))
    assert plan.checkpoints_on_disk("ita") == [5000]
    assert c.tokens == (2_000_000 - 5000) * 4 * 1 * 64 * 4096
    rate = schema.defaults("cost")["pretrain_tokens_per_sec_per_gpu"]
    assert c.gpu_hours == c.tokens / (rate * 3600) and c.wall_hours == c.gpu_hours / 64
    n = cost.n_params(PROD["languages"]["ita"]["model"])
    assert c.disk_bytes == (400 - 1) * n * (cost.WEIGHT_BYTES + cost.STATE_BYTES)


def test_tokenize_evaluate_and_unknown_hub_data():
    plan = Plan(EMBEDDED, base=REPO)
    bpt = schema.defaults("cost")["bytes_per_token"]
    size = sum(f.stat().st_size for f in (REPO / "data/embedded/starcoder").glob("*.parquet"))
    wc = {"tokenizer": "bpe_ita_eng_4k", "source": "starcoder", "group": "g00000"}
    c = cost.job_cost(plan, Job("tokenize", wc, cores=2))  # the source's one shard group
    rate = schema.defaults("cost")["tokenize_tokens_per_sec_per_core"]
    assert c.tokens == size / bpt and c.cpu_hours == c.tokens / (rate * 3600)
    assert c.wall_hours == c.cpu_hours / 2 and c.disk_bytes == c.tokens * 2  # 4K vocab: uint16
    e = cost.job_cost(plan, Job("evaluate", {"model": "ita-step50", "task": "arc_it"}))
    assert e.gpu_hours == schema.defaults("cost")["eval_gpu_hours_per_task"] == e.wall_hours

    # hub data, nothing downloaded: unknown, not zero (its tokenize_stats job stands for the
    # source's tokenization until the download tells its shard groups)
    prod = Plan(PROD, check_files=False)
    jobs = [Job("tokenize_stats", {"tokenizer": "llama32", "source": "fineweb2_ita"}),
            Job("evaluate", {"model": "qwen3-0.6b", "task": "arc"})]
    costs, rows, total = cost.estimate(prod, jobs)
    assert costs[0].tokens is None and costs[0].unknown.startswith("not on disk: fineweb2_ita")
    assert rows[0].rule == "tokenize_stats" and {"tokens", "cpu_hours", "wall_hours"} <= rows[0].unknown
    assert total.gpu_hours == rows[1].gpu_hours and "tokens" in total.unknown

    cfg = copy.deepcopy(PROD)
    cfg["cost"] = {"source_tokens": {"fineweb2_ita": 1e9}}
    c = cost.job_cost(Plan(cfg, check_files=False), jobs[0])
    assert c.tokens == 1e9 and c.disk_bytes == 4e9  # Llama-3's 128K vocabulary: uint32
    cfg["cost"] = {"source_tokens": {"fineweb2_it": 1e9}}
    with pytest.raises(ConfigError, match="cost.source_tokens.fineweb2_it"):
        cost.job_cost(Plan(cfg, check_files=False), jobs[0])


def test_figures_name_their_source():
    figs = {f["key"]: f for f in cost.figures(Plan(EMBEDDED, base=REPO))}
    assert "182K tokens/s / 64" in figs["pretrain_tokens_per_sec_per_gpu"]["source"]
    assert figs["eval_gpu_hours_per_task"]["source"].startswith("guess")
    cfg = copy.deepcopy(EMBEDDED)
    cfg["cost"] = {"pretrain_tokens_per_sec_per_gpu": 5000,
                   "eval_gpu_hours_per_task": 0.1,
                   "sources": {"eval_gpu_hours_per_task": "our run"}}
    figs = {f["key"]: f for f in cost.figures(Plan(cfg, base=REPO))}
    assert figs["pretrain_tokens_per_sec_per_gpu"]["source"].startswith("set in the config")
    assert figs["eval_gpu_hours_per_task"]["source"] == "our run"


# ------------------------------------------------------------ the CLI on the production config


@pytest.fixture(scope="module")
def wd(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("cost") / "wf")
    supply_task_folders(wd)  # the fork's ifeval-ita, which a user copies to tasks/ifeval-ita
    return wd


def cost_plan(wd, *args):
    out = wd / "plan.json"
    start = time.time()
    p = subprocess.run([sys.executable, str(wd / "workflow/scripts/cost_plan.py"), *args,
                        "--json", str(out)], cwd=wd, env=env(), capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    print(f"cost_plan {' '.join(args)}: {time.time() - start:.1f} s")
    return json.loads(out.read_text()), p.stdout


def by_rule(result):
    return {r["rule"]: r for r in result["rows"]}


def test_all_ita_plan(wd):
    result, out = cost_plan(wd, "--target", "all_ita", "--configfile", "config/zagreus.yaml")
    print(out)
    pre = PROD["languages"]["ita"]["pretrain"]
    rows = by_rule(result)
    tokens = pre["train_steps"] * pre["micro_batch_size"] * pre["batch_accumulation_per_replica"] \
        * pre["nanotron"]["dp"] * pre["sequence_length"]
    assert rows["pretrain_nanotron"]["tokens"] == tokens == 2_000_000 * 4 * 64 * 4096
    rate = schema.defaults("cost")["pretrain_tokens_per_sec_per_gpu"]
    assert rows["pretrain_nanotron"]["gpu_hours"] == tokens / (rate * 3600)
    assert rows["pretrain_nanotron"]["wall_hours"] == tokens / (rate * 3600) / 64
    assert "| pretrain_nanotron | 1 | 2.1T |" in out and "182K tokens/s / 64 A100" in out
    # the same jobs as the dry run's listing
    p = snakemake(wd, "--dry-run", "all_ita", "--configfile", "config/zagreus.yaml")
    dry = dry_run_jobs(p.stdout)
    assert {r: row["jobs"] for r, row in rows.items()} == {r: len(js) for r, js in dry.items()}
    assert rows["evaluate"]["gpu_hours"] == pytest.approx(
        len(dry["evaluate"]) * schema.defaults("cost")["eval_gpu_hours_per_task"])
    # hub data not downloaded: '?', not 0 (tokenize_stats stands for the unknown shard groups)
    assert "tokens" in rows["tokenize_stats"]["unknown"] and "tokenize" not in rows


def test_more_tasks_and_checkpoints_add_exactly_their_jobs(wd):
    base, _ = cost_plan(wd, "--target", "all_ita", "--configfile", "config/zagreus.yaml")
    cfg = copy.deepcopy(PROD)
    ev = cfg["languages"]["ita"]["eval"]
    ev["tasks"].append("hellaswag_es")
    (wd / "config/more_tasks.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    more, _ = cost_plan(wd, "--target", "all_ita", "--configfile", "config/more_tasks.yaml")
    models = [f"ita-step{s}" for s in ev["checkpoints"]] + ev["baselines"]
    added = ({tuple(j["wildcards"].values()) for j in more["jobs"] if j["rule"] == "evaluate"}
             - {tuple(j["wildcards"].values()) for j in base["jobs"] if j["rule"] == "evaluate"})
    assert added == {(m, "hellaswag_es") for m in models} and len(added) == 12 + 3
    b, m = by_rule(base), by_rule(more)
    assert m["evaluate"]["jobs"] == b["evaluate"]["jobs"] + 15
    assert m["evaluate"]["gpu_hours"] == pytest.approx(b["evaluate"]["gpu_hours"] + 15 * 0.05)
    assert m["convert_checkpoint"]["jobs"] == b["convert_checkpoint"]["jobs"]

    cfg = copy.deepcopy(PROD)
    cfg["languages"]["ita"]["eval"]["checkpoints"].append(700000)
    (wd / "config/more_steps.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    steps, _ = cost_plan(wd, "--target", "all_ita", "--configfile", "config/more_steps.yaml")
    s = by_rule(steps)
    tasks = cfg["languages"]["ita"]["eval"]["tasks"]
    assert s["convert_checkpoint"]["jobs"] == b["convert_checkpoint"]["jobs"] + 1
    assert s["evaluate"]["jobs"] == b["evaluate"]["jobs"] + len(tasks) == b["evaluate"]["jobs"] + 7
    assert steps["total"]["jobs"] == base["total"]["jobs"] + 8
    n = cost.n_params(PROD["languages"]["ita"]["model"])
    assert s["convert_checkpoint"]["disk_bytes"] == b["convert_checkpoint"]["disk_bytes"] + 2 * n


def test_checkpoint_retention_in_the_plan(wd):
    """make plan's disk column follows pretrain.keep_checkpoints, and it lists what the policy
    keeps and removes (unset: what {newest: 2} would)."""
    n = cost.n_params(PROD["languages"]["ita"]["model"])
    each = n * (cost.WEIGHT_BYTES + cost.STATE_BYTES)
    base, out = cost_plan(wd, "--target", "all_ita", "--configfile", "config/zagreus.yaml")
    assert by_rule(base)["pretrain_nanotron"]["disk_bytes"] == 400 * each
    assert "keep_checkpoints unset: all 400 kept (2.45 TB), none removed" in out
    assert "  with {newest: 2}: 14 kept (85.8 GB: the 12 steps the config names + the newest " \
        "2), 386 removed (2.37 TB)" in out
    assert [(r["policy"], len(r["kept"])) for r in base["retention"]] == [(None, 400),
                                                                         ({"newest": 2}, 14)]
    cfg = copy.deepcopy(PROD)
    cfg["languages"]["ita"]["pretrain"]["keep_checkpoints"] = {"newest": 2}
    (wd / "config/keep2.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    kept, out = cost_plan(wd, "--target", "all_ita", "--configfile", "config/keep2.yaml")
    print(out)
    rows = by_rule(kept)
    assert rows["pretrain_nanotron"]["disk_bytes"] == 14 * each
    assert kept["total"]["disk_bytes"] == base["total"]["disk_bytes"] - 386 * each
    assert {r: row["jobs"] for r, row in rows.items()} == \
        {r: row["jobs"] for r, row in by_rule(base).items()}  # the same jobs: nothing re-runs
    assert "languages.ita.pretrain.keep_checkpoints: newest 2: 14 kept (85.8 GB" in out
    assert "14 of 400 checkpoints kept (keep_checkpoints: newest 2)" in out
