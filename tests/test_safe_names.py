"""Names a user writes can neither destroy results nor reach outside them (issue 27, item 1):
one name rule in the schema for every key that becomes a folder or a job wildcard, and every
removal or replacement refused outside the workflow's own outputs."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_workflow, load_config, snakemake, write_config
from zflow import io, paths
from zflow.schema import ConfigError, load

BAD = [".", "..", "a b", "x;y", "$(id)", "a/b", "q'", "`id`", "-x", "_x", "a\nb", "x" * 101, ""]
GOOD = ["ita", "bpe_ita_eng_4k", "Llama-3.2-1B", "v1.0", "9b"]


def _default():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _maps(cfg):
    """Every map of the embedded default whose keys become folder names or wildcards."""
    q = cfg["qualitative"]
    q.setdefault("suites", {"it": "config/qualitative/it.yaml"})
    return {"sources": cfg["sources"], "tokenizers": cfg["tokenizers"], "tasks": cfg["tasks"],
            "baselines": cfg.setdefault("baselines", {}), "chat_data": cfg["chat_data"],
            "posttrain": cfg["posttrain"], "tables": cfg["tables"], "release": cfg["release"],
            "qualitative.suites": q["suites"]}


def _rename_first(mapping, new):
    old = next(iter(mapping))
    mapping[new] = mapping.pop(old)


def _named(where, name):
    """The embedded default with ``name`` for the first entry of map ``where`` (an entry named
    ``name`` where the map is empty)."""
    cfg = _default()
    mapping = _maps(cfg)[where]
    if mapping:
        _rename_first(mapping, name)
    else:
        mapping[name] = {"model": "x"}
    return cfg


@pytest.mark.parametrize("where", ["sources", "tokenizers", "tasks", "baselines", "chat_data",
                                   "posttrain", "tables", "release", "qualitative.suites"])
def test_every_name_map_refuses_unsafe_names(where):
    for bad in BAD:
        cfg = _named(where, bad)
        with pytest.raises(ConfigError) as e:
            load(cfg)
        lines = [x for x in str(e.value).splitlines() if f"config key {where}:" in x]
        assert any("is not allowed as an entry's name" in x and "never '.' or '..'" in x
                   for x in lines), (where, bad, str(e.value))
    for good in GOOD:
        try:
            load(_named(where, good))
        except ConfigError as e:
            assert "is not allowed as an entry's name" not in str(e), (where, good)


def test_endpoint_model_name_follows_the_same_rule():
    cfg = _default()
    cfg["qualitative"]["models"] = [{"name": "..", "url": "http://127.0.0.1:1", "model": "m"}]
    with pytest.raises(ConfigError, match=r"qualitative\.models\.0\.name: '\.\.' is not allowed "
                                          r"as a name"):
        load(cfg)


def test_one_rule_for_schema_and_wildcards():
    schema = yaml.safe_load((REPO / "config" / "schemas" / "config.schema.yaml").read_text())
    assert schema["$defs"]["name"]["pattern"] == f"^{paths.NAME}$"
    common = (REPO / "rules" / "common.smk").read_text()
    constraints = common.split("wildcard_constraints:")[1].split("\n\n")[0]
    for wildcard in ("source", "tokenizer", "model", "task", "table"):
        assert f"    {wildcard}=P.NAME," in constraints
    for bad in BAD:
        assert len(bad) > 100 or not re.fullmatch(paths.NAME, bad)  # length: the schema's
    for good in GOOD:
        assert re.fullmatch(paths.NAME, good)


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZFLOW_RESULTS_ROOT", raising=False)  # the default: ./results
    for name in ("a", "b"):
        d = tmp_path / "results" / "tokenizers" / name
        d.mkdir(parents=True)
        (d / "tokenizer.json").write_text(name)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep.txt").write_text("keep")
    return tmp_path


def _all_files(root: Path):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("target", [
    "results/tokenizers/..", "results/tokenizers/.", "results/release/..", "results/..",
    "results", "results/tokenizers", "results/tokenizers/a/../b", "elsewhere",
    "results/../elsewhere", "/tmp", "../x"])
def test_removals_outside_the_workflows_outputs_are_refused(results, target):
    before = _all_files(results)
    with pytest.raises(io.UnsafePath, match="refusing to remove or replace"):
        io.remove_tree(target)
    with pytest.raises(io.UnsafePath):
        with io.atomic_dir(target) as tmp:
            (tmp / "x").write_text("x")
    assert _all_files(results) == before


def test_removals_inside_the_workflows_outputs_work(results):
    with io.atomic_dir("results/tokenizers/a") as tmp:
        (tmp / "tokenizer.json").write_text("new")
    assert (results / "results/tokenizers/a/tokenizer.json").read_text() == "new"
    io.remove_tree("results/tokenizers/b")
    (results / "results/x").mkdir()
    (results / "results/x/f.json").write_text("{}")
    io.remove_tree("results/x/f.json")  # a file
    io.remove_tree("results/x/gone")  # nothing there: nothing to do
    assert _all_files(results) == ["elsewhere/keep.txt", "results/tokenizers/a/tokenizer.json"]


def test_a_tokenizer_named_dotdot_stops_the_run_before_any_job(tmp_path):
    """The run that once deleted everything under results/: refused at parse time."""
    wd = copy_workflow(tmp_path / "wf")
    cfg = load_config(wd)
    (wd / "results" / "keep").mkdir(parents=True)
    (wd / "results" / "keep" / "f.txt").write_text("kept")
    bad = copy.deepcopy(cfg)
    lang = next(iter(bad["languages"]))
    _rename_first(bad["tokenizers"], "..")
    bad["languages"][lang]["tokenizer"] = ".."
    write_config(wd, bad)
    p = snakemake(wd, "all", check=False, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode != 0
    assert "config key tokenizers: '..' is not allowed as an entry's name" in out, out[-3000:]
    assert "Traceback" not in out
    assert _all_files(wd / "results") == ["keep/f.txt"]
