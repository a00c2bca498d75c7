"""Watching a run: TensorBoard event files of every training stage (the demo's real runs), the
tracking config, and `make status`'s line per training from its metrics."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO

sys.path.insert(0, str(REPO / "workflow" / "scripts"))

import status  # noqa: E402
from zflow import metrics, nanotron, paths, tracking  # noqa: E402
from zflow.plan import ConfigError, Plan  # noqa: E402


def scalars(run_dir: Path, tag: str) -> dict[int, float]:
    """{step: value} of one scalar in a run's TensorBoard event files (tensorboard's reader)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = run_dir / paths.TENSORBOARD
    assert list(tb.glob("events.out.tfevents.*")), f"no event file in {tb}"
    acc = EventAccumulator(str(tb))
    acc.Reload()
    assert tag in acc.Tags()["scalars"], acc.Tags()["scalars"]
    return {e.step: e.value for e in acc.Scalars(tag)}


def test_every_training_stage_writes_its_loss_to_tensorboard(demo_run):
    wd, _ = demo_run
    run = wd / paths.fmt(paths.PRETRAIN_RUN, lang="ita")
    tb = scalars(run, "train/loss")
    csv = {int(r["step"]): float(r["loss"]) for r in metrics.read(run / "train_metrics.csv")}
    assert sorted(tb) == sorted(csv) == list(range(1, 301))  # every step, as the metrics CSV
    assert all(tb[s] == pytest.approx(csv[s], rel=1e-6) for s in csv)
    assert set(scalars(run, "train/learning_rate")) == set(csv)

    cfg = yaml.safe_load((wd / "config/config.yaml").read_text())
    methods = {}
    for name, pc in cfg["posttrain"].items():
        methods.setdefault(pc["method"], name)
    assert set(methods) == {"sft", "dpo", "grpo"}
    for method, name in methods.items():
        prun = wd / paths.fmt(paths.POSTTRAIN_RUN, name=name)
        tb = scalars(prun, "train/loss")
        rows = [r for r in metrics.read(prun / "train_metrics.csv") if r["loss"]]
        assert [int(r["step"]) for r in rows] == sorted(tb), method
        assert all(tb[int(r["step"])] == pytest.approx(float(r["loss"]), rel=1e-6, abs=1e-7)
                   for r in rows), method
        if method == "grpo":  # TRL's own GRPO logs land there too
            assert scalars(prun, "train/reward")
        summary = json.loads((prun / "summary.json").read_text())
        assert summary["settings"]["report_to"] == ["tensorboard"]


