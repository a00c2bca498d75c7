"""The pretrain_nanotron job's pre-flight: what would stop nanotron before step 1 is reported in
one error, in seconds, before torchrun starts; a finished run is not launched again."""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
import time
import types

import pytest
import yaml
from zflow import nanotron, schema

HUB_NAME = "meta-llama/Llama-3.2-1B"
LOUD = ("import sys; open(sys.argv[0] + '.ran', 'w').write('x'); "
        "sys.exit('run_train.py must not run')\n")


def fake_checkout(tmp_path):
    """A checkout whose run_train.py fails loudly (and leaves a marker) if it is ever run."""
    d = tmp_path / "nanotron"
    d.mkdir()
    (d / "run_train.py").write_text(LOUD)
    return d


def job(tmp_path, train_steps=10, latest=None, log_lines=()):
    """The spec and YAML of a pretrain_nanotron job in tmp_path (zflow.plan's layout)."""
    run_dir = tmp_path / "results/pretrain/ita"
    root = run_dir / "nanotron_checkpoints"
    folder = tmp_path / "tokenized"
    folder.mkdir()
    cfg = nanotron.make_config(
        model=schema.defaults("languages/*/model") | {
            "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 1, "num_key_value_heads": 1, "vocab_size": 8},
        pretrain=schema.defaults("languages/*/pretrain") | {
            "learning_rate": 1e-3, "train_steps": train_steps, "sequence_length": 8,
            "micro_batch_size": 1, "checkpoint_interval": 5},
        nano={**schema.defaults("languages/*/pretrain/nanotron"), "dp": 1}, tokenizer=HUB_NAME,
        folders=[str(folder)], weights=[1.0], checkpoints_path=str(root), run="r", project="p")
    config = run_dir / "nanotron.yaml"
    run_dir.mkdir(parents=True)
    config.write_text(yaml.safe_dump(cfg))
    log = tmp_path / "results/logs/pretrain/ita.nanotron.log"
    if log_lines:
        log.parent.mkdir(parents=True)
        log.write_text("\n".join(log_lines) + "\n")
    # the interpreter of the "nanotron environment": the one running the tests (no nanotron)
    spec = {"lang": "ita", "config": str(config), "checkout": str(fake_checkout(tmp_path)),
            "python": sys.executable, "nodes": 1, "gpus_per_node": 1, "peak_tflops": 312.0, "identity": "abcd",
            "run_dir": str(run_dir), "log": str(log),
            "metrics": str(run_dir / "train_metrics.csv"),
            "summary": str(run_dir / "train_summary.json")}
    from nanotron_train import claim_checkpoints

    claim_checkpoints(run_dir, spec["identity"], [str(folder)])  # the run is this run's
    if latest is not None:
        for step in range(5, latest + 1, 5):
            d = root / str(step)
            d.mkdir(parents=True)
            (d / "checkpoint_metadata.json").write_text(json.dumps(
                {"tp": 1, "metas": {"last_train_step": step}}))
            (d / "model_config.json").write_text("{}")
            (d / "config.yaml").write_text("")
        (root / "latest.txt").write_text(str(latest))
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    return spec, cfg


def run_job(tmp_path, monkeypatch):
    import nanotron_train

    def no_launch(*a, **k):
        raise AssertionError(f"nanotron was launched: {a}")

    monkeypatch.setattr(nanotron_train.subprocess, "call", no_launch)
    nanotron_train.main(["--spec", str(tmp_path / "spec.json")])


@pytest.fixture
def empty_hf_home(tmp_path, monkeypatch):
    home = tmp_path / "hf_home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub resolves the cache from the environment at import: a job is a fresh process,
    # this test is not
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    return home


# ---------------------------------------------------------------- each check


def test_nanotron_not_importable_names_the_fix(tmp_path):
    if importlib.util.find_spec("nanotron") is not None:
        pytest.skip("nanotron is installed here")
    msg = nanotron.nanotron_problem(fake_checkout(tmp_path))
    assert msg.startswith("nanotron is not importable")
    assert "make nanotron-env" in msg and nanotron.NANOTRON_COMMIT[:8] in msg



def test_nanotron_must_come_from_the_checkout(tmp_path, monkeypatch):
    d = fake_checkout(tmp_path)
    for name, path in (("nanotron", d / "src/nanotron/__init__.py"),
                       ("flash_attn", tmp_path / "site/flash_attn/__init__.py")):
        mod = types.ModuleType(name)
        mod.__file__ = str(path)
        monkeypatch.setitem(sys.modules, name, mod)
    assert nanotron.nanotron_problem(d) is None
    other = tmp_path / "other"
    other.mkdir()
    msg = nanotron.nanotron_problem(other)
    assert "not from the checkout" in msg and f"pip install --no-deps -e {other}" in msg

def test_installed_datatrove_has_the_wrong_signature():
    pytest.importorskip("datatrove.utils.dataset")
    from datatrove.utils.dataset import DatatroveFolderDataset

    if "folder_path" in inspect.signature(DatatroveFolderDataset.__init__).parameters:
        pytest.skip("the installed datatrove already takes folder_path")
    msg = nanotron.datatrove_problem()
    assert "takes no folder_path" in msg and "read_path" in msg
    assert f"datatrove@{nanotron.DATATROVE_COMMIT}" in msg


def test_datatrove_of_the_avoid_s3_branch_passes(monkeypatch):
    class DatatroveFolderDataset:  # the signature at datatrove 2c895af7 (nouamane/avoid-s3)
        def __init__(self, folder_path: str, seq_len: int, filename_pattern: str = "**/*.ds",
                     recursive: bool = True, token_size: int = 2, max_tokens: int | None = None,
                     shuffle: bool = False, seed: int = 42, return_positions: bool = False,
                     eos_token_id: int | None = None, read_path: str | None = None,
                     matched_files: list | None = None, file_sizes: dict | None = None):
            pass

    class Older(DatatroveFolderDataset):  # 01a900e0: no read_path / matched_files / file_sizes
        def __init__(self, folder_path: str, seq_len: int, filename_pattern: str = None,
                     recursive: bool = True, token_size: int = 2, max_tokens: int | None = None,
                     shuffle: bool = False, seed: int = 42, return_positions: bool = False,
                     eos_token_id: int | None = None):
            pass

    pytest.importorskip("datatrove.utils")
    fake = types.ModuleType("datatrove.utils.dataset")
    fake.DatatroveFolderDataset = DatatroveFolderDataset
    monkeypatch.setitem(sys.modules, "datatrove.utils.dataset", fake)
    assert nanotron.datatrove_problem() is None
    fake.DatatroveFolderDataset = Older
    assert "takes no read_path, matched_files, file_sizes" in nanotron.datatrove_problem()


def test_missing_tokenizer_says_prefetch(empty_hf_home):
    msg = nanotron.tokenizer_problem(HUB_NAME)
    assert f"tokenizer '{HUB_NAME}' does not load offline from {empty_hf_home / 'hub'}" in msg
    assert "snakemake prefetch" in msg


def test_cached_or_local_tokenizer_passes(tmp_path, empty_hf_home):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"<unk>": 0, "a": 1}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(tmp_path / "t")
    assert nanotron.tokenizer_problem(str(tmp_path / "t")) is None


