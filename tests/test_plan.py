"""The plan (zflow.plan) without Snakemake: defaults, registry, paths, specs, identities, disk."""

from __future__ import annotations

import copy
import shutil
import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, nanotron_step_files, spine
from zflow import identity, paths, schema
from zflow.plan import ConfigError, Plan

EMBEDDED = yaml.safe_load((REPO / "config/config.yaml").read_text())
PROD = yaml.safe_load((REPO / "config/zagreus.yaml").read_text())


@pytest.fixture
def plan():
    return Plan(EMBEDDED, base=REPO)


def test_defaults_come_from_the_schema_once(plan):
    cfg = plan.config
    assert "nesso-instruct" not in EMBEDDED["posttrain"] or "nodes" not in EMBEDDED["posttrain"]["nesso-instruct"]
    assert cfg["posttrain"]["nesso-instruct"]["nodes"] == 1
    assert cfg["posttrain"]["nesso-instruct"]["chat_template"] == "resources/chat_templates/chatml.jinja"
    assert cfg["posttrain"]["nesso-instruct"]["train"]["bf16"] == "auto"
    pre = cfg["languages"]["ita"]["pretrain"]
    assert pre["backend"] == "hf" and pre["keep_last_states"] == 2 and pre["adam_beta2"] == 0.95
    assert cfg["languages"]["ita"]["model"]["tie_word_embeddings"] is True
    assert cfg["eval"]["device"] == "auto" and cfg["baselines"] == {}
    assert cfg["sources"]["fineweb_eng"]["text_key"] == "text"
    assert cfg["sources"]["starcoder"]["text_key"] == "content"
    assert "backend" not in EMBEDDED["languages"]["ita"]["pretrain"]  # the input is not changed
    assert schema.defaults("languages/*/pretrain")["lr_decay_style"] == "linear"


def test_schema_error_names_the_key():
    bad = copy.deepcopy(EMBEDDED)
    bad["languages"]["ita"]["pretrain"]["learning_rat"] = 0.1
    bad["languages"]["ita"]["data"]["starcoder"] = 0
    with pytest.raises(ConfigError) as e:
        Plan(bad, base=REPO)
    msg = str(e.value)
    assert "config key languages.ita.pretrain" in msg and "learning_rat" in msg
    assert "config key languages.ita.data.starcoder" in msg


def test_model_registry(plan):
    m = plan.model("ita-step150")
    assert (m.kind, m.lang, m.step) == ("checkpoint", "ita", 150)
    assert m.path == "results/pretrain/ita/checkpoints/step-150"
    dpo = plan.model("nesso-instruct-dpo")
    assert (dpo.kind, dpo.lang, dpo.path) == ("posttrain", "ita", "results/posttrain/nesso-instruct-dpo/model")
    assert plan.posttrain_models("ita") == ["nesso-instruct", "nesso-agentic", "open-zagreus",
                                            "nesso-instruct-grpo", "nesso-instruct-dpo",
                                            "nesso-instruct-grpo-multi"]
    with pytest.raises(ConfigError, match="unknown model 'deu-step5'"):
        plan.model("deu-step5")
    prod = Plan(PROD, check_files=False)
    b = prod.model("qwen3-0.6b")
    assert (b.kind, b.path, b.lang) == ("baseline", "Qwen/Qwen3-0.6B", None)
    assert prod.model("ita-step95000").path == "results/models/ita-step95000"  # converted


def test_results_paths_and_targets(plan):
    lc = EMBEDDED["languages"]["ita"]
    files = plan.eval_files("ita")
    assert len(files) == len(lc["eval"]["checkpoints"]) * len(lc["eval"]["tasks"])
    assert "results/evals/ita-step300/arc_it.json" in files
    assert plan.report_files("ita") == {
        "md": "results/reports/ita/progression.md", "csv": "results/reports/ita/progression.csv",
        "html": "results/reports/ita/progression.html",
        "png": "results/reports/ita/progression.png", "loss": "results/reports/ita/loss.png"}
    # Table 7 (md, csv, html, Figure 6), a figure per column group (Figures 7-8), the deltas
    assert len(plan.compare_files("ita")) == 6 + len(EMBEDDED["compare"]["groups"])
    # Table 7's models on its tasks, Table 9's bases on the log-likelihood tasks
    ev = plan.compare_evals("ita")
    assert "results/evals/ita-step300/arc_it.json" in ev
    assert "results/evals/ita-step300/ifeval_it.json" not in ev
    assert "results/evals/nesso-instruct-dpo/ifeval_it.json" in ev
    spec = plan.spec("pretrain", lang="ita")
    assert spec["metrics"] == paths.fmt(paths.TRAIN_METRICS, lang="ita")
    assert spec["summary"] == paths.fmt(paths.TRAIN_SUMMARY, lang="ita")


