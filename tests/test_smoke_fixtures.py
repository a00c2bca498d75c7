"""zflow.smoke.fixtures and zflow.smoke.tasks: the smoke run's same-shape stand-ins.

Data sets: for every hub data set config/zagreus.yaml downloads, the written files have the columns
and types of ``fixtures.SHAPES``, sit at paths its ``allow_patterns`` select, hold non-empty text
and are deterministic; the chat sets load through the workflow's own reader (zflow.chat.load).
Tasks: lm-eval's TaskManager finds every production name, and a real simple_evaluate on a tiny
random Llama (built here, offline, on the CPU) runs the evalita-mp group and ifeval-ita.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from zflow import chat, evals
from zflow.smoke import fixtures, tasks

REPO = Path(__file__).resolve().parents[1]
PROD = yaml.safe_load((REPO / "config" / "zagreus.yaml").read_text())
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}

# every hub entry of the production config, plus other layouts of the same data sets
CASES = [(f"sources.{k}", s["hub"]["repo_id"], s["hub"]["allow_patterns"])
         for k, s in PROD["sources"].items() if s.get("hub")]
CASES += [(f"chat_data.{k}", c["hub"]["repo_id"], c["hub"]["allow_patterns"])
          for k, c in PROD["chat_data"].items() if c.get("hub")]
CASES += [
    ("fineweb-2 test split", "HuggingFaceFW/fineweb-2", ["data/ita_Latn/test/*.parquet"]),
    ("fineweb-2 English", "HuggingFaceFW/fineweb-2", ["data/eng_Latn/train/*.parquet"]),
    ("fineweb-edu dump", "HuggingFaceFW/fineweb-edu", ["data/CC-MAIN-2024-10/*.parquet"]),
    ("starcoder folder", "bigcode/starcoderdata", ["java/*.parquet"]),
]


def _write(repo_id: str, patterns: list[str], dest: Path, seed: int = 0) -> list[Path]:
    write = fixtures.write_chat if fixtures.SHAPES[repo_id].kind == "chat" else \
        fixtures.write_source
    return write(repo_id, patterns, dest, rows=24, seed=seed)


def test_every_production_data_set_has_a_fixture():
    repos = {r for _, r, _ in CASES}
    assert repos <= set(fixtures.SHAPES)
    assert set(fixtures.SHAPES) <= repos  # every fixture is exercised below
    for shape in fixtures.SHAPES.values():
        assert shape.schema_from and shape.layout and shape.kind in ("source", "chat")


@pytest.mark.parametrize("label,repo_id,patterns", CASES, ids=[c[0] for c in CASES])
def test_fixture_schema_layout_and_text(tmp_path, label, repo_id, patterns):
    shape = fixtures.SHAPES[repo_id]
    files = _write(repo_id, patterns, tmp_path)
    assert files
    for f in files:
        rel = f.relative_to(tmp_path).as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), (rel, patterns)
        assert f.stat().st_size < 1_000_000
        if shape.fmt == "json":
            rows = json.loads(f.read_text(encoding="utf-8"))
            assert isinstance(rows, list) and len(rows) == 24
            for row in rows:
                assert list(row) == [c for c, _ in shape.columns]
                assert all(isinstance(v, str) for v in row.values())
            texts = [r[shape.text] for r in rows]
        else:
            schema = pq.read_schema(f)
            assert [(n, schema.field(n).type) for n in schema.names] == list(shape.columns)
            table = pq.read_table(f)
            assert table.num_rows == 24
            texts = table.column(shape.text).to_pylist()
        for t in texts:
            if isinstance(t, list):  # a conversation: every turn has text
                assert t and all(m["role"] and m["content"].strip() for m in t)
            else:
                assert isinstance(t, str) and t.strip()


def test_fixture_values(tmp_path):
    """Types that the schema cannot say: top_langs is JSON, page_ends end the text, int_score
    rounds score, fineweb-edu has no date."""
    f, = fixtures.write_source("HuggingFaceFW/fineweb-2", ["data/por_Latn/train/*.parquet"],
                               tmp_path / "fw2", rows=8)
    for row in pq.read_table(f).to_pylist():
        assert "por_Latn_score" in json.loads(row["top_langs"])
        assert (row["language"], row["language_script"]) == ("por", "Latn")
    f, = fixtures.write_source("HuggingFaceFW/finepdfs", ["data/ita_Latn/train/*.parquet"],
                               tmp_path / "pdf", rows=8)
    for row in pq.read_table(f).to_pylist():
        assert row["page_ends"][-1] == len(row["text"])
        assert row["page_ends"] == sorted(row["page_ends"])
        assert len(row["per_page_languages"]) == len(row["page_ends"])
    f, = fixtures.write_source("HuggingFaceFW/fineweb-edu", ["sample/350BT/011_*.parquet"],
                               tmp_path / "edu", rows=8)
    assert f.relative_to(tmp_path / "edu").as_posix() == "sample/350BT/011_00000.parquet"
    assert "date" not in pq.read_schema(f).names
    for row in pq.read_table(f).to_pylist():
        assert row["int_score"] >= 3 and abs(row["int_score"] - row["score"]) <= 1


def test_fixtures_are_deterministic(tmp_path):
    for _, repo_id, patterns in CASES:
        a = _write(repo_id, patterns, tmp_path / "a")
        b = _write(repo_id, patterns, tmp_path / "b")
        assert [x.read_bytes() for x in a] == [y.read_bytes() for y in b], repo_id
    c = fixtures.write_source("bigcode/starcoderdata", ["python/*.parquet"], tmp_path / "c", seed=1)
    first = tmp_path / "a" / "python" / "train-00000-of-00059.parquet"
    assert c[0].read_bytes() != first.read_bytes()


def test_unknown_repo_and_pattern(tmp_path):
    with pytest.raises(ValueError, match=r"acme/unknown.*SHAPES.*smoke/fixtures\.py"):
        fixtures.write_source("acme/unknown", ["*.parquet"], tmp_path)
    with pytest.raises(ValueError, match="select none"):
        fixtures.write_source("HuggingFaceFW/fineweb-2", ["*.json"], tmp_path)
    with pytest.raises(ValueError, match="write_chat"):
        fixtures.write_source("DeepMount00/OpenItalianData", ["*.parquet"], tmp_path)


def _chat(tmp_path, key: str) -> Path:
    hub = PROD["chat_data"][key]["hub"]
    fixtures.write_chat(hub["repo_id"], hub["allow_patterns"], tmp_path / key)
    return tmp_path / key


def test_openitaliandata_loads_as_conversation(tmp_path):
    rows = chat.load(_chat(tmp_path, "openitaliandata"), "conversation")
    assert len(rows) == 64
    assert all(r["messages"][-1]["role"] == "assistant" for r in rows)


def test_deepscaler_loads_as_prompts_with_checkable_answers(tmp_path):
    from zflow import rewards

    path = _chat(tmp_path, "deepscaler")
    rows = chat.load(path, "prompt", kind="grpo")
    assert len(rows) == 64
    raw = json.loads((path / "deepscaler.json").read_text())
    assert any(r["solution"] == "" for r in raw) and any(r["solution"] for r in raw)
    for r in rows:
        assert "\\boxed" not in r["prompt"][-1]["content"]
        assert rewards.math_score(f"\\boxed{{{r['answer']}}}", r["answer"]) == 1.0


def test_dolci_is_implicit_prompt_preference(tmp_path):
    path = _chat(tmp_path, "dolci_dpo")
    raw = chat.read_rows(next(path.rglob("*.parquet")))
    for r in raw:  # the whole conversation in each; only the last assistant turn differs
        assert r["chosen"][:-1] == r["rejected"][:-1]
        assert r["chosen"][-1] != r["rejected"][-1]
        assert r["chosen"][-1]["role"] == r["rejected"][-1]["role"] == "assistant"
    assert any(len(r["chosen"]) > 2 for r in raw)
    rows = chat.load(path, "preference", kind="dpo")  # the workflow's reader takes this shape
    assert len(rows) == 64


# ------------------------------------------------------------------------------------------------
# lm-eval tasks


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("smoke-tasks")
    out = tasks.write_tasks(dest, list(tasks.SUPPORTED), items=6)
    assert set(out) == set(tasks.SUPPORTED)
    assert all(Path(p) == dest / n for n, p in out.items())
    return dest


def test_write_tasks_covers_the_production_config():
    names = {t["lm_eval_task"] for t in PROD["tasks"].values()}
    assert names <= set(tasks.SUPPORTED)
    with pytest.raises(ValueError, match="no_such_task"):
        tasks.write_tasks(Path("/nonexistent"), ["arc_it", "no_such_task"])


def test_task_manager_finds_every_name(task_dir):
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(task_dir), include_defaults=False)
    assert set(tasks.SUPPORTED) <= set(tm.all_tasks)
    for name in tasks.EVALITA_SUBTASKS:
        assert name in tm.all_tasks
    for name in tasks.SUPPORTED:  # each folder defines its name, data files beside the YAML
        found = evals.find_task_files(task_dir / name, name)
        assert len(found) == 1, name
        cfg = yaml.load(found[0].read_text(), Loader=evals.TaskLoader)  # noqa: S506
        for f in (cfg.get("dataset_kwargs") or {}).get("data_files", {}).values():
            assert not Path(f).is_absolute() and (found[0].parent / f).is_file()


def _tiny_model(d: Path, texts: list[str]) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=360, special_tokens=["<eos>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<eos>", eos_token="<eos>",
                                   pad_token="<pad>")
    fast.save_pretrained(d)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                      max_position_embeddings=1024, bos_token_id=fast.bos_token_id,
                      eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(d)


@pytest.fixture(scope="module")
def run(task_dir, tmp_path_factory):
    """run(name) -> simple_evaluate's output (limit 2), the tasks localized as the eval job does."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in OFFLINE.items():
            mp.setenv(k, v)
        import torch

        torch.set_num_threads(2)
        import lm_eval
        from lm_eval.tasks import TaskManager

        local = tmp_path_factory.mktemp("localized")
        evals.localize_tasks(task_dir, local)
        model = tmp_path_factory.mktemp("tiny-llama")
        texts = [line for f in sorted(task_dir.glob("*/*.jsonl"))
                 for line in f.read_text(encoding="utf-8").splitlines()]
        _tiny_model(model, texts)
        tm = TaskManager(include_path=str(local), include_defaults=False)

        def _run(name: str) -> dict:
            return lm_eval.simple_evaluate(
                model="hf", model_args={"pretrained": str(model), "dtype": "float32"},
                tasks=[name], batch_size=1, device="cpu", task_manager=tm, limit=2,
                bootstrap_iters=0, random_seed=0, numpy_random_seed=1234, torch_random_seed=1234)

        yield _run


