import functools
import json
import os
import re
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

SCRIPTS = str(Path(workflow.basedir) / "workflow" / "scripts")
sys.path.insert(0, SCRIPTS)

from zflow import config as zconfig  # noqa: E402

# The embedded default, unless configs are given with --configfile (the slurm profile's
# production config): those replace it instead of being merged into it.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, schema="../config/schemas/config.schema.yaml")
try:
    zconfig.check(config)
except zconfig.ConfigError as e:
    raise WorkflowError(str(e)) from None

LANGS = sorted(config["languages"])

if config.get("offline", True):
    for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(_var, "1")


wildcard_constraints:
    lang=r"[a-z]{2,3}",
    source=r"[A-Za-z0-9_.\-]+",
    tokenizer=r"[A-Za-z0-9_.\-]+",
    model=r"[A-Za-z0-9_.\-]+",
    task=r"[A-Za-z0-9_.\-]+",
    step=r"\d+",


# ---------------------------------------------------------------- paths and lookups


def script(name):
    """A script of workflow/scripts, as a job input (editing it makes its outputs stale)."""
    return os.path.relpath(os.path.join(SCRIPTS, name))


def lang_conf(lang):
    return config["languages"][lang]


def source_dir(name):
    """Directory the tokenizer reads: the source's path, or where its hub files land."""
    src = config["sources"][name]
    if "hub" in src:
        sub = os.path.dirname(src["hub"]["allow_patterns"][0])
        return os.path.join(src["path"], sub) if sub else src["path"]
    return src["path"]


def source_glob(name):
    src = config["sources"][name]
    if "hub" in src:
        return os.path.basename(src["hub"]["allow_patterns"][0])
    return src.get("glob", "*.parquet")


def source_files(wildcards):
    """Local shards, or the download's manifest for a hub source."""
    src = config["sources"][wildcards.source]
    if "hub" in src:
        return [f"results/downloads/{wildcards.source}.json"]
    return [str(p) for p in zconfig.source_files(src)]


def tokenizer_train_files(wildcards):
    files = []
    for s in config["tokenizers"][wildcards.tokenizer]["train"]["sources"]:
        files += [str(p) for p in zconfig.source_files(config["sources"][s])]
    return files


def tokenizer_train_args(wildcards):
    tok = config["tokenizers"][wildcards.tokenizer]["train"]
    return " ".join(
        "--source {}:{}".format(
            config["sources"][s]["path"], config["sources"][s].get("text_key", "text")
        )
        for s in tok["sources"]
    )


def tokenizer_ref(tokenizer):
    return zconfig.tokenizer_ref(config, tokenizer)


def tokenizer_input(wildcards):
    tok = wildcards.tokenizer
    return [] if "hub" in config["tokenizers"][tok] else [f"results/tokenizers/{tok}"]


def eos_token(wildcards):
    tok = config["tokenizers"][wildcards.tokenizer]
    return tok.get("eos_token", "<|end_of_text|>") if "hub" in tok else "<|endoftext|>"


def tokenized_dirs(lang):
    return zconfig.tokenized_dirs(config, lang)


def pretrain_inputs(wildcards):
    lc = lang_conf(wildcards.lang)
    inputs = {"data": tokenized_dirs(wildcards.lang)}
    if "hub" not in config["tokenizers"][lc["tokenizer"]]:
        inputs["tokenizer"] = f"results/tokenizers/{lc['tokenizer']}"
    return inputs


def pretrain_spec(lang):
    return zconfig.pretrain_spec(config, lang)


def backend(lang):
    return lang_conf(lang)["pretrain"].get("backend", "hf")


def langs_regex(kind):
    """Wildcard constraint matching the languages of one backend (never-matching if none)."""
    langs = [lang for lang in LANGS if backend(lang) == kind]
    return "|".join(langs) if langs else "(?!)"


def nano(lang):
    return lang_conf(lang)["pretrain"]["nanotron"]


