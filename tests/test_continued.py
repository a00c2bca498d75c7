"""Continued pretraining (pretrain.init_from): a run that starts from another run's checkpoint
with its own mix, a longer context and a new RoPE base; its dependency, identity and checks."""

from __future__ import annotations

import copy
import json
import math

import pytest
import yaml
from conftest import REPO, copy_workflow, load_config, scheduled, snakemake, spine, write_config
from zflow.plan import Plan
from zflow.schema import ConfigError

EMBEDDED = spine(yaml.safe_load((REPO / "config/config.yaml").read_text()))


def with_cpt(cfg: dict, **pretrain) -> dict:
    """``cfg`` with a language `itc` continuing `ita` from its step 40: a longer context, a
    new RoPE base, another mix."""
    cfg = copy.deepcopy(cfg)
    ita = cfg["languages"]["ita"]
    ita["pretrain"].pop("stages", None)
    ita["pretrain"].update(train_steps=40, checkpoint_interval=20, lr_warmup_steps=5,
                           lr_decay_starting_step=20, lr_decay_steps=20)
    ita["eval"].update(tasks=["arc_it"], checkpoints=[40])
    itc = copy.deepcopy(ita)
    itc["model"].update(rope_theta=100000.0, max_position_embeddings=2048)
    itc["pretrain"].update(init_from="ita-step40", sequence_length=256, micro_batch_size=8,
                           train_steps=10, checkpoint_interval=10, learning_rate=3e-4,
                           lr_warmup_steps=2, lr_decay_starting_step=5, lr_decay_steps=5)
    itc["pretrain"].update(pretrain)
    itc["data"] = {"finepdfs_ita": 0.7, "fineweb2_ita": 0.3}
    itc["eval"].update(checkpoints=[10])
    cfg["languages"]["itc"] = itc
    return cfg


def test_plan_identity_and_dependency():
    plan = Plan(with_cpt(EMBEDDED), check_files=False)
    spec = plan.spec("pretrain", lang="itc")
    assert spec["init"]["model"] == "ita-step40"
    assert spec["init"]["path"] == "results/pretrain/ita/checkpoints/step-40"
    assert spec["init"]["identity"] == plan.model_identity("ita-step40")
    dep = plan.init_dependency("itc")
    assert (dep.wait_for, dep.lang, dep.path) == (
        "pretrain", "ita", "results/pretrain/ita/checkpoints/step-40/zflow_checkpoint.json")
    assert plan.init_dependency("ita").path is None
    from zflow import cost

    c = cost.pretrain_cost(plan, "itc")
    assert c.tokens == 10 * 8 * 256 and ", continuing ita-step40;" in c.note
    # a changed parent is a changed run; a run from scratch keeps the identity it had
    cfg = with_cpt(EMBEDDED)
    cfg["languages"]["ita"]["pretrain"]["learning_rate"] = 0.002
    other = Plan(cfg, check_files=False)
    assert other.pretrain_identity("itc") != plan.pretrain_identity("itc")
    cfg = with_cpt(EMBEDDED)
    del cfg["languages"]["itc"]["pretrain"]["init_from"]
    scratch = Plan(cfg, check_files=False)
    assert scratch.spec("pretrain", lang="itc")["init"] is None
    assert scratch.pretrain_identity("itc") != plan.pretrain_identity("itc")
    assert scratch.pretrain_identity("ita") == plan.pretrain_identity("ita")


def _bad(edit):
    cfg = with_cpt(EMBEDDED)
    edit(cfg)
    return cfg


def _tokenizer_copy(c):
    c["tokenizers"]["other"] = c["tokenizers"]["bpe_ita_eng_4k"]
    c["languages"]["itc"]["tokenizer"] = "other"


def _nanotron(c):
    c["languages"]["itc"]["pretrain"].update(backend="nanotron", nanotron={
        "checkout": "nanotron", "nodes": 1, "gpus_per_node": 1, "dp": 1})


