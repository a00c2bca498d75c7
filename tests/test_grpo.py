"""GRPO (posttrain method grpo, zflow.grpo): the prompt sets, the job on a tiny model made here
(per-step rewards in the metrics CSV, resume after SIGKILL), dynamic sampling on a seeded case,
per-row tools, and the config errors."""

from __future__ import annotations

import copy
import csv
import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_workflow, env, kill_once, load_config, snakemake, write_config
from zflow import chat, grpo, metrics, schema
from zflow import rewards as R
from zflow.plan import ConfigError, Plan

SCRIPT = REPO / "workflow" / "scripts" / "posttrain.py"
GRPO_DATA = REPO / "data" / "embedded" / "posttrain" / "grpo"
SETS = {"math": 60, "code": 20, "choice": 20, "ifeval": 20, "tools": 20}
TEMPLATE = REPO / "resources" / "chat_templates" / "chatml.jinja"


# --- the embedded prompt sets -------------------------------------------------------------------

def load_set(name):
    return chat.load(GRPO_DATA / f"{name}.jsonl", "prompt", "grpo")


def test_embedded_sets_load_and_their_answers_verify():
    sets = {name: load_set(name) for name in SETS}
    assert {n: len(rows) for n, rows in sets.items()} == SETS
    assert all(r["reasoning"] is None for rows in sets.values() for r in rows)
    math = sets["math"]
    ends = [r["prompt"][-1]["content"].endswith("? Scrivi la risposta finale in \\boxed{}.") for r in math]
    assert sum(ends) == 30 and sum(r["prompt"][-1]["content"].endswith("? Put the final answer in \\boxed{}.")
                                   for r in math) == 30
    assert all(R.math_score(f"\\boxed{{{r['answer']}}}", r["answer"]) == 1.0 for r in math)
    choice = sets["choice"]
    assert R.choice_reward()(None, [f"The answer is {r['choice_answer']}" for r in choice],
                             choice_answer=[r["choice_answer"] for r in choice]) == [1.0] * 20
    tools = sets["tools"]
    assert all(R.tool_call_correct(json.loads(r["expected_call"]), r["tools"], r["expected_call"])
               for r in tools)
    assert all(len(json.loads(r["tools"])) == 2 for r in tools)
    solutions = yaml.safe_load((REPO / "tools/tables/grpo.yaml").read_text())["functions"]
    code = sets["code"]
    assert R.code_reward()(None, [f"```python\n{f['solution']}```" for f in solutions],
                           tests=[r["tests"] for r in code]) == [1.0] * 20
    assert R.code_reward()(None, ["def nothing():\n    pass\n"] * 20,
                           tests=[r["tests"] for r in code]) == [0.0] * 20
    ifeval = sets["ifeval"]
    assert all(len(json.loads(r["instruction_kwargs"])) == len(r["instruction_id_list"]) for r in ifeval)
    for content in (GRPO_DATA / f"{n}.jsonl" for n in SETS):
        assert content.stat().st_size < 2_000_000


@pytest.mark.parametrize("row, message", [
    ({"answer": "3"}, "no 'prompt'"),
    ({"prompt": "Quanto fa 1+2?"}, "nothing to verify"),
    ({"prompt": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
      "answer": "3"}, "ends with an assistant turn"),
    ({"prompt": "x", "choice_answer": "Z"}, "'choice_answer' 'Z' is not a letter"),
    ({"prompt": "x", "tests": []}, "'tests' is not a non-empty string"),
    ({"prompt": "x", "instruction_id_list": ["punctuation:no_comma"], "instruction_kwargs": [{}, {}]},
     "one per instruction"),
    ({"prompt": "x", "tools": [{"type": "function", "function": {"name": "a"}}],
      "expected_call": {"name": "b", "arguments": {}}}, "names 'b', which is not among"),
    ({"prompt": "x", "answer": "1", "reasoning": "yes"}, "'reasoning' is not true or false"),
])
def test_bad_prompt_rows_name_file_and_row(tmp_path, row, message):
    good = {"prompt": "Quanto fa 1+1?", "answer": "2"}
    f = tmp_path / "data.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in (good, good, row)))
    with pytest.raises(chat.DataError) as e:
        chat.load(f, "prompt", "grpo")
    assert f"{f} row 2" in str(e.value) and message in str(e.value)


