"""Conversion parity (zflow.parity): the convert_checkpoint job records the converted model's loss
on a fixed batch of the run's data, the report flags one above the run's training loss, and
where "nanotron" runs (here: zflow's stand-in, NOT nanotron) a logits mismatch fails the job."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from test_nanotron_standin import STANDIN, data  # noqa: F401, F811 - data: a fixture
from zflow import metrics, nanotron, parity, tables, tokenized

STEP, SEQ = 60, 32


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """A tiny Llama trained STEP steps on the data fixture's folders (its losses logged as
    train_metrics.csv), saved in nanotron's layout (zflow.nanotron.write_checkpoint) with a
    config.yaml naming its data stage and sequence length, as nanotron's does."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tmp = tmp_path_factory.mktemp("run")
    folders = [g for src in ("web", "books") for g, _ in
               tokenized.group_folders(data["folders"][src])]
    cfg = {"tokens": {"sequence_length": SEQ}, "parallelism": {"dp": 1, "pp": 1, "tp": 1},
           "model": {"dtype": "bfloat16"}, "data_stages": [
               {"name": "stable", "start_training_step": 1, "data": {"seed": 5, "dataset": {
                   "dataset_folder": folders, "dataset_weights": [2.0, 2.0, 1.0]}}}]}
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=data["vocab"], hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        tie_word_embeddings=True))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    path, fields = tmp / "train_metrics.csv", metrics.PRETRAIN
    for step in range(1, STEP + 1):
        ids = torch.as_tensor(parity.fixed_batch(cfg, step, n=8, seed=100 + step)[0])
        loss = model(ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        metrics.append(path, {"step": step, "loss": loss.item()}, fields)
    root = tmp / "nanotron_checkpoints"
    nanotron.write_checkpoint(model.eval(), root, STEP, dtype=torch.bfloat16, config=cfg)
    return {"step_dir": root / str(STEP), "metrics": path, "rows": metrics.read(path)}


def convert(tmp_path, step_dir, name, **extra) -> dict:
    """convert_nanotron.main on one step (outputs under tmp_path/results); its parity record."""
    from convert_nanotron import main

    out = tmp_path / "results/models" / name
    spec = {"checkpoint": str(step_dir), "output": str(out), "dtype": "bfloat16",
            "tokenizer": None, "vocab_size": None, "identity": "test", **extra}
    (tmp_path / f"{name}.json").write_text(json.dumps(spec))
    main(["--spec", str(tmp_path / f"{name}.json")])
    return json.loads((out / "zflow_checkpoint.json").read_text())["parity"]


# ---------------------------------------------------------------- the numbers


def test_tolerances_are_the_stated_ones():
    assert (parity.LOSS_REL_MARGIN, parity.LOSS_SE_FACTOR, parity.WINDOW) == (0.15, 3.0, 21)
    assert (parity.LOGITS_ATOL, parity.LOGITS_RTOL, parity.ARGMAX_MIN) == (0.1, 0.05, 0.90)
    assert (parity.LOSS_SEQUENCES, parity.PARITY_SEQUENCES, parity.PARITY_TOKENS) == (8, 2, 256)
    assert parity.loss_margin(3.0, 0.1) == pytest.approx(0.45 + 0.3)
    # logits: 0.1 + 5 % of the largest |logit| of nanotron's
    ok = {"max_abs_diff": 1.3, "mean_abs_diff": 0.1, "argmax_agreement": 0.95,
          "max_abs_logit": 25.0, "positions": 512}
    assert parity.logits_problem(ok) is None
    assert "1.4 > 1.35" in parity.logits_problem({**ok, "max_abs_diff": 1.4})
    assert "argmax agrees at 89.0%" in parity.logits_problem({**ok, "argmax_agreement": 0.89})
    # the training loss: median of the 21 logged values nearest the step; one-sided flag
    rows = [{"step": s, "loss": 3.0 + (0.5 if s % 2 else -0.5)} for s in range(1, 201)]
    rows[100]["loss"] = 50.0  # a spike (step 101) does not move the median
    ref = parity.reference_loss(rows, 100)
    assert ref == {"loss": 2.5, "from_step": 90, "to_step": 110, "n": 21}
    rec = {"loss": 2.5 + 0.15 * 2.5 + 3 * 0.05 - 1e-6, "loss_se": 0.05}
    assert parity.loss_flag(rec, rows, 100) is None
    flag = parity.loss_flag({**rec, "loss": rec["loss"] + 2e-6}, rows, 100)
    assert flag["margin"] == pytest.approx(0.525) and flag["train_loss"] == 2.5
    assert parity.loss_flag({"loss": 0.5, "loss_se": 0.0}, rows, 100) is None  # lower: seen data
    assert parity.loss_flag({"loss": None}, rows, 100) is None
    assert parity.loss_flag(rec, [], 100) is None


def test_fixed_batch_is_the_steps_stage_seeded(data):
    web, books = data["folders"]["web"], data["folders"]["books"]
    cfg = {"tokens": {"sequence_length": 16}, "data_stages": [
        {"name": "stable", "start_training_step": 1,
         "data": {"dataset": {"dataset_folder": [web + "/g00000", web + "/g00001"]}}},
        {"name": "anneal", "start_training_step": 50,
         "data": {"dataset": {"dataset_folder": [books + "/g00000"], "dataset_weights": [1.0]}}}]}
    a, info = parity.fixed_batch(cfg, 49, n=6)
    assert a.shape == (6, 17) and info["stage"] == "stable" and info["seed"] == parity.SEED
    assert all("/web/" in f for f, _ in info["windows"])
    b, _ = parity.fixed_batch(cfg, 49, n=6)
    assert (a == b).all()  # the same step always gets the same batch
    c, info = parity.fixed_batch(cfg, 50, n=6)
    assert info["stage"] == "anneal" and all("/books/" in f for f, _ in info["windows"])
    ds, start = info["windows"][0]
    toks = np.fromfile(ds, dtype=np.uint16 if tokenized.metadata(ds)[1] == 2
                       else np.uint32)
    assert (c[0] == toks[start:start + 17]).all()
    assert not (parity.fixed_batch(cfg, 50, n=6, seed=7)[0] == c).all()
    with pytest.raises(parity.NoBatch, match="no data_stages"):
        parity.fixed_batch({"tokens": {"sequence_length": 16}}, 1)


# ---------------------------------------------------------------- the job, the report


def test_loss_recorded_and_a_corrupted_checkpoint_flagged_in_the_report(
        run, tmp_path, monkeypatch):
    import report
    from transformers import AutoModelForCausalLM

    monkeypatch.chdir(tmp_path)
    rec = convert(tmp_path, run["step_dir"], "ita-step60")
    assert rec["nanotron"] == {"status": "not run", "reason": "pretrain.nanotron.python is not set"}
    assert rec["batch"]["sequences"] == 8 and rec["batch"]["tokens"] == SEQ + 1
    assert rec["batch"]["stage"] == "stable" and rec["batch"]["seed"] == parity.SEED
    # the recorded loss is the converted model's, as a user loads it, on the recorded windows
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "results/models/ita-step60",
                                                 dtype=torch.float32).eval()
    losses = []
    for ds, start in rec["batch"]["windows"]:
        size = tokenized.metadata(ds)[1]
        ids = torch.as_tensor(np.fromfile(ds, dtype=np.uint16 if size == 2 else np.uint32,
                                          count=SEQ + 1, offset=start * size).astype(np.int64))
        with torch.no_grad():
            losses.append(model(ids[None], labels=ids[None]).loss.item())
    assert rec["loss"] == pytest.approx(sum(losses) / 8, abs=1e-4)
    ref = parity.reference_loss(run["rows"], STEP)
    assert ref["n"] == 21 and (ref["from_step"], ref["to_step"]) == (STEP - 20, STEP)
    assert parity.loss_flag(rec, run["rows"], STEP) is None
    assert rec["loss"] < ref["loss"] + parity.loss_margin(ref["loss"], rec["loss_se"])

    # a layout error in the checkpoint (the embedding's rows permuted): flagged
    bad = tmp_path / "bad"
    shutil.copytree(run["step_dir"], bad / str(STEP))
    (bad / "latest.txt").write_text(str(STEP))
    from safetensors.torch import load_file, save_file

    emb = (bad / str(STEP) / "model/model/token_position_embeddings/pp_block/token_embedding"
           / "model_weight_pp-rank-0-of-1_tp-rank-0-of-1.safetensors")
    w = load_file(str(emb))["data"]
    save_file({"data": w[torch.randperm(w.shape[0], generator=torch.Generator().manual_seed(0))]
               .contiguous()}, str(emb), metadata={"version": "1.5"})
    worse = convert(tmp_path, bad / str(STEP), "bad-step60")
    flag = parity.loss_flag(worse, run["rows"], STEP)
    assert flag and flag["excess"] > 2 * flag["margin"], (worse["loss"], rec["loss"], flag)

    records = [{"model": "ita-step60", "step": STEP, "model_path": "results/models/ita-step60"},
               {"model": "bad-step60", "step": STEP, "model_path": "results/models/bad-step60"}]
    rows = [{"model": r["model"], "step": STEP, "stage": None} for r in records]
    flags = report.conversion_flags(rows, records, str(run["metrics"]))
    assert list(flags) == ["bad-step60"]
    t = tables.Table("t", ["Checkpoint", "x"], rows=[["60", 1.0], ["60", 2.0]],
                     notes=["Tasks: x"])
    report.flag_conversions(t, rows, flags)
    assert t.rows[0][0] == "60" and t.rows[1][0] == "60 ⚠"
    assert t.notes[0].startswith("⚠ 60: the converted model's loss on its fixed batch is "
                                 f"{worse['loss']:.3f}") and "15% + 3 standard errors" in t.notes[0]
    assert t.notes[-1] == "Tasks: x"