def pretrain_nodes(lang):
    pre = lang_conf(lang)["pretrain"]
    if backend(lang) == "nanotron":
        return pre["nanotron"]["nodes"]
    return pre.get("nodes", 1)


def pretrain_nproc(lang):
    if backend(lang) == "nanotron":
        return lang_conf(lang)["pretrain"]["nanotron"]["gpus_per_node"]
    return lang_conf(lang)["pretrain"].get("nproc_per_node", 1)


# ---------------------------------------------------------------- models and evals


def checkpoint_models(lang):
    return [f"{lang}-step{s}" for s in lang_conf(lang)["eval"]["checkpoints"]]


def parse_model(model):
    """(lang, step) for a pretraining checkpoint model name, else None."""
    m = re.fullmatch(r"([a-z]{2,3})-step(\d+)", model)
    if m and m.group(1) in config["languages"]:
        return m.group(1), int(m.group(2))
    return None


POSTTRAIN = config.get("posttrain", {})
CHAT_TEMPLATE = "resources/chat_templates/chatml.jinja"


def baseline(model):
    return config.get("baselines", {}).get(model)


def model_dir(model):
    """What jobs load for a model name: an HF directory or a hub id."""
    if baseline(model):
        return baseline(model)["model"]
    if model in POSTTRAIN:
        return f"results/posttrain/{model}/model"
    lang, step = parse_model(model)
    if backend(lang) == "nanotron":
        return f"results/models/{model}"
    return f"results/pretrain/{lang}/checkpoints/step-{step}"


@functools.cache
def pretrain_identity(lang):
    """The configured run's identity; what every checkpoint it saves records."""
    from zflow.pretrain_id import run_fingerprint

    world = pretrain_nodes(lang) * pretrain_nproc(lang)
    return run_fingerprint(pretrain_spec(lang), world, with_data=False)


def checkpoint_marker_path(lang, step):
    return f"results/pretrain/{lang}/checkpoints/step-{step}/zflow_checkpoint.json"


def checkpoint_current(lang, step):
    """Is checkpoint ``step`` complete on disk and made by the configured run?"""
    path = Path(checkpoint_marker_path(lang, step))
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return meta.get("config_fingerprint") == pretrain_identity(lang)


def checkpoint_marker(lang, step):
    """The input of a job on an hf checkpoint: its marker file, ancient (a checkpoint never
    triggers a re-run by modification time). A checkpoint not on disk, or made with other
    settings, waits for the pretraining job (a checkpoint rule); one on disk waits for nothing.
    """
    if not checkpoint_current(lang, step):
        checkpoints.pretrain.get(lang=lang)
    return ancient(checkpoint_marker_path(lang, step))


def nanotron_step_dir(lang, step):
    return f"results/pretrain/{lang}/nanotron_checkpoints/{step}"


def nanotron_step_current(lang, step):
    """Is nanotron checkpoint ``step`` complete and made by the configured run?"""
    from zflow.nanotron import IncompleteCheckpoint, check_complete

    d = Path(nanotron_step_dir(lang, step))
    try:
        ident = json.loads((d.parent / "run.json").read_text()).get("identity")
        check_complete(d)
    except (OSError, ValueError, IncompleteCheckpoint):
        return False
    return ident == pretrain_identity(lang)


def nanotron_step_marker(lang, step):
    """The input of a conversion: as checkpoint_marker, for a nanotron checkpoint."""
    if not nanotron_step_current(lang, step):
        checkpoints.pretrain_nanotron.get(lang=lang)
    return ancient(f"{nanotron_step_dir(lang, step)}/checkpoint_metadata.json")


def model_identity(model):
    """A param of every job on ``model``: changes when the model would be a different one."""
    if baseline(model):
        return baseline(model)["model"]
    if model in POSTTRAIN:
        return f"posttrain:{model}"
    lang, step = parse_model(model)
    return f"{pretrain_identity(lang)}:step-{step}"


