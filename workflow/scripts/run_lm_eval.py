"""Evaluate one model on one lm-eval task and write results/evals/<model>/<task>.json.

(Not named evaluate.py: a script's folder is first on sys.path, and lm-eval tasks such as
french_bench and humaneval import the Hugging Face ``evaluate`` package.)

Runs lm-evaluation-harness through its Python API (``lm_eval.simple_evaluate``, model ``hf``).
A local task folder (``include_path``) is copied to a temporary folder with its
``data_files`` made absolute, so the task reads the project's own data wherever the job runs.
The task may be an lm-eval group: the output keeps the group's aggregate metrics and every
subtask's (name, metric, value, stderr, n; zflow.evals.summarize). It also holds provenance:
model path and step, task config, n-shot, what the job is keyed on, and the versions.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

from zflow import evals, identity
from zflow.io import die, spec_cli, versions, write_json


def settings(spec: dict) -> dict:
    """Device, dtype and batch size resolved for this machine."""
    import torch

    device = spec["device"]
    if device == "auto":
        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    dtype = spec["dtype"]
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    batch = spec["batch_size"]
    return {"device": device, "dtype": dtype,
            "batch_size": batch if batch == "auto" else int(batch),
            "max_batch_size": spec["max_batch_size"], "bootstrap_iters": spec["bootstrap_iters"],
            "apply_chat_template": spec["apply_chat_template"],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID")}


def run_lm_eval(spec: dict, s: dict) -> dict:
    """lm-eval's simple_evaluate on one task or group, local task folders made absolute."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory(prefix="zflow-tasks-") as tmp:
        if spec["include_path"]:
            evals.localize_tasks(Path(spec["include_path"]), Path(tmp))
            tm = TaskManager(include_path=tmp, include_defaults=False)
        else:
            tm = TaskManager()
        if spec["lm_eval_task"] not in tm.all_tasks:
            die(f"task '{spec['lm_eval_task']}' not found by lm-eval"
                + (f" under {spec['include_path']}" if spec["include_path"] else ""))
        chat = spec["apply_chat_template"]
        return lm_eval.simple_evaluate(
            model="hf", model_args={"pretrained": spec["model_path"], "dtype": s["dtype"]},
            tasks=[spec["lm_eval_task"]], num_fewshot=spec["num_fewshot"],
            batch_size=s["batch_size"], max_batch_size=s["max_batch_size"], device=s["device"],
            limit=spec["limit"], task_manager=tm, apply_chat_template=chat,
            bootstrap_iters=spec["bootstrap_iters"],
            fewshot_as_multiturn=chat and spec["num_fewshot"] > 0, log_samples=True,
            random_seed=0, numpy_random_seed=1234, torch_random_seed=1234,
            fewshot_random_seed=1234)


def token_counter(model_path: str):
    """A text's token count with the model's own tokenizer (generated tokens per item); the
    tokenizer is loaded on the first count, so a task without generation never loads it."""
    tok = None

    def count(text: str) -> int:
        nonlocal tok
        if tok is None:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(model_path)
        return len(tok(text, add_special_tokens=False)["input_ids"])

    return count


def record(spec: dict, out: dict, s: dict, seconds: float) -> dict:
    """The eval JSON: the task's (or group's aggregate) metrics, every subtask's, provenance."""
    name = spec["lm_eval_task"]
    summary = evals.summarize(out, name)
    value = summary["metrics"].get(spec["metric"])
    if value is None and not summary["is_group"]:
        die(f"task {spec['task']}: metric '{spec['metric']}' not produced by {name} "
            f"(it gives: {', '.join(sorted(summary['metrics']))})")
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
        die(f"task {spec['task']}: metric {spec['metric']} is not a number: {value!r}")
    v = versions()
    return {
        "model": spec["model"], "model_path": spec["model_path"], "step": spec["step"],
        "task": spec["task"], "lm_eval_task": name, "include_path": spec["include_path"],
        "num_fewshot": spec["num_fewshot"],
        "limit": spec["limit"], "metric": spec["metric"], "value": value,
        "metrics": summary["metrics"], "stderr": summary["stderr"],
        "is_group": summary["is_group"], "subtasks": summary["subtasks"],
        "generated_tokens": evals.generated_tokens(out, name, token_counter(spec["model_path"])),
        "n_samples": out.get("n-samples", {}).get(name) or {"effective": summary["n"]},
        "lm_eval_results": out["results"].get(name), "task_config": out.get("configs", {}).get(name),
        "task_hash": out.get("task_hashes", {}).get(name), "settings": s,
        "seconds": round(seconds, 2), "identity": identity.fingerprint(spec),
        "keyed_on": spec["keyed_on"], "lm_eval_version": v.get("lm_eval"),
        "transformers_version": v.get("transformers"), "torch_version": v.get("torch"),
        "versions": v,
    }


def main(argv=None):
    spec, args = spec_cli(__doc__, argv)
    import torch

    torch.set_num_threads(max(1, args.threads))
    s = settings(spec)
    t0 = time.time()
    out = run_lm_eval(spec, s)
    rec = record(spec, out, s, time.time() - t0)
    write_json(spec["output"], rec)
    shown = "—" if rec["value"] is None else f"{rec['value']:.4f}"
    print(f"{spec['model']} {spec['task']}: {spec['metric']}={shown} ({rec['seconds']:.1f} s, "
          f"{len(rec['subtasks'])} subtask metrics)")


if __name__ == "__main__":
    main()
