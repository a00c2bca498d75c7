"""Cross-field checks of the workflow config, run once at load time (before any job starts).

The JSON schema (config/schemas/config.schema.yaml, zflow.schema) rejects unknown keys and wrong
types and fills in the defaults; these checks cover what a schema cannot see: references between
sections and the files on disk. Every message names the config key (and the file) at fault.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


from zflow.data import parquet_files, text_column_problem
from zflow.evals import _index as _evals_index
from zflow.schedule import is_saved
from zflow.schema import API_KEY_ENV_HINT, ConfigError, looks_like_key, scrub, secret_values

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
        problem = text_column_problem(meta.schema.to_arrow_schema(), text_key)
        if problem:  # absent, or not strings (int, struct, binary...): from the footer alone
            errors.append(f"sources.{name}.text_key: parquet file '{f}' {problem}")
        rows += meta.num_rows
    if not errors and rows == 0:
        errors.append(f"{key}: the parquet files in '{src['path']}' hold no rows")
    return errors


# Task folders the user supplies for tasks lm-eval does not ship (the seeds' forks): what to copy
# into a task's include_path, named in the error when it is missing.
_FORK_PT = ("the task's folder from the eduagarcia/lm-evaluation-harness-pt fork (under "
            "lm_eval/tasks/ of https://github.com/eduagarcia/lm-evaluation-harness-pt)")
TASK_FOLDERS = {
    "ifeval-ita": "the fork's ifeval-ita task folder (lm_eval/tasks/ifeval-ita of "
                  "https://github.com/mii-llm/lm-evaluation-harness, the mii-llm fork of lm-eval: "
                  "its YAML with the Python files beside it)",
    **dict.fromkeys(("assin2_rte", "assin2_sts", "bluex", "enem_challenge", "faquad_nli",
                     "hatebr_offensive", "oab_exams", "portuguese_hate_speech", "tweetsentbr"),
                    _FORK_PT),
}


def _folder_entries(path: Path, memo: dict) -> list:
    """(YAML, kind, name) of the task folder ``path`` (``zflow.evals``' index), read once per
    config check: several tasks share a folder (the embedded config's ten)."""
    key = path.resolve()
    if key not in memo:
        memo[key] = list(_evals_index(path))
    return memo[key]


def _check_task_folder(key: str, task: dict, base: Path, memo: dict | None = None) -> str | None:
    """A task's ``include_path`` (if any): a folder where some YAML (recursively, as lm-eval's
    index reads them) defines the task or group ``lm_eval_task``. One message, naming the key at
    fault, the folder and what to put there, else None."""
    memo = {} if memo is None else memo
    inc, name = task.get("include_path"), task["lm_eval_task"]
    if inc is None:
        return None
    path = base / inc
    what = TASK_FOLDERS.get(name, f"the lm-eval YAML defining '{name}' with the files it reads")
    supply = (f"copy {what} there, or point tasks.{key}.include_path at a folder where some YAML, "
              f"at any depth, defines `task: {name}` or `group: {name}`")
    if not path.exists():
        return (f"tasks.{key}.include_path: folder '{inc}' does not exist ({path.resolve()}), and "
                f"tasks.{key}.lm_eval_task '{name}' is read from it: {supply}")
    if not path.is_dir():
        return f"tasks.{key}.include_path: '{inc}' is a file, not a folder of task YAMLs: {supply}"
    entries = _folder_entries(path, memo)
    if any(defined == name for _, _, defined in entries):  # zflow.evals.find_task_files
        return None
    names = sorted({defined for _, _, defined in entries})  # zflow.evals.task_names
    holds = (f"its YAMLs define {', '.join(names[:8])}{' …' if len(names) > 8 else ''}" if names
             else "it holds no task YAML")
    return (f"tasks.{key}.lm_eval_task: no YAML under '{inc}' (tasks.{key}.include_path) defines "
            f"task or group '{name}' ({holds}): {supply}")


def _check_lm_eval_tasks(tasks: dict, base: Path, warnings: list, memo: dict) -> list[str]:
    """Each task's ``lm_eval_task`` resolved as its eval job will resolve it (zflow.taskindex):
    a task or group of the installed lm-eval (no ``include_path``), or of its task folder; a
    group's members, at any depth, defined there too. A name lm-eval lacks that a known fork
    ships (TASK_FOLDERS) is a warning: the fork may be the lm-eval the evals run with."""
    import difflib

    from zflow import taskindex

    errors, reg = [], None
    for key, task in tasks.items():
        name, inc = task["lm_eval_task"], task.get("include_path")
        at = f"tasks.{key}.lm_eval_task"
        if inc is not None:
            path = base / inc
            if not path.is_dir():
                continue  # _check_task_folder says what to put there
            fkey = ("index", path.resolve())
            if fkey not in memo:
                memo[fkey] = taskindex.folder(path)
            idx = memo[fkey]
            if idx.kind(name) not in ("task", "group"):
                continue  # _check_task_folder says what to put there
            label = f"the task folder '{inc}' (tasks.{key}.include_path)"
        else:
            if reg is None:
                reg = taskindex.registry(base) or False
            if reg is False:  # lm-eval is not installed here: the eval job checks the name
                continue
            idx, label = reg, reg.label
            kind = idx.kind(name)
            if kind is None and name in TASK_FOLDERS:
                warnings.append(f"{at}: '{name}' is not a task of the installed {label}: its "
                                "evals fail unless lm-eval is the fork that ships it, or "
                                f"tasks.{key}.include_path names a folder holding "
                                f"{TASK_FOLDERS[name]}")
                continue
            if kind is None:
                close = difflib.get_close_matches(name, list(idx.kinds), n=3, cutoff=0.75)
                errors.append(f"{at}: '{name}' is not a task or group of the installed "
                              f"{label}" + (f" (close: {', '.join(close)})" if close else "")
                              + f": fix the name, or set tasks.{key}.include_path to a folder "
                              "whose YAMLs define it")
                continue
            if kind == "tag":
                errors.append(f"{at}: '{name}' is a tag of {label} (a set of tasks), not a "
                              "task or group: lm-eval reports no result under a tag's name; "
                              "name one of its tasks, or a group")
                continue
        if idx.kind(name) != "group":
            continue
        for group, member in taskindex.missing_members(idx, name):
            where = f" ({idx.where[group]})" if group in idx.where else ""
            errors.append(f"{at}: group '{group}'{where} lists '{member}', which no YAML of "
                          f"{label} defines as a task, group or tag: the eval job would fail "
                          "on it; fix the member's name or add its YAML")
    return errors


def check(config: dict, base: Path = Path("."), check_files: bool = True) -> list[str]:
    """Raise ConfigError listing every problem found (one line each); return the warnings (one
    line each: what is allowed but will not work as is, e.g. an upload left a dry run that a
    real upload would refuse). ``check_files``: also the files the config names (sources, task
    folders, posttrain data...), relative to ``base``, and lm-eval's task names."""
    errors: list[str] = []
    warnings: list[str] = []
    sources, tokenizers, tasks = config["sources"], config["tokenizers"], config["tasks"]

    for name, tok in tokenizers.items():
        for s in tok.get("train", {}).get("sources", []):
            if s not in sources:
                errors.append(f"tokenizers.{name}.train.sources: unknown source '{s}'")

    if check_files:
        memo: dict = {}  # task folders, read once
        errors += [e for t, task in tasks.items()
                   if (e := _check_task_folder(t, task, base, memo))]
        errors += _check_lm_eval_tasks(tasks, base, warnings, memo)

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
        trained = tok.get("train", {}).get("vocab_size")
        if trained and trained > m["vocab_size"]:  # the trainer's vocab_size counts its specials
            errors.append(f"{pre}.model.vocab_size: {m['vocab_size']} is smaller than "
                          f"tokenizers.{lc['tokenizer']}.train.vocab_size ({trained}, its special "
                          f"tokens included): ids up to {trained - 1} would index past the "
                          "embedding; raise the model's vocab_size or lower the tokenizer's")
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
        errors += _check_stages(config, lang, warnings)
        errors += _check_init(config, lang, base, check_files)
        if p["segment_steps"] % p["checkpoint_interval"]:
            errors.append(f"{pre}.pretrain.segment_steps: {p['segment_steps']} is not a multiple "
                          f"of pretrain.checkpoint_interval ({p['checkpoint_interval']}): every "
                          "pretraining job must end at a checkpoint")
        for step in lc["eval"]["checkpoints"]:
            if step > p["train_steps"]:
                errors.append(f"{pre}.eval.checkpoints: step {step} is beyond pretrain.train_steps ({p['train_steps']})")
            elif not is_saved(step, p):
                errors.append(
                    f"{pre}.eval.checkpoints: step {step} is not saved (not a multiple of "
                    f"pretrain.checkpoint_interval={p['checkpoint_interval']} nor train_steps)"
                )

    errors += _check_posttrain(config, base, check_files)
    errors += _check_tables(config)
    errors += _check_qualitative(config, base, check_files)
    errors += _check_release(config, warnings)
    for key in config["cost"]["source_tokens"]:
        if key not in sources and key not in config["chat_data"]:
            errors.append(f"cost.source_tokens.{key}: not a key of sources or chat_data")

    if check_files:
        used = set()
        for lc in config["languages"].values():
            used |= set(lc["data"])
            for st in lc["pretrain"].get("stages") or []:
                used |= set(st.get("data") or {})
        for tok in tokenizers.values():
            used |= set(tok.get("train", {}).get("sources", []))
        for name in sorted(used & set(sources)):
            if "hub" not in sources[name]:  # hub sources are downloaded by the workflow
                errors += _check_source(name, sources[name], base)

    from zflow import tracking

    for b in tracking.missing(config["tracking"]["backends"]):
        errors.append(f"tracking.backends: '{b}' is asked for but not installed "
                      f"(pip install {tracking.MODULES[b]}, or remove it from the list)")

    secrets = secret_values(config)  # never shown, nor a URL's credentials (docs/secrets.md)
    if errors:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(scrub(e, secrets)
                                                                 for e in errors))
    warnings = [scrub(w, secrets) for w in warnings]
    for w in warnings:  # on stderr at every parse (the Snakemake log), nothing refused
        print(f"warning: {w}", file=sys.stderr)
    return warnings


def _check_stages(config: dict, lang: str, warnings: list | None = None) -> list[str]:
    """A language's data stages: start steps from 0, increasing, within train_steps; unique
    names; known sources (tokenized with the language's tokenizer); options the backend honours.
    Warned (backend nanotron): what nanotron d22eb809 re-reads (zflow.nanotron.stage_reads)."""
    lc = config["languages"][lang]
    p = lc["pretrain"]
    stages, errors = p.get("stages") or [], []
    key = f"languages.{lang}.pretrain.stages"
    if stages and stages[0]["start_step"] != 0:
        errors.append(f"{key}[0].start_step: the first stage starts at step 0, "
                      f"not {stages[0]['start_step']}")
    names = [st["name"] for st in stages]
    for i, st in enumerate(stages):
        at = f"{key}[{i}]"
        if names.count(st["name"]) > 1:
            errors.append(f"{at}.name: '{st['name']}' names two stages")
        if i and st["start_step"] <= stages[i - 1]["start_step"]:
            errors.append(f"{at}.start_step: {st['start_step']} does not follow the previous "
                          f"stage's {stages[i - 1]['start_step']} (start steps must increase)")
        if st["start_step"] >= p["train_steps"]:
            errors.append(f"{at}.start_step: {st['start_step']} is not before "
                          f"pretrain.train_steps ({p['train_steps']})")
        for s in st.get("data") or {}:
            if s not in config["sources"]:
                errors.append(f"{at}.data: unknown source '{s}' "
                              f"(known: {', '.join(config['sources'])})")
        # a stage names sources only: they are tokenized with the language's tokenizer
        # (results/tokenized/<tokenizer>/<source>), like `data`
        seq = st.get("sequence_length")
        if seq is not None and p["backend"] == "nanotron":
            errors.append(f"{at}.sequence_length: backend nanotron cannot honour it (nanotron "
                          "d22eb809 has no per-stage sequence length); remove it")
        if seq is not None and seq > lc["model"]["max_position_embeddings"]:
            errors.append(f"{at}.sequence_length: {seq} exceeds model.max_position_embeddings "
                          f"({lc['model']['max_position_embeddings']})")
    if p["backend"] == "nanotron" and warnings is not None:
        # nanotron d22eb809 builds each stage's loader anew from the stage's own consumed count
        # (0 when it starts: run_train.py:318-357, helpers.py:824-851; zflow.nanotron notes)
        read = [set(st.get("data") or lc["data"]) for st in stages]
        again = sorted({s for i, r in enumerate(read) for s in r if any(s in e for e in read[:i])})
        what = []
        if again:
            what.append(f"{', '.join(again)}, read again in a later stage, restart from their "
                        "first sample, so their first samples are repeated")
        if len(stages) > 2:
            what.append("a resume inside a middle stage restarts that stage from its first "
                        "sample too")
        if what:
            warnings.append(f"{key}: backend nanotron (d22eb809) starts each stage's folders at "
                            f"their first sample: {'; '.join(what)} (the run summary counts "
                            "the repeats: tokens_repeated)")
    return errors


# What a continued pretraining may change of the architecture it starts from (a longer context
# with a new RoPE base); init_std only initialises, and the run does not initialise
ARCH_MAY_CHANGE = ("rope_theta", "max_position_embeddings", "init_std", "initializer_range")
# What a continued pretraining keeps of a model given as an HF directory (config.json uses the
# same names): compared with a local baseline's here, by the job (pretrain.continued) before it
# trains for any model
ARCH_KEPT = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
             "num_key_value_heads", "vocab_size", "tie_word_embeddings", "hidden_act")


