"""Cross-field checks of the workflow config, run once at load time (before any job starts).

The JSON schema (config/schemas/config.schema.yaml, zflow.schema) rejects unknown keys and wrong
types and fills in the defaults; these checks cover what a schema cannot see: references between
sections and the files on disk. Every message names the config key (and the file) at fault.
"""

from __future__ import annotations

import re
from pathlib import Path


from zflow.data import parquet_files
from zflow.evals import find_task_files
from zflow.schedule import is_saved
from zflow.schema import ConfigError

__all__ = ["ConfigError", "check"]


def _check_source(name: str, src: dict, base: Path) -> list[str]:
    import pyarrow.parquet as pq

    key = f"sources.{name}.path"
    root = base / src["path"]
    if not root.is_dir():
        return [f"{key}: directory '{src['path']}' does not exist"]
    files = parquet_files(root, src["glob"])
    if not files:
        return [f"{key}: directory '{src['path']}' holds no files matching '{src['glob']}'"]
    errors, rows = [], 0
    text_key = src["text_key"]
    for f in files:
        try:
            meta = pq.read_metadata(f)
        except Exception as e:  # noqa: BLE001 - any unreadable file is a config error
            errors.append(f"{key}: '{f}' is not a readable parquet file ({e})")
            continue
        names = meta.schema.to_arrow_schema().names
        if text_key not in names:
            errors.append(
                f"sources.{name}.text_key: parquet file '{f}' has no column '{text_key}' "
                f"(columns: {', '.join(names)})"
            )
        rows += meta.num_rows
    if not errors and rows == 0:
        errors.append(f"{key}: the parquet files in '{src['path']}' hold no rows")
    return errors


def check(config: dict, base: Path = Path("."), check_files: bool = True) -> None:
    """Raise ConfigError listing every problem found (one line each)."""
    errors: list[str] = []
    sources, tokenizers, tasks = config["sources"], config["tokenizers"], config["tasks"]

    for name, tok in tokenizers.items():
        for s in tok.get("train", {}).get("sources", []):
            if s not in sources:
                errors.append(f"tokenizers.{name}.train.sources: unknown source '{s}'")

    for tname, task in tasks.items():
        inc = task.get("include_path")
        if inc is None:
            continue
        path = base / inc
        if not path.is_dir():
            errors.append(f"tasks.{tname}.include_path: directory '{inc}' does not exist")
        elif check_files and not find_task_files(path, task["lm_eval_task"]):
            errors.append(f"tasks.{tname}.lm_eval_task: no task or group "
                          f"'{task['lm_eval_task']}' in any YAML under '{inc}'")

    for lang, lc in config["languages"].items():
        pre = f"languages.{lang}"
        if lc["tokenizer"] not in tokenizers:
            errors.append(
                f"{pre}.tokenizer: unknown tokenizer '{lc['tokenizer']}' (known: {', '.join(tokenizers)})"
            )
        for s, w in lc["data"].items():
            if s not in sources:
                errors.append(f"{pre}.data: unknown source '{s}' (known: {', '.join(sources)})")
            if not w > 0:
                errors.append(f"{pre}.data.{s}: mixture weight must be > 0, got {w}")
        for b in lc["eval"]["baselines"]:
            if b not in config["baselines"]:
                errors.append(f"{pre}.eval.baselines: unknown baseline '{b}' "
                              f"(known: {', '.join(config['baselines']) or 'none'})")
        for t in lc["eval"]["tasks"]:
            if t not in tasks:
                errors.append(f"{pre}.eval.tasks: unknown task '{t}' (known: {', '.join(tasks)})")
        m, p = lc["model"], lc["pretrain"]
        tok = tokenizers.get(lc["tokenizer"], {})
        if tok.get("vocab_size") and tok["vocab_size"] != m["vocab_size"]:
            errors.append(f"{pre}.model.vocab_size: {m['vocab_size']} but tokenizer "
                          f"'{lc['tokenizer']}' has {tok['vocab_size']} tokens")
        if p["backend"] == "nanotron":
            n = p.get("nanotron")
            if not n:
                errors.append(f"{pre}.pretrain.nanotron: required by backend 'nanotron'")
            elif n["dp"] * n["tp"] * n["pp"] != n["nodes"] * n["gpus_per_node"]:
                errors.append(f"{pre}.pretrain.nanotron: dp*tp*pp = "
                              f"{n['dp'] * n['tp'] * n['pp']} but nodes x "
                              f"gpus_per_node = {n['nodes'] * n['gpus_per_node']}")
        if m["hidden_size"] % m["num_attention_heads"]:
            errors.append(f"{pre}.model.hidden_size: {m['hidden_size']} is not divisible by num_attention_heads")
        if m["num_attention_heads"] % m["num_key_value_heads"]:
            errors.append(
                f"{pre}.model.num_key_value_heads: num_attention_heads must be a multiple of it"
            )
        if p["sequence_length"] > m["max_position_embeddings"]:
            errors.append(f"{pre}.pretrain.sequence_length: exceeds model.max_position_embeddings")
        for step in lc["eval"]["checkpoints"]:
            if step > p["train_steps"]:
                errors.append(f"{pre}.eval.checkpoints: step {step} is beyond pretrain.train_steps ({p['train_steps']})")
            elif not is_saved(step, p):
                errors.append(
                    f"{pre}.eval.checkpoints: step {step} is not saved (not a multiple of "
                    f"pretrain.checkpoint_interval={p['checkpoint_interval']} nor train_steps)"
                )

    errors += _check_posttrain(config, base, check_files)
    for key in config["cost"]["source_tokens"]:
        if key not in sources and key not in config["chat_data"]:
            errors.append(f"cost.source_tokens.{key}: not a key of sources or chat_data")

    if check_files:
        used = set()
        for lc in config["languages"].values():
            used |= set(lc["data"])
        for tok in tokenizers.values():
            used |= set(tok.get("train", {}).get("sources", []))
        for name in sorted(used & set(sources)):
            if "hub" not in sources[name]:  # hub sources are downloaded by the workflow
                errors += _check_source(name, sources[name], base)

    if errors:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(errors))


