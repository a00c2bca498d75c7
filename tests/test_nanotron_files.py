"""nanotron checkpoint conversion and log parsing, on CPU (nanotron itself is never imported)."""

from __future__ import annotations

import json

from pathlib import Path

import pytest
import torch
from conftest import REPO
from test_nanotron_standin import data, run_job, write_job  # noqa: F401 - data: a fixture
from zflow import nanotron

SEED_LOG = (REPO / "tests" / "data" / "seed_nanotron_log.txt").read_text().splitlines()


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Jobs run from the workflow's folder and write under its results/ only (zflow.io.owned)."""
    monkeypatch.chdir(tmp_path)


def convert(tmp_path, step_dir, out, dtype="bfloat16"):
    from convert_nanotron import main

    spec = tmp_path / "convert.json"
    spec.write_text(json.dumps({"checkpoint": str(step_dir), "output": str(out), "dtype": dtype,
                                "tokenizer": None, "vocab_size": None, "identity": "test"}))
    main(["--spec", str(spec)])


def tiny_llama(tied: bool, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=96, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=tied,
                      max_position_embeddings=64, rope_theta=10000.0)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # random norms too, so a swapped norm would show
        for n, p in model.named_parameters():
            if "norm" in n:
                p.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("tp", [1, 2])
@pytest.mark.parametrize("interleaved", [False, True])
def test_round_trip_logits(tmp_path, tied, tp, interleaved):
    from transformers import AutoModelForCausalLM

    model = tiny_llama(tied).to(torch.bfloat16)
    root = tmp_path / "checkpoints"
    step_dir = nanotron.write_checkpoint(model, root, step=5000, tp=tp, rope_interleaved=interleaved)
    if tp > 1:
        assert (step_dir / "model/model/decoder/0/pp_block/attn/qkv_proj"
                / "model_weight_pp-rank-0-of-1_tp-rank-1-of-2.safetensors").exists()
    assert (step_dir / "model/model/lm_head/pp_block").exists() == (not tied)
    out = tmp_path / "results/converted/hf"
    convert(tmp_path, step_dir, out)
    back = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16).eval()
    assert back.config.tie_word_embeddings == tied
    ids = torch.randint(0, 96, (2, 17))
    with torch.no_grad():
        a, b = model(ids).logits.float(), back(ids).logits.float()
    assert torch.allclose(a, b, atol=1e-2, rtol=1e-2), (a - b).abs().max()
    info = json.loads((out / "zflow_checkpoint.json").read_text())
    assert info["step"] == 5000 and info["tp"] == tp and info["identity"] == "test"


def test_incomplete_steps_are_refused(tmp_path):
    model = tiny_llama(True)
    root = tmp_path / "checkpoints"
    nanotron.write_checkpoint(model, root, step=10)
    step_dir = nanotron.write_checkpoint(model, root, step=20)
    (root / "latest.txt").write_text("10")  # step 20 still being written
    with pytest.raises(SystemExit):
        convert(tmp_path, step_dir, tmp_path / "results/converted/a")
    assert not (tmp_path / "results/converted/a").exists()
    (root / "latest.txt").write_text("20")
    shard = (step_dir / "model/model/decoder/1/pp_block/mlp/down_proj"
             / "model_weight_pp-rank-0-of-1_tp-rank-0-of-1.safetensors")
    shard.write_bytes(shard.read_bytes()[:40])  # truncated file
    with pytest.raises(nanotron.IncompleteCheckpoint, match="down_proj"):
        nanotron.read_checkpoint(step_dir)
    (step_dir / "checkpoint_metadata.json").unlink()
    with pytest.raises(nanotron.IncompleteCheckpoint, match="checkpoint_metadata"):
        nanotron.check_complete(step_dir)


def test_parse_seed_log_lines():
    rows = nanotron.parse_log(SEED_LOG, peak_tflops=312.0)
    assert [r["step"] for r in rows] == [211364, 211365]
    r = rows[0]
    assert r["train_steps"] == 1_500_000
    assert r["consumed_tokens"] == 480e9
    assert r["time_per_iteration_ms"] == pytest.approx(8790)
    assert r["tokens_per_sec"] == 182e3 and r["tokens_per_sec_per_gpu"] == 699
    assert r["global_batch_size"] == 1.6e6
    assert r["grad_norm"] == pytest.approx(0.112) and r["lm_loss"] == pytest.approx(2.04)
    assert r["lr"] == pytest.approx(1e-4) and r["model_tflops_per_gpu"] == pytest.approx(15.4)
    assert r["mfu"] == pytest.approx(15.4 / 312.0)
    assert rows[1]["lm_loss"] == pytest.approx(2.06)