def init_language(config: dict, name: str) -> str | None:
    """The configured language whose pretraining ``name`` descends from (None: a baseline)."""
    seen = set()
    while name in config["posttrain"] and name not in seen:
        seen.add(name)
        name = config["posttrain"][name]["base"]
    m = CHECKPOINT_MODEL.fullmatch(name)
    return m.group(1) if m and m.group(1) in config["languages"] else None


def _check_init(config: dict, lang: str, base: Path, check_files: bool) -> list[str]:
    """Continued pretraining: a known model of the same architecture (but for the context and
    RoPE base) and tokenizer, on the hf backend, with no loop through other languages."""
    lc = config["languages"][lang]
    name = lc["pretrain"]["init_from"]
    if name is None:
        return []
    key = f"languages.{lang}.pretrain.init_from"
    if lc["pretrain"]["backend"] != "hf":
        return [f"{key}: continued pretraining runs on backend hf only (backend "
                f"'{lc['pretrain']['backend']}' cannot load HF weights)"]
    why = _model_problem(config, name)
    if why:
        return [f"{key}: {why}"]
    seen, cur = [lang], init_language(config, name)
    while cur is not None:
        if cur in seen:
            return [f"{key}: continued pretraining loops back to language '{cur}' "
                    f"({' -> '.join(seen + [cur])})"]
        seen.append(cur)
        nxt = config["languages"][cur]["pretrain"]["init_from"]
        cur = init_language(config, nxt) if nxt else None
    parent = init_language(config, name)
    if parent is not None:
        pc = config["languages"][parent]
        errors = [f"{key}: '{name}' has model.{k} = {pc['model'][k]} but this run's is "
                  f"{lc['model'][k]} (only {', '.join(ARCH_MAY_CHANGE[:2])} may change)"
                  for k in lc["model"] if k not in ARCH_MAY_CHANGE
                  and pc["model"].get(k) != lc["model"][k]]
        if pc["tokenizer"] != lc["tokenizer"]:
            errors.append(f"{key}: '{name}' was trained with tokenizer '{pc['tokenizer']}', this "
                          f"run reads data tokenized with '{lc['tokenizer']}'")
        return errors
    path = base / config["baselines"][name]["model"]
    if not (check_files and (path / "config.json").is_file()):
        return []  # a hub id: compared by the job, before it trains
    hf = json.loads((path / "config.json").read_text())
    return [f"{key}: '{name}' ({path / 'config.json'}) has {k} = {hf[k]} but this run's "
            f"model.{k} is {lc['model'][k]}" for k in ARCH_KEPT
            if k in hf and hf[k] != lc["model"][k]]


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
    from zflow import chat, grpo, inputs, rewards

    errors = []
    data, post, baselines = config["chat_data"], config["posttrain"], config["baselines"]

    def grpo_problems(key: str, pc: dict) -> list[str]:
        """GRPO's rewards (names, settings, duplicates) and batch shapes."""
        train, out = pc["train"], []
        if not train["rewards"]:
            out.append(f"{key}.train.rewards: GRPO needs at least one reward "
                       f"(known: {', '.join(rewards.REWARDS)})")
        names = [r.get("name") for r in train["rewards"]]
        for i, spec in enumerate(grpo.reward_specs(train)):
            if spec["name"] not in rewards.REWARDS:
                out.append(f"{key}.train.rewards[{i}].name: unknown reward '{spec['name']}' "
                           f"(known: {', '.join(rewards.REWARDS)})")
                continue
            if names.count(spec["name"]) > 1:
                out.append(f"{key}.train.rewards[{i}].name: reward '{spec['name']}' is listed "
                           f"twice (the logs key rewards by name)")
            try:
                rewards.build_rewards([spec])
            except ValueError as e:
                out.append(f"{key}.train.rewards[{i}]: {e}")
        size, group = train["micro_batch_size"], train["num_generations"]
        world = pc["nodes"] * pc["gpus_per_node"]
        per_step = size * train["gradient_accumulation_steps"]
        if per_step * world % group:
            out.append(f"{key}.train.num_generations: the generation batch (micro_batch_size x "
                       f"gradient_accumulation_steps x processes = {per_step * world} completions) "
                       f"must hold whole groups of {group}")
        elif train["dynamic_sampling_batches"] and per_step % group:
            out.append(f"{key}.train.dynamic_sampling_batches: each process's generation batch "
                       f"(micro_batch_size x gradient_accumulation_steps = {per_step}) must hold "
                       f"whole groups of num_generations={group}")
        if train["val_set_size"] and size * world % group:
            out.append(f"{key}.train.val_set_size: evaluating needs micro_batch_size x processes "
                       f"({size * world}) to hold whole groups of num_generations={group}")
        return out

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
            if pc["method"] == "sft" and fmt in ("preference", "prompt"):
                errors.append(f"{key}.data: SFT needs chat data; '{d}' has format '{fmt}'")
            if pc["method"] == "grpo" and fmt not in ("auto", "prompt"):
                errors.append(f"{key}.data: GRPO needs prompt data; '{d}' has format '{fmt}'")
        if pc["method"] == "grpo":
            errors += grpo_problems(key, pc)
        elif pc["train"].get("rewards"):
            errors.append(f"{key}.train.rewards: rewards are for method grpo, not {pc['method']}")
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
                for f in files:  # UTF-8 first: a clean error naming the byte and line
                    if f.suffix in (".json", ".jsonl"):
                        inputs.read_text(f, "JSON text")
                for m in sorted(methods):
                    chat.load(path, data[d]["format"], m)
        except inputs.InputError as e:
            errors.append(f"chat_data.{d}.path: {e}")
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


