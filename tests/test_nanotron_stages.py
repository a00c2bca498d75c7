"""Data stages under nanotron at the pin (d22eb809): each stage's loader starts its folders at
their first sample (zflow.nanotron, "data stages at the pin", file:line there), and a resume
inside a stage between the first and the last restarts that stage. The config check warns; the
run summary counts, per source and stage, the tokens seen and of those the repeats; the stand-in
reads what nanotron reads."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from zflow import nanotron
from zflow.plan import Plan

from test_nanotron_standin import data, run_job, tiny, write_job  # noqa: F401 (data: the fixture)

PROD = yaml.safe_load((REPO / "config/zagreus.yaml").read_text())  # ita: backend nanotron
EMBEDDED = yaml.safe_load((REPO / "config/config.yaml").read_text())  # ita: hf, two stages
KEY = "languages.ita.pretrain.stages: backend nanotron (d22eb809)"


def staged(cfg, stages, lang="ita"):
    cfg = copy.deepcopy(cfg)
    cfg["languages"][lang]["pretrain"]["stages"] = stages
    return cfg


def stage_warnings(cfg, capsys) -> list[str]:
    capsys.readouterr()
    Plan(cfg, check_files=False)
    return [ln for ln in capsys.readouterr().err.splitlines() if "pretrain.stages" in ln]


# ---------------------------------------------------------------- the config check


def test_config_check_warns_that_a_folder_read_again_repeats_its_first_samples(capsys):
    cfg = staged(PROD, [{"name": "stable", "start_step": 0},
                        {"name": "decay", "start_step": 1_800_000,
                         "data": {"fineweb2_ita": 1, "finepdfs_ita": 3}}])
    assert stage_warnings(cfg, capsys) == [
        f"warning: {KEY} starts each stage's folders at their first sample: finepdfs_ita, "
        "fineweb2_ita, read again in a later stage, restart from their first sample, so their "
        "first samples are repeated (the run summary counts the repeats: tokens_repeated)"]


def test_config_check_warns_of_the_middle_stage_resume_and_nothing_else(capsys):
    three = [{"name": "a", "start_step": 0, "data": {"fineweb2_ita": 1}},
             {"name": "b", "start_step": 100, "data": {"finepdfs_ita": 1}},
             {"name": "c", "start_step": 200, "data": {"starcoder": 1}}]
    assert stage_warnings(staged(PROD, three), capsys) == [
        f"warning: {KEY} starts each stage's folders at their first sample: a resume inside a "
        "middle stage restarts that stage from its first sample too (the run summary counts "
        "the repeats: tokens_repeated)"]
    # two stages of disjoint sources repeat nothing; the hf backend continues each source
    assert stage_warnings(staged(PROD, three[:2]), capsys) == []
    assert stage_warnings(EMBEDDED, capsys) == []
    assert Plan(EMBEDDED, base=REPO, check_files=False).lang("ita")["pretrain"]["stages"]


# ---------------------------------------------------------------- the accounting

A, B, C = "/t/web/g00000", "/t/web/g00001", "/t/books"  # web: two shard groups


def schedule() -> dict:
    """Steps 1-4 read A, B (1:1), steps 5-7 A, C (1:3), steps 8-10 A, B, C (2:1:1); global
    batch 4 (2 x 2 accumulation), sequence length 32."""
    def stage(name, start, folders, weights):
        return {"name": name, "start_training_step": start,
                "data": {"dataset": {"dataset_folder": folders, "dataset_weights": weights},
                         "num_loading_workers": 1, "seed": 42}}
    return {"tokens": {"train_steps": 10, "sequence_length": 32, "micro_batch_size": 2,
                       "batch_accumulation_per_replica": 2},
            "parallelism": {"dp": 1, "tp": 1, "pp": 1},
            "data_stages": [stage("s1", 1, [A, B], [0.5, 0.5]),
                            stage("s2", 5, [A, C], [0.25, 0.75]),
                            stage("s3", 8, [A, B, C], [0.5, 0.25, 0.25])]}


def test_blend_is_megatrons_max_error_rule():
    # s2's 12 positions: A at 1, 4 and 8 (a tie goes to the first folder), C elsewhere
    assert nanotron.blend_order([0.25, 0.75], 12) == [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1]
    assert nanotron.blend_order([0.5, 0.25, 0.25], 12) == [0, 1, 2, 0, 0, 1, 2, 0, 0, 1, 2, 0]
    counts, exact = nanotron.blend_counts([0.25, 0.75], [0, 8, 12])
    assert exact and counts == {0: [0, 0], 8: [2, 6], 12: [3, 9]}


def test_blend_counts_beyond_the_exact_limit_are_within_two_samples(monkeypatch):
    weights, marks = [0.3, 0.057143, 0.1, 0.2, 0.342857], [997, 5003, 20000]
    exact, ok = nanotron.blend_counts(weights, marks)
    monkeypatch.setattr(nanotron, "EXACT_BLEND", 10)
    estimate, approx = nanotron.blend_counts(weights, marks)
    assert ok and not approx
    for m in marks:
        assert sum(estimate[m]) == m
        assert max(abs(a - b) for a, b in zip(exact[m], estimate[m])) <= 2, (m, exact, estimate)


def reads(cfg, **kw):
    return [{f: tuple(v) for f, v in st["folders"].items()}
            for st in nanotron.stage_reads(cfg, **kw)["stages"]]


def test_each_stage_restarts_its_folders_from_the_first_sample():
    """(samples read, of which repeated) per stage and folder. s1 reads A 0-7, B 0-7; s2 A 0-2
    (all read in s1) and C 0-8; s3 A 0-5, B 0-2, C 0-2: nothing new at all."""
    assert reads(schedule()) == [
        {A: (8, 0), B: (8, 0)},
        {A: (3, 3), C: (9, 0)},
        {A: (6, 6), B: (3, 3), C: (3, 3)}]
    # a resume in the first or the last stage continues it: the uninterrupted run's reads
    for launches in ([1, 3], [1, 9], [1, 3, 9]):
        assert reads(schedule(), launches=launches) == reads(schedule()), launches
    # through step 6: s1, then two steps of s2 (positions 0-7: A at 1 and 4, C six times)
    assert reads(schedule(), through=6) == [{A: (8, 0), B: (8, 0)}, {A: (2, 2), C: (6, 0)},
                                            {A: (0, 0), B: (0, 0), C: (0, 0)}]


def test_a_resume_inside_a_middle_stage_restarts_it():
    """Killed after step 6's checkpoint, relaunched at step 7 inside s2: step 7 reads s2's
    positions 0-3 again (A 0, C 0-2), already read at step 5; s3 then starts as before."""
    assert reads(schedule(), launches=[1, 7]) == [
        {A: (8, 0), B: (8, 0)},
        {A: (3, 3), C: (9, 3)},
        {A: (6, 6), B: (3, 3), C: (3, 3)}]


def test_summary_counts_tokens_seen_and_repeated_per_source_and_stage():
    data = nanotron.source_reads(schedule(), launches=[1, 7])
    # web = A + B: seen 8+8, 3, 6+3 samples; repeated 0, 3, 9; books = C: 9 (3 repeated), 3 (3)
    assert data["sources"] == [
        {"source": "web", "folders": [A, B], "tokens_seen": 28 * 32, "tokens_repeated": 12 * 32},
        {"source": "books", "folders": [C], "tokens_seen": 12 * 32, "tokens_repeated": 6 * 32}]
    assert [(st["name"], st["start_step"]) for st in data["stages"]] == \
        [("s1", 0), ("s2", 4), ("s3", 7)]
    assert [[(s["source"], s["tokens_seen"] // 32, s["tokens_repeated"] // 32)
             for s in st["sources"]] for st in data["stages"]] == [
        [("web", 16, 0)], [("web", 3, 3), ("books", 9, 3)], [("web", 9, 9), ("books", 3, 3)]]
    assert data["counts_exact"] is True


def test_launches_are_read_from_the_appended_log():
    def log(*steps):
        return [f"\x1b[2m12/08 01:00:00 [INFO]\x1b[0m: iteration: {s} / 10 | lm_loss: 1.0"
                for s in steps]
    # died after step 6 (checkpoint 4), resumed at 5; died after 8 (checkpoint 6), resumed at 7
    lines = log(1, 2, 3, 4, 5, 6) + ["resuming"] + log(5, 6, 7, 8) + log(7, 8, 9, 10)
    assert nanotron.launch_starts(lines) == [1, 5, 7]
    # a launch that died before its first checkpoint drops out of the run's lineage
    assert nanotron.launch_starts(log(1, 2, 3, 4, 5, 6) + log(5, 6) + log(5, 6, 7)) == [1, 5]
    assert nanotron.launch_starts(log(5, 6, 7)) == [1, 5]  # a log begun mid-run
    assert nanotron.launch_starts([]) == [1]


# ---------------------------------------------------------------- the stand-in reads the same


def staged_job(tmp: Path, data: dict):
    """The pretrain_nanotron job on a 3-stage YAML: steps 1-4 web + books (1:1), 5-8 books,
    9-12 web + books (1:3); global batch 4, checkpoints every 3 steps."""
    spec, _ = write_job(tmp, data)
    web, books = data["folders"]["web"], data["folders"]["books"]
    cfg = nanotron.make_config(
        **tiny(data, train_steps=12, checkpoint_interval=3), tokenizer=data["tokenizer"],
        stages=[{"name": "stable", "start_step": 0, "folders": [web, books], "weights": [1, 1]},
                {"name": "mid", "start_step": 4, "folders": [books], "weights": [1]},
                {"name": "decay", "start_step": 8, "folders": [web, books], "weights": [1, 3]}],
        checkpoints_path=str(Path(spec["run_dir"]) / "nanotron_checkpoints"),
        run="standin", project="zflow")
    Path(spec["config"]).write_text(yaml.safe_dump(cfg))
    return spec, cfg


def test_standin_reads_what_the_summary_counts(data, tmp_path, capsys):
    spec, cfg = staged_job(tmp_path, data)
    trace = tmp_path / "trace.jsonl"
    with pytest.raises(SystemExit):  # dies after step 7: checkpoint 6, inside stage 'mid'
        run_job(tmp_path, {"ZFLOW_STANDIN_TRACE": str(trace), "ZFLOW_STANDIN_FAIL_AFTER": "7"})
    capsys.readouterr()
    run_job(tmp_path, {"ZFLOW_STANDIN_TRACE": str(trace)})
    steps = {}
    for line in trace.read_text().splitlines():  # a relaunch redoes step 7: keep the newest
        row = json.loads(line)
        steps[row["step"]] = row
    assert sorted(steps) == list(range(1, 13))
    # the relaunch restarted 'mid' at its first position: step 7 read what step 5 read
    assert steps[7]["stage"] == steps[5]["stage"] == "mid"
    assert steps[7]["samples"] == steps[5]["samples"] != steps[6]["samples"]
    # each stage's folders from their first sample: 'decay' starts at web's and books' first
    first = {}
    for s in range(1, 13):
        for f, j in steps[s]["samples"]:
            first.setdefault((steps[s]["stage"], f), j)
    assert {v for (st, _), v in first.items()} == {0}
    # the summary's counts are the trace's: a sample is repeated when read before in the run
    seen, by_source = set(), {}
    for s in range(1, 13):
        for f, j in steps[s]["samples"]:
            acc = by_source.setdefault(nanotron.source_name(f), [0, 0])
            acc[0] += 32
            acc[1] += 32 * ((f, j) in seen)
            seen.add((f, j))
    summary = json.loads(Path(spec["summary"]).read_text())
    assert {s["source"]: [s["tokens_seen"], s["tokens_repeated"]]
            for s in summary["sources"]} == by_source
    assert by_source["books"][1] > 0 and summary["data_through_step"] == 12
    # nanotron's own checkpoint metadata: every stage, its own sample count (not the restart)
    meta = json.loads((Path(cfg["checkpoints"]["checkpoints_path"]) / "12"
                       / "checkpoint_metadata.json").read_text())["metas"]
    assert [(m["name"], m["consumed_train_samples"]) for m in meta["data_stages"]] == \
        [("stable", 16), ("mid", 16), ("decay", 16)]
    assert meta["last_stage_idx"] == 2 and meta["consumed_train_samples"] == 48
