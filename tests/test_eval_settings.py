"""Eval settings: fast by default (lm-eval's auto batch size, bfloat16 on a GPU), the seed's
command's settings with ``eval.reproduce_seed_command``, what each eval JSON records, and one real
run of the eval job at batch 1 against batch auto on a tiny model and an embedded task (CPU).
"""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import REPO
from test_evals_groups import OFFLINE, _tiny_model

import run_lm_eval
from zflow import evals, schema
from zflow.plan import Plan

EMBEDDED = yaml.safe_load((REPO / "config/config.yaml").read_text())


def spec_of(eval_cfg: dict) -> dict:
    """The eval spec zflow.plan makes for a checkpoint of the embedded default, with ``eval``
    set to ``eval_cfg`` (the schema's defaults for the rest)."""
    return Plan({**EMBEDDED, "eval": eval_cfg}, base=REPO, check_files=False).spec(
        "evaluate", model="ita-step50", task="arc_it")


@pytest.fixture
def cuda(monkeypatch):
    import torch

    def set_to(available: bool):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)

    return set_to


def test_defaults_are_the_fast_settings():
    d = schema.defaults("eval")
    assert d["batch_size"] == "auto" and d["dtype"] == "auto" and d["device"] == "auto"
    assert d["reproduce_seed_command"] is False
    spec = spec_of({})
    assert (spec["batch_size"], spec["dtype"], spec["reproduce_seed_command"]) == ("auto", "auto", False)


def test_gpu_defaults_are_auto_batch_and_bfloat16(cuda):
    cuda(True)
    s = run_lm_eval.settings(spec_of({}))
    assert (s["device"], s["dtype"], s["batch_size"]) == ("cuda:0", "bfloat16", "auto")
    assert s["max_batch_size"] == schema.defaults("eval")["max_batch_size"]
    assert s["reproduce_seed_command"] is False
    # an out-of-memory retry's batch (rules/eval.smk: the attempt's resources) still applies
    s = run_lm_eval.settings(spec_of({"batch_size": 32}), batch_size="16", max_batch_size=32)
    assert (s["batch_size"], s["dtype"]) == (16, "bfloat16")


def test_cpu_fallback_is_float32(cuda):
    cuda(False)
    s = run_lm_eval.settings(spec_of({}))
    assert (s["device"], s["dtype"], s["batch_size"]) == ("cpu", "float32", "auto")
    s = run_lm_eval.settings(spec_of({"dtype": "bfloat16", "device": "cpu"}))
    assert s["dtype"] == "bfloat16"  # an explicit dtype is kept


@pytest.mark.parametrize("available", [True, False])
def test_the_switch_gives_the_seed_commands_settings(cuda, available):
    """`lm-eval --model hf --model_args pretrained=<model> --batch_size 1`: batch 1 and no dtype
    (lm-eval's auto: the checkpoint's own), whatever batch_size/dtype and the attempt say."""
    cuda(available)
    spec = spec_of({"reproduce_seed_command": True, "batch_size": 32, "dtype": "bfloat16"})
    assert spec["reproduce_seed_command"] is True
    s = run_lm_eval.settings(spec, batch_size="32", max_batch_size=32)
    assert (s["batch_size"], s["dtype"], s["reproduce_seed_command"]) == (1, "auto", True)
    assert s["device"] == ("cuda:0" if available else "cpu")
    assert evals.SEED_COMMAND == {"batch_size": 1, "dtype": "auto"}
    # batch 1 cannot shrink: an out-of-memory is recorded, not retried
    assert not run_lm_eval.retry(RuntimeError("CUDA out of memory."), s, retries_left=2)


def test_the_switch_changes_the_spec_so_evals_rerun():
    a, b = spec_of({}), spec_of({"reproduce_seed_command": True})
    assert {k for k in a if a[k] != b[k]} == {"reproduce_seed_command"}


