"""Tokenize fan-out and incremental tokenization, with real Snakemake runs on the embedded data.

One workflow copy: source ``split`` (fineweb2_ita's three shards, one file per job: three shard
groups) and ``whole`` (the same shards, one group); language ita pretrains on split, eng on
whole (2 steps each). Then the dry runs after adding, touching, changing and removing shards.
"""

from __future__ import annotations

import copy
import os
import shutil

import pyarrow.parquet as pq
import pytest
from conftest import REPO, copy_workflow, load_config, scheduled, snakemake, spine, write_config

from zflow import paths as P
from zflow import tokenized

TOK = "bpe_ita_eng_4k"
SHARDS = REPO / "data/embedded/fineweb2_ita"
TARGETS = [P.fmt(P.TRAIN_SUMMARY, lang=lang) for lang in ("ita", "eng")]


def dry_run(wd, targets=TARGETS) -> set[tuple]:
    return scheduled(wd, *targets)


def group_job(source, group):
    return ("tokenize", f"tokenizer={TOK}, source={source}, group={group}")


def stats_job(source):
    return ("tokenize_stats", f"tokenizer={TOK}, source={source}")


@pytest.fixture(scope="module")
def wf(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("groups") / "wf")
    split = wd / "data/split"
    split.mkdir()
    for f in sorted(SHARDS.glob("*.parquet")):
        shutil.copy2(f, split / f.name)
    cfg = spine(load_config(wd), "baselines", "tables")
    cfg["sources"] = {"split": {"path": "data/split", "files_per_job": 1},
                      "whole": {"path": "data/embedded/fineweb2_ita"},
                      "fineweb_eng": cfg["sources"]["fineweb_eng"]}
    # a tokenizer trained on a source that does not change here (training it reads every file
    # of its sources: a shard added to one of them retrains it, and re-tokenizes everything)
    cfg["tokenizers"][TOK]["train"]["sources"] = ["fineweb_eng"]
    ita = cfg["languages"]["ita"]
    ita["pretrain"].update(train_steps=2, checkpoint_interval=2, lr_warmup_steps=1,
                           lr_decay_starting_step=1, lr_decay_steps=1, micro_batch_size=4)
    for key in ("segment_steps", "stages"):  # one stage, one job
        ita["pretrain"].pop(key, None)
    ita["eval"] = {"tasks": ["arc_it"], "checkpoints": [2]}  # not run: the targets are the runs
    eng = copy.deepcopy(ita)
    ita["data"] = {"split": 0.7, "fineweb_eng": 0.3}
    eng["data"] = {"whole": 0.7, "fineweb_eng": 0.3}
    cfg["languages"] = {"ita": ita, "eng": eng}
    write_config(wd, cfg)
    snakemake(wd, *TARGETS)
    return wd