def test_standin_parity_passes_and_a_layout_error_fails_the_job(
        run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    here = {"nanotron_python": sys.executable, "nanotron_checkout": str(STANDIN)}
    asked, real_ask = [], parity.nanotron_logits
    monkeypatch.setattr(parity, "nanotron_logits", lambda *a, **k: asked.append(real_ask(*a, **k))
                        or asked[-1])
    rec = convert(tmp_path, run["step_dir"], "ita-step60", **here)
    nano = rec["nanotron"]
    assert nano["status"] == "passed"
    assert nano["facts"]["nanotron"] == "zflow stand-in (NOT nanotron)"
    assert nano["ids"] == [2, 32]  # the batch's first 2 sequences (sequence_length 32 < 256)
    assert nano["max_abs_diff"] < 1e-4 and nano["argmax_agreement"] == 1.0
    assert "parity: nanotron's logits compared on 2 x 32 tokens" in capsys.readouterr().out

    # a converter that splits nanotron's fused qkv_proj as q, v, k (a layout change at a new
    # pin); "nanotron" answers as it did (its logits of the same step, not asked again: time)
    real = nanotron.read_checkpoint

    def qvk(step_dir):
        sd, mc = real(step_dir)
        for i in range(mc["num_hidden_layers"]):
            k, v = (f"model.layers.{i}.self_attn.{x}_proj.weight" for x in "kv")
            sd[k], sd[v] = sd[v], sd[k]
        return sd, mc

    monkeypatch.setattr(nanotron, "read_checkpoint", qvk)
    monkeypatch.setattr(parity, "nanotron_logits", lambda *a, **k: asked[0])
    with pytest.raises(SystemExit):
        convert(tmp_path, run["step_dir"], "ita-step60-bad", **here)
    err = capsys.readouterr().err
    assert "the converted model's logits differ from nanotron's on 2 x 32 tokens" in err, err
    assert "max |logit difference|" in err or "argmax agrees" in err
    assert not (tmp_path / "results/models/ita-step60-bad").exists()


def test_no_nanotron_here_is_recorded_not_failed(tmp_path):
    """A real checkout (no ZFLOW_STANDIN) on this CPU machine: the in-environment module answers
    'unavailable' (no CUDA), which the job records as not run."""
    (tmp_path / "nanotron").mkdir()
    ids = np.zeros((1, 4), dtype=np.int64)
    logits, facts = parity.nanotron_logits(sys.executable, str(tmp_path / "nanotron"),
                                           tmp_path, ids, timeout=120)
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine: nanotron could be asked here")
    assert logits is None and "no CUDA device here" in facts["unavailable"]
