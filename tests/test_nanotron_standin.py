"""The nanotron stand-in (tools/smoke/nanotron): the pretrain_nanotron job launches it exactly as
it launches nanotron (torchrun, run_train.py --config-file <make_config's YAML>), and what it
leaves is what the workflow reads from nanotron: log lines, checkpoints, latest.txt, a resume."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import inspect
import io
import json
import os
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO
from zflow import nanotron, schema

STANDIN = REPO / "tools/smoke/nanotron"
PROD = yaml.safe_load((REPO / "config/zagreus.yaml").read_text())
WORDS = ("the cat sat on a mat and the dog ran to the red ball while a bird sang in the old tree "
         "near the small house by the river").split()
# the YAML's schedule: linear warm-up over 2 steps to 1e-2, linear decay to 1e-3 over steps 2-12;
# nanotron logs at step N the rate after N scheduler steps
LR_AT = {1: 5e-3, 2: 1e-2, 7: 5.5e-3, 11: 1.9e-3, 12: 1e-3}


def documents(seed: int, n: int) -> list[str]:
    import random

    rng = random.Random(seed)
    return [" ".join(WORDS[(i + rng.randrange(4)) % len(WORDS)]
                     for i in range(rng.randrange(20, 60))) for _ in range(n)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tokenizer, and datatrove-tokenized sources shaped like results/tokenized/<tok>/<source>:
    'web' in two shard groups, 'books' in one."""
    from datatrove.data import Document
    from datatrove.pipeline.tokens import DocumentTokenizer
    from loguru import logger
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("data")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(documents(0, 50), trainers.BpeTrainer(
        vocab_size=64, special_tokens=["<unk>", "<eos>"], show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")
    fast.save_pretrained(root / "tokenizer")
    folders = {}
    logger.disable("datatrove")  # its handler may hold a stream an earlier test's capture closed
    groups = [("web", "g00000"), ("web", "g00001"), ("books", "g00000")]
    for seed, (source, group) in enumerate(groups):
        out = root / "tokenized" / source / group
        DocumentTokenizer(str(out), str(root / "tokenizer/tokenizer.json"), save_filename=source,
                          eos_token="<eos>", shuffle_documents=False).run(
            (Document(text=t, id=str(i)) for i, t in enumerate(documents(seed + 1, 80))))
        folders[source] = str(out.parent)
    logger.enable("datatrove")
    return {"tokenizer": str(root / "tokenizer"), "vocab": len(fast), "folders": folders}


def tiny(data: dict, **pretrain) -> dict:
    """make_config's model, pretrain and nano for a tiny model on ``data``'s tokenizer."""
    return {
        "model": schema.defaults("languages/*/model") | {
            "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": data["vocab"],
            "max_position_embeddings": 64},
        "pretrain": schema.defaults("languages/*/pretrain") | {
            "learning_rate": 1e-2, "lr_warmup_steps": 2, "min_decay_lr": 1e-3,
            "sequence_length": 32, "micro_batch_size": 2, "batch_accumulation_per_replica": 2,
            **pretrain},
        "nano": {**schema.defaults("languages/*/pretrain/nanotron"), "dp": 1}}


def write_job(tmp: Path, data: dict, train_steps: int = 12):
    """The pretrain_nanotron spec (zflow.plan's, paths under tmp, the stand-in as checkout) and
    the YAML make_config writes for a tiny model."""
    from zflow.plan import Plan

    spec = Plan(PROD, check_files=False).spec("pretrain_nanotron", lang="ita")
    spec = {k: str(tmp / v) if k in ("config", "run_dir", "log", "metrics", "summary") else v
            for k, v in spec.items()}
    spec.update(checkout=str(STANDIN), python=sys.executable, nodes=1, gpus_per_node=1)
    cfg = nanotron.make_config(
        **tiny(data, train_steps=train_steps, checkpoint_interval=4), tokenizer=data["tokenizer"], folders=[data["folders"]["web"], data["folders"]["books"]],
        weights=[3.0, 1.0], checkpoints_path=str(Path(spec["run_dir"]) / "nanotron_checkpoints"),
        run="standin", project="zflow")
    Path(spec["config"]).parent.mkdir(parents=True, exist_ok=True)
    Path(spec["config"]).write_text(yaml.safe_dump(cfg))
    (tmp / "spec.json").write_text(json.dumps(spec))
    return spec, cfg


def installed_datatrove_is_pypi() -> bool:
    from datatrove.utils.dataset import DatatroveFolderDataset

    return "folder_path" not in inspect.signature(DatatroveFolderDataset.__init__).parameters


def run_job(tmp: Path, env: dict | None = None) -> str:
    """nanotron_train.main on tmp's spec, as Snakemake runs it; its stdout (the job's own lines)."""
    import nanotron_train

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        for k, v in (env or {}).items():
            mp.setenv(k, v)
        try:
            nanotron_train.main(["--spec", str(tmp / "spec.json")])
        finally:
            sys.stderr.write(out.getvalue())
    return out.getvalue()


def metrics(spec) -> dict[int, dict]:
    with open(spec["metrics"]) as f:
        return {int(r["step"]): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def full_run(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full")
    spec, cfg = write_job(tmp, data)
    return spec, cfg, run_job(tmp)


# ---------------------------------------------------------------- pre-flight


def test_environment_checks_skip_only_the_nanotron_imports(tmp_path, capsys):
    cfg = {"tokenizer": {"tokenizer_name_or_path": str(tmp_path / "no-tokenizer")}}
    here = {"lang": "ita", "python": sys.executable}  # the stand-in environment: this python
    problems = nanotron.environment_problems({**here, "checkout": str(STANDIN)}, cfg)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "zflow's nanotron stand-in" in out
    assert "nanotron, flash-attn and datatrove-signature checks are skipped" in out
    assert not any("nanotron is not importable" in p or "flash-attn" in p for p in problems)
    assert any("does not load offline" in p for p in problems)  # still checked
    # the datatrove that nanotron's loader calls is nanotron's business; the stand-in reads the
    # folders with the installed one
    assert not any("DatatroveFolderDataset" in p for p in problems)
    marker_only = tmp_path / "checkout"
    marker_only.mkdir()
    (marker_only / nanotron.STANDIN_MARKER).write_text("stand-in")
    assert any("no run_train.py" in p for p in nanotron.environment_problems(
        {**here, "checkout": str(marker_only)}, cfg))
    capsys.readouterr()
    if importlib.util.find_spec("nanotron") is None:  # a real checkout still needs nanotron
        problems = nanotron.environment_problems({**here, "checkout": str(tmp_path)}, cfg)
        assert any("nanotron is not importable" in p for p in problems)
        assert any("DatatroveFolderDataset takes no folder_path" in p for p in problems) == \
            installed_datatrove_is_pypi()
        assert "stand-in" not in capsys.readouterr().out


# ---------------------------------------------------------------- one run of 12 steps


def test_job_launches_the_standin_and_logs_every_step(full_run):
    spec, cfg, out = full_run
    assert "is zflow's nanotron stand-in" in out and "checks are skipped" in out
    assert f"{sys.executable} -m torch.distributed.run --standalone --nproc_per_node=1" in out
    assert "run_train.py --config-file" in out
    log = Path(spec["log"]).read_text()
    first = nanotron._ANSI.sub("", log.splitlines()[0])
    assert "STAND-IN" in first and "does NOT run nanotron" in first
    rows = nanotron.parse_log(log.splitlines())
    assert [r["step"] for r in rows] == list(range(1, 13))
    r = rows[-1]
    assert r["train_steps"] == 12 and r["global_batch_size"] == 4 * 32
    assert r["consumed_tokens"] == pytest.approx(12 * 4 * 32, rel=5e-3)  # "1.54K"
    assert {"time_per_iteration_ms", "tokens_per_sec", "grad_norm",
            "model_tflops_per_gpu"} <= set(r)


def test_metrics_csv_has_the_loss_going_down_and_the_yaml_schedule(full_run):
    spec, cfg, _ = full_run
    m = metrics(spec)
    assert sorted(m) == list(range(1, 13))
    loss = [float(m[s]["loss"]) for s in range(1, 13)]
    assert sum(loss[-3:]) / 3 < loss[0] - 0.5, loss
    for step, lr in LR_AT.items():
        assert float(m[step]["lr"]) == pytest.approx(lr, rel=5e-3), step
    summary = json.loads(Path(spec["summary"]).read_text())
    assert summary["checkpoints"] == [4, 8, 12] and summary["last_logged"]["step"] == 12


def test_checkpoints_are_complete_and_sample_the_folders_by_weight(full_run):
    spec, cfg, _ = full_run
    root = Path(cfg["checkpoints"]["checkpoints_path"])
    assert nanotron.complete_steps(root) == [4, 8, 12]
    assert (root / "latest.txt").read_text() == "12"
    assert sorted(p.name for p in root.iterdir()) == ["12", "4", "8", "latest.txt"]
    assert yaml.safe_load((root / "12/config.yaml").read_text()) == cfg
    meta = json.loads((root / "12/checkpoint_metadata.json").read_text())["metas"]
    assert meta["last_train_step"] == 12 and meta["consumed_train_samples"] == 48
    ds = cfg["data_stages"][0]["data"]["dataset"]
    assert len(ds["dataset_folder"]) == 3  # web's two shard groups, books
    consumed = meta["data_stages"][0]["consumed_tokens_per_dataset_folder"]
    for folder, w in zip(ds["dataset_folder"], ds["dataset_weights"]):
        assert abs(consumed[folder] / 32 - w * 48) <= 1, (folder, w, consumed)


def test_converted_step_has_the_standins_logits(full_run, data, tmp_path, monkeypatch):
    from convert_nanotron import main
    from transformers import AutoModelForCausalLM
    from zflow.plan import Plan

    spec, cfg, _ = full_run
    step_dir = Path(cfg["checkpoints"]["checkpoints_path"]) / "12"
    conv = Plan(PROD, check_files=False).spec("convert_checkpoint", lang="ita", step=12)
    monkeypatch.chdir(tmp_path)  # outputs only under the workflow's results/ (zflow.io.owned)
    conv.update(checkpoint=str(step_dir), output=str(tmp_path / "results/converted/hf"),
                tokenizer=data["tokenizer"], vocab_size=data["vocab"])
    (tmp_path / "convert.json").write_text(json.dumps(conv))
    main(["--spec", str(tmp_path / "convert.json")])
    hf = tmp_path / "results/converted/hf"
    assert json.loads((hf / "config.json").read_text())["dtype"] == "bfloat16"
    model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32).eval()  # exact upcast
    probe = torch.load(step_dir / "standin_probe.pt")  # the stand-in's model at step 12
    with torch.no_grad():
        logits = model(probe["input_ids"]).logits
    assert torch.allclose(logits, probe["logits"], atol=1e-5), \
        (logits - probe["logits"]).abs().max()
    older = torch.load(step_dir.parent / "8/standin_probe.pt")["logits"]
    assert (older - probe["logits"]).abs().max() > 0.05  # a stale step would show


# ---------------------------------------------------------------- an interrupted run


def test_interrupted_run_resumes_from_latest_at_step_5(full_run, data, tmp_path, capsys):
    spec, cfg = write_job(tmp_path, data)
    with pytest.raises(SystemExit):
        run_job(tmp_path, {"ZFLOW_STANDIN_FAIL_AFTER": "6"})  # dies past the step-4 checkpoint
    assert "nanotron exited with 1" in capsys.readouterr().err
    root = Path(cfg["checkpoints"]["checkpoints_path"])
    assert nanotron.complete_steps(root) == [4] and nanotron.finished_step(root) == 4
    log = Path(spec["log"])
    before = len(log.read_text().splitlines())
    run_job(tmp_path)
    again = [nanotron._ANSI.sub("", x) for x in log.read_text().splitlines()[before:]]
    assert any(f"resuming from {root / '4'}: step 5 of 12" in x for x in again)
    assert [r["step"] for r in nanotron.parse_log(again)] == list(range(5, 13))
    assert nanotron.complete_steps(root) == [4, 8, 12]
    m, full = metrics(spec), metrics(full_run[0])
    assert sorted(m) == list(range(1, 13))
    for s in range(1, 13):  # the same schedule, the same data, the same training within bf16
        assert m[s]["lr"] == full[s]["lr"]
        assert float(m[s]["loss"]) == pytest.approx(float(full[s]["loss"]), abs=0.03), s
    assert nanotron.finished_step(root) == 12