def _loop(c):
    c["languages"]["ita"]["pretrain"]["init_from"] = "itc-step10"


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["languages"]["itc"]["pretrain"].update(init_from="ita-step30"),
     "languages.itc.pretrain.init_from: step 30 of 'ita' is never saved, nor a posttrain key "
     "or a baseline"),
    (lambda c: c["languages"]["itc"]["pretrain"].update(init_from="itc-step10"),
     "languages.itc.pretrain.init_from: continued pretraining loops back to language 'itc' "
     "(itc -> itc)"),
    (_loop, "languages.ita.pretrain.init_from: continued pretraining loops back to language "
            "'ita' (ita -> itc -> ita)"),
    (lambda c: c["languages"]["itc"]["model"].update(hidden_size=256),
     "languages.itc.pretrain.init_from: 'ita-step40' has model.hidden_size = 128 but this run's "
     "is 256 (only rope_theta, max_position_embeddings may change)"),
    (_tokenizer_copy, "languages.itc.pretrain.init_from: 'ita-step40' was trained with "
                      "tokenizer 'bpe_ita_eng_4k', this run reads data tokenized with 'other'"),
    (_nanotron, "languages.itc.pretrain.init_from: continued pretraining runs on backend hf "
                "only (backend 'nanotron' cannot load HF weights)"),
])
def test_config_errors(edit, message):
    with pytest.raises(ConfigError) as e:
        Plan(_bad(edit), check_files=False)
    assert message in str(e.value)


