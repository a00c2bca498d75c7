"""Checkpoint retention of a nanotron run (zflow.retention, ``pretrain.keep_checkpoints``): the
pure policy, its application on a checkpoints folder (removals logged and recorded, refused
outside results/), the plan's spec, the pretrain_nanotron job's call, the cost plan's numbers."""

from __future__ import annotations

import copy
import json
import sys

import pytest
import yaml
from conftest import REPO, nanotron_step_files
from zflow import cost, identity, nanotron, paths, retention
from zflow.cost import Job
from zflow.plan import ConfigError, Plan

sys.path.insert(0, str(REPO / "workflow" / "scripts"))

PROD = yaml.safe_load((REPO / "config/zagreus.yaml").read_text())
ALL = {10: True, 20: True, 30: True, 40: True}


# ------------------------------------------------------------ the policy (pure)


def test_no_policy_removes_nothing():
    keep, remove = retention.plan_removals(ALL, 40, [], None, [])
    assert remove == {} and sorted(keep) == [10, 20, 30, 40]
    assert all("keep_checkpoints unset" in why for why in keep.values())


def test_newest_n_and_what_the_config_needs_are_kept():
    keep, remove = retention.plan_removals(ALL, 40, [10], 2, [10])
    assert sorted(keep) == [10, 30, 40] and sorted(remove) == [20]
    assert keep[10] == "needed by the config"
    assert "one of the newest 2 complete" in keep[30] and "latest.txt names it" in keep[40]
    assert "older than the newest 2 complete (30, 40)" in remove[20]


def test_the_latest_is_never_removed():
    # latest.txt names 20 (a run shortened, or a later step written by hand): never removed
    keep, remove = retention.plan_removals(ALL, 20, [], 1, [])
    assert sorted(keep) == [20, 40] and sorted(remove) == [10, 30]
    assert keep[20] == "latest.txt names it"


def test_a_needed_step_whose_conversion_is_pending_is_kept():
    keep, remove = retention.plan_removals(ALL, 40, [20], 1, converted=[])
    assert keep[20] == "needed by the config, conversion pending" and 20 not in remove
    keep, _ = retention.plan_removals(ALL, 40, [20], 1, converted=[20])
    assert keep[20] == "needed by the config"  # converted: kept still (convert's DAG input)
    keep, remove = retention.plan_removals(ALL, 40, [], 1, [], converting=[10])
    assert keep[10] == "conversion in progress" and sorted(remove) == [20, 30]


def test_removed_only_once_a_newer_complete_one_exists():
    # 30 is being written (incomplete): 20 is the newest complete, kept even with newest 1...
    steps = {10: True, 20: True, 30: False}
    keep, remove = retention.plan_removals(steps, 20, [], 1, [])
    assert sorted(remove) == [10] and sorted(keep) == [20, 30]
    assert "one of the newest 1 complete" in keep[20] and "no newer complete" in keep[20]
    assert keep[30] == "incomplete (left to nanotron)"
    # ...and an incomplete step is never removed, however old (nanotron's)
    keep, remove = retention.plan_removals({5: False, 10: True, 20: True}, 20, [], 1, [])
    assert sorted(remove) == [10] and keep[5] == "incomplete (left to nanotron)"
    # only incomplete steps newer than a complete one: nothing goes
    keep, remove = retention.plan_removals({10: True, 20: False, 30: False}, 10, [], 1, [])
    assert remove == {} and sorted(keep) == [10, 20, 30]


# ------------------------------------------------------------ on a checkpoints folder


def run_root(tmp_path):
    return tmp_path / paths.fmt(paths.NANOTRON_CHECKPOINTS, lang="ita")