def test_pretrain_spec_and_identity(plan):
    spec = plan.spec("pretrain", lang="ita")
    lc = plan.config["languages"]["ita"]
    assert spec["model"] == lc["model"] and spec["pretrain"] == lc["pretrain"]
    assert [d["source"] for d in spec["data"]] == list(lc["data"])
    assert spec["data"][0]["folder"] == "results/tokenized/bpe_ita_eng_4k/fineweb2_ita"
    assert spec["tokenizer"] == "results/tokenizers/bpe_ita_eng_4k"
    assert spec["identity"] == plan.pretrain_identity("ita")
    longer = copy.deepcopy(EMBEDDED)
    longer["languages"]["ita"]["pretrain"]["train_steps"] = 400
    other = copy.deepcopy(EMBEDDED)
    other["languages"]["ita"]["pretrain"]["learning_rate"] = 0.002
    assert Plan(longer, base=REPO).pretrain_identity("ita") == plan.pretrain_identity("ita")
    assert Plan(other, base=REPO).pretrain_identity("ita") != plan.pretrain_identity("ita")
    # every model downstream of the run is keyed on it
    assert plan.model_identity("ita-step300").startswith(plan.pretrain_identity("ita"))
    assert plan.pretrain_identity("ita") in plan.model_identity("nesso-instruct-dpo")
    assert (Plan(other, base=REPO).model_identity("nesso-instruct-dpo")
            != plan.model_identity("nesso-instruct-dpo"))


def test_eval_spec_is_keyed_on_model_and_versions(plan):
    spec = plan.spec("evaluate", model="ita-step50", task="m_mmlu_it")
    assert spec["model_path"] == "results/pretrain/ita/checkpoints/step-50"
    assert (spec["lm_eval_task"], spec["num_fewshot"], spec["metric"]) == ("mini_m_mmlu_it", 5, "acc")
    assert spec["output"] == "results/evals/ita-step50/m_mmlu_it.json"
    assert spec["keyed_on"]["model"] == plan.model_identity("ita-step50")
    assert spec["keyed_on"]["versions"].startswith("lm_eval=")
    assert spec["step"] == 50 and spec["apply_chat_template"] is False
    assert plan.spec("evaluate", model="nesso-instruct", task="ifeval_it")["apply_chat_template"]


def test_posttrain_spec(plan):
    spec = plan.spec("posttrain", name="nesso-instruct-dpo")
    # Domyn-Small's chain: SFT -> GRPO -> DPO (-> multi-environment GRPO)
    assert spec["method"] == "dpo" and spec["base"] == "results/posttrain/nesso-instruct-grpo/model"
    assert [d["format"] for d in spec["datasets"]] == ["preference", "preference"]
    assert spec["train"]["beta"] == 0.1 and spec["train"]["save_total_limit"] == 3
    assert spec["keyed_on"]["base"] == plan.model_identity("nesso-instruct-grpo")
    assert spec["model_dir"] == "results/posttrain/nesso-instruct-dpo/model"


def test_spec_files_are_named_by_their_content(tmp_path):
    cfg = copy.deepcopy(EMBEDDED)
    cfg["tasks"] = {k: {**t, "include_path": str(REPO / t["include_path"])}
                    for k, t in cfg["tasks"].items()}
    p1 = Plan(cfg, base=REPO, check_files=False)
    p1.base = tmp_path
    a = p1.spec_file("evaluate", model="ita-step50", task="arc_it")
    assert a.startswith(".snakemake/zflow/specs/evaluate/ita-step50-arc_it.")
    assert json.loads((tmp_path / a).read_text()) == p1.spec("evaluate", model="ita-step50", task="arc_it")
    assert p1.spec_file("evaluate", model="ita-step50", task="arc_it") == a
    cfg["tasks"]["arc_it"]["num_fewshot"] = 3
    p2 = Plan(cfg, base=REPO, check_files=False)
    p2.base = tmp_path
    assert p2.spec_file("evaluate", model="ita-step50", task="arc_it") != a
    # the other tasks' specs are unchanged: only the changed task re-runs
    assert p2.spec_file("evaluate", model="ita-step50", task="hellaswag_it") == \
        p1.spec_file("evaluate", model="ita-step50", task="hellaswag_it")