def test_used_settings_read_lm_evals_config():
    assert evals.used_settings({"config": {"batch_size": "auto", "batch_sizes": [64, 32],
                                           "model_dtype": "torch.bfloat16"}}) == {
        "batch_sizes_used": [64, 32], "model_dtype": "bfloat16"}
    assert evals.used_settings({"config": {"batch_size": 1, "batch_sizes": [],
                                           "model_dtype": "torch.float32"}}) == {
        "batch_sizes_used": [1], "model_dtype": "float32"}
    assert evals.used_settings({}) == {"batch_sizes_used": [], "model_dtype": None}


# ------------------------------------------------------------------------------------------------
# one real eval at the seed's settings and at the fast ones


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """The tiny model saved in float32, and the same weights saved in bfloat16 (as a GPU run's
    eval sees them: the seed's command then loads bfloat16 too)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = tmp_path_factory.mktemp("tiny-eval-model")
    _tiny_model(d / "float32")
    AutoModelForCausalLM.from_pretrained(d / "float32", dtype=torch.float32).to(
        torch.bfloat16).save_pretrained(d / "bfloat16")
    AutoTokenizer.from_pretrained(d / "float32").save_pretrained(d / "bfloat16")
    return d


# run_lm_eval.main sets torch's thread count: conftest's torch_threads puts it back
pytestmark = pytest.mark.usefixtures("torch_threads")


def eval_job(tmp_path, model, eval_cfg: dict, name: str, attempt_batch=None) -> dict:
    """run_lm_eval.main on the embedded task arc_it (40 items, 4 choices of several tokens) with
    the spec zflow.plan makes, the model replaced by the tiny one."""
    spec = {**spec_of(eval_cfg), "model_path": str(model),
            "include_path": str(REPO / "resources" / "eval_tasks"),
            "output": str(tmp_path / name / "arc_it.json")}
    (tmp_path / f"{name}.json").write_text(json.dumps(spec))
    argv = ["--spec", str(tmp_path / f"{name}.json"), "--threads", "2"]
    if attempt_batch is not None:
        argv += ["--batch-size", str(attempt_batch), "--max-batch-size", "32"]
    run_lm_eval.main(argv)
    return evals.read(spec["output"])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_batch_one_and_batched_scores_are_equal(tmp_path, tiny_models, monkeypatch, cuda, dtype):
    """lm-eval pads a batch (right padding, causal model): on this model and task on the CPU, in
    float32 and in bfloat16, the scores at batch 1 (the seed's command's settings: lm-eval's
    dtype auto loads the checkpoint's) and at the batch auto chose or 32 are the same within
    1e-4 (here exactly the same)."""
    for k, v in OFFLINE.items():
        monkeypatch.setenv(k, v)
    cuda(False)
    model = tiny_models / dtype
    seed = eval_job(tmp_path, model, {"reproduce_seed_command": True}, "seed")
    fast = eval_job(tmp_path, model, {"dtype": dtype}, "fast")
    b32 = eval_job(tmp_path, model, {"batch_size": 32, "dtype": dtype}, "b32", attempt_batch=32)

    assert seed["settings"]["batch_size"] == 1 and seed["settings"]["dtype"] == "auto"
    assert seed["settings"]["reproduce_seed_command"] is True
    assert seed["settings"]["batch_sizes_used"] == [1]
    assert seed["settings"]["model_dtype"] == dtype  # the checkpoint's own
    assert fast["settings"]["batch_size"] == "auto" and fast["settings"]["dtype"] == dtype
    assert fast["settings"]["reproduce_seed_command"] is False
    assert fast["settings"]["batch_sizes_used"] and max(fast["settings"]["batch_sizes_used"]) > 1
    assert fast["settings"]["model_dtype"] == b32["settings"]["model_dtype"] == dtype
    assert b32["settings"]["batch_sizes_used"] == [32]
    assert seed["n_samples"]["effective"] == 40
    for rec in (fast, b32):
        for m in ("acc", "acc_norm"):
            assert rec["metrics"][m] == pytest.approx(seed["metrics"][m], abs=1e-4), (m, rec)
    # the provenance line of the tables (zflow.tables.command) shows each run's settings
    from zflow.tables import command

    assert "--batch_size 1" in command(seed) and "dtype=auto" in command(seed)
    assert "--batch_size auto" in command(fast) and f"dtype={dtype}" in command(fast)