def test_prompt_rows_normalise_and_other_kinds_refuse_them(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"problem": "1+1?", "answer": 2, "solution": "dropped"}) + "\n"
                 + json.dumps({"prompt": "Pick", "choice_answer": 1, "reasoning": False}) + "\n")
    a, b = chat.load(f, "auto", "grpo")
    assert a["prompt"] == [{"role": "user", "content": "1+1?"}] and a["answer"] == "2"
    assert set(a) == {"prompt", *chat.PROMPT_COLUMNS} and a["tests"] is None
    assert b["choice_answer"] == "B" and b["reasoning"] is False
    with pytest.raises(chat.DataError, match="a prompt row in an SFT dataset"):
        chat.load(f, "auto", "sft")
    with pytest.raises(chat.DataError, match="GRPO needs prompt rows"):
        chat.load(REPO / "data/embedded/posttrain/chat_it.jsonl", "auto", "grpo")


# --- reasoning modes and settings -----------------------------------------------------------------

def grpo_train(**train) -> dict:
    """A grpo entry's ``train`` with the schema's defaults (those of the grpo branch included)."""
    cfg = load_config(REPO)
    cfg["posttrain"] = {"t": {"method": "grpo", "base": "ita-step300", "data": ["grpo_math"],
                              "train": {"learning_rate": 1e-4, **train}}}
    return schema.load(cfg)["posttrain"]["t"]["train"]


def test_grpo_defaults_and_trl_arguments():
    train = grpo_train(rewards=[{"name": "math"}, {"name": "length"}], epsilon_high=3.0,
                       vllm_server_url="http://gen:8000")
    assert (train["beta"], train["loss_type"]) == (0.0, "dapo")
    assert (train["num_generations"], train["epsilon"]) == (8, 0.2)
    assert train["reasoning_share"] == 0.8 and train["dynamic_sampling_batches"] == 0
    kw = grpo.config_kwargs(train)
    assert kw["epsilon_high"] == 3.0 and kw["num_iterations"] == 1 and kw["reward_weights"] == [1.0, 1.0]
    assert (kw["use_vllm"], kw["vllm_mode"]) == (True, "server")
    assert kw["vllm_server_base_url"] == "http://gen:8000"
    assert grpo.reward_specs(train)[1]["max_tokens"] == train["max_completion_length"]
    assert "use_vllm" not in grpo.config_kwargs(grpo_train(rewards=[{"name": "math"}]))
    dpo = schema.load(load_config(REPO))["posttrain"]["nesso-instruct-dpo"]["train"]
    assert dpo["beta"] == 0.1 and dpo["loss_type"] == "sigmoid" and "num_generations" not in dpo


def test_reasoning_share_is_seeded_and_respects_rows():
    rows = [{"prompt": [{"role": "user", "content": f"q{i}"}], "reasoning": None} for i in range(10)]
    rows[0]["reasoning"] = False
    rows[1]["prompt"] = [{"role": "system", "content": "Sei un tutor."}, *rows[1]["prompt"]]
    train = grpo_train(rewards=[{"name": "math"}], seed=7)
    out = grpo.prepare_rows(rows, train)
    assert out == grpo.prepare_rows(rows, train)
    modes = [r["reasoning"] for r in out]
    assert modes[0] is False and sum(modes[1:]) == round(0.8 * 9)
    assert grpo.reasoning_modes(rows, 0.8, 8) != grpo.reasoning_modes(rows, 0.8, 7)
    on, off = train["reasoning_on_prompt"], train["reasoning_off_prompt"]
    for r in out:
        assert r["prompt"][0] == {"role": "system", "content": r["prompt"][0]["content"]}
        assert r["prompt"][0]["content"].startswith(on if r["reasoning"] else off)
    assert out[1]["prompt"][0]["content"].endswith("\n\nSei un tutor.") and len(out[1]["prompt"]) == 2