def test_tracking_backends_and_offline_wandb(tmp_path, monkeypatch):
    for var in ("TENSORBOARD_LOGGING_DIR", "WANDB_MODE", "WANDB_DIR", "WANDB_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    kw = tracking.training_args(None, tmp_path / "run", "pretrain-ita")  # a spec without it
    assert kw == {"report_to": ["tensorboard"], "run_name": "pretrain-ita", "project": "zflow"}
    assert os.environ["TENSORBOARD_LOGGING_DIR"] == str(tmp_path / "run" / "tensorboard")
    assert "WANDB_MODE" not in os.environ

    kw = tracking.training_args({"backends": ["tensorboard", "wandb"], "project": "p"},
                                tmp_path / "run", "sft-x")
    assert kw["report_to"] == ["tensorboard", "wandb"] and kw["project"] == "p"
    assert os.environ["WANDB_MODE"] == "offline" and os.environ["WANDB_DIR"] == str(tmp_path / "run")
    assert os.environ["WANDB_PROJECT"] == "p"
    assert tracking.training_args({"backends": []}, tmp_path, "x")["report_to"] == "none"


def test_tracking_asked_but_not_installed_is_a_config_error(monkeypatch):
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    cfg["tracking"] = {"backends": ["tensorboard", "wandb"]}
    monkeypatch.setattr(tracking, "MODULES", {**tracking.MODULES, "wandb": "zflow_no_such_module"})
    with pytest.raises(ConfigError, match=r"tracking.backends: 'wandb' is asked for but not "
                                          r"installed \(pip install zflow_no_such_module"):
        Plan(cfg, REPO, check_files=False)
    cfg["tracking"] = {"backends": ["mlflow"]}
    with pytest.raises(ConfigError, match="tracking.backends"):
        Plan(cfg, REPO, check_files=False)


def test_tracking_never_reruns_a_job(tmp_path):
    """The spec file keeps its name (no re-run) but carries the new tracking settings."""
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    plan = Plan(cfg, REPO, check_files=False)
    plan.base = tmp_path  # the spec files land here
    first = plan.spec_file("pretrain", lang="ita")
    cfg["tracking"] = {"backends": ["tensorboard"], "project": "other"}
    plan2 = Plan(cfg, REPO, check_files=False)
    plan2.base = tmp_path
    assert plan2.spec_file("pretrain", lang="ita") == first
    assert json.loads((tmp_path / first).read_text())["tracking"]["project"] == "other"
    assert plan2.spec_file("posttrain", name="nesso-instruct") == \
        plan.spec_file("posttrain", name="nesso-instruct")


# ------------------------------------------------------------------ make status


def rows_csv(path: Path, steps, elapsed, fields=metrics.PRETRAIN, **cols) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for s, e in zip(steps, elapsed):
        metrics.append(path, {"step": s, "elapsed_s": e, "loss": round(8 - s / 20, 4),
                              **{k: f(s) for k, f in cols.items()}}, fields)


def test_status_line_of_a_partial_run(tmp_path):
    f = tmp_path / "metrics.csv"
    # 40 of 100 steps, 2 s each, 1000 tokens per step (500 tokens/s logged)
    rows_csv(f, range(1, 41), [2.0 * s for s in range(1, 41)], consumed_tokens=lambda s: 1000 * s,
             tokens_per_sec=lambda s: 500.0)
    rows = metrics.read(f)
    assert status.rates(rows) == (2.0, 500.0)
    assert status.status_line("pretrain ita", rows, 100, "running") == (
        "pretrain ita: step 40 / 100 (40.0%) | loss 6 | tokens/s 500 | s/step 2 | "
        "ETA 0:02:00 | running")  # 60 steps left × 2 s

    # resumed at step 30 on a slower node: elapsed_s restarts, only the new attempt's rate counts
    g = tmp_path / "resumed.csv"
    rows_csv(g, range(1, 31), [2.0 * s for s in range(1, 31)])
    rows_csv(g, range(31, 41), [5.0 * (s - 30) for s in range(31, 41)])
    assert status.rates(metrics.read(g)) == (5.0, None)
    assert "ETA 0:05:00" in status.status_line("x", metrics.read(g), 100, "running")
    # no tokens logged (post-training): no tokens/s; an unknown total: no ETA
    line = status.status_line("posttrain y (sft)", metrics.read(g), None, "interrupted")
    assert line == "posttrain y (sft): step 40 / ? | loss 6 | s/step 5 | ETA ? | interrupted"
    assert status.status_line("z", [], 10, "running") == "z: no step logged yet | running"
    assert status.duration(11262670) == "130 days, 8:31:10"


def test_status_of_the_seeds_nanotron_log():
    rows = nanotron.metrics_rows(nanotron.parse_log(
        (REPO / "tests/data/seed_nanotron_log.txt").read_text().splitlines()))
    line = status.status_line("pretrain ita", rows, 1_500_000, "running")
    assert line == ("pretrain ita: step 211365 / 1500000 (14.1%) | loss 2.06 | "
                           "tokens/s 183K | s/step 8.74 | ETA 130 days, 8:31:10 | running")
    # the seed's own ETA on that line: 130 days, 9:39:28 (its smoothed time per step)
    per_step, _ = status.rates(rows)
    assert (1_500_000 - 211_365) * per_step == pytest.approx(130 * 86400 + 9 * 3600 + 39 * 60 + 28,
                                                             rel=1e-3)


def test_status_finds_running_interrupted_and_done_runs(tmp_path, capsys):
    cfg = tmp_path / "config.yaml"
    cfg.write_text((REPO / "config/config.yaml").read_text())
    live = tmp_path / paths.fmt(paths.PRETRAIN_RUN, lang="ita") / paths.STATE_METRICS
    rows_csv(live, range(1, 121), [0.25 * s for s in range(1, 121)],
             consumed_tokens=lambda s: 2048 * s, tokens_per_sec=lambda s: 8192.0)
    sft = tmp_path / paths.fmt(paths.POSTTRAIN_RUN, name="nesso-instruct") / paths.STATE_METRICS
    rows_csv(sft, range(5, 30, 5), [3.0 * s for s in range(5, 30, 5)], fields=metrics.POSTTRAIN)
    old = time.time() - 3600
    os.utime(sft, (old, old))
    state = sft.parent / "checkpoint-25"
    state.mkdir()
    (state / "trainer_state.json").write_text(json.dumps({"max_steps": 72}))
    dpo = tmp_path / paths.fmt(paths.POSTTRAIN_RUN, name="nesso-instruct-dpo")
    rows_csv(dpo / paths.STATE_METRICS, [36], [20.0], fields=metrics.POSTTRAIN)
    (dpo / "summary.json").write_text("{}")

    assert status.main(["--configfile", str(cfg), "--base", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Training runs:"
    assert out[1] == ("  pretrain ita: step 120 / 300 (40.0%) | loss 2 | tokens/s 8.19K | "
                      "s/step 0.25 | ETA 0:00:45 | running")
    assert out[2].startswith("  posttrain nesso-instruct (sft): step 25 / 72 (34.7%) | loss 6.75 | "
                             "s/step 3 | ETA 0:02:21 | interrupted (last logged 1:00:0")
    assert out[3] == ("  posttrain nesso-instruct-dpo (dpo): step 36 / ? | loss 6.2 | ETA ? | done")
    assert len(out) == 4  # runs that never started are not listed
