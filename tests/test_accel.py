"""The hf backend's speed features (zflow.accel): the fast path when CUDA is there (availability
monkeypatched), the fallbacks and their reasons on a CPU, and one real CPU run of pretrain.py."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from conftest import REPO, env
from zflow import accel
from zflow.plan import pretrain_spec

sys.path.insert(0, str(REPO / "bench"))
from bench_pretrain import (SEED_MODEL, TINY_MODEL, flops_per_token,  # noqa: E402
                            nanotron_flops_per_token, synthetic_folder, tiny_tokenizer)

ALL = lambda module: True  # noqa: E731  every optional package installed
NONE = lambda module: False  # noqa: E731  none


def gpu_args(features):
    """TrainingArguments of the pinned transformers from features chosen for a GPU, built on
    this CPU (the device checks need use_cpu, and bf16 a GPU: those two are asserted apart)."""
    from transformers import TrainingArguments

    return TrainingArguments(output_dir="unused", report_to="none",
                             **{**features.training_args, "use_cpu": True, "bf16": False})


def test_gpu_fast_path():
    f = accel.choose({}, dtype="auto", cuda=True, world=1, importable=ALL)
    a = f.training_args
    assert a["bf16"] is True and a["use_cpu"] is False and f.bf16
    assert a["optim"] == "adamw_torch_fused"
    assert a["use_liger_kernel"] is True
    assert a["liger_kernel_config"] == {"fused_linear_cross_entropy": True, "cross_entropy": False,
                                        "rms_norm": True, "swiglu": True, "rope": True}
    assert a["torch_compile"] is False  # auto: Liger alone beat Liger + compile
    assert f.attn_implementation == "sdpa"
    assert a["ddp_bucket_cap_mb"] == 100 and "fsdp" not in a
    assert a["dataloader_pin_memory"] is True and a["dataloader_num_workers"] == 0
    assert a["logging_steps"] == 1 and a["logging_nan_inf_filter"] is False
    s = f.summary()
    assert s["liger"]["state"] == "on" and "fused_linear_cross_entropy" in s["liger"]["why"]
    assert s["bf16"] == {"state": "on", "why": "pretrain.dtype auto: CUDA"}
    assert s["fused_adamw"]["state"] == "on" and s["pin_memory"]["state"] == "on"
    assert s["compile"]["state"] == "off" and "Liger alone" in s["compile"]["why"]
    # the pinned transformers takes every keyword and keeps it
    ta = gpu_args(f)
    assert ta.use_liger_kernel and ta.liger_kernel_config["rope"] and ta.ddp_bucket_cap_mb == 100
    assert ta.optim == "adamw_torch_fused" and ta.logging_steps == 1


def test_fsdp_on_several_gpus():
    f = accel.choose({"parallelism": "fsdp"}, dtype="auto", cuda=True, world=2, importable=ALL)
    a = f.training_args
    assert a["fsdp"] is True and "ddp_bucket_cap_mb" not in a
    assert a["fsdp_config"]["transformer_layer_cls_to_wrap"] == ["LlamaDecoderLayer"]
    assert f.summary()["parallelism"]["state"] == "fsdp"
    plugin = gpu_args(f).fsdp_plugin_args  # what accelerate's FSDP plugin gets
    assert plugin["fsdp_version"] == 2 and plugin["reshard_after_forward"] is True
    assert plugin["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert plugin["transformer_cls_names_to_wrap"] == "LlamaDecoderLayer"
    # one process: nothing to shard; several processes on CPUs: DDP, and why
    one = accel.choose({"parallelism": "fsdp"}, dtype="auto", cuda=True, world=1, importable=ALL)
    assert "fsdp" not in one.training_args
    assert one.summary()["parallelism"] == {"state": "off", "why": "one process"}
    cpu = accel.choose({"parallelism": "fsdp", "ddp_bucket_cap_mb": 25}, dtype="auto",
                       cuda=False, world=2, importable=ALL)
    assert "fsdp" not in cpu.training_args and cpu.training_args["ddp_bucket_cap_mb"] == 25
    assert cpu.summary()["parallelism"] == {
        "state": "ddp", "why": "2 processes, buckets of 25 MB (fsdp needs CUDA)"}


def test_cpu_fallbacks():
    f = accel.choose({}, dtype="auto", cuda=False, world=1, importable=ALL)
    a = f.training_args
    assert a["use_cpu"] is True and a["bf16"] is False and a["optim"] == "adamw_torch"
    assert a["use_liger_kernel"] is False and "liger_kernel_config" not in a
    assert a["dataloader_pin_memory"] is False and f.attn_implementation == "sdpa"
    assert "feature liger: off (no CUDA)" in f.log()
    assert "feature bf16: off (pretrain.dtype auto: no CUDA, float32)" in f.log()
    assert "feature fused_adamw: off (no CUDA)" in f.log()
    assert "feature pin_memory: off (no CUDA)" in f.log()
    # asked for on a CPU: bf16 follows the dtype; Liger and flash attention fall back
    f = accel.choose({"liger": "on", "attention": "flash_attention_2"}, dtype="bfloat16",
                     cuda=False, world=1, importable=ALL)
    assert f.bf16 and not f.training_args["use_liger_kernel"]
    assert f.summary()["attention"] == {"state": "sdpa", "why": "flash_attention_2 needs CUDA"}
    # the CPU features are TrainingArguments of the pinned transformers as they are
    from transformers import TrainingArguments

    ta = TrainingArguments(output_dir="unused", report_to="none",
                           **accel.choose({}, dtype="auto", cuda=False, world=1,
                                          importable=NONE).training_args)
    assert ta.use_cpu and not ta.bf16 and not ta.use_liger_kernel and not ta.dataloader_pin_memory


def test_gpu_without_optional_packages():
    f = accel.choose({"attention": "flash_attention_2"}, dtype="auto", cuda=True, world=1,
                     importable=NONE)
    assert f.training_args["use_liger_kernel"] is False and f.bf16
    assert f.summary()["liger"] == {"state": "off",
                                    "why": "liger-kernel not installed (requirements-gpu.txt)"}
    assert f.attn_implementation == "sdpa"
    assert "flash-attn not installed" in f.summary()["attention"]["why"]
    with_fa = accel.choose({"attention": "flash_attention_2"}, dtype="auto", cuda=True, world=1,
                           importable=lambda m: m == "flash_attn")
    assert with_fa.attn_implementation == "flash_attention_2"
    with pytest.raises(SystemExit):  # on: a GPU run without liger_kernel is an error
        accel.choose({"liger": "on"}, dtype="auto", cuda=True, world=1, importable=NONE)


def test_settings_switch_features_off():
    f = accel.choose({"liger": "off", "compile": "model", "attention": "eager",
                      "pin_memory": False, "log_interval": 5, "dataloader_workers": 2},
                     dtype="float32", cuda=True, world=1, importable=ALL)
    a = f.training_args
    assert not a["use_liger_kernel"] and a["torch_compile"] and not a["bf16"]
    assert a["optim"] == "adamw_torch_fused"  # fused AdamW: CUDA, whatever the dtype
    assert not a["dataloader_pin_memory"] and a["dataloader_num_workers"] == 2
    assert a["logging_steps"] == 5 and f.attn_implementation == "eager"
    s = f.summary()
    assert s["liger"]["why"] == "pretrain.hf.liger off"
    assert s["pin_memory"]["why"] == "pretrain.hf.pin_memory false"
    assert s["bf16"] == {"state": "off", "why": "pretrain.dtype float32"}


def test_attention_reaches_the_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    eager = accel.choose({"attention": "eager"}, dtype="auto", cuda=False, world=1, importable=ALL)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1))
    assert model.config._attn_implementation == "sdpa"  # transformers' own choice on a CPU
    accel.apply_to_model(model, eager)
    assert model.config._attn_implementation == "eager"


def test_flops_formulas():
    # issue 15's table: 65.6K tokens/s of the 0.4B at seq 4096 is 27.5% of 989 TFLOP/s
    assert flops_per_token(SEED_MODEL, 4096) == pytest.approx(4.136e9, rel=1e-3)
    assert 65.6e3 * flops_per_token(SEED_MODEL, 4096) / 989e12 == pytest.approx(0.275, abs=2e-3)
    # nanotron's get_flops counts the same matmuls for a Llama
    for m, seq in ((SEED_MODEL, 4096), (SEED_MODEL, 1024), (TINY_MODEL, 128)):
        assert nanotron_flops_per_token(m, seq) == pytest.approx(flops_per_token(m, seq))


def test_cpu_run_records_features_and_logs_every_interval(tmp_path):
    """pretrain.py on a CPU: the summary says which features are off and why, and the metrics
    rows follow pretrain.hf.log_interval (and the last step)."""
    synthetic_folder(tmp_path / "data", 9 * 4 * 33 + 1, TINY_MODEL["vocab_size"])
    run = tmp_path / "run"
    spec = pretrain_spec(
        {**TINY_MODEL, "max_position_embeddings": 64},
        {"sequence_length": 32, "micro_batch_size": 4, "train_steps": 8,
         "checkpoint_interval": 4, "learning_rate": 3e-3, "hf": {"log_interval": 3}},
        [{"source": "synthetic", "folder": str(tmp_path / "data"), "weight": 1.0}],
        tiny_tokenizer(tmp_path / "tokenizer"), str(run))
    spec.update(metrics=str(tmp_path / "m.csv"), summary=str(tmp_path / "s.json"))
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = subprocess.run([sys.executable, str(REPO / "workflow/scripts/pretrain.py"), "--spec",
                          str(tmp_path / "spec.json"), "--threads", "1"], env=env(),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "feature liger: off (no CUDA)" in out.stdout
    assert "feature log_interval: 3 (a metrics row every 3 steps" in out.stdout
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["features"]["liger"] == {"state": "off", "why": "no CUDA"}
    assert summary["features"]["attention"]["state"] == "sdpa"
    assert summary["features"]["bf16"]["state"] == "off" and summary["dtype"] == "float32"
    with open(tmp_path / "m.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [3, 6, 8]
    assert [int(r["consumed_tokens"]) for r in rows] == [3 * 128, 6 * 128, 8 * 128]
    assert all(float(r["tokens_per_sec"]) > 0 and float(r["loss"]) > 0 for r in rows)
    assert summary["first_loss"] == float(rows[0]["loss"])
    assert summary["checkpoints"] == [4, 8]
