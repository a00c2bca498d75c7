"""Post-training with TRL on the embedded default: SFT variants, DPO, their evals and tables."""

from __future__ import annotations

import copy
import csv
import json
import math

import pytest
from conftest import REPO, load_config, without_downstream
from zflow import chat

SFT = ("nesso-instruct", "nesso-agentic", "open-zagreus")
DPO = "nesso-instruct-dpo"
GRPO = ("nesso-instruct-grpo", "nesso-instruct-grpo-multi")  # the chain SFT -> GRPO -> DPO -> GRPO


def summary(wd, name):
    return json.loads((wd / f"results/posttrain/{name}/summary.json").read_text())


def metrics(wd, name, key):
    with open(wd / f"results/posttrain/{name}/train_metrics.csv") as f:
        return [float(r[key]) for r in csv.DictReader(f) if r[key]]


@pytest.mark.parametrize("name", SFT)
def test_sft_loss_decreases_and_model_answers(demo_run, name):
    wd, _ = demo_run
    s = summary(wd, name)
    loss = metrics(wd, name, "loss")
    assert len(loss) >= 3 and loss[-1] < loss[0] - 0.3, loss
    assert s["last_eval_loss"] is not None and s["last_eval_loss"] < loss[0]
    assert s["val_rows"] > 0 and s["train_rows"] > s["val_rows"]
    assert s["settings"]["assistant_only_loss"] is True and s["settings"]["packing"] is True
    assert s["settings"]["eos_token"] == "<|im_end|>"
    assert s["versions"]["trl"] and s["versions"]["transformers"]
    assert s["smoke"] and all(a["answer"].strip() for a in s["smoke"])
    assert not (wd / f"results/posttrain/{name}/model.tmp").exists()


def test_dpo_loss_decreases_and_prefers_chosen(demo_run):
    wd, _ = demo_run
    s = summary(wd, DPO)
    assert s["method"] == "dpo" and s["base"] == "results/posttrain/nesso-instruct-grpo/model"
    loss = metrics(wd, DPO, "loss")
    assert loss[0] == pytest.approx(math.log(2), abs=0.01)  # policy == reference at the start
    assert loss[-1] < loss[0] - 0.01, loss
    assert metrics(wd, DPO, "rewards_margin")[-1] > 0
    assert s["settings"]["beta"] == 0.1 and s["settings"]["lr_scheduler_type"] == "cosine"