CHECKPOINT_MODEL = re.compile(r"([a-z]{2,3})-step(\d+)")
# Chat data checked row by row when the config loads (before any job) up to this size; bigger
# sets are checked by the post-training job before it loads the model.
CHECK_BYTES = 64 * 2**20


def saved_step(config: dict, model: str) -> str | None:
    """Why ``model`` is not a pretraining checkpoint the workflow saves (None if it is)."""
    m = CHECKPOINT_MODEL.fullmatch(model)
    if not m or m.group(1) not in config["languages"]:
        return f"'{model}' is not <lang>-step<N> for a configured language"
    p = config["languages"][m.group(1)]["pretrain"]
    step = int(m.group(2))
    if not is_saved(step, p):
        return f"step {step} of '{m.group(1)}' is never saved"
    return None


def _check_posttrain(config: dict, base: Path, check_files: bool) -> list[str]:
    from zflow import chat

    errors = []
    data, post, baselines = config["chat_data"], config["posttrain"], config["baselines"]
    for name, pc in post.items():
        key = f"posttrain.{name}"
        if name in baselines or CHECKPOINT_MODEL.fullmatch(name):
            errors.append(f"{key}: the name collides with a baseline or a checkpoint model name")
        b = pc["base"]
        if b not in post and b not in baselines and saved_step(config, b):
            errors.append(f"{key}.base: {saved_step(config, b)}, nor a posttrain key or a baseline")
        seen, cur = {name}, b
        while cur in post:
            if cur in seen:
                errors.append(f"{key}.base: the chain of bases loops back to '{cur}'")
                break
            seen.add(cur)
            cur = post[cur]["base"]
        for d in pc["data"]:
            if d not in data:
                errors.append(f"{key}.data: unknown dataset '{d}' (known: {', '.join(data) or 'none'})")
                continue
            fmt = data[d]["format"]
            if pc["method"] == "dpo" and fmt not in ("auto", "preference"):
                errors.append(f"{key}.data: DPO needs preference data; '{d}' has format '{fmt}'")
            if pc["method"] == "sft" and fmt == "preference":
                errors.append(f"{key}.data: SFT needs chat data; '{d}' has format 'preference'")
        tpl = pc["chat_template"]
        if check_files and not (base / tpl).is_file():
            errors.append(f"{key}.chat_template: file '{tpl}' does not exist")
    used_by = {}
    for name, pc in post.items():
        for d in pc["data"]:
            used_by.setdefault(d, set()).add(pc["method"])
    for d, methods in sorted(used_by.items()):
        if d not in data or "hub" in data[d] or not check_files:
            continue
        path = base / data[d]["path"]
        try:
            files = chat.data_files(path)
            if not files:
                raise chat.DataError(f"'{data[d]['path']}' holds no .jsonl/.json/.parquet file")
            if sum(f.stat().st_size for f in files) <= CHECK_BYTES:
                for m in sorted(methods):
                    chat.load(path, data[d]["format"], m)
        except chat.DataError as e:
            errors.append(f"chat_data.{d}: {e}")
    cmp = config.get("compare")
    if cmp:
        for g, tasks in cmp["groups"].items():
            for ref in tasks:
                t = ref.split("/", 1)[0]  # a task key, or <task>/<subtask> of a group task
                if t not in config["tasks"]:
                    errors.append(f"compare.groups.{g}: unknown task '{t}'")
        for t in cmp["labels"]:
            if t not in config["tasks"]:
                errors.append(f"compare.labels: unknown task '{t}'")
        for b in cmp["baselines"]:
            if b not in baselines:
                errors.append(f"compare.baselines: unknown baseline '{b}'")
    return errors