def model_deps(model):
    """The file or directory a job on ``model`` depends on (the job that makes it)."""
    if baseline(model):
        path = baseline(model)["model"]
        return [path] if os.path.isdir(path) else []  # a hub id: the prefetched cache
    if model in POSTTRAIN:
        return [f"results/posttrain/{model}/summary.json"]
    parsed = parse_model(model)
    if parsed is None:
        raise WorkflowError(f"unknown model '{model}'")
    lang, step = parsed
    if backend(lang) == "nanotron":
        return [f"results/models/{model}"]
    return [checkpoint_marker(lang, step)]


def checkpoints_on_disk(lang):
    """Steps of the complete checkpoints of the configured run now on disk."""
    if backend(lang) == "nanotron":
        root, current = Path(nanotron_step_dir(lang, 0)).parent, nanotron_step_current
        steps = [d.name for d in root.glob("*")]
    else:
        root, current = (
            Path(checkpoint_marker_path(lang, 0)).parents[1],
            checkpoint_current,
        )
        steps = [d.name.split("-", 1)[1] for d in root.glob("step-*")]
    return sorted(int(s) for s in steps if s.isdigit() and current(lang, int(s)))


def evals_on_disk(lang):
    """`evals_<lang>`: every complete checkpoint on disk on the language's tasks."""
    return [
        f"results/evals/{lang}-step{s}/{t}.json"
        for s in checkpoints_on_disk(lang)
        for t in lang_conf(lang)["eval"]["tasks"]
    ]


def model_lang(model):
    """The pretraining language a model descends from (None for a baseline)."""
    if model in POSTTRAIN:
        return model_lang(POSTTRAIN[model]["base"])
    parsed = parse_model(model)
    return parsed[0] if parsed else None


def model_path(wildcards):
    return model_dir(wildcards.model)


def model_input(wildcards):
    return model_deps(wildcards.model)


def task_conf(wildcards):
    return config["tasks"][wildcards.task]


def eval_args(wildcards):
    t = task_conf(wildcards)
    e = config.get("eval", {})
    args = [
        f"--lm-eval-task {t['lm_eval_task']}",
        f"--num-fewshot {t.get('num_fewshot', 0)}",
        f"--metric {t['metric']}",
        f"--batch-size {e.get('batch_size', 'auto')}",
        f"--max-batch-size {e.get('max_batch_size', 64)}",
        f"--device {e.get('device', 'auto')}",
        f"--dtype {e.get('dtype', 'auto')}",
    ]
    if t.get("include_path"):
        args.append(f"--include-path {t['include_path']}")
    if t.get("limit"):
        args.append(f"--limit {t['limit']}")
    if t.get("chat_template"):
        args.append("--apply-chat-template")
    return " ".join(args)


def eval_versions():
    """Versions that change eval results: part of every eval job's identity (params)."""
    from zflow.io import versions

    v = versions(("lm_eval", "transformers", "torch"))
    return ",".join(f"{k}={v[k]}" for k in ("lm_eval", "transformers", "torch"))


EVAL_VERSIONS = eval_versions()


def eval_files(lang):
    models = checkpoint_models(lang) + lang_conf(lang)["eval"].get("baselines", [])
    return [
        f"results/evals/{m}/{t}.json"
        for m in models
        for t in lang_conf(lang)["eval"]["tasks"]
    ]


def prefetch_args():
    hub = {t["hub"] for t in config["tokenizers"].values() if "hub" in t}
    hub |= {
        b["model"]
        for b in config.get("baselines", {}).values()
        if not os.path.isdir(b["model"])
    }
    tasks = {
        t["lm_eval_task"] for t in config["tasks"].values() if not t.get("include_path")
    }
    return " ".join(
        [f"--model {m}" for m in sorted(hub)] + [f"--task {t}" for t in sorted(tasks)]
    )


def report_columns(wildcards):
    cols = []
    for t in lang_conf(wildcards.lang)["eval"]["tasks"]:
        tc = config["tasks"][t]
        cols.append(f"--column {t}:{tc.get('label', t)}:{tc['metric']}")
    return " ".join(cols)


