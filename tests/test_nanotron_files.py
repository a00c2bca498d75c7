"""nanotron checkpoint conversion and log parsing, on CPU (nanotron itself is never imported)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import REPO
from zflow import nanotron

SEED_LOG = (REPO / "tests" / "data" / "seed_nanotron_log.txt").read_text().splitlines()


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
    out = tmp_path / "hf"
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
        convert(tmp_path, step_dir, tmp_path / "a")
    assert not (tmp_path / "a").exists()
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