def test_checkpoints_on_disk_and_current(tmp_path):
    plan = Plan(EMBEDDED, base=REPO)
    plan.base = tmp_path
    ident = plan.pretrain_identity("ita")
    for step, who in ((50, ident), (100, "another-run"), (150, ident)):
        d = tmp_path / paths.fmt(paths.HF_CHECKPOINT, lang="ita", step=step)
        d.mkdir(parents=True)
        (d / paths.MARKER).write_text(json.dumps({"step": step, "identity": who}))
    (tmp_path / "results/pretrain/ita/checkpoints/step-200.tmp").mkdir()  # half-written
    assert plan.checkpoints_on_disk("ita") == [50, 150]
    assert plan.evals_on_disk("ita")[0] == "results/evals/ita-step50/m_mmlu_it.json"
    dep = plan.dependency("ita-step50")
    assert (dep.ancient, dep.wait_for) == (True, None)
    assert dep.path == "results/pretrain/ita/checkpoints/step-50/zflow_checkpoint.json"
    assert plan.dependency("ita-step100").wait_for == "pretrain"  # another run's: wait for ours
    assert plan.dependency("ita-step300").wait_for == "pretrain"  # not on disk yet


def test_nanotron_checkpoints_on_disk(tmp_path):
    from zflow import nanotron

    plan = Plan(PROD, check_files=False)
    plan.base = tmp_path
    root = tmp_path / paths.fmt(paths.NANOTRON_CHECKPOINTS, lang="ita")
    nanotron_step_files(root, (5000, 10000), latest=5000)  # 10000 still being written
    assert nanotron.check_complete(root / "5000") == 5000
    assert plan.checkpoints_on_disk("ita") == []  # no run.json: not the configured run's
    identity.claim(tmp_path / "results/pretrain/ita", "fp", [], {"identity": plan.pretrain_identity("ita")})
    assert plan.checkpoints_on_disk("ita") == [5000]
    dep = plan.nanotron_step_dependency("ita", 10000)
    assert dep.wait_for == "pretrain_nanotron" and dep.ancient


def test_download_spec_of_a_chat_dataset_with_a_revision():
    """Defect: a chat_data hub entry with a revision raised KeyError."""
    cfg = copy.deepcopy(PROD)
    cfg["chat_data"]["openitaliandata"]["hub"]["revision"] = "abc123"
    spec = Plan(cfg, check_files=False).spec("download", source="openitaliandata")
    assert spec["revision"] == "abc123" and spec["repo_id"] == cfg["chat_data"]["openitaliandata"]["hub"]["repo_id"]
    assert spec["manifest"] == "results/downloads/openitaliandata.json"


def test_tokenizer_spec_passes_paths_inside_the_spec(plan, tmp_path):
    spec = plan.spec("train_tokenizer", tokenizer="bpe_ita_eng_4k")
    assert [s["name"] for s in spec["sources"]] == ["fineweb2_ita", "fineweb_eng", "finepdfs_ita",
                                                    "starcoder"]
    assert spec["sources"][3] == {"name": "starcoder", "dir": "data/embedded/starcoder",
                                  "glob": "*.parquet", "text_key": "content"}
    # one tokenize job per shard group (the source's one group here)
    tok = plan.spec("tokenize", tokenizer="bpe_ita_eng_4k", source="starcoder", group="g00000")
    assert tok["eos_token"] == "<|endoftext|>" and tok["text_key"] == "content"
    assert tok["files"] == ["000_00000.parquet"] and tok["input"] == "data/embedded/starcoder"
    # a hub source's groups are the downloaded files matching its allow patterns
    cfg = copy.deepcopy(PROD)
    cfg["sources"]["starcoder"]["path"] = str(tmp_path / "starcoderdata")
    (tmp_path / "starcoderdata/python").mkdir(parents=True)
    shutil.copy(REPO / "data/embedded/starcoder/000_00000.parquet",
                tmp_path / "starcoderdata/python/000.parquet")
    prod = Plan(cfg, check_files=False).spec(
        "tokenize", tokenizer="llama32", source="starcoder", group="g00000")
    assert prod["tokenizer"] == PROD["tokenizers"]["llama32"]["hub"]
    assert prod["eos_token"] == "<|end_of_text|>" and prod["files"] == ["python/000.parquet"]


def test_group_tasks_are_accepted_by_the_config_check(tmp_path):
    cfg = copy.deepcopy(EMBEDDED)
    cfg["tasks"]["group_it"] = {"lm_eval_task": "mini_group_it", "metric": "acc",
                                "include_path": str(REPO / "tests/data/group_tasks")}
    cfg["compare"]["groups"]["IT"].append("group_it/mini_group_it_animali")
    plan = Plan(cfg, base=REPO)
    assert plan.spec("compare", lang="ita")["groups"]["IT"][-1] == \
        ["group_it/mini_group_it_animali", "group_it/mini_group_it_animali", "acc"]
    assert "results/evals/nesso-instruct/group_it.json" in plan.compare_evals("ita")
    cfg["tasks"]["group_it"]["lm_eval_task"] = "no_such_group"
    with pytest.raises(ConfigError, match="defines task or group 'no_such_group'"):
        Plan(cfg, base=REPO)


def test_job_env_puts_this_interpreter_first(plan, monkeypatch):
    import sys

    monkeypatch.setenv("PATH", "/usr/bin")
    env = plan.job_env()
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["HF_HUB_OFFLINE"] == "1"


