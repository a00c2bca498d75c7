"""Post-training from a base whose tokenizer has no ChatML tokens (the production shape: the
Llama-3.2-1B tokenizer), on a local stand-in of that tokenizer (zflow.smoke.llama_tokenizer):
the stand-in's layout, the embedding resize (tied and untied), a real SFT job and a real DPO job
through posttrain.py, and the saved model read by the eval, qualitative and release code."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, env, load_config
from zflow import schema
from zflow.smoke import llama_tokenizer

import posttrain

SCRIPT = REPO / "workflow" / "scripts" / "posttrain.py"
DATA = REPO / "data" / "embedded" / "posttrain"
TEMPLATE = REPO / "resources" / "chat_templates" / "chatml.jinja"
BPE = 2000
VOCAB = BPE + 256  # the stand-in's size: 2,256 (Llama 3.2: 128,000 + 256)
CHATML = ["<|im_start|>", "<|im_end|>"]


def corpus() -> list[str]:
    """The message texts of the embedded post-training sets (project-written)."""
    texts = []
    for f in sorted(DATA.glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for key in ("messages", "conversation", "chosen", "rejected", "prompt"):
                value = row.get(key)
                if isinstance(value, list):
                    texts += [m["content"] for m in value if isinstance(m, dict) and m.get("content")]
    return texts


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return llama_tokenizer.build(tmp_path_factory.mktemp("llama32-standin"), corpus(), bpe_size=BPE)


def make_base(dest: Path, tokenizer_dir: Path, tied: bool, seed: int = 0) -> Path:
    """A tiny random Llama (hidden 32, 2 layers) with the stand-in tokenizer: a base model
    directory as a pretraining run or the hub would give it (no ChatML tokens, no template)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, tie_word_embeddings=tied,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


