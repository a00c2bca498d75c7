"""Unit tests of the shared package (no Snakemake)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from zflow import identity, metrics, nanotron, schema
from zflow.mixture import blend_order
from zflow.plan import pretrain_identity
from zflow.schedule import wsd


def pre_with_defaults(**kw):
    return {**schema.defaults("languages/*/pretrain"), **kw}


def test_blend_order_follows_weights_in_every_prefix():
    w = [0.45, 0.25, 0.15, 0.15]
    src, idx = blend_order(w, 10_000)
    assert len(src) == 10_000
    for n in (100, 1000, 10_000):
        counts = np.bincount(src[:n], minlength=4)
        assert np.all(np.abs(counts - np.array(w) * n) <= 1.5), (n, counts)
    for k in range(4):  # within a source, samples are taken in order 0, 1, 2...
        assert list(idx[src == k][:50]) == list(range(50))


def test_schedule_matches_the_seed_fields():
    seed = pre_with_defaults(learning_rate=0.003, lr_warmup_steps=4000,
                             lr_decay_starting_step=750000, lr_decay_steps=50000,
                             lr_decay_style="linear", min_decay_lr=1e-7, train_steps=2_000_000)
    kw, warmup = wsd(seed)
    assert warmup == 4000
    assert kw["num_stable_steps"] == 746000 and kw["num_decay_steps"] == 50000
    assert kw["decay_type"] == "linear" and math.isclose(kw["min_lr_ratio"], 1e-7 / 0.003)


def test_schedule_lr_values_with_transformers():
    import torch
    from transformers import get_wsd_schedule

    pre = pre_with_defaults(learning_rate=1.0, lr_warmup_steps=10, lr_decay_starting_step=50,
                            lr_decay_steps=20, lr_decay_style="linear", min_decay_lr=0.1,
                            train_steps=100)
    kw, warmup = wsd(pre)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = get_wsd_schedule(opt, num_warmup_steps=warmup, **kw)
    lrs = []
    for _ in range(100):
        lrs.append(s.get_last_lr()[0])
        opt.step()
        s.step()
    # transformers' WSD warms up from min_lr_ratio (not 0) to the peak
    assert lrs[0] == pytest.approx(0.1) and lrs[5] == pytest.approx(0.55)
    assert lrs[10] == lrs[49] == 1.0
    assert lrs[60] == pytest.approx(0.55)  # halfway through the linear decay to 0.1
    assert lrs[70] == lrs[99] == pytest.approx(0.1)


def test_schedule_decay_never_starts_before_warmup_ends():
    kw, warmup = wsd(pre_with_defaults(learning_rate=1.0, lr_warmup_steps=30,
                                       lr_decay_starting_step=10, train_steps=100))
    assert warmup == 30 and kw["num_stable_steps"] == 0 and kw["num_decay_steps"] == 70
    cfg = nanotron.make_config(
        model=schema.defaults("languages/*/model") | {
            "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 1, "num_key_value_heads": 1, "vocab_size": 8},
        pretrain=pre_with_defaults(learning_rate=1.0, lr_warmup_steps=30, lr_decay_starting_step=10,
                                   train_steps=100, sequence_length=8, micro_batch_size=1,
                                   checkpoint_interval=10),
        nano={**schema.defaults("languages/*/pretrain/nanotron"), "dp": 1}, tokenizer="t",
        folders=["a"], weights=[1.0], checkpoints_path="c", run="r", project="p")
    sched = cfg["optimizer"]["learning_rate_scheduler"]
    assert (sched["lr_decay_starting_step"], sched["lr_decay_steps"]) == (30, 70)  # the same run


def test_fingerprint_ignores_extension_but_not_hyperparameters():
    model, data = {"hidden_size": 8}, [{"folder": "a", "weight": 1}]
    pre = {"learning_rate": 0.1, "train_steps": 10, "lr_decay_steps": 5, "checkpoint_interval": 5}
    base = pretrain_identity(model, pre, data, "t", 1)
    assert base == pretrain_identity(model, {**pre, "train_steps": 20}, data, "t", 1)
    assert base != pretrain_identity(model, {**pre, "learning_rate": 0.2}, data, "t", 1)
    assert base != pretrain_identity(model, pre, data, "t", 2)


def test_report_media_is_mean_of_available():
    from report import build_rows

    cols = [("a", "A", "acc"), ("b", "B", "acc_norm")]
    evals = [
        {"model": "ita-step20", "step": 20, "task": "a", "metric": "acc", "metrics": {"acc": 0.2}},
        {"model": "ita-step20", "step": 20, "task": "b", "metric": "acc_norm",
         "metrics": {"acc_norm": 0.4}},
        {"model": "ita-step10", "step": 10, "task": "a", "metric": "acc", "metrics": {"acc": 0.3}},
    ]
    rows = build_rows(cols, evals)
    assert [r["step"] for r in rows] == [10, 20]
    assert rows[0]["media"] == pytest.approx(0.3) and rows[0].get("b") is None
    assert rows[1]["media"] == pytest.approx(0.3)


def test_nanotron_checkpoints_of_other_settings_are_moved_aside(tmp_path):
    from nanotron_train import claim_checkpoints

    root = tmp_path / "nanotron_checkpoints"
    claim_checkpoints(tmp_path, "aaaa", [])
    root.mkdir()
    (root / "100").mkdir()
    (root / "latest.txt").write_text("100")
    claim_checkpoints(tmp_path, "aaaa", [])  # same settings: resumed, nothing moves
    assert (root / "100").is_dir()
    claim_checkpoints(tmp_path, "bbbb", [])  # other settings: the old run is kept aside
    assert not root.exists()
    moved = list((tmp_path / "superseded").glob("*/nanotron_checkpoints/100"))
    assert len(moved) == 1
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["keyed_on"]["identity"] == "bbbb"


def test_claim_moves_aside_or_discards(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a job runs in the workflow's folder: results/ is its output
    run = tmp_path / "results" / "pretrain" / "ita"
    assert identity.claim(run, "f1", ["state"]) is None  # a new run: nothing to move
    (run / "state").mkdir()
    (run / "state" / "x").write_text("1")
    assert identity.claim(run, "f1", ["state"]) is None  # the same run: resumed
    moved = identity.claim(run, "f2", ["state"], {"why": "lr"})
    assert (moved / "state" / "x").read_text() == "1" and not (run / "state").exists()
    assert moved.parent.name == "superseded"
    assert identity.read(run) == {"fingerprint": "f2", "keyed_on": {"why": "lr"}}
    (run / "state").mkdir()
    assert identity.claim(run, "f3", ["state"], keep=False) is None  # scratch: discarded
    assert not (run / "state").exists()
    assert len(list((run / "superseded").iterdir())) == 1


def test_fingerprint_covers_file_contents(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text("x")
    one = identity.fingerprint({"k": 1}, [f])
    assert one == identity.fingerprint({"k": 1}, [f]) != identity.fingerprint({"k": 2}, [f])
    f.write_text("y")
    assert identity.fingerprint({"k": 1}, [f]) != one


def test_both_backends_write_one_metrics_schema():
    log = ["iteration: 7 / 10 | consumed_tokens: 1.2M | elapsed_time_per_iteration_ms: 5 | "
           "time_per_iteration_ms: 250 | tokens_per_sec: 4K | lm_loss: 3.5 | lr: 0.001 | "
           "model_tflops_per_gpu: 120",
           "iteration: 8 / 10 | consumed_tokens: 1.3M | time_per_iteration_ms: 250 | lm_loss: 3.4"]
    rows = nanotron.metrics_rows(nanotron.parse_log(log, peak_tflops=240.0))
    assert all(list(r) == metrics.PRETRAIN for r in rows)
    assert [r["loss"] for r in rows] == [3.5, 3.4] and rows[0]["mfu"] == 0.5
    assert [r["elapsed_s"] for r in rows] == [0.25, 0.5]
    text = metrics.to_csv(rows, metrics.PRETRAIN)
    assert text.splitlines()[0] == ",".join(metrics.PRETRAIN)


def test_saved_steps_and_is_saved_agree():
    from zflow.schedule import is_saved, saved_steps

    for train_steps, interval in ((300, 50), (310, 50), (7, 10)):
        pre = {"train_steps": train_steps, "checkpoint_interval": interval}
        assert [s for s in range(1, train_steps + 20) if is_saved(s, pre)] == \
            saved_steps(train_steps, interval)
    assert saved_steps(310, 50) == [50, 100, 150, 200, 250, 300, 310]
