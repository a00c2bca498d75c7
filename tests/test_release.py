"""Releases: the plan's release jobs, and the release of the embedded default's nesso-instruct
(made by `all` in the shared demo run): model card with model-index eval results, the AI Act
training-content summary, provenance checksums, the check before publishing, the upload's dry
run and its refusal. Nothing reaches a hub (HF_HUB_OFFLINE=1; no HF_TOKEN)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, env, load_config, snakemake, write_config

from zflow import evals, paths, schema
from zflow.plan import ConfigError, Plan
from zflow.release import ReleaseCheckError, build, check, released_files, sha256

MODEL = "nesso-instruct"
SCRIPTS = REPO / "workflow" / "scripts"


def default_config() -> dict:
    return load_config(REPO)


# ------------------------------------------------------------------ plan (no Snakemake)

def test_plan_release_jobs():
    plan = Plan(default_config(), base=REPO)
    assert plan.release_files() == [f"results/release/{MODEL}"]
    assert plan.lineage(MODEL) == [MODEL, "ita-step300"]
    assert plan.lineage("nesso-instruct-dpo") == ["nesso-instruct-dpo", "nesso-instruct-grpo",
                                                  MODEL, "ita-step300"]
    ins = plan.release_inputs(MODEL)
    cfg = plan.config
    assert ins["stats"] == [f"results/tokenized/bpe_ita_eng_4k/{s}.stats.json"
                            for s in cfg["languages"]["ita"]["data"]]
    assert ins["chat"] == sorted(cfg["chat_data"][d]["path"] for d in cfg["posttrain"][MODEL]["data"])
    assert ins["qualitative"] == [f"results/qualitative/{MODEL}/{s}.scores.jsonl"
                                  for s in ("it", "en")]
    # every eval the workflow makes of the model (Table 7's tasks and the PT leaderboard)
    tasks = {os.path.basename(e)[:-5] for e in ins["evals"]}
    assert tasks == {t for ts in cfg["compare"]["groups"].values() for t in ts} | {"pt"}
    spec = plan.spec("release", model=MODEL)
    assert "upload" not in spec["release"] and "required" not in spec["release"]
    up = plan.spec("upload", model=MODEL)
    assert (up["dry_run"], up["private"], up["repo_id"]) == (True, True,
                                                            "zflow-demo/nesso-instruct-tiny")


def test_release_config_reproduces_the_model():
    """The config written into the release is a valid config on its own, whose plan gives the
    same model identity and the same release inputs."""
    plan = Plan(default_config(), base=REPO)
    small = Plan(copy.deepcopy(plan.release_config(MODEL)), base=REPO)
    assert small.model_identity(MODEL) == plan.model_identity(MODEL)
    assert small.release_models() == [MODEL]
    assert small.release_inputs(MODEL) == plan.release_inputs(MODEL)
    assert set(small.config["posttrain"]) == {MODEL}


@pytest.mark.parametrize("name, message", [
    ("ita-step7", "release.ita-step7: step 7 of 'ita' is never saved"),
    ("nosuch", "release.nosuch: 'nosuch' is not <lang>-step<N>"),
])
def test_release_of_unknown_model_is_a_config_error(name, message):
    cfg = default_config()
    cfg["release"][name] = {"license": "mit"}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("<", "<")):
        Plan(cfg, base=REPO)


def test_release_data_key_must_name_a_source():
    cfg = default_config()
    cfg["release"][MODEL]["data"]["nope"] = {"language": "it"}
    with pytest.raises(ConfigError, match=r"release\.nesso-instruct\.data\.nope: not a key"):
        Plan(cfg, base=REPO)


def test_schema_defaults_make_upload_a_private_dry_run():
    d = schema.defaults("release/*/upload")
    assert d == {"dry_run": True, "private": True, "revision": "main",
                           "commit_message": None}
    assert schema.defaults("release/*")["required"] == ["repo_id", "license", "language"]


# ------------------------------------------------------------------ the demo's release

@pytest.fixture(scope="module")
def released(demo_run):
    wd, _ = demo_run
    return wd, wd / paths.fmt(paths.RELEASE, model=MODEL)


def test_card_metadata_holds_every_eval_result(released):
    from huggingface_hub import ModelCard

    wd, folder = released
    card = ModelCard.load(folder / paths.RELEASE_CARD)
    assert card.data.license == "apache-2.0"
    assert card.data.language == ["it", "en"]
    assert card.data.model_name == "nesso-instruct-tiny"
    got = {(r.dataset_type, r.metric_type): r.metric_value for r in card.data.eval_results}
    want = {}
    files = sorted((wd / "results" / "evals" / MODEL).glob("*.json"))
    assert len(files) == 9
    for f in files:
        rec = evals.read(f)
        want.update({(rec["lm_eval_task"], m): v for m, v in rec["metrics"].items()})
        want.update({(s["name"], s["metric"]): s["value"] for s in rec["subtasks"]})
    assert got == pytest.approx(want)
    # the hub's model-index, as the card's YAML holds it
    meta = yaml.safe_load(card.content.split("---")[1])
    assert meta["model-index"][0]["name"] == "nesso-instruct-tiny"
    assert len(meta["model-index"][0]["results"]) == len(files) + 3  # pt: 4 subtasks
    # lineage, compute, data mix, reproduction, limitations from the qualitative benchmark
    text = card.text
    assert "`ita-step300` (pretraining checkpoint) → `nesso-instruct` (post-training (sft))" in text
    assert "CPU-hours" in text
    assert f"release_{MODEL} --configfile {paths.RELEASE_CONFIG}" in text
    assert "Qualitative benchmark, suite `it`" in text and "suite `en`" in text


def test_summary_lists_every_source_with_its_tokens(released):
    wd, folder = released
    cfg = load_config(wd)
    s = json.loads((folder / paths.RELEASE_SUMMARY_JSON).read_text())
    assert list(s) == ["template", "general_information", "data_sources", "data_processing",
                       "missing", "provenance"]
    ds = {d["name"]: d for d in s["data_sources"]["datasets"]}
    assert set(ds) == set(cfg["languages"]["ita"]["data"]) | set(cfg["posttrain"][MODEL]["data"])
    for src in cfg["languages"]["ita"]["data"]:
        stats = json.loads((wd / f"results/tokenized/bpe_ita_eng_4k/{src}.stats.json").read_text())
        assert (ds[src]["tokens"], ds[src]["documents"]) == (stats["tokens"], stats["documents"])
        assert stats["tokens"] > 0
        assert ds[src]["local_path"] == cfg["sources"][src]["path"]
    for name in cfg["posttrain"][MODEL]["data"]:
        path = wd / cfg["chat_data"][name]["path"]
        assert ds[name]["rows"] == sum(1 for line in open(path) if line.strip())
    g = s["general_information"]
    assert g["provider"] == "zflow demo" and g["license"] == "apache-2.0"
    assert g["contact"] is None  # not configured: missing, never invented
    assert f"release.{MODEL}.provider.contact" in s["missing"]
    assert f"release.{MODEL}.provider.opt_out_policy" in s["missing"]
    assert f"release.{MODEL}.data.fineweb2_ita.period" not in s["missing"]
    md = (folder / paths.RELEASE_SUMMARY_MD).read_text()
    assert "## 1. General information" in md and "## 2. List of data sources" in md
    assert "## 3. Relevant data processing" in md
    assert f"`release.{MODEL}.provider.contact`" in md
    log = (wd / paths.log("release", MODEL)).read_text()
    assert "warning: the training-content summary lacks" in log and "provider.contact" in log


def test_provenance_checksums_match_the_files(released):
    wd, folder = released
    prov = json.loads((folder / paths.RELEASE_PROVENANCE).read_text())
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    # all but provenance.json itself and Snakemake's timestamp of a directory output
    assert set(prov["files"]) == on_disk - {paths.RELEASE_PROVENANCE, ".snakemake_timestamp"}
    for name, digest in prov["files"].items():
        assert sha256(folder / name) == digest
    src = wd / paths.fmt(paths.POSTTRAIN_MODEL, name=MODEL)
    assert prov["model_files"]["model.safetensors"] == sha256(src / "model.safetensors")
    assert prov["files"]["model.safetensors"] == prov["model_files"]["model.safetensors"]
    for f, digest in prov["inputs"].items():
        assert sha256(wd / f) == digest
    assert any(f.endswith("fineweb2_ita.stats.json") for f in prov["inputs"])
    assert [s["name"] for s in prov["lineage"]] == [MODEL, "ita-step300"]
    assert all(s["versions"]["transformers"] for s in prov["lineage"])
    assert prov["release_job"]["host"]
    assert prov["code"]["commit"] is None  # the test's copy is no git checkout
    written = yaml.safe_load((folder / paths.RELEASE_CONFIG).read_text())
    assert written == prov["config"]
    from zflow.identity import fingerprint
    assert fingerprint(written) == prov["config_hash"]
    gen = json.loads((folder / "generation_config.json").read_text())
    q = load_config(wd)["qualitative"]["decoding"]
    assert gen["max_new_tokens"] == q["max_new_tokens"] and gen["do_sample"] is False


def test_check_passes_and_a_tampered_file_fails(released, tmp_path):
    _, folder = released
    copy_ = tmp_path / "rel"
    shutil.copytree(folder, copy_)
    ok = check(copy_)
    assert ok["chat_template"] and ok["new_tokens"] == 4
    assert ok["files_verified"] == len(released_files(copy_)) - 1 >= 10
    with open(copy_ / "tokenizer_config.json", "a") as f:
        f.write(" ")
    with pytest.raises(ReleaseCheckError, match=r"tokenizer_config.json: sha256 .* != recorded"):
        check(copy_)
    p = subprocess.run([sys.executable, "-m", "zflow.release", "check", str(copy_)],
                       cwd=SCRIPTS, env=env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "tokenizer_config.json" in p.stderr


def test_a_model_that_does_not_load_stops_the_release(released, tmp_path, monkeypatch):
    """A broken model (config not matching its weights): the release job fails, and nothing
    is left at its output."""
    wd, _ = released
    spec_file = sorted((wd / paths.SPECS / "release").glob(f"{MODEL}.*.json"))[-1]
    spec = json.loads(spec_file.read_text())
    broken = tmp_path / "model"
    shutil.copytree(wd / spec["model_dir"], broken)
    cfg = json.loads((broken / "config.json").read_text())
    cfg["num_hidden_layers"] += 1
    (broken / "config.json").write_text(json.dumps(cfg))
    spec.update(model_dir=str(broken), output=str(tmp_path / "out" / MODEL))
    monkeypatch.chdir(wd)
    with pytest.raises(ReleaseCheckError, match="does not load with transformers"):
        build(spec, code_dir=SCRIPTS, log=lambda m: None)
    assert not (tmp_path / "out" / MODEL).exists()


def test_upload_dry_run_and_refusal(released, tmp_path):
    wd, folder = released
    original = load_config(wd)
    target = f"upload_{MODEL}"
    try:
        snakemake(wd, target, "--forcerun", "upload")
        out = json.loads((wd / paths.fmt(paths.RELEASE_UPLOAD, model=MODEL)).read_text())
        req = out["request"]
        assert out["dry_run"] is True
        assert (req["repo_id"], req["private"], req["revision"], req["commit_message"]) == (
            "zflow-demo/nesso-instruct-tiny", True, "main", f"Release {MODEL}")
        assert {f["path"]: f["bytes"] for f in req["files"]} == {
            str(p.relative_to(folder)): p.stat().st_size for p in released_files(folder)}
        assert ".snakemake_timestamp" not in {f["path"] for f in req["files"]}
        assert out["refused"] == []
        # a required field the config does not give: the dry run names what a real upload would
        # refuse (the release itself is not re-run: `required` is an upload setting) ...
        cfg = copy.deepcopy(original)
        cfg["release"][MODEL]["required"] = ["repo_id", "license", "provider.contact"]
        write_config(wd, cfg)
        p = snakemake(wd, target, "--forcerun", "upload")
        log = (wd / paths.log("upload", MODEL)).read_text()
        want = f"release.{MODEL}.provider.contact: required for the upload but missing"
        assert want in log and "would be refused" in log
        out = json.loads((wd / paths.fmt(paths.RELEASE_UPLOAD, model=MODEL)).read_text())
        assert out["refused"] == [want]
        assert "rule release:" not in p.stdout + p.stderr
        # ... and a real upload is refused by the config check, before any job
        cfg["release"][MODEL]["upload"] = {"dry_run": False}
        write_config(wd, cfg)
        p = snakemake(wd, target, "--dry-run", check=False)
        assert p.returncode != 0
        assert f"release.{MODEL}.provider.contact: required for the upload (upload.dry_run is " \
            "false) but not set" in p.stdout + p.stderr
    finally:
        write_config(wd, original)
    # a card without a license (edited by hand): refused before any network call, even for a
    # real upload with a token in the environment
    from huggingface_hub import ModelCard

    copy_ = tmp_path / "rel"
    shutil.copytree(folder, copy_)
    card = ModelCard.load(copy_ / paths.RELEASE_CARD)
    card.data.license = None
    card.save(copy_ / paths.RELEASE_CARD)
    spec = {"model": MODEL, "folder": str(copy_), "repo_id": "x/y", "private": True,
            "revision": "main", "commit_message": "m", "dry_run": False,
            "required": ["repo_id", "license", "language"], "offline": False,
            "output": str(tmp_path / "upload.json")}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    p = subprocess.run([sys.executable, str(SCRIPTS / "upload.py"), "--spec",
                        str(tmp_path / "spec.json")], cwd=wd, capture_output=True, text=True,
                       env={**env(), "HF_TOKEN": "hf_not_a_token",
                            "HF_ENDPOINT": "http://127.0.0.1:9"}, timeout=300)
    assert p.returncode == 2
    assert f"release.{MODEL}.license: required for the upload but missing from the model card" \
        in p.stderr
    assert not (tmp_path / "upload.json").exists()