def test_replace_rows_pads_each_side():
    import torch

    ones = functools.partial(torch.ones, dtype=torch.long)
    batch = {"prompt_ids": torch.tensor([[1, 2], [3, 4]]), "prompt_mask": ones(2, 2),
             "completion_ids": torch.tensor([[5], [6]]), "completion_mask": ones(2, 1),
             "advantages": torch.tensor([0.0, 0.0]), "num_items_in_batch": torch.tensor(2),
             "old_per_token_logps": None}
    donor = {"prompt_ids": torch.tensor([[7, 8, 9]]), "prompt_mask": ones(1, 3),
             "completion_ids": torch.tensor([[10, 11]]), "completion_mask": ones(1, 2),
             "advantages": torch.tensor([1.5]), "num_items_in_batch": torch.tensor(2)}
    out = grpo.replace_rows(batch, [1], donor, [0], pad_id=0)
    assert out["prompt_ids"].tolist() == [[0, 1, 2], [7, 8, 9]]
    assert out["prompt_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert out["completion_ids"].tolist() == [[5, 0], [10, 11]]
    assert out["completion_mask"].tolist() == [[1, 0], [1, 1]]
    assert out["advantages"].tolist() == [0.0, 1.5] and batch["advantages"].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="cannot merge the batch's 'pixel_values'"):
        grpo.replace_rows({**batch, "pixel_values": torch.zeros(2, 2)}, [0],
                          {**donor, "pixel_values": torch.zeros(1, 2)}, [0], 0)


# --- a tiny model ---------------------------------------------------------------------------------

