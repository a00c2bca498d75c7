"""Unit tests of the shared package (no Snakemake)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from zflow.mixture import blend_order
from zflow.pretrain_id import run_fingerprint, schedule


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
    seed = {"learning_rate": 0.003, "lr_warmup_steps": 4000, "lr_decay_starting_step": 750000,
            "lr_decay_steps": 50000, "lr_decay_style": "linear", "min_decay_lr": 1e-7,
            "train_steps": 2_000_000}
    kw, warmup = schedule(seed)
    assert warmup == 4000
    assert kw["num_stable_steps"] == 746000 and kw["num_decay_steps"] == 50000
    assert kw["decay_type"] == "linear" and math.isclose(kw["min_lr_ratio"], 1e-7 / 0.003)


def test_schedule_lr_values_with_transformers():
    import torch
    from transformers import get_wsd_schedule

    pre = {"learning_rate": 1.0, "lr_warmup_steps": 10, "lr_decay_starting_step": 50,
           "lr_decay_steps": 20, "lr_decay_style": "linear", "min_decay_lr": 0.1,
           "train_steps": 100}
    kw, warmup = schedule(pre)
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


def test_fingerprint_ignores_extension_but_not_hyperparameters():
    spec = {"model": {"hidden_size": 8}, "data": [{"folder": "a", "weight": 1}],
            "tokenizer": "t", "pretrain": {"learning_rate": 0.1, "train_steps": 10,
                                           "lr_decay_steps": 5, "checkpoint_interval": 5}}
    longer = {**spec, "pretrain": {**spec["pretrain"], "train_steps": 20}}
    other = {**spec, "pretrain": {**spec["pretrain"], "learning_rate": 0.2}}
    assert run_fingerprint(spec, 1) == run_fingerprint(longer, 1)
    assert run_fingerprint(spec, 1) != run_fingerprint(other, 1)
    assert run_fingerprint(spec, 1) != run_fingerprint(spec, 2)


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
    claim_checkpoints(root, "aaaa")
    (root / "100").mkdir()
    (root / "latest.txt").write_text("100")
    claim_checkpoints(root, "aaaa")  # same settings: resumed, nothing moves
    assert (root / "100").is_dir()
    claim_checkpoints(root, "bbbb")  # other settings: the old run is kept aside, not resumed
    assert not (root / "100").exists() and not (root / "latest.txt").exists()
    moved = list((tmp_path / "superseded").glob("*/nanotron_checkpoints/100"))
    assert len(moved) == 1
    assert json.loads((root / "run.json").read_text()) == {"identity": "bbbb"}