def test_apply_on_real_nanotron_checkpoints(tmp_path, monkeypatch):
    from transformers import LlamaConfig, LlamaForCausalLM

    monkeypatch.chdir(tmp_path)  # the workflow's directory: removals stay inside ./results
    model = LlamaForCausalLM(LlamaConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, vocab_size=64, tie_word_embeddings=True))
    root = run_root(tmp_path)
    for step in (10, 20, 30, 40):
        nanotron.write_checkpoint(model, root, step)  # latest.txt: 40
    (root / "50").mkdir()  # being written: no metadata yet
    converted = tmp_path / "results/models/ita-step{step}"
    marker = tmp_path / paths.marker(str(converted).format(step=10))
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"step": 10, "identity": "abcd"}))
    record = tmp_path / "results/pretrain/ita" / retention.RECORD
    lines = []
    size = retention.folder_bytes(root / "20")
    assert size > 0
    result = retention.apply(paths.fmt(paths.NANOTRON_CHECKPOINTS, lang="ita"), {"newest": 1},
                             [10, 30], str(converted), record, "abcd", out=lines.append)
    assert sorted(result["removed"]) == [20] and result["freed_bytes"] == size
    assert sorted(d.name for d in root.iterdir() if d.is_dir()) == ["10", "30", "40", "50"]
    assert result["kept"][30] == "needed by the config, conversion pending"
    assert result["kept"][10] == "needed by the config"
    assert result["kept"][50] == "incomplete (left to nanotron)"
    # the job log: one line per removal, then the summary
    assert lines[0].startswith("retention (keep_checkpoints: newest 1): removed step 20 (")
    assert "not needed by the config, older than the newest 1 complete (40)" in lines[0]
    assert lines[-1].startswith("retention (keep_checkpoints: newest 1): kept 4 (10, 30, 40, 50)"
                                ", removed 1")
    # the record: one JSON line per removal
    (entry,) = [json.loads(x) for x in record.read_text().splitlines()]
    assert entry["step"] == 20 and entry["bytes"] == size and entry["policy"] == {"newest": 1}
    assert entry["path"].endswith("nanotron_checkpoints/20") and entry["latest"] == 40
    assert entry["identity"] == "abcd" and "older than the newest 1" in entry["reason"]
    assert "refused" not in entry and entry["time"]
    # again: nothing more to remove, nothing recorded
    again = retention.apply(root, {"newest": 1}, [10, 30], str(converted), record, "abcd",
                            results_root=tmp_path / "results", out=lines.append)
    assert again["removed"] == {} and len(record.read_text().splitlines()) == 1


def test_without_the_key_nothing_is_removed_or_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = run_root(tmp_path)
    nanotron_step_files(root, (10, 20, 30), latest=30)
    record = tmp_path / "results/pretrain/ita" / retention.RECORD
    result = retention.apply(root, None, [], None, record, "abcd")
    assert result["removed"] == {} and not record.exists()
    assert sorted(d.name for d in root.iterdir() if d.is_dir()) == ["10", "20", "30"]
    # the job: no retention in a spec written before it existed, or no policy in it
    assert retention.apply_spec({"lang": "ita"}) is None
    plan = Plan(PROD, check_files=False)
    spec = plan.spec("pretrain_nanotron", lang="ita")
    assert spec["retention"]["policy"] is None
    retention.apply_spec(spec)  # paths relative to the workflow's directory (tmp_path)
    assert sorted(d.name for d in root.iterdir() if d.is_dir()) == ["10", "20", "30"]
    assert not record.exists()


def test_removal_outside_results_is_refused_and_recorded(tmp_path):
    (tmp_path / "results").mkdir()
    root = tmp_path / "elsewhere/nanotron_checkpoints"  # e.g. a checkpoints_path set by hand
    nanotron_step_files(root, (10, 20, 30), latest=30)
    record = tmp_path / "results/pretrain/ita" / retention.RECORD
    lines = []
    # the workflow's results folder (a job's: ./results; the test suite's: its temporary root)
    result = retention.apply(root, {"newest": 1}, [], None, record, "abcd",
                             results_root=tmp_path / "results", out=lines.append)
    assert result["removed"] == {} and sorted(result["refused"]) == [10, 20]
    assert "not inside" in result["refused"][10]
    assert sorted(d.name for d in root.iterdir() if d.is_dir()) == ["10", "20", "30"]
    assert any("NOT removed step 10" in x for x in lines) and "refused 2" in lines[-1]
    entries = [json.loads(x) for x in record.read_text().splitlines()]
    assert [e["step"] for e in entries] == [10, 20] and all("refused" in e for e in entries)


def test_dry_run_lists_and_keeps(tmp_path):
    root = run_root(tmp_path)
    nanotron_step_files(root, (10, 20, 30), latest=30)
    lines = []
    result = retention.apply(root, {"newest": 1}, [], None, None, "abcd",
                             results_root=tmp_path / "results", dry_run=True, out=lines.append)
    assert sorted(result["removed"]) == [10, 20] and result["freed_bytes"] == 0
    assert sorted(d.name for d in root.iterdir() if d.is_dir()) == ["10", "20", "30"]
    assert "would remove step 10" in lines[0] and "would remove 2" in lines[-1]


# ------------------------------------------------------------ the plan and the job