def test_parse_log_with_ansi_codes_and_resumed_steps():
    line = ("\x1b[32m01/02 10:00:00 [INFO|DP=0|PP=0|TP=0|node1]: \x1b[0miteration: 7 / 10 | "
            "consumed_tokens: 1.2M | lm_loss: 3.5 | model_tflops_per_gpu: 120 | eta: 1:00:00")
    again = line.replace("lm_loss: 3.5", "lm_loss: 3.4")
    rows = nanotron.parse_log(["noise", line, again])
    assert len(rows) == 1 and rows[0]["lm_loss"] == 3.4 and rows[0]["consumed_tokens"] == 1.2e6


# ---------------------------------------------------------------- a kill at any instant of a save

WRITES = [name for name, _ in nanotron.WRITE_ORDER]
LATEST = WRITES.index("../latest.txt")


def test_write_order_is_nanotrons():
    # Trainer.save_checkpoint at the pin d22eb809: save() (config.yaml, weights, optimizer,
    # lr_scheduler, metadata, barrier), random states, latest.txt, then model_config.json
    assert WRITES == ["config.yaml", "model", "optimizer", "lr_scheduler",
                      "checkpoint_metadata.json", "random", "../latest.txt", "model_config.json"]
    policy = dict(nanotron.WRITE_ORDER)
    assert policy["model_config.json"] == "complete" and policy["random"] == "ignore"
    assert all(policy[n] == "skip" for n in WRITES[:LATEST] if n != "random")


