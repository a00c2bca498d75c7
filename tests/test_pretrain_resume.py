"""An interrupted pretraining job resumes from its newest complete state when re-run."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

from conftest import REPO, env, kill_once, load_config
from zflow.plan import pretrain_spec

SCRIPT = REPO / "workflow" / "scripts" / "pretrain.py"


def spec_for(wd, run, train_steps, learning_rate=0.003):
    lc = load_config(wd)["languages"]["ita"]
    tok = lc["tokenizer"]
    spec = pretrain_spec(
        model={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2,
               "vocab_size": lc["model"]["vocab_size"], "max_position_embeddings": 128},
        pretrain={"sequence_length": 64, "micro_batch_size": 4, "train_steps": train_steps,
                  "checkpoint_interval": 10, "keep_last_states": 1,
                  "learning_rate": learning_rate, "lr_warmup_steps": 5, "lr_decay_steps": 20},
        data=[{"source": s, "folder": str(wd / f"results/tokenized/{tok}/{s}"), "weight": w}
              for s, w in lc["data"].items()],
        tokenizer=str(wd / f"results/tokenizers/{tok}"), run_dir=str(run))
    spec.update(metrics=str(run / "m.csv"), summary=str(run / "s.json"))
    return spec


def cmd(run, spec):
    f = run.parent / f"spec-{spec['pretrain']['train_steps']}-{spec['identity']}.json"
    f.write_text(json.dumps(spec))
    return [sys.executable, str(SCRIPT), "--spec", str(f), "--threads", "1"]


def test_kill_and_resume(demo_run, tmp_path):
    wd, _ = demo_run
    run = tmp_path / "run"
    spec = spec_for(wd, run, 2000)  # far more steps than it gets the time to do
    kill_once(cmd(run, spec), run / "state" / "checkpoint-20" / "COMPLETE")
    # a half-written state newer than the last complete one must never be resumed from
    (run / "state" / "checkpoint-999").mkdir(exist_ok=True)

    spec = spec_for(wd, run, 40)
    out = subprocess.run(cmd(run, spec), env=env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    resumed = [int(x.split("step ")[1].rstrip(")")) for x in log.splitlines()
               if x.startswith("resuming from")]
    assert resumed and resumed[0] >= 20, log[-3000:]
    assert not (run / "state" / "checkpoint-999").exists()
    summary = json.loads((run / "s.json").read_text())
    assert summary["final_step"] == 40 and summary["resumed_from_step"] == resumed[0]
    with open(run / "m.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(1, 41))  # no gap, no duplicate across the kill
    ckpts = sorted(int(d.name.split("-")[1]) for d in (run / "checkpoints").iterdir())
    assert ckpts == [10, 20, 30, 40]
    assert len(list((run / "state").glob("checkpoint-*"))) == 1  # keep_last_states

    # extending the run continues it; the existing checkpoints are untouched
    before = (run / "checkpoints" / "step-40" / "model.safetensors").stat().st_mtime_ns
    spec = spec_for(wd, run, 50)
    out = subprocess.run(cmd(run, spec), env=env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming from" in out.stdout and "(step 40)" in out.stdout
    assert (run / "checkpoints" / "step-40" / "model.safetensors").stat().st_mtime_ns == before
    assert (run / "checkpoints" / "step-50" / "model.safetensors").exists()

    # other hyper-parameters: the old run is moved aside, never deleted, and a new one starts
    spec = spec_for(wd, run, 50, learning_rate=0.001)
    out = subprocess.run(cmd(run, spec), env=env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "starting from scratch" in out.stdout
    moved = list((run / "superseded").glob("*/checkpoints/step-50"))
    assert len(moved) == 1