def with_policy(cfg, lang="ita", newest=2):
    cfg = copy.deepcopy(cfg)
    cfg["languages"][lang]["pretrain"]["keep_checkpoints"] = {"newest": newest}
    return cfg


def test_the_plan_names_every_referenced_step_and_keys_nothing_on_the_policy(tmp_path):
    plan = Plan(PROD, check_files=False)
    plan.base = tmp_path
    needed = plan.needed_steps("ita")
    # eval.checkpoints, and 775000: a posttrain base, a table's base and a release key
    assert set(PROD["languages"]["ita"]["eval"]["checkpoints"]) <= set(needed)
    assert 775000 in needed and len(needed) == 12
    cfg = copy.deepcopy(PROD)
    cfg["posttrain"]["open-zagreus"]["base"] = "ita-step700000"
    assert 700000 in Plan(cfg, check_files=False).needed_steps("ita")
    assert plan.needed_steps("por") == sorted(
        set(PROD["languages"]["por"]["eval"]["checkpoints"]) | {483000, 582000})

    kept = Plan(with_policy(PROD), check_files=False)
    kept.base = tmp_path
    r = kept.spec("pretrain_nanotron", lang="ita")["retention"]
    assert r == {"policy": {"newest": 2}, "run": "results/pretrain/ita",
                 "root": "results/pretrain/ita/nanotron_checkpoints",
                 "needed": needed, "converted": "results/models/ita-step{step}",
                 "record": "results/pretrain/ita/removed_checkpoints.jsonl",
                 "identity": plan.pretrain_identity("ita")}
    # the policy is no part of the run's identity, and re-runs no job (the specs' names)
    assert kept.pretrain_identity("ita") == plan.pretrain_identity("ita")
    for rule in ("pretrain_nanotron", "nanotron_config"):
        assert kept.spec_file(rule, lang="ita") == plan.spec_file(rule, lang="ita"), rule
    on_disk = json.loads((tmp_path / kept.spec_file("pretrain_nanotron", lang="ita")).read_text())
    assert on_disk["retention"]["policy"] == {"newest": 2}  # the same name, the new content


def test_the_hf_backend_refuses_the_key():
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    with pytest.raises(ConfigError, match="languages.ita.pretrain.keep_checkpoints: checkpoint "
                       "retention is for backend nanotron"):
        Plan(with_policy(cfg), base=REPO)
    with pytest.raises(ConfigError, match="keep_checkpoints.newest"):
        Plan(with_policy(PROD, newest=0), check_files=False)