def make_tiny_model(d: Path) -> None:
    """A 1-layer Llama with a byte-level BPE tokenizer that has the ChatML tokens."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<eos>", "<|im_start|>", "<|im_end|>", "<pad>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    text = [line for n in SETS for line in (GRPO_DATA / f"{n}.jsonl").read_text().splitlines()]
    tok.train_from_iterator(text, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<eos>", eos_token="<|im_end|>",
                                   pad_token="<|im_end|>",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    fast.save_pretrained(d)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                      bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                      pad_token_id=fast.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(d)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-grpo")
    make_tiny_model(d)
    return d


def job_spec(tmp: Path, base: Path, data=("math",), **train) -> dict:
    return {"name": "t", "method": "grpo", "variant": "instruct", "base": str(base),
            "datasets": [{"name": f"grpo_{n}", "path": str(GRPO_DATA / f"{n}.jsonl"), "format": "prompt"}
                         for n in data],
            "chat_template": str(TEMPLATE), "train": grpo_train(**train), "nodes": 1, "nproc_per_node": 1,
            "run_dir": str(tmp / "run"), "model_dir": str(tmp / "run" / "model"),
            "metrics": str(tmp / "metrics.csv"), "summary": str(tmp / "summary.json"),
            "keyed_on": {"base": "tiny"}}


def command(tmp: Path, spec: dict) -> list[str]:
    f = tmp / "spec.json"
    f.write_text(json.dumps(spec))
    return [sys.executable, str(SCRIPT), "--spec", str(f), "--threads", "1"]


MATH = dict(rewards=[{"name": "math"}, {"name": "format"}, {"name": "length"}], num_generations=4,
            micro_batch_size=8, max_completion_length=16, max_prompt_length=512, logging_steps=1, seed=3)


def test_job_logs_rewards_per_step(tiny, tmp_path):
    spec = job_spec(tmp_path, tiny, **MATH, max_steps=3, save_steps=10, dynamic_sampling_batches=2)
    out = subprocess.run(command(tmp_path, spec), env=env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    rows = metrics.read(tmp_path / "metrics.csv")
    assert list(rows[0]) == metrics.POSTTRAIN
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    for r in rows:
        for col in ("loss", "reward", "reward_std", "reward_math", "reward_format", "reward_length",
                    "completion_length", "generation_batches", "dropped_groups", "masked_groups"):
            assert r[col] != "", (col, r)
        assert r["reward_code"] == r["reward_tool"] == ""
        assert -2.4 - 1e-6 <= float(r["reward_math"]) <= 3.0 and 0 <= float(r["reward_format"]) <= 1
        assert -0.25 <= float(r["reward_length"]) <= 0 and 0 < float(r["completion_length"]) <= 16
        total = float(r["reward_math"]) + float(r["reward_format"]) + float(r["reward_length"])
        assert abs(float(r["reward"]) - total) < 1e-4  # the weighted sum TRL logs (weights 1)
        assert 1 <= float(r["generation_batches"]) <= 2
        assert float(r["masked_groups"]) <= float(r["dropped_groups"]) <= 2
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["method"] == "grpo" and s["global_steps"] == 3 and s["train_rows"] == 60
    assert s["first_reward"] == pytest.approx(float(rows[0]["reward"]))
    assert s["settings"]["num_generations"] == 4 and s["settings"]["beta"] == 0.0
    assert s["settings"]["reward_weights"] == [1.0, 1.0, 1.0] and s["settings"]["adam_beta2"] == 0.999
    assert [r["name"] for r in s["rewards"]] == ["math", "format", "length"]
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()


def test_job_resumes_after_sigkill_without_losing_or_repeating_steps(tiny, tmp_path):
    spec = job_spec(tmp_path, tiny, **MATH, max_steps=10, save_steps=2)
    run = tmp_path / "run"
    kill_once(command(tmp_path, spec), run / "state" / "checkpoint-2" / "COMPLETE")
    (run / "state" / "checkpoint-99").mkdir(exist_ok=True)  # half-written: never resumed from
    out = subprocess.run(command(tmp_path, spec), env=env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    resumed = [line for line in out.stdout.splitlines() if line.startswith("resuming from")]
    assert resumed, out.stdout[-3000:]
    step = int(resumed[0].rsplit("checkpoint-", 1)[1])
    assert 2 <= step < 10 and not (run / "state" / "checkpoint-99").exists()
    with open(tmp_path / "metrics.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(1, 11))  # no gap, no duplicate across the kill
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["global_steps"] == 10 and s["resumed_from"].endswith(f"checkpoint-{step}")


# --- the trainer in this process: dynamic sampling, per-row tools ----------------------------------

def flat_or_varied(prompts, completions, flat=None, **kw):
    """0 for the 'flat' rows (every group of them has zero variance), else a value that differs
    between completions."""
    return [0.0 if f else float(sum(map(ord, R.completion_text(c))) % 97) for c, f in zip(completions, flat)]


def make_trainer(tiny, tmp_path, rows, **train):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig

    tok = AutoTokenizer.from_pretrained(tiny)
    tok.chat_template = TEMPLATE.read_text()
    args = GRPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, num_generations=4,
                      max_completion_length=8, use_cpu=True, report_to="none", seed=5, bf16=False,
                      gradient_checkpointing=False, disable_tqdm=True, **train)
    trainer = grpo.trainer_class()(model=AutoModelForCausalLM.from_pretrained(tiny),
                                   reward_funcs=[flat_or_varied], args=args,
                                   train_dataset=Dataset.from_list(rows), processing_class=tok,
                                   dynamic_sampling_batches=3)
    trainer.model.train()
    return trainer


def test_dynamic_sampling_drops_zero_variance_groups(tiny, tmp_path):
    import torch

    rows = [{"prompt": [{"role": "user", "content": f"{'flat' if i < 4 else 'varied'} question {i}"}],
             "flat": i < 4, "tools": None} for i in range(8)]
    trainer = make_trainer(tiny, tmp_path, rows)
    torch.manual_seed(11)
    inputs = [rows[0]] * 4 + [rows[4]] * 4  # one flat group, one with reward variance
    batch = trainer._generate_and_score_completions(inputs)
    m = trainer._metrics["train"]
    # the flat group is dropped; the second generation batch (prompts drawn with the step's seed:
    # questions 6 and 3) has one group with reward variance, which takes its place
    assert (m["dynamic_sampling/batches"], m["dynamic_sampling/dropped_groups"],
            m["dynamic_sampling/masked_groups"]) == ([2], [1], [0])
    assert len(m["reward"]) == 2  # TRL's logs cover both generation batches
    text = trainer.processing_class.batch_decode(batch["prompt_ids"], skip_special_tokens=True)
    adv, mask = batch["advantages"].view(2, 4), batch["completion_mask"].sum(1).view(2, 4)
    assert all("varied question 6" in t for t in text[:4]) and all("varied question 4" in t for t in text[4:])
    assert (adv.abs().sum(1) > 0).all() and (mask > 0).all()
    assert int(batch["num_items_in_batch"]) == int(batch["completion_mask"].sum())

    # seeded: the same step draws the same prompts and completions
    trainer2 = make_trainer(tiny, tmp_path, rows)
    torch.manual_seed(11)
    again = trainer2._generate_and_score_completions(inputs)
    assert torch.equal(again["prompt_ids"], batch["prompt_ids"])
    assert torch.equal(again["completion_ids"], batch["completion_ids"])

    # only flat prompts to draw from: every group is masked after the last batch
    flat_rows = [dict(r, flat=True) for r in rows]
    trainer3 = make_trainer(tiny, tmp_path, flat_rows)
    out = trainer3._generate_and_score_completions([flat_rows[0]] * 4 + [flat_rows[1]] * 4)
    m = trainer3._metrics["train"]
    assert (m["dynamic_sampling/batches"], m["dynamic_sampling/dropped_groups"],
            m["dynamic_sampling/masked_groups"]) == ([3], [2], [2])
    assert int(out["completion_mask"].sum()) == 0 and int(out["num_items_in_batch"]) == 0


def test_prompts_render_their_own_tools(tiny, tmp_path):
    tool_row = load_set("tools")[0]
    rows = [{"prompt": tool_row["prompt"], "flat": False, "tools": tool_row["tools"]},
            {"prompt": [{"role": "user", "content": "Ciao"}], "flat": False, "tools": None}]
    trainer = make_trainer(tiny, tmp_path, rows)
    trainer._row_tools = [r["tools"] for r in rows]
    ids, _, _ = trainer._tokenize_prompts([r["prompt"] for r in rows])
    with_tools, plain = (trainer.processing_class.decode(i) for i in ids)
    name = json.loads(tool_row["expected_call"])["name"]
    assert "<tools>" in with_tools and f'"name": "{name}"' in with_tools
    assert with_tools.endswith("<|im_start|>assistant\n")
    assert plain == "<|im_start|>user\nCiao<|im_end|>\n<|im_start|>assistant\n"


# --- config errors --------------------------------------------------------------------------------

KEY = "posttrain.nesso-instruct-grpo"


def bad_configs():
    cfg = load_config(REPO)
    unknown = copy.deepcopy(cfg)
    unknown["posttrain"]["nesso-instruct-grpo"]["train"]["rewards"][1]["name"] = "style"
    chat_data = copy.deepcopy(cfg)
    chat_data["posttrain"]["nesso-instruct-grpo"]["data"] = ["chat_it"]
    rows = copy.deepcopy(cfg)
    rows["chat_data"]["chat_it"]["format"] = "auto"
    rows["posttrain"]["nesso-instruct-grpo"]["data"] = ["chat_it"]
    setting = copy.deepcopy(cfg)
    setting["posttrain"]["nesso-instruct-grpo"]["train"]["rewards"][2]["tokens"] = 3
    groups = copy.deepcopy(cfg)
    groups["posttrain"]["nesso-instruct-grpo"]["train"]["num_generations"] = 3
    dpo = copy.deepcopy(cfg)
    dpo["posttrain"]["nesso-instruct-dpo"]["train"]["rewards"] = [{"name": "math"}]
    return {
        "unknown reward": (unknown, [f"{KEY}.train.rewards[1].name: unknown reward 'style'"]),
        "chat data": (chat_data, [f"{KEY}.data: GRPO needs prompt data; 'chat_it' has format 'messages'"]),
        "chat rows": (rows, ["chat_data.chat_it:", "GRPO needs prompt rows"]),
        "reward setting": (setting, ["posttrain.nesso-instruct-grpo.train.rewards[2]: reward 'length'",
                                     "unexpected keyword argument 'tokens'"]),
        "groups": (groups, ["posttrain.nesso-instruct-grpo.train.num_generations: the generation batch"]),
        "rewards on dpo": (dpo, ["posttrain.nesso-instruct-dpo.train.rewards: rewards are for method grpo"]),
    }


@pytest.mark.parametrize("case", list(bad_configs()))
def test_config_errors_name_the_key(case):
    cfg, messages = bad_configs()[case]
    with pytest.raises(ConfigError) as e:
        Plan(cfg, base=REPO)
    for m in messages:
        assert m in str(e.value), str(e.value)


def test_config_errors_come_before_any_job(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    cfg, _ = bad_configs()["unknown reward"]
    cfg["posttrain"]["nesso-instruct-grpo"]["data"] = ["chat_it"]
    write_config(wd, cfg)
    p = snakemake(wd, "--dry-run", "all", check=False, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and not (wd / "results").exists()
    assert "posttrain.nesso-instruct-grpo.train.rewards[1].name: unknown reward 'style'" in out
    assert "posttrain.nesso-instruct-grpo.data: GRPO needs prompt data" in out
