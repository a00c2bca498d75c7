"""The real workflow on the embedded default, asserted on content."""

from __future__ import annotations

import csv
import json
import math

import pyarrow.parquet as pq
from conftest import load_config, snakemake


def test_tokenize_counts_match_tokenizer(demo_run):
    from transformers import AutoTokenizer

    wd, _ = demo_run
    cfg = load_config(wd)
    tok_name = cfg["languages"]["ita"]["tokenizer"]
    tok = AutoTokenizer.from_pretrained(wd / "results" / "tokenizers" / tok_name)
    assert tok.convert_tokens_to_ids("<|im_start|>") != tok.unk_token_id
    assert len(tok) <= cfg["languages"]["ita"]["model"]["vocab_size"]
    for name, src in cfg["sources"].items():
        stats = json.loads((wd / "results" / "tokenized" / tok_name / f"{name}.stats.json").read_text())
        texts = []
        for f in sorted((wd / src["path"]).glob("*.parquet")):
            texts += pq.read_table(f, columns=[src.get("text_key", "text")]).column(0).to_pylist()
        expected = sum(len(ids) + 1 for ids in tok(texts, add_special_tokens=False)["input_ids"])
        assert stats["documents"] == len(texts), name
        assert stats["tokens"] == expected, name
        assert stats["parquet_files"] == len(list((wd / src["path"]).glob("*.parquet")))
        assert stats["versions"]["datatrove"]
        ds = sorted((wd / "results" / "tokenized" / tok_name / name).rglob("*.ds"))  # groups
        assert len({d.parent.name for d in ds}) == stats["n_groups"] == len(stats["groups"])
        assert ds and all((d.parent / f"{d.name}.index").exists() for d in ds)
        assert all((d.parent / f"{d.name}.metadata").exists() for d in ds)


def test_pretraining_loss_drops_and_checkpoints_load(demo_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    wd, _ = demo_run
    cfg = load_config(wd)["languages"]["ita"]
    with open(wd / "results/pretrain/ita/train_metrics.csv") as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in rows]
    assert steps == list(range(1, cfg["pretrain"]["train_steps"] + 1))
    loss = {int(r["step"]): float(r["loss"]) for r in rows}
    first, last = cfg["eval"]["checkpoints"][0], cfg["eval"]["checkpoints"][-1]
    assert loss[1] > 6.0  # about ln(vocab) at the start
    assert loss[last] < loss[first] - 0.3, (loss[first], loss[last])
    assert all(float(r["tokens_per_sec"]) > 0 and float(r["lr"]) >= 0 for r in rows)
    summary = json.loads((wd / "results/pretrain/ita/train_summary.json").read_text())
    assert summary["final_step"] == cfg["pretrain"]["train_steps"]
    assert summary["checkpoints"] == list(range(cfg["pretrain"]["checkpoint_interval"],
                                                cfg["pretrain"]["train_steps"] + 1,
                                                cfg["pretrain"]["checkpoint_interval"]))
    ck = wd / f"results/pretrain/ita/checkpoints/step-{last}"
    model = AutoModelForCausalLM.from_pretrained(ck)
    tok = AutoTokenizer.from_pretrained(ck)
    assert model.config.hidden_size == cfg["model"]["hidden_size"]
    assert model.config.num_key_value_heads == cfg["model"]["num_key_value_heads"]
    assert len(tok) <= model.config.vocab_size
    assert not list((wd / "results/pretrain/ita/checkpoints").glob("*.tmp"))


def test_every_eval_json_has_numeric_metrics(demo_run):
    wd, _ = demo_run
    cfg = load_config(wd)
    lc = cfg["languages"]["ita"]
    for step in lc["eval"]["checkpoints"]:
        for task in lc["eval"]["tasks"]:
            e = json.loads((wd / f"results/evals/ita-step{step}/{task}.json").read_text())
            assert e["step"] == step and e["task"] == task
            assert e["metric"] == cfg["tasks"][task]["metric"]
            assert e["num_fewshot"] == cfg["tasks"][task].get("num_fewshot", 0)
            assert e["metrics"], e
            for name, v in e["metrics"].items():
                assert isinstance(v, float) and 0.0 <= v <= 1.0, (name, v)
            assert e["value"] == e["metrics"][e["metric"]]
            assert e["n_samples"]["effective"] > 0
            for k in ("lm_eval_version", "transformers_version", "torch_version"):
                assert e[k], k
            assert e["model_path"].endswith(f"checkpoints/step-{step}")
    assert not list((wd / "results/evals").rglob("*.tmp*"))


def test_progression_table(demo_run):
    wd, _ = demo_run
    cfg = load_config(wd)
    lc = cfg["languages"]["ita"]
    with open(wd / "results/reports/ita/progression.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == lc["eval"]["checkpoints"]
    for r in rows:
        vals = [float(r[t]) for t in lc["eval"]["tasks"]]
        e = json.loads((wd / f"results/evals/{r['model']}/{lc['eval']['tasks'][0]}.json").read_text())
        assert math.isclose(float(r[lc["eval"]["tasks"][0]]), e["value"], abs_tol=1e-6)
        assert math.isclose(float(r["media"]), sum(vals) / len(vals), abs_tol=1e-6)
    md = (wd / "results/reports/ita/progression.md").read_text()
    assert "| Checkpoint | mmlu_it (acc) | hellaswag_it (acc_norm) | arc_it (acc_norm) | Media |" in md
    assert sum(1 for line in md.splitlines() if line.startswith("| ") and line[2].isdigit()) == len(rows)
    for png in ("progression.png", "loss.png"):
        data = (wd / "results/reports/ita" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_second_run_has_nothing_to_do(demo_run):
    wd, _ = demo_run
    p = snakemake(wd, "all", "--dry-run")
    assert "Nothing to be done" in p.stdout + p.stderr, p.stdout
