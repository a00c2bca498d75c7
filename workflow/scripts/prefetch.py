"""Fill the Hugging Face cache with everything offline compute nodes will need, then check it.

Models and tokenizers (hub ids) are fetched with huggingface_hub; lm-eval tasks are loaded once,
which downloads their datasets into the datasets cache. ``--check-only`` fetches nothing: with
the hub offline it loads each item from the cache and fails with ONE error listing everything
missing. The token comes only from the environment (HF_TOKEN).
"""

from __future__ import annotations

import argparse
import os

from zflow.io import die, read_json, versions, write_json

MODEL_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--spec", help="the job's spec (JSON: models, tasks, output), from zflow.plan")
    p.add_argument("--model", action="append", default=[], help="hub model or tokenizer id")
    p.add_argument("--task", action="append", default=[], help="lm-eval task or group name")
    p.add_argument("--check-only", action="store_true")
    p.add_argument("--output")
    args = p.parse_args(argv)
    if args.spec:
        spec = read_json(args.spec)
        args.model += spec["models"]
        args.task += spec["tasks"]
        args.output = args.output or spec["output"]
    if not args.output:
        p.error("--output (or --spec) is required")
    return args


def missing_models(models) -> list[str]:
    from huggingface_hub import snapshot_download

    out = []
    for m in models:
        try:
            snapshot_download(m, allow_patterns=MODEL_FILES, local_files_only=True)
        except Exception as e:  # noqa: BLE001 - every kind of miss is reported the same way
            out.append(f"model {m}: {type(e).__name__}")
    return out


def missing_tasks(tasks) -> list[str]:
    from lm_eval.tasks import TaskManager

    tm = TaskManager()
    out = []
    for t in tasks:
        if t not in tm.all_tasks:
            out.append(f"task {t}: not an lm-eval task (supply it as an include_path folder)")
            continue
        try:
            tm.load_task_or_group([t])
        except Exception as e:  # noqa: BLE001
            out.append(f"task {t}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
    return out


def missing_nltk(tasks) -> list[str]:
    """lm-eval's IFEval checks need NLTK's punkt_tab (NLTK_DATA, default ~/nltk_data)."""
    if not any("ifeval" in t for t in tasks):
        return []
    import nltk

    try:
        nltk.data.find("tokenizers/punkt_tab")
    except LookupError:
        return ["nltk data punkt_tab (used by lm-eval's ifeval): not under NLTK_DATA"]
    return []


def main(argv=None):
    args = parse_args(argv)
    if not args.check_only:
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ[var] = "0"  # read at import time by the hub libraries
        from huggingface_hub import snapshot_download

        for m in args.model:
            snapshot_download(m, allow_patterns=MODEL_FILES)
        missing_tasks(args.task)  # loading them downloads their datasets
        if missing_nltk(args.task):
            import nltk

            nltk.download("punkt_tab")
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[var] = "1"
    missing = missing_models(args.model) + missing_tasks(args.task) + missing_nltk(args.task)
    if missing:
        die("the Hugging Face cache lacks what offline jobs need "
            f"(HF_HOME={os.environ.get('HF_HOME', '~/.cache/huggingface')}):\n  - "
            + "\n  - ".join(missing) + "\nrun `snakemake prefetch` on a node with hub access")
    write_json(args.output, {"models": args.model, "tasks": args.task, "versions": versions()})
    print(f"cache holds {len(args.model)} models/tokenizers and {len(args.task)} tasks")


if __name__ == "__main__":
    main()