def test_three_groups_tokenize_to_exactly_the_unsplit_source(wf):
    res = wf / "results/tokenized" / TOK
    split, whole = load_json(res / "split.stats.json"), load_json(res / "whole.stats.json")
    assert [g["group"] for g in split["groups"]] == ["g00000", "g00001", "g00002"]
    assert [g["parquet"] for g in split["groups"]] == [[f.name] for f in sorted(SHARDS.glob("*.parquet"))]
    assert [g["group"] for g in whole["groups"]] == ["g00000"] and whole["parquet_files"] == 3
    assert sorted(p.name for p in (res / "split").iterdir()) == ["g00000", "g00001", "g00002"]
    # the same documents, each the same token stream, in the same order
    a, b = tokenized.documents(res / "split"), tokenized.documents(res / "whole")
    assert len(a) == len(b) == split["documents"] == whole["documents"] == 1500
    assert all((x == y).all() for x, y in zip(a, b))
    assert split["tokens"] == whole["tokens"] == sum(len(x) for x in a)
    assert sum(g["tokens"] for g in split["groups"]) == split["tokens"]
    assert sum(f["documents"] for f in split["files"]) == split["documents"]
    assert [f["file"].split("/")[0] for f in split["files"]] == ["g00000", "g00001", "g00002"]
    # every document, as the tokenizer encodes the parquet text (+ EOS)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(wf / P.fmt(P.TOKENIZER, tokenizer=TOK)))
    texts = [t for f in sorted(SHARDS.glob("*.parquet"))
             for t in pq.read_table(f, columns=["text"]).column(0).to_pylist()]
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    for i in (0, 499, 500, 1499):
        assert a[i].tolist() == tok(texts[i], add_special_tokens=False)["input_ids"] + [eos]
    # both pretraining runs read every window of their source, whatever the grouping (datatrove
    # reads the group folders recursively; a window never spans two .ds files, in either layout)
    windows = [{s["source"]: s for s in load_json(wf / P.fmt(P.TRAIN_SUMMARY, lang=lang))["sources"]}
               [source]["windows"] for lang, source in (("ita", "split"), ("eng", "whole"))]
    assert windows[0] == windows[1] == sum(f["tokens"] // 129 for f in split["files"]) > 0


def test_adding_touching_changing_and_removing_shards(wf):
    split = wf / "data/split"
    assert dry_run(wf) == set()
    # touching every shard without changing it re-runs nothing
    for f in (*split.glob("*.parquet"), *SHARDS.glob("*.parquet")):
        os.utime(f)
    assert dry_run(wf) == set()

    # a new shard (sorting last): only its group, the source's stats and the run that reads it
    new = split / "003_00000.parquet"
    table = pq.read_table(split / "000_00000.parquet").slice(0, 40)
    pq.write_table(table, new)
    assert dry_run(wf) == {group_job("split", "g00003"), stats_job("split"),
                           ("pretrain", "lang=ita")}
    snakemake(wf, P.fmt(P.TOKENIZED_STATS, tokenizer=TOK, source="split"))
    stats = load_json(wf / "results/tokenized" / TOK / "split.stats.json")
    assert [g["parquet"] for g in stats["groups"]][-1] == ["003_00000.parquet"]
    assert stats["documents"] == 1540 and stats["groups"][-1]["documents"] == 40

    # a shard whose content changes: its group only (and what reads the source)
    pq.write_table(pq.read_table(split / "001_00000.parquet").slice(0, 300),
                   split / "001_00000.parquet")
    assert dry_run(wf) == {group_job("split", "g00001"), stats_job("split"), ("pretrain", "lang=ita")}

    # a removed shard that a tokenized group holds: one error naming source, group and file
    (split / "000_00000.parquet").unlink()
    p = snakemake(wf, *TARGETS, "--dry-run", check=False)
    assert p.returncode != 0
    err = p.stdout + p.stderr
    assert "sources.split: '000_00000.parquet' was removed from data/split" in err
    assert "tokenized shard group g00000 holds it" in err, err[-3000:]


def load_json(path):
    import json

    return json.loads(path.read_text())


def test_nanotron_stages_list_every_group_with_the_source_weight_split_by_tokens(wf):
    """nanotron (d22eb809) reads a folder's top-level *.ds only: the YAML lists the groups."""
    from zflow import nanotron

    res = wf / "results/tokenized" / TOK
    stats = load_json(res / "split.stats.json")
    stage = nanotron.data_stages([{"name": "stable", "start_step": 0, "weights": [0.7, 0.3],
                                   "folders": [str(res / "split"), str(res / "fineweb_eng")]}],
                                 num_loading_workers=1, seed=1)[0]["data"]["dataset"]
    groups = [g["group"] for g in stats["groups"]]  # 3, or 4 once the shard-adding test ran
    assert len(groups) >= 3
    assert stage["dataset_folder"] == [str(res / "split" / g) for g in groups] \
        + [str(res / "fineweb_eng/g00000")]
    w = stage["dataset_weights"]
    assert sum(w[:-1]) == pytest.approx(0.7) and w[-1] == pytest.approx(0.3)
    assert w[:-1] == pytest.approx([0.7 * g["tokens"] / stats["tokens"] for g in stats["groups"]])


def test_groups_are_sorted_files_chunked_in_order():
    from zflow.data import shard_groups

    files, sizes = ["a", "b", "c", "d", "e"], [10, 10, 30, 5, 5]
    assert shard_groups(files, sizes, 2, None) == [["a", "b"], ["c", "d"], ["e"]]
    assert shard_groups(files, sizes, None, 25) == [["a", "b"], ["c"], ["d", "e"]]
    assert shard_groups(files, sizes, None, None) == [files]  # a small source: one group
    # a file sorting last extends the last group or opens a new one: earlier groups unchanged
    assert shard_groups([*files, "f"], [*sizes, 5], 2, None) == [["a", "b"], ["c", "d"], ["e", "f"]]
    assert shard_groups([*files, "f"], [*sizes, 20], None, 25)[:2] == [["a", "b"], ["c"]]