NEEDS = {"breakdown": ("task", "model"), "versus": ("task", "model", "base"),
         "leaderboard": ("models", "columns"), "models": ("models", "columns"),
         "stages": ("models", "columns")}


def _model_problem(config: dict, name: str) -> str | None:
    if name in config["posttrain"] or name in config["baselines"]:
        return None
    why = saved_step(config, name)
    return f"{why}, nor a posttrain key or a baseline" if why else None


def _check_tables(config: dict) -> list[str]:
    """The report's tables name known languages, tasks and models, with what their kind needs."""
    errors = []
    for name, t in config["tables"].items():
        key = f"tables.{name}"
        if t["lang"] not in config["languages"]:
            errors.append(f"{key}.lang: unknown language '{t['lang']}'")
        for field in NEEDS[t["kind"]]:
            if not t.get(field):
                errors.append(f"{key}.{field}: required by kind '{t['kind']}'")
        if t.get("task") and t["task"] not in config["tasks"]:
            errors.append(f"{key}.task: unknown task '{t['task']}'")
        for ref in t.get("columns", []):
            if ref.split("/", 1)[0] not in config["tasks"]:
                errors.append(f"{key}.columns: unknown task '{ref.split('/', 1)[0]}'")
        for m in [t.get("model"), t.get("base"), *t.get("models", [])]:
            if m and _model_problem(config, m):
                errors.append(f"{key}: model {_model_problem(config, m)}")
    for lang, lc in config["languages"].items():
        for ref in lc["table"]["columns"] or []:
            if ref.split("/", 1)[0] not in lc["eval"]["tasks"]:
                errors.append(f"languages.{lang}.table.columns: '{ref}' is not a task of "
                              f"languages.{lang}.eval.tasks")
    order = config["report"]["order"]
    known = set(config["tables"]) | {f"{k}_{lang}" for lang in config["languages"]
                                     for k in ("progression", "compare", "sft_delta")}
    known |= {"qualitative"} if config.get("qualitative") else set()
    for item in order:
        if item not in known:
            errors.append(f"report.order: unknown table '{item}' (known: {', '.join(sorted(known))})")
    return errors


