"""Evaluate one model on one lm-eval task and write results/evals/<model>/<task>.json.

Runs lm-evaluation-harness through its Python API (``lm_eval.simple_evaluate``, model ``hf``).
A local task folder (``--include-path``) is copied to a temporary folder with its
``data_files`` made absolute, so the task reads the project's own data wherever the job runs.
The output holds lm-eval's results for the task plus provenance: model path and step, task
config, n-shot, and the lm-eval / transformers / torch versions.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zflow.io import die, read_json, versions, write_json  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True, help="model name (as in results/evals/<model>)")
    p.add_argument("--model-path", required=True, help="HF model directory or hub id")
    p.add_argument("--task", required=True, help="task key in the config")
    p.add_argument("--lm-eval-task", required=True)
    p.add_argument("--include-path", default=None)
    p.add_argument("--num-fewshot", type=int, default=0)
    p.add_argument("--metric", required=True)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--batch-size", default="auto")
    p.add_argument("--max-batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--apply-chat-template", action="store_true",
                   help="render prompts with the model's chat template (generation tasks)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output", required=True)
    return p.parse_args(argv)


class _Function(str):
    """An lm-eval ``!function module.attr`` tag, kept as it is through load and dump."""


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


_Loader.add_constructor("!function", lambda loader, node: _Function(loader.construct_scalar(node)))
_Dumper.add_representer(_Function, lambda dumper, v: dumper.represent_scalar("!function", str(v)))


def localize_tasks(src: Path, dst: Path) -> None:
    """Copy task YAMLs, turning relative ``dataset_kwargs.data_files`` into absolute paths."""
    for y in src.rglob("*.yaml"):
        rel = y.relative_to(src)
        out = dst / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            doc = yaml.load(y.read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass
        except yaml.YAMLError:  # YAMLs with other tags are copied as they are
            doc = None
        files = (doc or {}).get("dataset_kwargs", {}).get("data_files") if isinstance(doc, dict) else None
        if isinstance(files, dict):
            for split, f in files.items():
                if isinstance(f, str) and not os.path.isabs(f):
                    files[split] = str((y.parent / f).resolve())
            out.write_text(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True))
        else:
            shutil.copy2(y, out)
    for f in src.rglob("*.py"):  # helpers referenced by !function
        (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dst / f.relative_to(src))


def main(argv=None):
    args = parse_args(argv)
    import torch

    torch.set_num_threads(max(1, args.threads))
    import lm_eval
    from lm_eval.tasks import TaskManager

    device = args.device
    if device == "auto":
        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    dtype = args.dtype
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    batch = args.batch_size if args.batch_size == "auto" else int(args.batch_size)

    step = None
    ck = Path(args.model_path) / "zflow_checkpoint.json"
    if ck.exists():
        step = read_json(ck).get("step")

    with tempfile.TemporaryDirectory(prefix="zflow-tasks-") as tmp:
        if args.include_path:
            localize_tasks(Path(args.include_path), Path(tmp))
            tm = TaskManager(include_path=tmp, include_defaults=False)
        else:
            tm = TaskManager()
        if args.lm_eval_task not in tm.all_tasks:
            die(f"task '{args.lm_eval_task}' not found by lm-eval"
                + (f" under {args.include_path}" if args.include_path else ""))
        t0 = time.time()
        out = lm_eval.simple_evaluate(
            model="hf",
            model_args={"pretrained": args.model_path, "dtype": dtype},
            tasks=[args.lm_eval_task],
            num_fewshot=args.num_fewshot,
            batch_size=batch,
            max_batch_size=args.max_batch_size,
            device=device,
            limit=args.limit,
            task_manager=tm,
            apply_chat_template=args.apply_chat_template,
            fewshot_as_multiturn=args.apply_chat_template and args.num_fewshot > 0,
            log_samples=False,
            random_seed=0,
            numpy_random_seed=1234,
            torch_random_seed=1234,
            fewshot_random_seed=1234,
        )
        seconds = time.time() - t0
    res = out["results"][args.lm_eval_task]
    metrics = {k.split(",")[0]: v for k, v in res.items()
               if "," in k and isinstance(v, (int, float)) and not k.split(",")[0].endswith("_stderr")}
    stderr = {k.split(",")[0][: -len("_stderr")]: v for k, v in res.items()
              if k.split(",")[0].endswith("_stderr") and isinstance(v, (int, float))}
    if args.metric not in metrics:
        die(f"task {args.task}: metric '{args.metric}' not produced by {args.lm_eval_task} "
            f"(it gives: {', '.join(sorted(metrics))})")
    value = metrics[args.metric]
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        die(f"task {args.task}: metric {args.metric} is not a number: {value!r}")
    v = versions()
    write_json(args.output, {
        "model": args.model,
        "model_path": str(args.model_path),
        "step": step,
        "task": args.task,
        "lm_eval_task": args.lm_eval_task,
        "num_fewshot": args.num_fewshot,
        "limit": args.limit,
        "metric": args.metric,
        "value": value,
        "metrics": metrics,
        "stderr": stderr,
        "n_samples": out.get("n-samples", {}).get(args.lm_eval_task),
        "lm_eval_results": res,
        "task_config": out.get("configs", {}).get(args.lm_eval_task),
        "task_hash": out.get("task_hashes", {}).get(args.lm_eval_task),
        "settings": {"device": device, "dtype": dtype, "batch_size": args.batch_size,
                     "apply_chat_template": args.apply_chat_template,
                     "max_batch_size": args.max_batch_size,
                     "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                     "slurm_job_id": os.environ.get("SLURM_JOB_ID")},
        "seconds": round(seconds, 2),
        "lm_eval_version": v.get("lm_eval"),
        "transformers_version": v.get("transformers"),
        "torch_version": v.get("torch"),
        "versions": v,
    })
    print(f"{args.model} {args.task}: {args.metric}={value:.4f} ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