def nanotron_config(mc: dict, tp: int) -> dict:
    """The model and parallelism of a nanotron config.yaml whose vocab nanotron pads: 90 tokens,
    make_vocab_size_divisible_by 16 x tp 2 -> 96 rows (the model's)."""
    return {"model": {"model_config": {**mc, "vocab_size": 90}, "make_vocab_size_divisible_by": 16,
                      "dtype": "bfloat16"},
            "parallelism": {"dp": 1, "pp": 1, "tp": tp}, "tokens": {"train_steps": 30}}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Step 20 of a tied tp=2 run, whole, and its HF conversion (the converted model a cut
    checkpoint must equal once completed)."""
    import os

    tmp = tmp_path_factory.mktemp("ref")
    model = tiny_llama(True, seed=3).to(torch.bfloat16)
    step_dir = nanotron.write_checkpoint(model, tmp / "checkpoints", step=20, tp=2)
    mc = json.loads((step_dir / "model_config.json").read_text())
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        convert(tmp, step_dir, tmp / "results/converted/ref")
    finally:
        os.chdir(cwd)
    return model, mc, tmp / "results/converted/ref"


def converted_equal(a, b):
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    ca, cb = (json.loads((d / "config.json").read_text()) for d in (a, b))
    assert ca == cb


@pytest.mark.parametrize("cut", WRITES)
def test_a_kill_after_each_write_is_completed_or_skipped(tmp_path, capsys, reference, cut):
    model, mc, ref = reference
    root = tmp_path / "checkpoints"
    config = nanotron_config(mc, tp=2)
    nanotron.write_checkpoint(tiny_llama(True, seed=1).to(torch.bfloat16), root, step=10, tp=2,
                              config=config)
    step_dir = nanotron.write_checkpoint(model, root, step=20, tp=2, config=config,
                                         stop_after=cut)
    out = tmp_path / "results/converted/step20"
    if WRITES.index(cut) < LATEST:  # latest.txt still at 10: nanotron resumes from 10, rewrites 20
        assert nanotron.finished_step(root) == 10  # where nanotron resumes
        assert nanotron.complete_steps(root) == [10]
        nanotron.read_checkpoint(root / "10")  # ... from a readable checkpoint
        with pytest.raises(nanotron.IncompleteCheckpoint, match="latest.txt has not reached"):
            nanotron.complete_checkpoint(step_dir)
        with pytest.raises(SystemExit):
            convert(tmp_path, step_dir, out)
        err = capsys.readouterr().err
        assert "not converting step 20" in err and "latest.txt has not reached step 20" in err
        assert "writes it again after resuming" in err and "skipped until then" in err
        assert not out.exists() and not (step_dir / "model_config.json").exists()
        return
    # latest.txt names 20: nanotron resumes from it and never writes it again
    assert nanotron.finished_step(root) == 20 and nanotron.complete_steps(root) == [10, 20]
    missing = not (step_dir / "model_config.json").exists()
    assert missing == (cut == "../latest.txt")
    sd, got = nanotron.read_checkpoint(step_dir)  # what the stand-in resumes with
    assert got == mc
    convert(tmp_path, step_dir, out)
    said = capsys.readouterr().out
    assert ("model_config.json written from its config.yaml" in said) == missing
    assert json.loads((step_dir / "model_config.json").read_text()) == mc
    converted_equal(out, ref)
    assert nanotron.complete_checkpoint(step_dir) == []  # whole now


def test_a_model_config_cut_short_is_rewritten(tmp_path, reference):
    model, mc, ref = reference
    root = tmp_path / "checkpoints"
    step_dir = nanotron.write_checkpoint(model, root, step=20, tp=2,
                                         config=nanotron_config(mc, tp=2))
    text = (step_dir / "model_config.json").read_text()
    (step_dir / "model_config.json").write_text(text[: len(text) // 2])  # killed mid-write
    assert nanotron.complete_steps(root) == [20]
    assert nanotron.complete_all(root) == {20: ["model_config.json"]}
    assert json.loads((step_dir / "model_config.json").read_text()) == mc
    convert(tmp_path, step_dir, tmp_path / "results/converted/x")
    converted_equal(tmp_path / "results/converted/x", ref)


def test_a_step_without_anything_to_complete_from_is_refused(tmp_path):
    model = tiny_llama(True)
    root = tmp_path / "checkpoints"
    step_dir = nanotron.write_checkpoint(model, root, step=20, stop_after="../latest.txt")
    (step_dir / "config.yaml").write_text("{}\n")  # damaged by hand, not by a kill
    with pytest.raises(nanotron.IncompleteCheckpoint, match="no model.model_config"):
        nanotron.check_complete(step_dir)
    (step_dir / "config.yaml").unlink()
    with pytest.raises(nanotron.IncompleteCheckpoint, match="missing config.yaml"):
        nanotron.check_complete(step_dir)
    assert nanotron.complete_steps(root) == []


@pytest.mark.parametrize("written, expect", [
    ({10: True, 20: True}, 20),  # another rank wrote 20's model_config.json: 20 was saved
    ({10: True, 20: False}, 10),  # 20's save may not be whole everywhere: back to 10
    ({20: False}, None),  # no saved step: nanotron starts from scratch
])
def test_an_empty_latest_txt_is_repaired(tmp_path, written, expect):
    """A kill while latest.txt is rewritten leaves it empty; nanotron's int('') would fail at
    every relaunch."""
    model = tiny_llama(True)
    root = tmp_path / "checkpoints"
    for step, whole in written.items():
        nanotron.write_checkpoint(model, root, step=step,
                                  stop_after=None if whole else "../latest.txt")
    (root / "latest.txt").write_text("")
    assert nanotron.finished_step(root) is None and nanotron.complete_steps(root) == []
    msg = nanotron.repair_latest(root)
    assert "was empty" in msg
    assert nanotron.finished_step(root) == expect
    assert (root / "latest.txt").exists() == (expect is not None)
    assert nanotron.repair_latest(root) is None  # nothing more to do


def test_standin_killed_between_latest_and_model_config_resumes_and_converts(tmp_path, capsys,
                                                                           data):
    """End to end with the stand-in trainer, which saves in nanotron's order: killed right after
    step 8's latest.txt, the job is run again: it completes step 8 before launching, the run
    resumes from 8 (as nanotron: latest.txt) and step 8 converts to the model the run saved."""
    spec, cfg = write_job(tmp_path, data)
    with pytest.raises(SystemExit):
        run_job(tmp_path, {"ZFLOW_STANDIN_KILL_BEFORE_MODEL_CONFIG": "8"})
    root = Path(cfg["checkpoints"]["checkpoints_path"])
    assert not (root / "8/model_config.json").exists() and nanotron.finished_step(root) == 8
    assert nanotron.complete_steps(root) == [4, 8]
    capsys.readouterr()
    out = run_job(tmp_path)
    assert "step 8: model_config.json written from its config.yaml" in out
    log = [nanotron._ANSI.sub("", x) for x in Path(spec["log"]).read_text().splitlines()]
    assert any(f"resuming from {root / '8'}: step 9 of 12" in x for x in log)
    assert nanotron.complete_steps(root) == [4, 8, 12] and nanotron.finished_step(root) == 12
    assert json.loads((root / "8/model_config.json").read_text()) == \
        json.loads((root / "4/model_config.json").read_text())  # what nanotron writes
    from transformers import AutoModelForCausalLM

    out_dir = tmp_path / "results/converted/step8"
    convert(tmp_path, root / "8", out_dir)
    model = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32).eval()
    probe = torch.load(root / "8/standin_probe.pt")
    with torch.no_grad():
        assert torch.allclose(model(probe["input_ids"]).logits, probe["logits"], atol=1e-5)