def test_checkout_with_the_crashing_llama_init_is_refused(tmp_path):
    d = fake_checkout(tmp_path)
    assert nanotron.checkout_problem(d) is None
    (d / "src/nanotron/models").mkdir(parents=True)
    (d / "src/nanotron/scaling").mkdir(parents=True)
    (d / "src/nanotron/models/llama.py").write_text(
        "        parametrizator = parametrizator_cls(config=config.model)\n")
    (d / "src/nanotron/scaling/parametrization.py").write_text(
        "        self.std = config.model.init_method.std\n")
    assert "37cc8b0c" in nanotron.checkout_problem(d)
    (d / "src/nanotron/scaling/parametrization.py").write_text(
        "        self.std = config.init_method.std\n")  # d22eb809
    assert nanotron.checkout_problem(d) is None
    assert "no run_train.py" in nanotron.checkout_problem(tmp_path / "nowhere")


# ---------------------------------------------------------------- the job


def test_job_reports_every_problem_at_once_before_torchrun(tmp_path, monkeypatch, capsys,
                                                           empty_hf_home):
    spec, _ = job(tmp_path)
    if importlib.util.find_spec("nanotron") is not None:
        pytest.skip("nanotron is installed here")
    t0 = time.time()
    with pytest.raises(SystemExit):
        run_job(tmp_path, monkeypatch)
    assert time.time() - t0 < 60
    err = capsys.readouterr().err
    assert "nanotron would not start; nothing was launched" in err
    assert "nanotron is not importable" in err  # true here
    assert "does not load offline" in err and "snakemake prefetch" in err
    from datatrove.utils.dataset import DatatroveFolderDataset

    if "folder_path" not in inspect.signature(DatatroveFolderDataset.__init__).parameters:
        assert "DatatroveFolderDataset takes no folder_path" in err  # true here (0.10.1)
    assert err.count("error:") == 1  # one error, all the problems in it
    assert not (tmp_path / "nanotron/run_train.py.ran").exists()
    assert not (tmp_path / "results/logs/pretrain/ita.nanotron.log").exists()
    assert not (tmp_path / "results/pretrain/ita/train_summary.json").exists()