def report_inputs(wildcards):
    return {
        "evals": eval_files(wildcards.lang),
        "metrics": f"results/pretrain/{wildcards.lang}/train_metrics.csv",
    }


def report_files(lang):
    return [
        f"results/reports/{lang}/progression.md",
        f"results/reports/{lang}/progression.csv",
        f"results/reports/{lang}/progression.png",
        f"results/reports/{lang}/loss.png",
    ]


def unknown_language(wildcards):
    raise WorkflowError(
        f"unknown target language '{wildcards.name}' in target 'all_{wildcards.name}': "
        f"config key 'languages' defines {', '.join(LANGS)}"
    )


# ---------------------------------------------------------------- post-training


def posttrain_regex(method):
    """The posttrain keys of one method, as a wildcard constraint (matches nothing if none)."""
    names = sorted(n for n, p in POSTTRAIN.items() if p["method"] == method)
    return "|".join(re.escape(n) for n in names) or "(?!x)x"


def hub_entry(name):
    """A source or chat dataset that is downloaded from the hub."""
    return config["sources"].get(name) or config["chat_data"][name]


def chat_data_input(name):
    d = config["chat_data"][name]
    return f"results/downloads/{name}.json" if "hub" in d else d["path"]


def posttrain_inputs(wildcards):
    pc = POSTTRAIN[wildcards.name]
    return {
        "base": model_deps(pc["base"]),
        "data": [chat_data_input(d) for d in pc["data"]],
        "template": pc.get("chat_template", CHAT_TEMPLATE),
    }


def posttrain_spec(name):
    pc = POSTTRAIN[name]
    return {
        "base": model_dir(pc["base"]),
        "variant": pc.get("variant"),
        "datasets": [
            {
                "name": d,
                "path": config["chat_data"][d]["path"],
                "format": config["chat_data"][d].get("format", "auto"),
            }
            for d in pc["data"]
        ],
        "chat_template": pc.get("chat_template", CHAT_TEMPLATE),
        "train": pc["train"],
    }


def posttrain_models(lang):
    return [n for n in POSTTRAIN if model_lang(n) == lang]


def compare_tasks():
    groups = config.get("compare", {}).get("groups", {})
    return [t for tasks in groups.values() for t in tasks]


def delta_tasks():
    """Table 9's tasks: the compare tasks a base model can take (no chat template)."""
    return [t for t in compare_tasks() if not config["tasks"][t].get("chat_template")]


def compare_spec(lang):
    cmp = config.get("compare", {})
    groups = {
        g: [
            [
                t,
                cmp.get("labels", {}).get(t, config["tasks"][t].get("label", t)),
                config["tasks"][t]["metric"],
            ]
            for t in tasks
        ]
        for g, tasks in cmp.get("groups", {}).items()
    }
    models = posttrain_models(lang) + cmp.get("baselines", [])
    deltas = [
        [n, POSTTRAIN[n]["base"]]
        for n in posttrain_models(lang)
        if POSTTRAIN[n]["method"] == "sft"
    ]
    return {
        "groups": groups,
        "models": models,
        "deltas": deltas,
        "delta_tasks": delta_tasks(),
    }


def compare_evals(wildcards):
    spec = compare_spec(wildcards.lang)
    files = {
        f"results/evals/{m}/{t}.json" for m in spec["models"] for t in compare_tasks()
    }
    files |= {
        f"results/evals/{m}/{t}.json"
        for pair in spec["deltas"]
        for m in pair
        for t in spec["delta_tasks"]
    }
    return sorted(files)


def compare_files(lang):
    if not config.get("compare") or not posttrain_models(lang):
        return []
    return [f"results/reports/{lang}/compare.{ext}" for ext in ("md", "csv", "png")] + [
        f"results/reports/{lang}/sft_delta.{ext}" for ext in ("md", "csv")
    ]
