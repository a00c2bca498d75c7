"""Data stages: each stage's mixture trains its steps, sources continue across a switch, a
kill across the boundary resumes to exactly the uninterrupted run, nanotron's data_stages,
config checks."""

from __future__ import annotations

import copy
import json
import subprocess

import numpy as np
import pytest
import yaml
from conftest import REPO, env, kill_once, load_config
from zflow.mixture import MixtureDataset
from zflow.plan import Plan, pretrain_spec
from zflow.schema import ConfigError

from test_pretrain_resume import cmd

EMBEDDED = yaml.safe_load((REPO / "config/config.yaml").read_text())
PROD = yaml.safe_load((REPO / "config/zagreus.yaml").read_text())


def numbered_folder(path, k: int, tokens: int = 8000):
    """A datatrove folder whose token t of source k is k * 1e6 + t (a window says its origin)."""
    path.mkdir(parents=True)
    (np.arange(tokens, dtype=np.uint32) + k * 1_000_000).tofile(path / "000_00000.ds")
    (path / "000_00000.ds.metadata").write_text(f"t|4\n{tokens}\n{tokens}\n")
    return path


def origin(ds, i):
    first = int(ds[i]["input_ids"][0])
    return first // 1_000_000, first % 1_000_000


def test_each_stage_follows_its_weights_and_sources_continue(tmp_path):
    folders = [numbered_folder(tmp_path / f"s{k}", k) for k in range(3)]
    stages = [{"name": "stable", "start_step": 0, "weights": [0.5, 0.3, 0.2]},
              {"name": "decay", "start_step": 10, "weights": [0.1, 0.0, 0.9]}]
    gb, seq = 16, 7
    ds = MixtureDataset(folders, stages, seq, gb, 30)
    assert len(ds) == 30 * gb
    seen = [origin(ds, i) for i in range(len(ds))]
    for k, (begin, end) in enumerate([(0, 160), (160, 480)]):
        counts = np.bincount([s for s, _ in seen[begin:end]], minlength=3)
        w = np.array(stages[k]["weights"]) / sum(stages[k]["weights"])
        assert np.all(np.abs(counts - w * (end - begin)) <= 1), (k, counts)
        # every step's batch too, within sampling tolerance (2 windows of 16)
        for step in range(begin // gb, end // gb):
            c = np.bincount([s for s, _ in seen[step * gb:(step + 1) * gb]], minlength=3)
            assert np.all(np.abs(c - w * gb) <= 2), (step, c)
        acc = ds.accounting()[k]["sources"]
        assert [a["windows"] for a in acc] == counts.tolist()
        assert [a["tokens"] for a in acc] == (counts * seq).tolist()
    # each source is read on from where it stopped: its windows are 0, 1, 2, ... across the switch
    for k in range(3):
        starts = [pos for s, pos in seen if s == k]
        assert starts == [j * (seq + 1) for j in range(len(starts))], k
    # a run extended by train_steps keeps every window it trained on (the last stage grows)
    longer = MixtureDataset(folders, stages, seq, gb, 40)
    assert [origin(longer, i) for i in range(len(ds))] == seen
    # a stage of another sequence length goes on at the next window boundary of that length
    ds = MixtureDataset(folders, [stages[0], {**stages[1], "sequence_length": 15}], seq, gb, 30)
    assert ds[200]["input_ids"].shape[0] == 15
    read0 = ds.accounting()[0]["sources"][0]["windows"] * (seq + 1)
    first_b = next(pos for s, pos in (origin(ds, i) for i in range(160, 480)) if s == 0)
    assert first_b == -(-read0 // 16) * 16
    assert ds.tokens_through(10, gb) == 160 * seq
    assert ds.tokens_through(11, gb) == 160 * seq + gb * 15


def two_stage_spec(wd, run, train_steps=30):
    lc = load_config(wd)["languages"]["ita"]
    tok = lc["tokenizer"]
    folder = {s: str(wd / f"results/tokenized/{tok}/{s}") for s in lc["data"]}
    data = [{"source": s, "folder": folder[s], "weight": w} for s, w in lc["data"].items()]
    decay = {"fineweb2_ita": 0.2, "finepdfs_ita": 0.8}
    stages = [{"name": "stable", "start_step": 0, "sequence_length": None, "data": data},
              {"name": "decay", "start_step": 15, "sequence_length": 96,
               "data": [{"source": s, "folder": folder[s], "weight": w} for s, w in decay.items()]}]
    spec = pretrain_spec(
        model={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2,
               "vocab_size": lc["model"]["vocab_size"], "max_position_embeddings": 128},
        pretrain={"sequence_length": 64, "micro_batch_size": 4, "train_steps": train_steps,
                  "checkpoint_interval": 10, "keep_last_states": 1, "learning_rate": 0.003,
                  "lr_warmup_steps": 5, "lr_decay_starting_step": 15,
                  "stages": [{"name": "stable", "start_step": 0},
                             {"name": "decay", "start_step": 15, "data": decay,
                              "sequence_length": 96}]},
        data=data, tokenizer=str(wd / f"results/tokenizers/{tok}"), run_dir=str(run),
        stages=stages)
    spec.update(metrics=str(run / "m.csv"), summary=str(run / "s.json"))
    return spec


def weights(run, step):
    from safetensors.torch import load_file

    return load_file(str(run / "checkpoints" / f"step-{step}" / "model.safetensors"))


def test_two_stage_run_switches_mixture_and_resumes_across_the_boundary(demo_run, tmp_path):
    wd, _ = demo_run
    straight, killed = tmp_path / "straight" / "run", tmp_path / "killed" / "run"
    straight.parent.mkdir()
    killed.parent.mkdir()
    spec = two_stage_spec(wd, straight)
    out = subprocess.run(cmd(straight, spec), env=env(), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]

    # the same run killed after its step-10 state, before the stage switch at 15, then resumed
    spec_k = two_stage_spec(wd, killed)
    kill_once(cmd(killed, spec_k), killed / "state" / "checkpoint-10" / "COMPLETE")
    out = subprocess.run(cmd(killed, spec_k), env=env(), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((killed / "s.json").read_text())
    assert summary["resumed_from_step"] == 10, summary["resumed_from_step"]

    for step in (10, 20, 30):  # exactly the uninterrupted run's weights
        a, b = weights(straight, step), weights(killed, step)
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), step
    loss = {p: [r.split(",")[2] for r in (p / "m.csv").read_text().splitlines()[1:]]
            for p in (straight, killed)}
    assert loss[straight] == loss[killed] and len(loss[straight]) == 30
    # tokens trained: each stage at its own sequence length (64, then 96 from step 16)
    consumed = [int(r.split(",")[1]) for r in (straight / "m.csv").read_text().splitlines()[1:]]
    assert consumed[14] == 15 * 4 * 64 and consumed[-1] == 15 * 4 * 64 + 15 * 4 * 96

    # checkpoint markers: the stage each step was trained in
    stage = {s: json.loads((straight / f"checkpoints/step-{s}/zflow_checkpoint.json").read_text())
             ["stage"] for s in (10, 20, 30)}
    assert stage == {10: "stable", 20: "decay", 30: "decay"}

    # the summary: per stage and source, windows / tokens of each stage's weights
    s = json.loads((straight / "s.json").read_text())
    gb = 4
    for st, windows, mix in zip(s["stages"], (15 * gb, 15 * gb),
                                 (dict(load_config(wd)["languages"]["ita"]["data"]),
                                  {"fineweb2_ita": 0.2, "finepdfs_ita": 0.8})):
        total = sum(mix.values())
        got = {x["source"]: x["windows"] for x in st["sources"]}
        assert sum(got.values()) == windows
        for src, n in got.items():
            assert abs(n - mix.get(src, 0) / total * windows) <= 1, (st["name"], got)
            x = next(x for x in st["sources"] if x["source"] == src)
            assert x["tokens"] == n * (64 if st["name"] == "stable" else 96)
    pdf = next(x for x in s["sources"] if x["source"] == "finepdfs_ita")
    assert pdf["windows_consumed"] == sum(next(x["windows"] for x in st["sources"]
                                               if x["source"] == "finepdfs_ita")
                                          for st in s["stages"])
    # epochs over the source: the tokens read (windows of 65, then 97 tokens) over its tokens
    read = [next(x["windows"] for x in st["sources"] if x["source"] == "finepdfs_ita")
            for st in s["stages"]]
    assert pdf["epochs"] == pytest.approx((read[0] * 65 + read[1] * 97) / (pdf["windows"] * 65),
                                          rel=0.02)


def staged(cfg, lang, stages):
    cfg = copy.deepcopy(cfg)
    cfg["languages"][lang]["pretrain"]["stages"] = stages
    return cfg


def test_nanotron_yaml_of_two_stages(tmp_path):
    import nanotron_config
    from zflow import nanotron

    decay = {"fineweb2_ita": 1, "finepdfs_ita": 3}
    plan = Plan(staged(PROD, "ita", [{"name": "stable", "start_step": 0},
                                     {"name": "annealing", "start_step": 1_800_000,
                                      "data": decay}]), check_files=False)
    spec = plan.spec("nanotron_config", lang="ita")
    spec.update(checkpoints_path=str(tmp_path / "ck"), output=str(tmp_path / "n.yaml"))
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    nanotron_config.main(["--spec", str(tmp_path / "spec.json"), "--no-folder-checks"])
    cfg = yaml.safe_load((tmp_path / "n.yaml").read_text())
    stages = cfg["data_stages"]
    assert [(s["name"], s["start_training_step"]) for s in stages] == \
        [("stable", 1), ("annealing", 1_800_001)]
    # the first stage reads the language's data (the seed's ten folders), the second its own
    assert [f.rsplit("/", 1)[1] for f in stages[0]["data"]["dataset"]["dataset_folder"]] == \
        [d["source"] for d in spec["data"]] == list(PROD["languages"]["ita"]["data"])
    assert [f.rsplit("/", 1)[1] for f in stages[1]["data"]["dataset"]["dataset_folder"]] == \
        list(decay)
    assert stages[1]["data"]["dataset"]["dataset_weights"] == pytest.approx([0.25, 0.75])
    assert nanotron.unknown_keys(cfg) == [] and nanotron.stage_problems(cfg) == []
    assert nanotron.stage_problems({"data_stages": stages[::-1]}) == \
        ["data_stages: not in order of start_training_step ([1800001, 1])"]
    # the stages are the run's identity; extending it is not
    assert plan.pretrain_identity("ita") != Plan(PROD, check_files=False).pretrain_identity("ita")
    longer = staged(PROD, "ita", plan.lang("ita")["pretrain"]["stages"])
    longer["languages"]["ita"]["pretrain"]["train_steps"] += 1000
    assert Plan(longer, check_files=False).pretrain_identity("ita") == plan.pretrain_identity("ita")


@pytest.mark.parametrize("stages, backend, message", [
    ([{"name": "a", "start_step": 5}], "hf",
     "languages.ita.pretrain.stages[0].start_step: the first stage starts at step 0, not 5"),
    ([{"name": "a", "start_step": 0}, {"name": "b", "start_step": 150},
      {"name": "c", "start_step": 100}], "hf",
     "languages.ita.pretrain.stages[2].start_step: 100 does not follow the previous stage's 150"),
    ([{"name": "a", "start_step": 0}, {"name": "b", "start_step": 300}], "hf",
     "languages.ita.pretrain.stages[1].start_step: 300 is not before pretrain.train_steps (300)"),
    ([{"name": "a", "start_step": 0}, {"name": "a", "start_step": 10}], "hf",
     "languages.ita.pretrain.stages[1].name: 'a' names two stages"),
    ([{"name": "a", "start_step": 0}, {"name": "b", "start_step": 10, "data": {"fineweb3": 1}}],
     "hf", "languages.ita.pretrain.stages[1].data: unknown source 'fineweb3'"),
    ([{"name": "a", "start_step": 0}, {"name": "b", "start_step": 10, "sequence_length": 256}],
     "nanotron", "languages.ita.pretrain.stages[1].sequence_length: backend nanotron cannot "
                 "honour it"),
])
def test_config_check_refuses_bad_stages(stages, backend, message):
    cfg = staged(EMBEDDED, "ita", stages)
    if backend == "nanotron":
        cfg["languages"]["ita"]["pretrain"].update(backend="nanotron", nanotron={
            "checkout": "x", "nodes": 1, "gpus_per_node": 1, "dp": 1})
    with pytest.raises(ConfigError) as e:
        Plan(cfg, base=REPO, check_files=False)
    assert message in str(e.value)


def test_embedded_default_has_a_stable_and_a_decay_stage():
    plan = Plan(EMBEDDED, base=REPO, check_files=False)
    spec = plan.spec("pretrain", lang="ita")
    pre = spec["pretrain"]
    assert [(s["name"], s["start_step"]) for s in spec["stages"]] == \
        [("stable", 0), ("decay", pre["lr_decay_starting_step"])]
    w = [{d["source"]: d["weight"] for d in s["data"]} for s in spec["stages"]]
    assert w[0] == EMBEDDED["languages"]["ita"]["data"]
    assert w[1]["finepdfs_ita"] / sum(w[1].values()) > w[0]["finepdfs_ita"] / sum(w[0].values())
    assert plan.spec("report", lang="ita")["stages"] == [["stable", 0], ["decay", 150]]


def test_embedded_default_records_and_marks_its_stages(demo_run):
    import csv

    wd, _ = demo_run
    run = wd / "results/pretrain/ita"
    marker = {s: json.loads((run / f"checkpoints/step-{s}/zflow_checkpoint.json").read_text())
              for s in (50, 150, 300)}
    assert {s: m["stage"] for s, m in marker.items()} == {50: "stable", 150: "stable", 300: "decay"}
    summary = json.loads((run / "train_summary.json").read_text())
    lc = load_config(wd)["languages"]["ita"]
    for st, cfg in zip(summary["stages"], lc["pretrain"]["stages"]):
        mix = cfg.get("data") or lc["data"]
        got = {x["source"]: x["windows"] for x in st["sources"]}
        assert st["name"] == cfg["name"] and sum(got.values()) == 150 * 16
        assert all(abs(got[s] - w / sum(mix.values()) * 2400) <= 1 for s, w in mix.items()), got
    with open(wd / "results/reports/ita/progression.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["stage"]) for r in rows] == \
        [("50", "stable"), ("150", "stable"), ("300", "decay")]
    md = (wd / "results/reports/ita/progression.md").read_text()
    assert "| 150 (stable) |" in md and "| 300 (decay) |" in md