def repo_id_problem(repo_id: str) -> str | None:
    """Why ``repo_id`` cannot name the hub repository of a release, else None: ``<owner>/<name>``
    (the owner given: who owns an id without one depends on the token), each part as
    huggingface_hub's own validator (``validate_repo_id``) accepts it."""
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        return (f"'{repo_id}' is not a hub repository id <owner>/<name> (e.g. "
                "my-org/my-model)")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        return f"'{repo_id}' is not a valid hub repository id: {e}"
    return None


def _check_release(config: dict, warnings: list) -> list[str]:
    """Released models are post-trained models or saved pretraining checkpoints; their data
    entries name sources or chat data; a repo_id is a valid hub id (dry run or not). The
    ``required`` fields: refused when the upload is real, a warning when it is a dry run."""
    errors = []
    for name, rc in config.get("release", {}).items():
        if name in config["baselines"]:
            errors.append(f"release.{name}: '{name}' is a baseline (not made by this workflow)")
        elif name not in config["posttrain"]:
            why = saved_step(config, name)
            if why:
                errors.append(f"release.{name}: {why}, nor a posttrain key")
        lang, seen = init_language(config, name), set()
        while lang and lang not in seen:  # the runs it continues, and what they start from
            seen.add(lang)
            parent = config["languages"][lang]["pretrain"]["init_from"]
            if parent in config["posttrain"]:
                errors.append(f"release.{name}: it descends from a continued pretraining of a "
                              f"post-trained model (languages.{lang}.pretrain.init_from: "
                              f"{parent}); releasing one is not supported: its lineage would "
                              "leave out that model's post-training")
                break
            lang = init_language(config, parent) if parent else None
        for t in rc.get("evals") or []:
            if t not in config["tasks"]:
                errors.append(f"release.{name}.evals: '{t}' is not a key of tasks")
        for key in rc.get("data", {}):
            if key not in config["sources"] and key not in config["chat_data"]:
                errors.append(f"release.{name}.data.{key}: not a key of sources or chat_data")
        if isinstance(rc.get("repo_id"), str) and (why := repo_id_problem(rc["repo_id"])):
            errors.append(f"release.{name}.repo_id: {why}")
        unset = []
        for key in rc.get("required") or []:
            value = rc
            for part in key.split("."):
                value = (value or {}).get(part) if isinstance(value, dict) else None
            if key != "base_model" and not value:
                unset.append(key)
        if not (rc.get("upload") or {}).get("dry_run", True):  # a real upload: its fields now
            errors += [f"release.{name}.{key}: required for the upload (upload.dry_run is false) "
                       "but not set" for key in unset]
        elif unset:
            warnings.append(f"release.{name}: {', '.join(unset)} not set: upload_{name} is a dry "
                            "run (upload.dry_run), a real upload would refuse it "
                            "(release.<model>.required)")
    return errors