def test_finished_run_is_not_launched_but_summarised(tmp_path, monkeypatch, capsys):
    lines = [f"iteration: {s} / 10 | consumed_tokens: {s}K | time_per_iteration_ms: 100 | "
             f"lm_loss: {5 - s / 10}" for s in range(1, 11)]
    spec, _ = job(tmp_path, train_steps=10, latest=10, log_lines=lines)

    def must_not_check(*a, **k):
        raise AssertionError("a finished run needs no nanotron environment")

    monkeypatch.setattr(nanotron, "environment_problems", must_not_check)
    run_job(tmp_path, monkeypatch)
    out = capsys.readouterr().out
    assert "nanotron not launched" in out and "latest.txt is at step 10" in out
    assert not (tmp_path / "nanotron/run_train.py.ran").exists()
    summary = json.loads((tmp_path / "results/pretrain/ita/train_summary.json").read_text())
    assert summary["checkpoints"] == [5, 10] and summary["final_step"] == 10
    assert summary["last_logged"]["step"] == 10
    csv = (tmp_path / "results/pretrain/ita/train_metrics.csv").read_text().splitlines()
    assert len(csv) == 11


def test_unfinished_run_is_checked_then_launched(tmp_path, monkeypatch):
    spec, _ = job(tmp_path, train_steps=10, latest=5)
    seen = []
    monkeypatch.setattr(nanotron, "environment_problems", lambda s, c: seen.append(s) or [])
    import nanotron_train

    monkeypatch.setattr(nanotron_train, "launch_nanotron", lambda s: seen.append("launched"))
    nanotron_train.main(["--spec", str(tmp_path / "spec.json")])
    assert seen[-1] == "launched" and seen[0]["checkout"] == spec["checkout"]
    summary = json.loads((tmp_path / "results/pretrain/ita/train_summary.json").read_text())
    assert summary["checkpoints"] == [5] and summary["last_logged"] is None


# ---------------------------------------------------------------- the pin, everywhere


def test_the_pin_is_the_same_everywhere_and_make_only_prints():
    import shutil
    import subprocess

    from conftest import REPO

    for f in ("Makefile", "envs/nanotron.yaml"):
        text = (REPO / f).read_text()
        assert nanotron.NANOTRON_COMMIT in text, f
    assert nanotron.DATATROVE_PIP in (REPO / "envs/nanotron.yaml").read_text()
    readme = (REPO / "README.md").read_text()
    assert nanotron.NANOTRON_COMMIT[:8] in readme and nanotron.DATATROVE_COMMIT[:8] in readme
    if not shutil.which("make"):
        pytest.skip("no make")
    env = {k: v for k, v in __import__("os").environ.items() if k != "NANOTRON_DIR"}
    p = subprocess.run(["make", "-s", "-C", str(REPO), "nanotron-env"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "nothing is run" in p.stdout
    assert f"checkout --detach {nanotron.NANOTRON_COMMIT}" in p.stdout
    assert "pip install --no-deps -e" in p.stdout and "flash-attn==2.6.3" in p.stdout