def test_local_baseline_of_another_architecture(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text(json.dumps(
        {"hidden_size": 128, "num_hidden_layers": 6, "vocab_size": 4096}))
    cfg = with_cpt(EMBEDDED, init_from="local_base")
    cfg["baselines"] = {"local_base": {"model": "base"}}
    with pytest.raises(ConfigError) as e:
        Plan(cfg, base=tmp_path, check_files=True)
    assert (f"languages.itc.pretrain.init_from: 'local_base' ({tmp_path}/base/config.json) has "
            "num_hidden_layers = 6 but this run's model.num_hidden_layers is 4") in str(e.value)


def losses(path) -> list[float]:
    return [float(r.split(",")[2]) for r in path.read_text().splitlines()[1:]]


def test_continued_pretraining_end_to_end(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    cfg = with_cpt(spine(load_config(wd)))
    write_config(wd, cfg)
    target = "results/pretrain/itc/train_summary.json"
    jobs = scheduled(wd, target)
    assert {j for j in jobs if j[0] == "pretrain"} == {("pretrain", "lang=ita"),
                                                       ("pretrain", "lang=itc")}
    assert not [j for j in jobs if j[0] == "evaluate"]
    snakemake(wd, target)

    ita, itc = wd / "results/pretrain/ita", wd / "results/pretrain/itc"
    log = (wd / "results/logs/pretrain/itc.log").read_text()
    assert ("continued pretraining from ita-step40 (results/pretrain/ita/checkpoints/step-40): "
            "rope_theta 10000.0 -> 100000.0, max_position_embeddings 1024 -> 2048") in log
    hf = json.loads((itc / "checkpoints/step-10/config.json").read_text())
    assert hf["rope_parameters"]["rope_theta"] == 100000.0
    assert hf["max_position_embeddings"] == 2048
    marker = json.loads((itc / "checkpoints/step-10/zflow_checkpoint.json").read_text())
    assert marker["init_from"]["model"] == "ita-step40"
    parent = json.loads((ita / "checkpoints/step-40/zflow_checkpoint.json").read_text())
    assert marker["init_from"]["identity"] == f"{parent['identity']}:step-40"
    # it starts where ita ended, not from a random initialisation (ln 4096 = 8.3)
    ita_loss, itc_loss = losses(ita / "train_metrics.csv"), losses(itc / "train_metrics.csv")
    assert ita_loss[0] > math.log(4096) - 0.5
    assert itc_loss[0] < ita_loss[0] - 1.5, (ita_loss, itc_loss)
    assert abs(itc_loss[0] - ita_loss[-1]) < 1.0, (ita_loss[-1], itc_loss[0])
    summary = json.loads((itc / "train_summary.json").read_text())
    assert summary["sequence_length"] == 256 and summary["init_from"]["model"] == "ita-step40"
    windows = {s["source"]: s["windows_consumed"] for s in summary["sources"]}
    assert windows["finepdfs_ita"] + windows["fineweb2_ita"] == 10 * 8
    assert abs(windows["finepdfs_ita"] - 0.7 * 80) <= 1

    # exactly the parent's weights under the new config (the script's own loader)
    import pretrain
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    spec = Plan(cfg, base=wd).spec("pretrain", lang="itc")
    spec["init"]["path"] = str(wd / spec["init"]["path"])
    tok = AutoTokenizer.from_pretrained(wd / "results/tokenizers/bpe_ita_eng_4k")
    model = pretrain.build_model(spec, tok)
    parent = load_file(str(ita / "checkpoints/step-40/model.safetensors"))
    state = model.state_dict()
    assert all((state[k] == v).all() for k, v in parent.items()), "weights differ"
    assert model.config.rope_parameters["rope_theta"] == 100000.0

    # a release of the continued run: its lineage, data and tokens cover both runs
    released = copy.deepcopy(cfg)
    released["release"] = {"itc-step10": {
        "repo_id": "x/itc-tiny", "license": "apache-2.0", "language": ["it"],
        "data": {s: {"language": "it"} for s in ("finepdfs_ita", "fineweb2_ita")}}}
    write_config(wd, released)
    snakemake(wd, "release_itc-step10")
    folder = wd / "results/release/itc-step10"
    card = (folder / "README.md").read_text()
    assert ("`ita-step40` (pretraining checkpoint) → `itc-step10` (continued pretraining of "
            "ita-step40)") in card
    assert "### Pretraining hyper-parameters (ita-step40)" in card
    s = json.loads((folder / "training_content_summary.json").read_text())
    runs = {(d["run"], d["stage"]) for d in s["data_sources"]["datasets"]}
    assert runs == {("itc-step10", "continued pretraining"), ("ita-step40", "pretraining")}
    ita_mix = [d["name"] for d in s["data_sources"]["datasets"] if d["run"] == "ita-step40"]
    assert ita_mix == list(cfg["languages"]["ita"]["data"])
    consumed = {lang: int((wd / f"results/pretrain/{lang}/train_metrics.csv").read_text()
                          .splitlines()[-1].split(",")[1]) for lang in ("ita", "itc")}
    assert s["general_information"]["training_tokens_seen"] == consumed["ita"] + consumed["itc"]
    assert "release.itc-step10.data.fineweb_eng.language" in s["missing"]  # ita's source
    again = yaml.safe_load((folder / "zflow_config.yaml").read_text())
    assert sorted(again["languages"]) == ["ita", "itc"]
    assert again["languages"]["ita"]["eval"]["checkpoints"] == [40]
    assert Plan(again, check_files=False).pretraining_chain("itc-step10") == ["itc-step10",
                                                                              "ita-step40"]
    write_config(wd, cfg)

    # a change of the parent re-makes both runs; a change of the continued run only itself
    assert scheduled(wd, target) == set()
    changed = copy.deepcopy(cfg)
    changed["languages"]["itc"]["pretrain"]["learning_rate"] = 2e-4
    write_config(wd, changed)
    assert {j for j in scheduled(wd, target) if j[0] == "pretrain"} == {("pretrain", "lang=itc")}
    changed = copy.deepcopy(cfg)
    changed["languages"]["ita"]["pretrain"]["learning_rate"] = 0.002
    write_config(wd, changed)
    assert {j for j in scheduled(wd, target) if j[0] == "pretrain"} == {
        ("pretrain", "lang=ita"), ("pretrain", "lang=itc")}


def test_release_of_a_continued_post_trained_model_is_refused():
    cfg = with_cpt(EMBEDDED, init_from="sft")
    cfg["posttrain"] = {"sft": {"method": "sft", "base": "ita-step40", "data": ["chat_it"],
                                "chat_template": "resources/chat_templates/chatml.jinja",
                                "train": {"learning_rate": 1e-4}}}
    cfg["release"] = {"itc-step10": {"repo_id": "x/itc"}}
    with pytest.raises(ConfigError) as e:
        Plan(cfg, check_files=False)
    assert ("release.itc-step10: it descends from a continued pretraining of a post-trained model "
            "(languages.itc.pretrain.init_from: sft)") in str(e.value)