def qualitative_name(entry) -> str:
    """The name of a ``qualitative.models`` entry (a registry name, or an endpoint's ``name``)."""
    return entry if isinstance(entry, str) else entry["name"]


def _endpoint_secrets(key: str, entry: dict) -> list[str]:
    """An endpoint (a qualitative model or the judge) gets its key from the environment variable
    named by api_key_env, only: a value there that is no variable's name (a pasted key), or a
    URL with credentials (user:password@) or a query (which the specs, answers and reports would
    record), is refused without showing it."""
    errors = []
    env = entry.get("api_key_env")
    if env is not None and looks_like_key(env):
        errors.append(f"{key}.api_key_env: the value is not shown (it may be a secret): it looks "
                      f"like a key, not a variable's name ({API_KEY_ENV_HINT})")
    url = entry.get("url")
    if isinstance(url, str):
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - a malformed port raises ValueError
        except ValueError:
            parts = None
        if parts is None or not parts.scheme or not parts.hostname:
            errors.append(f"{key}.url: not a URL http(s)://host[:port][/path] (the value is not "
                          "shown: it may hold a secret)")
        elif "@" in parts.netloc:
            errors.append(f"{key}.url: the URL holds credentials (user:password@, not shown); "
                          "they are never sent nor written: remove them and give the API key "
                          "through api_key_env")
        elif parts.query or parts.fragment:
            errors.append(f"{key}.url: the URL has a query or fragment (not shown: it may hold a "
                          "key); it would be written into specs, answers and reports: remove it "
                          "and give the API key through api_key_env")
    return errors