def test_models_load_and_templates_render(demo_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    wd, _ = demo_run
    rows = chat.load(wd / "data/embedded/posttrain/tools.jsonl", "messages")
    tool_row = next(r for r in rows if any(m.get("tool_calls") for m in r["messages"]))
    for name in (*SFT, DPO):
        d = wd / f"results/posttrain/{name}/model"
        model = AutoModelForCausalLM.from_pretrained(d)
        tok = AutoTokenizer.from_pretrained(d)
        assert model.config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
        multi = [{"role": "user", "content": "Ciao"}, {"role": "assistant", "content": "Ciao!"},
                 {"role": "user", "content": "Come stai?"}]
        text = tok.apply_chat_template(multi, tokenize=False, add_generation_prompt=True)
        assert text == ("<|im_start|>user\nCiao<|im_end|>\n<|im_start|>assistant\nCiao!<|im_end|>\n"
                        "<|im_start|>user\nCome stai?<|im_end|>\n<|im_start|>assistant\n")
    tok = AutoTokenizer.from_pretrained(wd / "results/posttrain/nesso-agentic/model")
    text = tok.apply_chat_template(tool_row["messages"], tools=json.loads(tool_row["tools"]),
                                   tokenize=False)
    call = next(m for m in tool_row["messages"] if m.get("tool_calls"))["tool_calls"][0]["function"]
    assert "<tools>" in text and f'<tool_call>\n{{"name": "{call["name"]}", "arguments": ' in text
    assert "<tool_response>" in text
    assert any(a["tools"] for a in summary(wd, "nesso-agentic")["smoke"])


def test_only_assistant_tokens_carry_loss(demo_run):
    """The labels SFTTrainer builds from a rendered tool-calling chat: assistant turns only."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    wd, _ = demo_run
    base = wd / "results/pretrain/ita/checkpoints/step-300"
    tok = AutoTokenizer.from_pretrained(base)
    tok.chat_template = (REPO / "resources/chat_templates/chatml.jinja").read_text()
    tok.eos_token = tok.pad_token = "<|im_end|>"
    rows = chat.load(wd / "data/embedded/posttrain/tools.jsonl", "messages")
    row = next(r for r in rows if any(m.get("tool_calls") for m in r["messages"])
               and sum(m["role"] == "assistant" for m in r["messages"]) >= 2)
    args = SFTConfig(output_dir=str(wd / "results/tmp-labels"), assistant_only_loss=True,
                     packing=False, max_length=1024, use_cpu=True, bf16=False, report_to="none",
                     eos_token="<|im_end|>")
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(base), args=args,
                         train_dataset=Dataset.from_list([row]), processing_class=tok)
    example = trainer.train_dataset[0]
    batch = trainer.data_collator([example])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    trained = tok.decode([i for i, lab in zip(ids, labels) if lab != -100])
    expected = ""
    for m in row["messages"]:
        if m["role"] == "assistant":
            expected += tok.apply_chat_template([m], tokenize=False).split(
                "<|im_start|>assistant\n", 1)[1].rstrip("\n")
    assert trained == expected
    assert trained.count("<|im_end|>") == sum(m["role"] == "assistant" for m in row["messages"])
    for m in row["messages"]:
        if m["role"] in ("user", "tool", "system") and m["content"]:
            assert m["content"] not in trained


def test_posttrained_evals_and_tables(demo_run):
    wd, _ = demo_run
    cfg = load_config(wd)
    groups = cfg["compare"]["groups"]
    tasks = [t for ts in groups.values() for t in ts]
    for name in (*SFT, DPO):
        for t in tasks:
            e = json.loads((wd / f"results/evals/{name}/{t}.json").read_text())
            assert isinstance(e["value"], float) and 0.0 <= e["value"] <= 1.0
            assert e["settings"]["apply_chat_template"] is bool(cfg["tasks"][t].get("chat_template"))
            assert e["model_path"] == f"results/posttrain/{name}/model"
    ife = json.loads((wd / "results/evals/nesso-instruct/ifeval_it.json").read_text())
    assert {"prompt_level_strict_acc", "inst_level_strict_acc"} <= set(ife["metrics"])
    assert ife["n_samples"]["effective"] == 30
    # tokens generated per item, for a generation task only (Domyn-Small's cost per answer)
    assert ife["generated_tokens"]["n"] == 30 and ife["generated_tokens"]["mean"] > 0
    arc = json.loads((wd / "results/evals/nesso-instruct/arc_it.json").read_text())
    assert arc["generated_tokens"] == {"mean": None, "n": 0, "tasks": {}}

    with open(wd / "results/reports/ita/compare.csv") as f:
        rows = {r["Model"]: r for r in csv.DictReader(f)}
    assert set(rows) == {*SFT, DPO, *GRPO}
    labels = {g: [cfg["compare"]["labels"].get(t) or cfg["tasks"][t]["label"] for t in ts]
              for g, ts in groups.items()}
    mean_of = cfg["compare"]["mean_label"].format  # the seed's headers: "Media EN", "Media Totale"
    total = cfg["compare"]["total_label"]
    for r in rows.values():
        means = []
        for g, ls in labels.items():
            vals = [float(r[x]) for x in ls]
            assert math.isclose(float(r[mean_of(group=g)]), sum(vals) / len(vals), abs_tol=1e-5)
            means.append(float(r[mean_of(group=g)]))
        assert math.isclose(float(r[total]), sum(means) / len(means), abs_tol=1e-5)
    md = (wd / "results/reports/ita/compare.md").read_text()
    assert ("\n| Model | IFEval_EN | ARC_EN | HS_EN | MMLU_EN | Media EN | IFEval_IT | "
            "ARC_IT | HS_IT | MMLU_IT | Media IT | Media Totale |\n") in md

    with open(wd / "results/reports/ita/sft_delta.csv") as f:
        deltas = list(csv.DictReader(f))
    loglik = [t for t in tasks if not cfg["tasks"][t].get("chat_template")]
    assert {(d["sft_model"], d["task"]) for d in deltas} == {
        (m, t) for m in SFT for t in [*loglik, "Overall"]}
    for d in deltas:
        assert d["base_model"] == "ita-step300"
        assert math.isclose(float(d["delta"]), float(d["sft"]) - float(d["base"]), abs_tol=1e-9)
    for png in ("compare.png", "compare_EN.png", "compare_IT.png"):  # Figures 6, 7, 8
        assert (wd / "results/reports/ita" / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("row, fmt, kind, message", [
    ({"messages": [{"role": "user", "content": "ciao"}]}, "messages", "sft", "no assistant turn"),
    ({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]},
     "messages", "sft", "unknown role 'robot'"),
    ({"conversations": [{"from": "alien", "value": "x"}]}, "sharegpt", "sft",
     "unknown ShareGPT role 'alien'"),
    ({"prompt": [{"role": "user", "content": "x"}], "chosen": [{"role": "assistant", "content": "y"}]},
     "preference", "dpo", "missing rejected"),
    ({"messages": [{"role": "user", "content": "x"},
                   {"role": "assistant", "content": "", "tool_calls": [
                       {"type": "function", "function": {"name": "nope", "arguments": {}}}]}],
      "tools": []}, "messages", "sft", "calls 'nope'"),
])
def test_bad_rows_name_file_and_row(tmp_path, row, fmt, kind, message):
    good = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    if kind == "dpo":
        good = {"prompt": "a", "chosen": "b", "rejected": "c"}
    if fmt == "sharegpt":
        good = {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}
    f = tmp_path / "data.jsonl"
    f.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(chat.DataError) as e:
        chat.load(f, fmt, kind)
    assert f"{f} row 2" in str(e.value) and message in str(e.value)


def test_formats_normalise_to_messages(tmp_path):
    f = tmp_path / "oid.jsonl"
    f.write_text(json.dumps({"conversation": [{"role": "user", "content": "Ciao"},
                                              {"role": "assistant", "content": "Salve"}]}) + "\n"
                 + json.dumps({"conversations": [{"from": "human", "value": "Hi"},
                                                 {"from": "gpt", "value": "Hello"}]}) + "\n")
    rows = chat.load(f)
    assert [r["messages"][1] for r in rows] == [{"role": "assistant", "content": "Salve"},
                                                {"role": "assistant", "content": "Hello"}]


def test_bad_chat_data_fails_before_any_job(tmp_path):
    from conftest import copy_workflow, snakemake, write_config

    wd = copy_workflow(tmp_path / "wf")
    cfg = copy.deepcopy(load_config(wd))
    bad = wd / "data/embedded/posttrain/bad.jsonl"
    bad.write_text(json.dumps({"prompt": [{"role": "user", "content": "x"}],
                               "chosen": [{"role": "assistant", "content": "y"}]}) + "\n")
    cfg["chat_data"]["preferences_en"]["path"] = "data/embedded/posttrain/bad.jsonl"
    write_config(wd, cfg)
    p = snakemake(wd, "--dry-run", "all", check=False, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and not (wd / "results").exists()
    assert "chat_data.preferences_en" in out and "bad.jsonl row 0" in out and "rejected" in out


def _posttrain_cmd(wd, run, epochs, nproc=1, save_steps=4):
    """The job of one SFT run outside the workflow: its spec from the plan, paths under ``run``."""
    import sys

    from zflow.plan import Plan

    cfg = load_config(wd)
    cfg["chat_data"]["chat_it"]["path"] = str(wd / "data/embedded/posttrain/chat_it.jsonl")
    cfg["posttrain"] = {"t": {"method": "sft", "variant": "instruct", "base": "ita-step300",
                              "data": ["chat_it"], "gpus_per_node": nproc,
                              "chat_template": str(REPO / "resources/chat_templates/chatml.jinja"),
                              "train": {"learning_rate": 1e-3, "epochs": epochs,
                                        "micro_batch_size": 4, "sequence_length": 256,
                                        "logging_steps": 1, "save_steps": save_steps}}}
    without_downstream(cfg)
    spec = Plan(cfg, base=wd, check_files=False).spec("posttrain", name="t")
    spec.update(base=str(wd / spec["base"]), run_dir=str(run), model_dir=str(run / "model"),
                metrics=str(run / "m.csv"), summary=str(run / "s.json"))
    f = run.parent / f"{run.name}.spec.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(spec))
    return [sys.executable, str(REPO / "workflow/scripts/posttrain.py"), "--spec", str(f),
            "--threads", "1"]


def test_sft_with_two_processes(demo_run, tmp_path):
    """The multi-GPU path on a CPU: torchrun, two ranks (DDP over gloo), one model written."""
    import subprocess

    from conftest import env

    wd, _ = demo_run
    run = tmp_path / "ddp"
    p = subprocess.run(_posttrain_cmd(wd, run, 1, nproc=2), env=env(), capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "torchrun --standalone --nproc_per_node=2" in p.stdout
    s = json.loads((run / "s.json").read_text())
    assert s["world_size"] == 2 and s["last_loss"] < s["first_loss"]
    assert (run / "model" / "model.safetensors").exists()


def test_sft_killed_resumes_from_its_last_checkpoint(demo_run, tmp_path):
    import subprocess

    from conftest import env, kill_once

    wd, _ = demo_run
    run = tmp_path / "resume"
    kill_once(_posttrain_cmd(wd, run, 3), run / "state" / "checkpoint-8" / "COMPLETE")
    assert not (run / "model").exists() and not (run / "s.json").exists()
    out = subprocess.run(_posttrain_cmd(wd, run, 3), env=env(), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming from" in out.stdout and "checkpoint-" in out.stdout
    s = json.loads((run / "s.json").read_text())
    assert s["resumed_from"] and s["resumed_from"].endswith(tuple(f"checkpoint-{n}" for n in range(8, 200, 4)))
    with open(run / "m.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(1, s["global_steps"] + 1))  # no gap, no step logged twice
