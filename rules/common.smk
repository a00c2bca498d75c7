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


def baseline(model):
    return config.get("baselines", {}).get(model)


def model_path(wildcards):
    if baseline(wildcards.model):
        return baseline(wildcards.model)["model"]
    lang, step = parse_model(wildcards.model)
    if backend(lang) == "nanotron":
        return f"results/models/{wildcards.model}"
    return f"results/pretrain/{lang}/checkpoints/step-{step}"


def model_input(wildcards):
    if baseline(wildcards.model):
        path = baseline(wildcards.model)["model"]
        return [path] if os.path.isdir(path) else []  # a hub id: the prefetched cache
    parsed = parse_model(wildcards.model)
    if parsed is None:
        raise WorkflowError(f"unknown model '{wildcards.model}'")
    lang, _ = parsed
    if backend(lang) == "nanotron":
        return f"results/models/{wildcards.model}"
    return f"results/pretrain/{lang}/train_summary.json"


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
