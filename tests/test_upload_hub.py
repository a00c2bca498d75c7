"""The real upload (workflow/scripts/upload.py, ``dry_run: false``) against a local stand-in for
the Hugging Face Hub (tests/hub_server.py, a real HTTP server on 127.0.0.1): huggingface_hub's own
``create_repo`` / ``create_branch`` / ``upload_folder`` requests, checked on what the server
received — the private repo, the token, every released file byte for byte and nothing hidden, the
commit message and revision — and the refusals (no token, offline, a card missing a required
field) that must happen before any request. No network beyond 127.0.0.1, no Snakemake run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from conftest import REPO
from hub_server import FakeHub

from zflow import paths
from zflow.release import released_files

SCRIPTS = REPO / "workflow" / "scripts"
MODEL = "nesso-tiny"
REPO_ID = "zflow-test/nesso-tiny"
TOKEN = "hf_test_0123456789abcdefTOKEN"
REQUIRED = ["repo_id", "license", "language", "base_model", "provider.name", "provider.contact"]


def _load_upload():
    spec = importlib.util.spec_from_file_location("zflow_upload_script", SCRIPTS / "upload.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


upload = _load_upload()


def _card(license="apache-2.0") -> str:
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(language=["it", "en"], license=license, library_name="transformers",
                         pipeline_tag="text-generation", base_model="zflow-test/nesso-base",
                         model_name="nesso-tiny", tags=["zflow", "chat"])
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n# {MODEL}\n\nA test card: è così.\n"))


def make_release(folder: Path, license="apache-2.0") -> Path:
    """A small release folder: the card, the content summary, a few model files (one binary, one
    in a subfolder) and the hidden files a Snakemake directory output or the hub cache leaves."""
    folder.mkdir(parents=True)
    (folder / paths.RELEASE_CARD).write_text(_card(license), encoding="utf-8")
    (folder / paths.RELEASE_SUMMARY_JSON).write_text(json.dumps(
        {"general_information": {"provider": "zflow tests", "contact": "tests@example.org"},
         "data_sources": {"opt_out_policy": "none"}}))
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 4 + b"\x00\xff\x00")
    (folder / "tokenizer_config.json").write_text('{"chat_template": "{{ m }}"}\n')
    (folder / "empty.txt").write_bytes(b"")
    (folder / "extra").mkdir()
    (folder / "extra" / "notes.md").write_text("línea ünïcode\r\nsecond line\n", encoding="utf-8")
    # hidden: never published
    (folder / ".snakemake_timestamp").write_text("1700000000")
    (folder / ".cache" / "huggingface").mkdir(parents=True)
    (folder / ".cache" / "huggingface" / "x.metadata").write_text("cache")
    (folder / "extra" / ".hidden").write_text("secret")
    return folder


def write_spec(tmp_path: Path, folder: Path, **over) -> Path:
    spec = {"model": MODEL, "folder": str(folder), "repo_id": REPO_ID, "private": True,
            "revision": "main", "commit_message": f"Release {MODEL} (test)", "dry_run": False,
            "required": REQUIRED, "offline": False,
            "output": str(tmp_path / f"{MODEL}.upload.json"), **over}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture
def hub(monkeypatch):
    from huggingface_hub import constants

    with FakeHub(token=TOKEN) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)  # upload.request() reads it
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        for v in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                  "all_proxy"):
            monkeypatch.delenv(v, raising=False)
        # huggingface_hub read these at import time (the Makefile exports HF_HUB_OFFLINE=1): online
        # for this test only; any request that ignored the endpoint upload.py passes would go to
        # constants.ENDPOINT, here a closed local port, never the internet
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
        yield server


@pytest.fixture(params=["pipeline", "create_commit"])
def client_path(request, monkeypatch):
    """upload_folder's two ways: the pipelined upload (hf_xet installed, as in the .venv) and the
    single create_commit (without hf_xet, or HF_HUB_DISABLE_XET=1). The validate-yaml requests
    each makes before the preupload."""
    from huggingface_hub import constants
    from huggingface_hub.utils._runtime import is_xet_available

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", request.param == "create_commit")
    if request.param == "pipeline" and not is_xet_available():
        pytest.skip("hf_xet is not installed: upload_folder has no pipelined path")
    validate = [("POST", "/api/validate-yaml")]
    return validate if request.param == "pipeline" else validate * 2


def _published(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in released_files(folder)}


def _check_upload(hub: FakeHub, folder: Path, out_path: Path, revision: str, message: str):
    # the repo: created once, private, with the configured id, as a model
    creates = [r for r in hub.requests if r["path"] == "/api/repos/create"]
    (create,) = creates
    assert {k: v for k, v in create["body"].items() if k != "type"} == {
        "name": REPO_ID.split("/")[1], "organization": REPO_ID.split("/")[0],
        "visibility": "private"}
    assert create["body"].get("type", "model") == "model"  # no type: the Hub's default, a model
    assert hub.repos[REPO_ID]["private"] is True
    # every request carried exactly the token of HF_TOKEN
    assert hub.requests and {r["headers"].get("authorization") for r in hub.requests} == {
        f"Bearer {TOKEN}"}
    # the card validated is the released one
    vals = [r for r in hub.requests if r["path"] == "/api/validate-yaml"]
    assert vals and all(val["body"] == {"content": (folder / paths.RELEASE_CARD).read_text(encoding="utf-8"),
                           "repoType": "model"} for val in vals)
    # preupload asked about exactly the released files, with their sizes
    expected = _published(folder)
    assert {"README.md", "model.safetensors", "extra/notes.md", "empty.txt"} <= set(expected)
    asked = {f["path"]: f["size"] for r in hub.requests if "/preupload/" in r["path"]
             for f in r["body"]["files"]}
    assert asked == {p: len(c) for p, c in expected.items()}
    # one commit, to the configured revision, with the configured message, carrying every
    # released file byte for byte and nothing else (no hidden file)
    (commit,) = hub.commits
    assert (commit["repo_id"], commit["revision"], commit["summary"]) == (REPO_ID, revision,
                                                                         message)
    assert commit["files"] == expected
    assert not any(part.startswith(".") for p in commit["files"] for part in p.split("/"))
    assert hub.repos[REPO_ID]["branches"][revision] == expected
    # main()'s record: a real upload, the request it made and what the server answered
    out = json.loads(out_path.read_text())
    assert out["dry_run"] is False
    assert out["result"] == {"repo_url": f"{hub.url}/{REPO_ID}",
                             "commit_url": f"{hub.url}/{REPO_ID}/commit/{commit['oid']}",
                             "oid": commit["oid"]}
    req = out["request"]
    assert (req["repo_id"], req["private"], req["revision"], req["commit_message"],
            req["endpoint"]) == (REPO_ID, True, revision, message, hub.url)
    assert {f["path"]: f["bytes"] for f in req["files"]} == {p: len(c)
                                                            for p, c in expected.items()}
    assert req["total_bytes"] == sum(len(c) for c in expected.values())


def test_main_uploads_release_to_hub(hub, client_path, tmp_path):
    folder = make_release(tmp_path / "release" / MODEL)
    spec = write_spec(tmp_path, folder)
    upload.main(["--spec", str(spec)])
    assert hub.endpoints() == [
        ("POST", "/api/repos/create"), *client_path,
        ("POST", f"/api/models/{REPO_ID}/preupload/main"),
        ("POST", f"/api/models/{REPO_ID}/commit/main")]
    _check_upload(hub, folder, tmp_path / f"{MODEL}.upload.json", "main", f"Release {MODEL} (test)")
    commit_req = hub.requests[-1]
    assert commit_req["headers"]["content-type"] == "application/x-ndjson"
    assert commit_req["body"][0] == {"key": "header", "value": {
        "summary": f"Release {MODEL} (test)", "description": ""}}


def test_main_uploads_again_to_existing_repo_and_branch(hub, client_path, tmp_path):
    """A second upload, to a branch: the existing repo (409) is accepted, the branch is created,
    the commit goes to it."""
    folder = make_release(tmp_path / "release" / MODEL)
    hub.repos[REPO_ID] = {"type": "model", "private": True, "branches": {"main": {}}}
    spec = write_spec(tmp_path, folder, revision="v0.1", commit_message="second")
    upload.main(["--spec", str(spec)])
    assert hub.endpoints() == [
        ("POST", "/api/repos/create"), ("POST", f"/api/models/{REPO_ID}/branch/v0.1"),
        *client_path, ("POST", f"/api/models/{REPO_ID}/preupload/v0.1"),
        ("POST", f"/api/models/{REPO_ID}/commit/v0.1")]
    _check_upload(hub, folder, tmp_path / f"{MODEL}.upload.json", "v0.1", "second")
    assert hub.repos[REPO_ID]["branches"]["main"] == {}


def test_push_returns_what_the_hub_answered(hub, client_path, tmp_path):
    """push() as a library call, twice in one process: what the hub answered, and the shared
    ignore patterns left as they were (upload_folder extends the list it is given in place)."""
    from zflow import release

    hidden = list(release.HIDDEN)
    folder = make_release(tmp_path / "release" / MODEL)
    spec = json.loads(write_spec(tmp_path, folder).read_text())
    res = upload.push(spec, upload.request(spec))
    assert release.HIDDEN == upload.HIDDEN == hidden
    (commit,) = hub.commits
    assert res == {"repo_url": f"{hub.url}/{REPO_ID}",
                   "commit_url": f"{hub.url}/{REPO_ID}/commit/{commit['oid']}",
                   "oid": commit["oid"]}
    assert commit["files"] == _published(folder)
    again = upload.push({**spec, "commit_message": "again"}, upload.request(spec))
    assert release.HIDDEN == hidden
    assert [c["summary"] for c in hub.commits] == [spec["commit_message"], "again"]
    assert hub.commits[1]["files"] == _published(folder)
    assert again["oid"] == hub.commits[1]["oid"] != res["oid"]


@pytest.mark.parametrize("name, value", [("HF_TOKEN", None), ("HF_HUB_OFFLINE", "1")],
                         ids=["no token", "offline"])
def test_refused_before_any_request(hub, tmp_path, monkeypatch, capsys, name, value):
    """No token in the environment, or offline mode: refused, naming the variable."""
    folder = make_release(tmp_path / "release" / MODEL)
    spec = write_spec(tmp_path, folder)
    if value is None:
        monkeypatch.delenv(name)
    else:
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as e:
        upload.main(["--spec", str(spec)])
    assert e.value.code != 0
    assert name in capsys.readouterr().err
    assert hub.requests == []
    assert not (tmp_path / f"{MODEL}.upload.json").exists()


def test_card_without_license_refused_before_any_request(hub, tmp_path, capsys):
    folder = make_release(tmp_path / "release" / MODEL, license=None)
    from huggingface_hub import ModelCard

    assert ModelCard.load(folder / paths.RELEASE_CARD).data.license is None
    assert ModelCard.load(folder / paths.RELEASE_CARD).data.language == ["it", "en"]
    spec = write_spec(tmp_path, folder)
    with pytest.raises(SystemExit) as e:
        upload.main(["--spec", str(spec)])
    assert e.value.code != 0
    err = capsys.readouterr().err
    assert f"release.{MODEL}.license: required for the upload but missing from the model card" \
        in err
    assert "language" not in err.replace(f"upload of {MODEL} refused", "")
    assert hub.requests == []
    assert not (tmp_path / f"{MODEL}.upload.json").exists()