def test_report_tables_their_evals_and_order(plan):
    t = plan.spec("table", table="evalita_sft")
    assert t["evals"] == ["results/evals/ita-step300/evalita.json",
                          "results/evals/open-zagreus/evalita.json"]
    assert t["outputs"]["md"] == "results/reports/ita/tables/evalita_sft.md"
    lb = plan.spec("table", table="pt_leaderboard")
    assert lb["columns"][0] == ["pt/mini_pt_rte", "RTE", "acc"]
    assert len(lb["evals"]) == len(EMBEDDED["tables"]["pt_leaderboard"]["models"])
    assert set(plan.table_outputs("pt_leaderboard").values()) <= set(plan.lang_files("ita"))
    assert [n for n, _ in plan.report_order()] == EMBEDDED["report"]["order"]
    assert set(t["evals"]) | set(lb["evals"]) <= set(plan.all_evals())
    # the seeds' progression shapes: Table 3 (production spa) says Steps / Average, 3 decimals
    spa = Plan(PROD, check_files=False).spec("report", lang="spa")
    assert (spa["first"], spa["mean_label"], spa["decimals"]) == ("Steps", "Average", 3)
    assert [c[1] for c in spa["columns"]] == ["mmlu_es", "arc_es", "hellaswag_es"]
    assert plan.spec("report", lang="ita")["columns"][0][1] == "mmlu_it (acc)"


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["tables"]["evalita_base"].update(task="nope"),
     "tables.evalita_base.task: unknown task 'nope'"),
    (lambda c: c["tables"]["evalita_sft"].pop("base"),
     "tables.evalita_sft.base: required by kind 'versus'"),
    (lambda c: c["tables"]["pt_leaderboard"]["models"].append("ita-step7"),
     "tables.pt_leaderboard: model step 7 of 'ita' is never saved"),
    (lambda c: c["tables"]["pt_leaderboard"].update(lang="deu"),
     "tables.pt_leaderboard.lang: unknown language 'deu'"),
    (lambda c: c["report"]["order"].append("table_99"), "report.order: unknown table 'table_99'"),
    (lambda c: c["languages"]["ita"].setdefault("table", {}).update(columns=["arc_en"]),
     "languages.ita.table.columns: 'arc_en' is not a task of languages.ita.eval.tasks"),
])
def test_bad_report_tables_are_one_clear_error(edit, message):
    cfg = copy.deepcopy(EMBEDDED)
    edit(cfg)
    with pytest.raises(ConfigError) as e:
        Plan(cfg)
    assert message in str(e.value)


def test_pretraining_segments(tmp_path):
    """segment_steps: jobs ending at 80 and 160, the last (`pretrain`) at 240; each eval waits
    for the segment that saves its step, unless the step is on disk already."""
    cfg = spine(copy.deepcopy(EMBEDDED), "release")
    pre = cfg["languages"]["ita"]["pretrain"]
    pre.update(train_steps=240, checkpoint_interval=40, segment_steps=80)
    cfg["languages"]["ita"]["eval"]["checkpoints"] = [40, 80, 120, 240]
    plan = Plan(cfg, base=REPO)
    assert plan.segment_ends("ita") == [80, 160]
    assert [plan.segment_of("ita", s) for s in (40, 80, 120, 200, 240)] == [80, 80, 160, None, None]
    seg = "results/pretrain/ita/segments/step-{}.json"
    assert plan.previous_segment("ita", 80) == []
    assert plan.previous_segment("ita", 160) == [seg.format(80)]
    assert plan.previous_segment("ita") == [seg.format(160)]  # the last job's
    d = plan.dependency("ita-step120")
    assert (d.wait_for, d.step, d.ancient) == ("pretrain_segment", 160, True)
    assert plan.dependency("ita-step240").wait_for == "pretrain"
    spec = plan.spec("pretrain_segment", lang="ita", step="80")
    assert spec["until"] == 80 and spec["segment"] == seg.format(80)
    assert plan.spec("pretrain", lang="ita")["until"] is None
    assert spec["identity"] == plan.spec("pretrain", lang="ita")["identity"]  # one run
    plan.base = tmp_path  # step 120 on disk, made by this run: nothing to wait for
    m = tmp_path / paths.marker(paths.fmt(paths.HF_CHECKPOINT, lang="ita", step=120))
    m.parent.mkdir(parents=True)
    m.write_text(json.dumps({"step": 120, "identity": plan.pretrain_identity("ita")}))
    assert plan.dependency("ita-step120").wait_for is None
    pre["segment_steps"] = 60
    with pytest.raises(ConfigError, match=r"languages.ita.pretrain.segment_steps: 60 is not a "
                                          r"multiple of pretrain.checkpoint_interval \(40\)"):
        Plan(cfg, base=REPO)