def with_retention(tmp_path, spec):
    """The job's spec with a retention policy (newest 1, step 10 needed), written to spec.json."""
    spec["retention"] = {"policy": {"newest": 1}, "root": "results/pretrain/ita/nanotron_checkpoints",
                         "needed": [10], "converted": "results/models/ita-step{step}",
                         "record": "results/pretrain/ita/removed_checkpoints.jsonl",
                         "identity": spec["identity"]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    return spec


def test_the_job_removes_after_training(tmp_path, monkeypatch, capsys):
    from test_nanotron_preflight import job

    monkeypatch.chdir(tmp_path)
    spec, _ = job(tmp_path, train_steps=30, latest=30)  # finished: steps 5..30 on disk
    spec = with_retention(tmp_path, spec)
    monkeypatch.setattr(nanotron, "environment_problems", lambda *a: ["must not be asked"])
    import nanotron_train

    nanotron_train.main(["--spec", str(tmp_path / "spec.json")])
    out = capsys.readouterr().out
    for step in (5, 15, 20, 25):
        assert f"removed step {step} (" in out
    summary = json.loads((tmp_path / spec["summary"]).read_text())
    assert summary["checkpoints"] == [10, 30]  # written after the removals
    record = tmp_path / "results/pretrain/ita/removed_checkpoints.jsonl"
    assert [json.loads(x)["step"] for x in record.read_text().splitlines()] == [5, 15, 20, 25]


def test_prune_from_outside_the_job(tmp_path):
    plan = Plan(with_policy(PROD, newest=1), check_files=False)
    plan.base = tmp_path
    root = run_root(tmp_path)
    nanotron_step_files(root, (5000, 10000, 15000, 95000, 100000), latest=100000)
    (root / "105000").mkdir()  # nanotron writing the next one
    lines = []
    # the run directory holds no run.json of the configured run: nothing removed
    assert retention.prune(plan, "ita", out=lines.append)["removed"] == {}
    assert "holds no run.json of the configured run" in lines[-1]
    identity.claim(tmp_path / "results/pretrain/ita", "fp", [],
                   {"identity": plan.pretrain_identity("ita")})
    assert sorted(retention.prune(plan, "ita", dry_run=True, out=lines.append)["removed"]) \
        == [5000, 10000, 15000]
    assert len(list(root.iterdir())) == 7  # 6 folders and latest.txt: a dry run removes nothing
    result = retention.prune(plan, "ita", out=lines.append)
    assert sorted(result["removed"]) == [5000, 10000, 15000]
    assert "needed by the config, conversion pending" in result["kept"][95000]
    assert sorted(d.name for d in root.iterdir() if d.is_dir()) == ["100000", "105000", "95000"]
    assert len((tmp_path / "results/pretrain/ita" / retention.RECORD).read_text().splitlines()) == 3


# ------------------------------------------------------------ the cost plan


def test_cost_plan_follows_the_policy():
    n = cost.n_params(PROD["languages"]["ita"]["model"])
    each = n * (cost.WEIGHT_BYTES + cost.STATE_BYTES)
    plan = Plan(PROD, check_files=False)
    default = cost.kept_checkpoints(plan, "ita")
    assert default["policy"] is None and len(default["kept"]) == 400 and default["removed"] == []
    c = cost.job_cost(plan, Job("pretrain_nanotron", {"lang": "ita"}))
    assert c.disk_bytes == 400 * each == default["kept_bytes"]

    kept = Plan(with_policy(PROD, newest=2), check_files=False)
    r = cost.kept_checkpoints(kept, "ita")
    assert r["kept"] == sorted(plan.needed_steps("ita") + [1_995_000, 2_000_000])
    assert len(r["kept"]) == 14 and len(r["removed"]) == 386
    assert r["kept_bytes"] == 14 * each and r["removed_bytes"] == 386 * each
    assert cost.kept_checkpoints(plan, "ita", {"newest": 2}) == r  # the typical one, shown unset
    c = cost.job_cost(kept, Job("pretrain_nanotron", {"lang": "ita"}))
    assert c.disk_bytes == 14 * each
    assert "14 of 400 checkpoints kept (keep_checkpoints: newest 2)" in c.note
    assert "all 400 on disk until the job ends" in c.note


def test_cost_plan_lists_what_retention_removes():
    import cost_plan

    plan = Plan(PROD, check_files=False)
    lines, found = cost_plan.retention_lines(plan, "ita")
    assert lines[0].startswith("- ita: 400 checkpoints by step 2,000,000, 6.13 GB each")
    assert "keep_checkpoints unset: all 400 kept (2.45 TB), none removed" in lines[0]
    assert lines[1].startswith("  with {newest: 2}: 14 kept (85.8 GB: the 12 steps the config "
                               "names + the newest 2), 386 removed (2.37 TB)")
    assert "5,000–90,000 (18)" in lines[1] and lines[1].endswith("780,000–1,990,000 (243)")
    assert [f["policy"] for f in found] == [None, {"newest": 2}]
    lines, _ = cost_plan.retention_lines(Plan(with_policy(PROD, newest=3), check_files=False),
                                         "ita")
    assert "keep_checkpoints: newest 3: 15 kept" in lines[0] and "385 removed" in lines[0]
    assert "every checkpoint it saves stays on disk (the whole run: 2.45 TB)" in lines[1]
    assert cost_plan.step_ranges([10, 20, 40], [10, 20, 30, 40]) == "10–20 (2), 40"


def test_a_resubmitted_job_removes_before_it_launches(tmp_path, monkeypatch, capsys):
    """A job killed at its time limit never reaches the removal after training: the next one
    removes what it left before nanotron starts (what is on disk at launch is recorded)."""
    from test_nanotron_preflight import job

    monkeypatch.chdir(tmp_path)
    spec, _ = job(tmp_path, train_steps=40, latest=25)  # unfinished: steps 5..25 on disk
    spec = with_retention(tmp_path, spec)
    import nanotron_train

    monkeypatch.setattr(nanotron, "environment_problems", lambda *a: [])
    monkeypatch.setattr(nanotron, "is_standin", lambda *a: True)
    root = tmp_path / spec["retention"]["root"]
    at_launch = []
    monkeypatch.setattr(nanotron_train, "launch_nanotron", lambda s: at_launch.append(
        sorted(int(d.name) for d in root.iterdir() if d.is_dir())))
    nanotron_train.main(["--spec", str(tmp_path / "spec.json")])
    assert at_launch == [[10, 25]]  # the step the config needs and the newest (latest.txt)
    assert "removed step 5 (" in capsys.readouterr().out