@pytest.fixture(scope="module")
def bases(standin, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bases")
    return {"tied": make_base(root / "tied", standin, True),
            "untied": make_base(root / "untied", standin, False, seed=1)}


# --- the stand-in tokenizer ----------------------------------------------------------------------

def test_standin_has_the_llama32_layout(standin, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(standin)
    assert len(tok) == VOCAB
    specials = llama_tokenizer.special_tokens()
    assert len(specials) == 256 and len(set(specials)) == 256
    # the 256 specials right after the BPE, in Llama 3.2's order (128000 + k there, BPE + k here)
    assert [tok.convert_tokens_to_ids(t) for t in specials] == list(range(BPE, VOCAB))
    named = {0: "<|begin_of_text|>", 1: "<|end_of_text|>", 2: "<|reserved_special_token_0|>",
             3: "<|reserved_special_token_1|>", 4: "<|finetune_right_pad_id|>",
             5: "<|reserved_special_token_2|>", 6: "<|start_header_id|>", 7: "<|end_header_id|>",
             8: "<|eom_id|>", 9: "<|eot_id|>", 10: "<|python_tag|>",
             11: "<|reserved_special_token_3|>", 255: "<|reserved_special_token_247|>"}
    assert {k: tok.convert_ids_to_tokens(BPE + k) for k in named} == named
    assert all(not t.startswith("<|") for t in tok.convert_ids_to_tokens(list(range(BPE))))
    assert (tok.bos_token, tok.bos_token_id) == ("<|begin_of_text|>", BPE)
    assert (tok.eos_token, tok.eos_token_id) == ("<|end_of_text|>", BPE + 1)
    assert tok.pad_token is None and tok.chat_template is None
    assert not any(t in tok.get_vocab() for t in CHATML)
    ids = tok("Ciao, come stai?")["input_ids"]
    assert ids[0] == BPE and BPE not in ids[1:]  # BOS on every encode, once
    assert tok.decode(ids, skip_special_tokens=True) == "Ciao, come stai?"
    assert tok("Ciao", add_special_tokens=False)["input_ids"][0] != BPE
    cfg = json.loads((standin / "tokenizer_config.json").read_text())
    assert cfg["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert cfg["model_max_length"] == 131072 and "pad_token" not in cfg and "chat_template" not in cfg
    assert json.loads((standin / "special_tokens_map.json").read_text())["bos_token"]["content"] == \
        "<|begin_of_text|>"
    assert not (standin / "chat_template.jinja").exists()
    spec = json.loads((standin / "tokenizer.json").read_text())
    assert [p["type"] for p in spec["post_processor"]["processors"]] == ["ByteLevel",
                                                                         "TemplateProcessing"]
    assert spec["post_processor"]["processors"][0]["add_prefix_space"] is True
    assert spec["post_processor"]["processors"][0]["trim_offsets"] is False
    assert [p["type"] for p in spec["pre_tokenizer"]["pretokenizers"]] == ["Split", "ByteLevel"]
    assert spec["decoder"]["type"] == "ByteLevel" and spec["model"]["ignore_merges"] is True
    # deterministic: the same texts give the same files
    again = llama_tokenizer.build(tmp_path / "again", corpus(), bpe_size=BPE)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (again / name).read_bytes() == (standin / name).read_bytes(), name
    with pytest.raises(ValueError, match="give more text"):
        llama_tokenizer.build(tmp_path / "small", ["ciao ciao"], bpe_size=BPE)


# --- the resize ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["tied", "untied"])
def test_added_rows_are_the_mean_of_the_old_rows(bases, kind, capsys):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(bases[kind], dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(bases[kind])
    emb_before = model.get_input_embeddings().weight.detach().clone()
    head_before = model.get_output_embeddings().weight.detach().clone()
    added = posttrain.add_chat_tokens(model, tok, "the-base")
    assert added == {"tokens": CHATML, "ids": [VOCAB, VOCAB + 1], "vocab_before": VOCAB,
                     "vocab_after": VOCAB + 2}
    assert (f"added ChatML tokens <|im_start|>, <|im_end|> to the tokenizer of the-base (vocab "
            f"{VOCAB} -> {VOCAB + 2})") in capsys.readouterr().out
    assert len(tok) == VOCAB + 2 and all(t in tok.all_special_tokens for t in CHATML)
    assert tok.convert_tokens_to_ids(CHATML) == [VOCAB, VOCAB + 1]
    emb = model.get_input_embeddings().weight.detach()
    head = model.get_output_embeddings().weight.detach()
    assert emb.shape[0] == head.shape[0] == VOCAB + 2 and model.config.vocab_size == VOCAB + 2
    assert torch.equal(emb[:VOCAB], emb_before) and torch.equal(head[:VOCAB], head_before)
    for row in (VOCAB, VOCAB + 1):
        assert torch.allclose(emb[row], emb_before.mean(dim=0), atol=1e-7)
        assert torch.allclose(head[row], head_before.mean(dim=0), atol=1e-7)
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert tied is (kind == "tied")
    if kind == "untied":  # the head has its own mean, not the embeddings'
        assert not torch.allclose(head[VOCAB], emb[VOCAB])
    # a tokenizer that has the tokens: nothing added, nothing resized
    assert posttrain.add_chat_tokens(model, tok, "the-base") is None
    assert model.get_input_embeddings().weight.shape[0] == VOCAB + 2


# --- real jobs -------------------------------------------------------------------------------------

def train_settings(method: str, data: str, **train) -> dict:
    """A posttrain entry's ``train`` with the schema's defaults."""
    cfg = load_config(REPO)
    cfg["posttrain"] = {"t": {"method": method, "base": "ita-step300", "data": [data],
                              "train": {"learning_rate": 1e-3, **train}}}
    return schema.load(cfg)["posttrain"]["t"]["train"]


def run_job(tmp: Path, method: str, base: Path, data: Path, train: dict):
    spec = {"name": "t", "method": method, "variant": "instruct", "base": str(base),
            "datasets": [{"name": "d", "path": str(data), "format": "auto"}],
            "chat_template": str(TEMPLATE), "train": train, "nodes": 1, "nproc_per_node": 1,
            "run_dir": str(tmp / "run"), "model_dir": str(tmp / "run" / "model"),
            "metrics": str(tmp / "metrics.csv"), "summary": str(tmp / "summary.json"),
            "keyed_on": {"base": "tiny"}}
    f = tmp / "spec.json"
    f.write_text(json.dumps(spec))
    out = subprocess.run([sys.executable, str(SCRIPT), "--spec", str(f), "--threads", "1"],
                         env=env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return out, json.loads((tmp / "summary.json").read_text()), tmp / "run" / "model"


ADDED = {"tokens": CHATML, "ids": [VOCAB, VOCAB + 1], "vocab_before": VOCAB,
         "vocab_after": VOCAB + 2}


def check_saved(model_dir: Path, summary: dict, log: str, base: Path) -> None:
    """What the saved model directory holds after tokens were added."""
    from transformers import AutoTokenizer

    assert (f"added ChatML tokens <|im_start|>, <|im_end|> to the tokenizer of {base} (vocab "
            f"{VOCAB} -> {VOCAB + 2}); embeddings resized, new rows = mean of the old rows; "
            f"eos/pad = <|im_end|>") in log
    assert summary["added_tokens"] == ADDED
    assert json.loads((model_dir / "zflow_posttrain.json").read_text())["added_tokens"] == ADDED
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["vocab_size"] == VOCAB + 2
    assert cfg["eos_token_id"] == cfg["pad_token_id"] == VOCAB + 1 and cfg["bos_token_id"] == BPE
    gen = json.loads((model_dir / "generation_config.json").read_text())
    assert gen["eos_token_id"] == gen["pad_token_id"] == VOCAB + 1
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert len(tok) == VOCAB + 2 and tok.convert_tokens_to_ids(CHATML) == [VOCAB, VOCAB + 1]
    added = {a["id"]: a for a in json.loads((model_dir / "tokenizer.json").read_text())["added_tokens"]}
    assert [(added[i]["content"], added[i]["special"]) for i in (VOCAB, VOCAB + 1)] == \
        [(t, True) for t in CHATML]
    assert json.loads((model_dir / "tokenizer_config.json").read_text())["extra_special_tokens"] == CHATML
    assert all(t in tok.all_special_tokens for t in CHATML)
    assert tok.decode([VOCAB, VOCAB + 1], skip_special_tokens=True) == ""
    assert tok.eos_token == tok.pad_token == "<|im_end|>" and tok.bos_token == "<|begin_of_text|>"
    assert tok.chat_template == TEMPLATE.read_text()
    assert (model_dir / "chat_template.jinja").read_text() == TEMPLATE.read_text()
    assert summary["smoke"] and all(a["answer"] for a in summary["smoke"])


@pytest.fixture(scope="module")
def sft_job(bases, tmp_path_factory):
    """A real SFT job from the tied base (no ChatML tokens): 20 steps on 24 Italian chats (enough
    for the job's own generation check to get non-empty answers from a random start)."""
    tmp = tmp_path_factory.mktemp("sft")
    data = tmp / "chat.jsonl"
    data.write_text("".join((DATA / "chat_it.jsonl").read_text().splitlines(True)[:24]))
    train = train_settings("sft", "chat_it", max_steps=20, micro_batch_size=2, learning_rate=3e-3,
                           sequence_length=256, logging_steps=1, save_steps=100)
    out, summary, model_dir = run_job(tmp, "sft", bases["tied"], data, train)
    return out, summary, model_dir


def test_sft_job_adds_the_chatml_tokens(sft_job, bases):
    out, summary, model_dir = sft_job
    check_saved(model_dir, summary, out.stdout, bases["tied"])
    assert summary["global_steps"] == 20 and summary["last_loss"] < summary["first_loss"]


def test_sft_model_answers_through_its_chat_template(sft_job):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, _, model_dir = sft_job
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    msgs = [{"role": "user", "content": "Qual è la capitale d'Italia?"}]
    text = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>user\nQual è la capitale d'Italia?<|im_end|>\n<|im_start|>assistant\n"
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)
    rendered = ids["input_ids"][0].tolist()
    assert tok.decode(rendered) == text and "<|im_start|>assistant\n" in tok.decode(rendered)
    assert rendered[0] == VOCAB and BPE not in rendered  # no BOS: the template has none
    assert rendered.count(VOCAB) == 2 and rendered.count(VOCAB + 1) == 1  # two turns opened, one closed
    with torch.no_grad():
        gen = model.generate(**ids, max_new_tokens=8, min_new_tokens=8, do_sample=False,
                             pad_token_id=tok.pad_token_id)
    assert gen.shape[1] == ids["input_ids"].shape[1] + 8
    assert model.config.vocab_size == VOCAB + 2 and model.get_output_embeddings().weight.shape[0] == VOCAB + 2


def test_eval_qualitative_and_release_read_the_saved_model(sft_job, tmp_path):
    """The three readers of a post-trained model, unchanged: lm-eval's HF model with
    apply_chat_template (run_lm_eval.py), the qualitative benchmark's local sender
    (qualitative_answer.py) and the release's copy, generation config and check (zflow.release)."""
    from lm_eval.models.huggingface import HFLM

    import qualitative_answer
    from zflow import paths
    from zflow import release as rel

    _, _, model_dir = sft_job
    lm = HFLM(pretrained=str(model_dir), device="cpu", batch_size=1, dtype="float32")
    chat = lm.apply_chat_template([{"role": "user", "content": "Ciao"}])
    assert chat == "<|im_start|>user\nCiao<|im_end|>\n<|im_start|>assistant\n"
    assert lm.eot_token_id == VOCAB + 1 and lm.tokenizer.pad_token == "<|im_end|>"
    ids = lm.tok_encode(chat)  # lm-eval 0.4.13 lets the tokenizer add its BOS (Llama 3.2's does)
    assert ids.count(VOCAB) == 2 and ids.count(VOCAB + 1) == 1
    assert lm.tok_decode(ids, skip_special_tokens=False).endswith(chat)

    model, tok, device = qualitative_answer.load_local(
        {"device": "cpu", "dtype": "float32", "source": {"path": str(model_dir)}}, 1)
    assert qualitative_answer.eos_ids(model, tok) == {VOCAB + 1}
    send, fmt = qualitative_answer.local_sender(model, tok, device, {
        "max_new_tokens": 6, "temperature": 0.0, "top_p": 1.0, "repetition_penalty": 1.0,
        "seed": 0})
    assert fmt == "chat"
    answer = send([{"role": "user", "content": "Ciao! Come stai?"}])
    assert 1 <= answer["tokens_generated"] <= 6

    dst = tmp_path / "release"
    dst.mkdir()
    names = rel.copy_model(model_dir, dst)
    assert {"config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
            "model.safetensors"} <= set(names)
    assert rel.generation_config(model_dir, dst, None)["eos_token_id"] == VOCAB + 1
    assert rel.architecture(dst)["vocab_size"] == VOCAB + 2
    (dst / paths.RELEASE_PROVENANCE).write_text(json.dumps({"files": rel.checksums(dst)}))
    result = rel.check(dst)
    assert result["chat_template"] is True and result["new_tokens"] == 4
    assert result["prompt"].endswith("<|im_start|>assistant\n")


def test_dpo_job_from_a_chatml_less_base(bases, tmp_path):
    """DPO straight from the untied base, on Dolci-Instruct-DPO-shaped rows (parquet, whole
    conversations, extra columns): the reference is the resized start, so the first loss is
    log 2 (policy == reference)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for i, line in enumerate((DATA / "preferences_en.jsonl").read_text().splitlines()[:8]):
        r = json.loads(line)
        rows.append({"prompt_id": f"p{i}", "chosen": r["prompt"] + r["chosen"],
                     "rejected": r["prompt"] + r["rejected"], "preference_type": "delta",
                     "chosen_model": "a", "rejected_model": "b"})
    data = tmp_path / "dolci" / "train-00000-of-00001.parquet"
    data.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), data)
    train = train_settings("dpo", "preferences_en", max_steps=2, micro_batch_size=2,
                           sequence_length=256, logging_steps=1, save_steps=100, learning_rate=1e-4)
    out, summary, model_dir = run_job(tmp_path, "dpo", bases["untied"], data.parent, train)
    check_saved(model_dir, summary, out.stdout, bases["untied"])
    assert summary["method"] == "dpo" and summary["train_rows"] == 8
    with open(tmp_path / "metrics.csv") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f) if r["loss"]]
    assert losses and losses[0] == pytest.approx(math.log(2), abs=1e-3)
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["tie_word_embeddings"] is False


def test_grpo_job_from_a_chatml_less_base_on_deepscaler_rows(bases, tmp_path):
    """GRPO straight from the untied base with a KL term (beta > 0: TRL loads a reference model,
    resized here like the policy), on a DeepScaleR-shaped deepscaler.json (one JSON array of
    problem / answer / solution, solution empty)."""
    rows = [json.loads(line) for line in (DATA / "grpo" / "math.jsonl").read_text().splitlines()[:8]]
    data = tmp_path / "deepscaler.json"
    data.write_text(json.dumps([{"problem": r["prompt"] if isinstance(r["prompt"], str)
                                 else r["prompt"][-1]["content"], "answer": r["answer"],
                                 "solution": ""} for r in rows], indent=2))
    cfg = load_config(REPO)
    cfg["posttrain"] = {"t": {"method": "grpo", "base": "ita-step300", "data": ["grpo_math"],
                              "train": {"learning_rate": 1e-4, "beta": 0.04,
                                        "rewards": [{"name": "math"}, {"name": "format"}],
                                        "num_generations": 4, "micro_batch_size": 4,
                                        "max_completion_length": 8, "max_prompt_length": 512,
                                        "logging_steps": 1, "max_steps": 2, "save_steps": 100}}}
    train = schema.load(cfg)["posttrain"]["t"]["train"]
    out, summary, model_dir = run_job(tmp_path, "grpo", bases["untied"], data, train)
    assert summary["added_tokens"] == ADDED and summary["train_rows"] == 8
    assert summary["global_steps"] == 2 and summary["settings"]["beta"] == 0.04
    assert json.loads((model_dir / "config.json").read_text())["vocab_size"] == VOCAB + 2
    assert "'kl': '0'" in out.stdout  # the reference is the resized start: no divergence at step 1


def test_a_base_with_the_chatml_tokens_is_left_as_it_is(standin, tmp_path, capsys):
    """A base that already has <|im_start|> / <|im_end|> (an SFT model, Qwen): no token added,
    no resize; the template and eos/pad are set as before."""
    from transformers import AutoTokenizer

    base = make_base(tmp_path / "plain", standin, True)
    tok = AutoTokenizer.from_pretrained(base)
    tok.add_special_tokens({"extra_special_tokens": CHATML}, replace_extra_special_tokens=False)
    tok.save_pretrained(tmp_path / "chat")
    make_base(tmp_path / "chat", tmp_path / "chat", True)  # a model sized for the tokenizer
    model, tok, added = posttrain.load_model(
        {"name": "t", "base": str(tmp_path / "chat"), "chat_template": str(TEMPLATE)}, "dpo")
    assert added is None and "added ChatML" not in capsys.readouterr().out
    assert model.get_input_embeddings().weight.shape[0] == model.config.vocab_size == VOCAB + 2
    assert tok.eos_token == tok.pad_token == "<|im_end|>" and tok.chat_template == TEMPLATE.read_text()
    assert model.config.eos_token_id == model.generation_config.pad_token_id == VOCAB + 1