def _metric_names(row: dict) -> set[str]:
    return {k.split(",")[0] for k in row if "," in k and "_stderr" not in k}


def test_evalita_group_runs_with_production_names_and_metrics(run):
    out = run("evalita-mp")
    res = out["results"]
    assert out["group_subtasks"]["evalita-mp"] == list(tasks.EVALITA_SUBTASKS)
    assert "acc" in _metric_names(res["evalita-mp"])
    for sub, metric in tasks.EVALITA_SUBTASKS.items():
        assert sub in res, sub
        assert metric in _metric_names(res[sub]), (sub, res[sub])
        for leaf in out["group_subtasks"][sub]:
            assert metric in _metric_names(res[leaf]), (leaf, res[leaf])
    assert len(out["group_subtasks"]["evalita-mp_ner_group"]) == 2
    # the workflow's reader: the overall acc and each subgroup's metric from config/zagreus.yaml's
    # tables (f1 for hs / sa / wic, acc for te, rouge1 for sum_fp)
    record = {"task": "evalita_mp", **evals.summarize(out, "evalita-mp")}
    assert 0.0 <= evals.value(record, "acc") <= 1.0
    table = PROD["tables"]["evalita_base"]["metrics"]
    for sub in table:
        assert table[sub] == tasks.EVALITA_SUBTASKS[sub]
    for sub, metric in tasks.EVALITA_SUBTASKS.items():
        assert 0.0 <= evals.value(record, metric, sub) <= 1.0


def test_ifeval_ita_runs_with_ifeval_metrics(run):
    out = run("ifeval-ita")
    row = out["results"]["ifeval-ita"]
    assert _metric_names(row) == set(tasks.SUPPORTED["ifeval-ita"][2])
    assert out["n-samples"]["ifeval-ita"]["effective"] == 2