def _check_qualitative(config: dict, base: Path, check_files: bool) -> list[str]:
    """Suites that load, known models (registry names or endpoints), one name each, a judge
    that is a registry model or has a URL, a readable filled sheet."""
    from zflow import qualitative, scoresheet

    q = config.get("qualitative")
    if not q:
        return []
    errors = []
    for name, path in q["suites"].items() if check_files else ():
        if not (base / path).is_file():
            errors.append(f"qualitative.suites.{name}: file '{path}' does not exist")
        else:
            try:
                qualitative.load_suite(base / path)
            except qualitative.SuiteError as e:
                errors.append(f"qualitative.suites.{name}: {e}")
    seen = set()
    for i, entry in enumerate(q["models"]):
        if isinstance(entry, dict):
            errors += _endpoint_secrets(f"qualitative.models[{i}]", entry)
        name = qualitative_name(entry)
        if name in seen:
            errors.append(f"qualitative.models[{i}]: '{name}' is listed twice")
        seen.add(name)
        if isinstance(entry, str) and _model_problem(config, name):
            errors.append(f"qualitative.models[{i}]: model {_model_problem(config, name)} "
                          "(an endpoint is {name, url, model})")
        if isinstance(entry, dict) and (name in config["posttrain"] or name in config["baselines"]
                                        or CHECKPOINT_MODEL.fullmatch(name)):
            errors.append(f"qualitative.models[{i}].name: '{name}' is a model of the registry; "
                          "give the endpoint another name")
    judge = q["judge"]
    errors += _endpoint_secrets("qualitative.judge", judge) if judge else []
    if judge and "url" not in judge and _model_problem(config, judge["model"]):
        errors.append(f"qualitative.judge.model: {_model_problem(config, judge['model'])} "
                      "(or give qualitative.judge.url for an endpoint)")
    sheet = q["sheet"]
    if check_files and sheet and (base / sheet).is_file():
        try:
            scoresheet.read_sheet(base / sheet)
        except (scoresheet.SheetError, OSError, UnicodeDecodeError) as e:
            errors.append(f"qualitative.sheet: {e}")
    return errors
