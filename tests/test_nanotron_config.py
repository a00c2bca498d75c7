"""The generated nanotron YAML against the seed's, and the pre-flight checks."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml
from conftest import REPO
from zflow import nanotron
from zflow.plan import Plan

SEED = yaml.safe_load((REPO / "tests/data/seed_nanotron_ita.yaml").read_text())
PROD = yaml.safe_load((REPO / "config/zagreus.yaml").read_text())
PATHS = {("checkpoints", "checkpoints_path"), ("checkpoints", "resume_checkpoint_path"),
         ("general", "run")}


def flat(d, prefix=()):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flat(v, prefix + (k,)))
        else:
            out[prefix + (k,)] = v
    return out


def prod_spec(lang="ita"):
    return Plan(PROD, check_files=False).spec("nanotron_config", lang=lang)


def generated(lang="ita"):
    from nanotron_config import build

    return build(prod_spec(lang))


def test_italian_config_equals_the_seed_field_for_field():
    gen = generated()
    g_stage, s_stage = gen.pop("data_stages"), copy.deepcopy(SEED).pop("data_stages")
    seed = {k: v for k, v in SEED.items() if k != "data_stages"}
    fg, fs = flat(gen), flat(seed)
    assert set(fg) == set(fs), set(fg) ^ set(fs)
    diff = {k: (fg[k], fs[k]) for k in fs if fg[k] != fs[k] and k not in PATHS}
    assert not diff, diff
    assert gen["checkpoints"]["resume_checkpoint_path"] == gen["checkpoints"]["checkpoints_path"]
    # one data stage, the seed's ten folders in order, explicit weights summing to 1 (the
    # seed has none: uniform; test_equal_weights_reproduce_the_seeds_uniform_mixture)
    assert len(g_stage) == 1 and len(s_stage) == 1
    g, s = g_stage[0], s_stage[0]
    assert (g["name"], g["start_training_step"]) == (s["name"], s["start_training_step"])
    assert {k: v for k, v in g["data"].items() if k != "dataset"} == \
        {k: v for k, v in s["data"].items() if k != "dataset"}
    folders = g["data"]["dataset"]["dataset_folder"]
    assert len(folders) == len(s["data"]["dataset"]["dataset_folder"]) == 10
    assert folders[0].endswith("fineweb2_ita") and folders[-1].endswith("starcoder")
    assert sum(g["data"]["dataset"]["dataset_weights"]) == pytest.approx(1.0)
    assert nanotron.unknown_keys(gen | {"data_stages": g_stage}) == []


def write_folder(path, tokens, name="meta-llama/Llama-3.2-1B", size=4):
    path.mkdir(parents=True)
    np.zeros(tokens, dtype=np.uint32 if size == 4 else np.uint16).tofile(path / "000_00000.ds")
    (path / "000_00000.ds.metadata").write_text(f"{name}|{size}\n{tokens}\n{tokens}\n")


def small_spec(tmp_path, tokens=10_000, name="meta-llama/Llama-3.2-1B"):
    spec = prod_spec()
    spec["pretrain"] = {**spec["pretrain"], "train_steps": 10, "sequence_length": 16,
                        "micro_batch_size": 1,
                        "nanotron": {**spec["pretrain"]["nanotron"], "nodes": 1, "gpus_per_node": 2,
                                     "dp": 2}}
    spec["data"] = []
    for i in range(2):
        write_folder(tmp_path / f"f{i}", tokens, name)
        spec["data"].append({"folder": str(tmp_path / f"f{i}"), "weight": 0.5})
    return spec


def run_main(spec, tmp_path, vocab=None):
    from nanotron_config import main

    out = tmp_path / "nanotron.yaml"
    spec = {**spec, "checkpoints_path": str(tmp_path / "ck"), "output": str(out),
            "tokenizer_vocab": vocab}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    main(["--spec", str(tmp_path / "spec.json")])
    return out


def test_preflight_passes_with_enough_data(tmp_path):
    out = run_main(small_spec(tmp_path), tmp_path, vocab=128256)
    cfg = yaml.safe_load(out.read_text())
    assert cfg["parallelism"]["dp"] == 2


def test_preflight_too_little_data(tmp_path, capsys):
    spec = small_spec(tmp_path, tokens=100)  # 5 samples of 17 tokens; needs 0.5*10*2 = 10
    with pytest.raises(SystemExit):
        run_main(spec, tmp_path)
    err = capsys.readouterr().err
    assert "f0: 5 samples" in err and "needs 10" in err
    assert not (tmp_path / "nanotron.yaml").exists()


def test_preflight_tokenizer_name_mismatch(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_main(small_spec(tmp_path, name="/local/tokenizer.json"), tmp_path)
    assert "tokenized with '/local/tokenizer.json'" in capsys.readouterr().err


def test_preflight_parallelism_and_world_size(tmp_path, capsys):
    spec = small_spec(tmp_path)
    spec["pretrain"]["nanotron"]["dp"] = 4
    with pytest.raises(SystemExit):
        run_main(spec, tmp_path)
    assert "dp*tp*pp = 4 but the job has 2 GPUs" in capsys.readouterr().err


def test_preflight_vocab_and_unknown_key(tmp_path):
    cfg = generated()
    cfg["model"]["model_config"]["rope_thetta"] = 1.0
    errors = nanotron.preflight(cfg, 64, tokenizer_vocab=128000, check_folders=False)
    assert "unknown nanotron key 'model.model_config.rope_thetta'" in errors
    assert any("vocab_size=128256 but the tokenizer has 128000" in e for e in errors)


def test_dataset_weights_always_written_and_normalised():
    for lang in ("ita", "spa", "por", "fra"):
        spec = prod_spec(lang)
        ds = generated(lang)["data_stages"][0]["data"]["dataset"]
        total = sum(d["weight"] for d in spec["data"])
        assert ds["dataset_weights"] == pytest.approx([d["weight"] / total for d in spec["data"]])
        assert sum(ds["dataset_weights"]) == pytest.approx(1.0)


def test_equal_weights_reproduce_the_seeds_uniform_mixture():
    # the seed sets no dataset_weights: nanotron (d22eb809, get_tb_datasets) then samples its
    # ten folders uniformly; equal weights in languages.ita.data write that mixture explicitly
    from nanotron_config import build

    spec = prod_spec()
    spec["data"] = [{**d, "weight": 2.5} for d in spec["data"]]
    ds = build(spec)["data_stages"][0]["data"]["dataset"]
    assert "dataset_weights" not in SEED["data_stages"][0]["data"]["dataset"]
    assert ds["dataset_weights"] == pytest.approx([0.1] * 10)
    seed_folders = SEED["data_stages"][0]["data"]["dataset"]["dataset_folder"]
    assert len(ds["dataset_folder"]) == len(seed_folders)


def test_final_state_saved_only_when_the_last_step_is_no_checkpoint_step():
    assert SEED["checkpoints"]["save_final_state"] is False
    assert generated("ita")["checkpoints"]["save_final_state"] is False  # 2,000,000 / 5,000
    por = prod_spec("por")["pretrain"]
    assert por["train_steps"] % por["checkpoint_interval"]  # 2,000,000 / 3,000
    assert generated("por")["checkpoints"]["save_final_state"] is True
    for lang in ("spa", "fra"):
        assert generated(lang)["checkpoints"]["save_final_state"] is False


def test_key_list_mirrors_the_pinned_nanotron():
    cfg = generated()
    cfg["model"]["model_config"]["attention_bias"] = False
    cfg["model"]["model_config"]["z_loss_enabled"] = False
    cfg["optimizer"]["weight_decay_exclude_named_params"] = []
    cfg["parallelism"]["context_parallel_size"] = 1
    cfg["metrics_logging"] = {"log_level": 0, "log_detail_interval": 10}
    cfg["data_stages"][0]["data"]["dataset"]["shuffle_files"] = False
    assert nanotron.unknown_keys(cfg) == []
    cfg["model"]["model_config"]["attention_bais"] = False
    cfg["model"]["init_method"]["sdt"] = 0.02
    cfg["data_stages"][0]["sequence_length"] = 4096  # nanotron main has it, d22eb809 not
    assert nanotron.unknown_keys(cfg) == ["model.init_method.sdt",
                                          "model.model_config.attention_bais",
                                          "data_stages[0].sequence_length"]


def test_a_local_tokenizer_folder_and_its_tokenizer_json_are_the_same_tokenizer(tmp_path,
                                                                               monkeypatch):
    # tokenize jobs hand datatrove <folder>/tokenizer.json (absolute); the nanotron YAML names
    # the folder as the config does (relative to the working directory): found by the smoke run
    from zflow.nanotron import same_tokenizer

    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "tokenizer.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert same_tokenizer(str(tok / "tokenizer.json"), "tok")
    assert same_tokenizer("meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-1B")
    assert not same_tokenizer(str(tok / "tokenizer.json"), "meta-llama/Llama-3.2-1B")
    other = tmp_path / "other"
    other.mkdir()
    (other / "tokenizer.json").write_text("{}")
    assert not same_tokenizer(str(tok / "tokenizer.json"), "other")
