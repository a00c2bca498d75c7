"""`make smoke`: the production config's own DAG, shrunk, end to end on one CPU (zflow.smoke).

The run itself is `make smoke` (make test runs it first and points ZFLOW_SMOKE_DIR at it); without
ZFLOW_SMOKE_DIR the module runs it into a temporary folder. The tests read what it wrote.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from zflow.smoke import shrink

PROD = yaml.safe_load((REPO / "config/zagreus.yaml").read_text())
OVERLAY = yaml.safe_load((REPO / "config/smoke.yaml").read_text())


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    given = os.environ.get("ZFLOW_SMOKE_DIR")
    if given and (Path(given) / "smoke.json").exists():
        d = Path(given)
    else:
        from zflow.smoke import run

        d = tmp_path_factory.mktemp("smoke")
        run.main(["--dir", str(d)])
    summary = json.loads((d / "smoke.json").read_text())
    return d / "wf", summary


def _standins(prod):
    needs = shrink.hub_needs(prod)
    return shrink.Standins(
        sources={k: f"smoke/data/{k}" for k in needs["sources"]},
        chat={k: f"smoke/chat/{k}" for k in needs["chat"]},
        tokenizers={k: ("smoke/tok", 2256, 2000, 2001) for k in needs["tokenizers"]},
        tasks="smoke/tasks", baselines={k: f"smoke/baselines/{k}" for k in needs["baselines"]},
        nanotron="tools/smoke/nanotron")


def test_overlay_only_shrinks():
    shrink.check_overlay(OVERLAY)
    for bad, key in [({"learning_rate": 1.0}, "'learning_rate' is not a size"),
                     ({"model": {"hidden_act": "gelu"}}, "'model.hidden_act' is not a size"),
                     ({"posttrain": {"sft": {"lr_scheduler": 1}}}, "'posttrain.lr_scheduler'"),
                     ({"pretrain": {"sequence_length": "long"}}, "must be a number")]:
        with pytest.raises(shrink.OverlayError, match=key):
            shrink.check_overlay({**OVERLAY, **bad})


def test_shrink_maps_steps_and_references():
    cfg = shrink.shrink(PROD, OVERLAY, _standins(PROD))
    ita = cfg["languages"]["ita"]
    # the first and last evaluated checkpoints (775000 is also the SFT base, Tables 2/9, a release)
    assert ita["eval"]["checkpoints"] == [10, 20] and ita["pretrain"]["train_steps"] == 20
    assert ita["pretrain"]["checkpoint_interval"] == 10
    assert cfg["posttrain"]["open-zagreus"]["base"] == "ita-step20"
    assert cfg["tables"]["evalita_base"]["model"] == "ita-step20"
    assert cfg["tables"]["evalita_sft"]["base"] == "ita-step20"
    assert "ita-step20" in cfg["release"] and "ita-step775000" not in cfg["release"]
    # Table 6 names two Portuguese checkpoints: both kept, after the first evaluated one
    assert cfg["tables"]["pt_leaderboard"]["models"][:2] == ["por-step20", "por-step30"]
    assert cfg["languages"]["por"]["eval"]["checkpoints"] == [10, 20, 30]
    # what is not a size is the production's own
    for key in ("learning_rate", "adam_beta2", "lr_decay_style", "backend", "seed", "dtype"):
        assert ita["pretrain"][key] == PROD["languages"]["ita"]["pretrain"][key]
    assert ita["model"]["tie_word_embeddings"] is True and ita["model"]["vocab_size"] == 2256
    assert ita["pretrain"]["nanotron"]["checkout"] == "tools/smoke/nanotron"
    # every hub source, chat set, tokenizer, task and baseline is local
    assert not any("hub" in s for s in cfg["sources"].values())
    assert not any("hub" in c for c in cfg["chat_data"].values())
    assert cfg["tokenizers"]["llama32"]["hub"] == "smoke/tok"
    assert {t["include_path"] for t in cfg["tasks"].values()} == {"smoke/tasks"}
    assert {t["lm_eval_task"] for t in cfg["tasks"].values()} == \
        {t["lm_eval_task"] for t in PROD["tasks"].values()}
    assert all(b["model"].startswith("smoke/baselines/") for b in cfg["baselines"].values())
    # fewer items per list, every list still there: the first baseline; the qualitative
    # benchmark keeps the workflow's own models
    assert ita["eval"]["baselines"] == ["qwen3-0.6b"] and cfg["compare"]["baselines"] == ["qwen3-0.6b"]
    assert cfg["qualitative"]["models"] == ["nesso-0.4b-agentic", "open-zagreus"]
    grpo = cfg["posttrain"]["open-zagreus-grpo"]["train"]
    assert grpo["max_steps"] == 2 and grpo["beta"] == 0.0 and grpo["epsilon_high"] == 3.0


def test_a_stage_added_to_production_runs_in_smoke_without_editing_the_overlay():
    prod = copy.deepcopy(PROD)
    prod["posttrain"]["open-zagreus-dpo-2"] = {
        "method": "dpo", "base": "ita-step775000", "data": ["dolci_dpo"], "nodes": 4,
        "gpus_per_node": 8, "train": {"learning_rate": 1e-6, "sequence_length": 4096,
                                      "micro_batch_size": 2, "max_steps": -1}}
    prod["release"]["open-zagreus-dpo-2"] = {"repo_id": "x/y", "language": ["it"]}
    cfg = shrink.shrink(prod, OVERLAY, _standins(prod))
    new = cfg["posttrain"]["open-zagreus-dpo-2"]
    assert new["base"] == "ita-step20" and new["nodes"] == 1 and new["gpus_per_node"] == 1
    assert new["train"]["sequence_length"] == 256 and new["train"]["max_steps"] == 3
    assert new["train"]["learning_rate"] == 1e-6
    assert "open-zagreus-dpo-2" in cfg["release"]


def test_smoke_ran_every_production_rule(smoke):
    wd, s = smoke
    assert s["target"] == "all_ita" and s["missing"] == []
    prod = set(s["production_jobs"])
    # the production dry run: nanotron, hub downloads, a hub tokenizer (no train_tokenizer)
    assert {"download", "tokenize_stats", "nanotron_config", "pretrain_nanotron",
            "convert_checkpoint", "evaluate", "posttrain", "report", "table", "compare",
            "qualitative_answer", "qualitative_score", "qualitative_report", "release",
            "upload"} <= prod
    assert "pretrain" not in prod and "train_tokenizer" not in prod
    ran = set(s["jobs"])
    assert prod - {"download"} <= ran and "download" not in ran
    assert "tokenize" in ran  # the shard groups the production dry run cannot list yet
    assert s["jobs"]["convert_checkpoint"] >= 2 and s["jobs"]["posttrain"] >= 4
    used = s["standins"]
    assert used["nanotron_trainer"] == "tools/smoke/nanotron"
    assert set(used["sources"]) == {k for k, v in PROD["sources"].items() if "hub" in v
                                   and k in PROD["languages"]["ita"]["data"]} | \
        {k for k, v in PROD["sources"].items() if "hub" in v}
    assert set(used["baselines"]) == set(PROD["baselines"])
    assert "nanotron itself does not run" in s["note"]


def test_nanotron_stand_in_checkpoints_convert_and_log(smoke):
    wd, _ = smoke
    from zflow import nanotron

    root = wd / "results/pretrain/ita"
    assert nanotron.complete_steps(root / "nanotron_checkpoints") == [10, 20]
    assert (root / "nanotron_checkpoints/latest.txt").read_text().strip() == "20"
    rows = (root / "train_metrics.csv").read_text().splitlines()
    assert len(rows) == 21  # header + steps 1..20 parsed from nanotron-format log lines
    conv = json.loads((wd / "results/models/ita-step20/zflow_checkpoint.json").read_text())
    assert conv["step"] == 20


def test_sft_from_a_llama32_shaped_base_adds_chatml(smoke):
    wd, _ = smoke
    from transformers import AutoConfig, AutoTokenizer

    base = AutoTokenizer.from_pretrained(wd / "results/models/ita-step20")
    assert "<|im_end|>" not in base.get_vocab() and base.bos_token == "<|begin_of_text|>"
    model = wd / "results/posttrain/open-zagreus/model"
    tok = AutoTokenizer.from_pretrained(model)
    assert {"<|im_start|>", "<|im_end|>"} <= set(tok.all_special_tokens)
    assert tok.eos_token == "<|im_end|>" and tok.chat_template
    assert AutoConfig.from_pretrained(model).vocab_size == len(base) + 2
    summary = json.loads((wd / "results/posttrain/open-zagreus/summary.json").read_text())
    assert summary["added_tokens"]["tokens"] == ["<|im_start|>", "<|im_end|>"]
    prompt = tok.apply_chat_template([{"role": "user", "content": "Ciao"}], tokenize=False,
                                     add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")


def test_production_names_flow_through_evals_tables_chain_and_releases(smoke):
    wd, _ = smoke
    # evalita-mp as lm-eval names it: the group, its subgroups (NER a group of its own)
    rec = json.loads((wd / "results/evals/ita-step20/evalita_mp.json").read_text())
    assert rec["lm_eval_task"] == "evalita-mp" and rec["is_group"]
    names = {s["name"] for s in rec["subtasks"]}
    assert {"evalita-mp_at", "evalita-mp_ner_group", "evalita-mp_sum_fp", "evalita-mp_wic"} <= names
    table = (wd / "results/reports/ita/tables/evalita_base.md").read_text()
    assert "| evalita NER | f1 |" in table and "| summarization-fanpage | rouge1 |" in table
    assert "--tasks evalita-mp" in table
    ifeval = json.loads((wd / "results/evals/open-zagreus/ifeval_it.json").read_text())
    assert ifeval["lm_eval_task"] == "ifeval-ita"
    # the chain, each step on the hub sets' row shapes (Dolci: whole conversations)
    dpo = json.loads((wd / "results/posttrain/open-zagreus-dpo/summary.json").read_text())
    assert dpo["datasets"] == ["dolci_dpo"] and dpo["train_rows"] > 0
    grpo = json.loads((wd / "results/posttrain/open-zagreus-grpo/summary.json").read_text())
    assert grpo["datasets"] == ["deepscaler"] and grpo["train_rows"] > 0
    stages = (wd / "results/reports/ita/tables/chain_stages.md").read_text()
    assert "| SFT | + GRPO | + DPO | + multi-env GRPO |" in stages
    # the qualitative benchmark answered by the post-trained model through its chat template
    answers = (wd / "results/qualitative/open-zagreus/it.answers.jsonl").read_text().splitlines()
    assert len(answers) == 20 and sorted(p.name for p in (wd / "results/qualitative").iterdir()) \
        == ["nesso-0.4b-agentic", "open-zagreus"]
    # releases; the production config gives no license: the dry run names what a real upload
    # would refuse
    for model in ("ita-step20", "open-zagreus"):
        assert (wd / f"results/release/{model}/README.md").is_file()
        up = json.loads((wd / f"results/release/{model}.upload.json").read_text())
        assert up["dry_run"] is True
        assert up["refused"] == [f"release.{model}.license: required for the upload but missing "
                                 "from the model card"]
