"""Evaluate one model on one lm-eval task and write results/evals/<model>/<task>.json.

(Not named evaluate.py: a script's folder is first on sys.path, and lm-eval tasks such as
french_bench and humaneval import the Hugging Face ``evaluate`` package.)

Runs lm-evaluation-harness through its Python API (``lm_eval.simple_evaluate``, model ``hf``).
A local task folder (``include_path``) is copied to a temporary folder with its
``data_files`` made absolute, so the task reads the project's own data wherever the job runs
(``localized_data_files``: the YAMLs that needed it; zflow.tables.command prints the same step).
The task may be an lm-eval group: the output keeps the group's aggregate metrics and every
subtask's (name, metric, value, stderr, n; zflow.evals.summarize). It also holds provenance:
model path and step, task config, n-shot, what the job is keyed on, and the versions, and the
settings it ran with (``settings``: device, dtype, batch size, ``reproduce_seed_command``, and
the batch sizes and model dtype lm-eval used).

Fast by default: lm-eval's ``auto`` batch size and bfloat16 on a GPU. Log-likelihood scores can
move slightly with the batch size (padding) and the dtype: ``eval.reproduce_seed_command`` runs
with the seed's command's settings instead (``lm-eval --model hf ... --batch_size 1``: batch 1,
the checkpoint's own dtype).

Failures stay local (zflow.evals, "Failed evals"). The batch size comes from Snakemake's attempt
(``--batch-size`` / ``--max-batch-size``: the spec's, halved at each retry; rules/eval.smk). A GPU
out-of-memory while retries are left (``--retries-left``) and the batch can still shrink exits
non-zero, so Snakemake runs the job again with half the batch. Any other error, or an
out-of-memory on the last attempt, writes a failure record in place of the result (the error's
last line, the log ``--log``) and exits 0: the report is still made, with the eval's cells "—"
and the failure listed, and the next ``snakemake`` invocation runs the eval again.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from zflow import evals, identity
from zflow.io import spec_cli, versions, write_json


def cli(argv=None):
    """spec_cli's ``--spec`` / ``--threads``, and what the rule adds from Snakemake's attempt."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--batch-size", help="this attempt's batch size (default: the spec's)")
    p.add_argument("--max-batch-size", type=int, help="this attempt's max_batch_size")
    p.add_argument("--retries-left", type=int, default=0,
                   help="Snakemake attempts after this one (0: a failure is written as a record)")
    p.add_argument("--log", help="the job's log, named in a failure record")
    extra, rest = p.parse_known_args(argv)
    spec, args = spec_cli(__doc__, rest)
    for k, v in vars(extra).items():
        setattr(args, k, v)
    return spec, args


def settings(spec: dict, batch_size=None, max_batch_size=None) -> dict:
    """Device, dtype and batch size resolved for this machine (the attempt's batch size, when
    given, in place of the spec's). Fast by default: lm-eval's ``auto`` batch size, bfloat16 on a
    GPU. ``reproduce_seed_command``: the seed command's settings (zflow.evals.SEED_COMMAND: batch
    size 1, lm-eval's own dtype ``auto``, the checkpoint's saved one), whatever the spec says."""
    import torch

    device = spec["device"]
    if device == "auto":
        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    seed = spec["reproduce_seed_command"]
    if seed:
        dtype, batch = evals.SEED_COMMAND["dtype"], evals.SEED_COMMAND["batch_size"]
    else:
        dtype = spec["dtype"]
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        batch = spec["batch_size"] if batch_size in (None, "") else batch_size
        batch = int(batch) if str(batch).strip().isdigit() else batch
    return {"device": device, "dtype": dtype, "batch_size": batch,
            "max_batch_size": max_batch_size or spec["max_batch_size"],
            "reproduce_seed_command": seed,
            "bootstrap_iters": spec["bootstrap_iters"],
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
            raise evals.EvalError(f"task '{spec['lm_eval_task']}' not found by lm-eval"
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
        raise evals.EvalError(f"task {spec['task']}: metric '{spec['metric']}' not produced by {name} "
            f"(it gives: {', '.join(sorted(summary['metrics']))})")
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise evals.EvalError(f"task {spec['task']}: metric {spec['metric']} is not a number: {value!r}")
    v = versions()
    return {
        "model": spec["model"], "model_path": spec["model_path"], "step": spec["step"],
        "task": spec["task"], "lm_eval_task": name, "include_path": spec["include_path"],
        "localized_data_files": (evals.relative_data_files(Path(spec["include_path"]))
                                 if spec["include_path"] else []),
        "num_fewshot": spec["num_fewshot"],
        "limit": spec["limit"], "metric": spec["metric"], "value": value,
        "metrics": summary["metrics"], "stderr": summary["stderr"],
        "is_group": summary["is_group"], "subtasks": summary["subtasks"],
        "generated_tokens": evals.generated_tokens(out, name, token_counter(spec["model_path"])),
        "n_samples": out.get("n-samples", {}).get(name) or {"effective": summary["n"]},
        "lm_eval_results": out["results"].get(name), "task_config": out.get("configs", {}).get(name),
        "task_hash": out.get("task_hashes", {}).get(name),
        "settings": {**s, **evals.used_settings(out)},
        "seconds": round(seconds, 2), "identity": identity.fingerprint(spec),
        "keyed_on": spec["keyed_on"], "lm_eval_version": v.get("lm_eval"),
        "transformers_version": v.get("transformers"), "torch_version": v.get("torch"),
        "versions": v, **({"rerun_after": spec["rerun_after"]} if "rerun_after" in spec else {}),
    }


def retry(exc: BaseException, s: dict, retries_left: int) -> bool:
    """Should Snakemake run the job again (exit non-zero)? Only for an out-of-memory, with an
    attempt left and a batch that can still shrink; any other error would only repeat."""
    shrinks = s["batch_size"] > 1 if isinstance(s["batch_size"], int) else s["max_batch_size"] > 1
    return retries_left > 0 and shrinks and evals.is_oom(exc)


def main(argv=None):
    spec, args = cli(argv)
    import torch

    torch.set_num_threads(max(1, args.threads))
    s = settings(spec, args.batch_size, args.max_batch_size)
    t0 = time.time()
    try:
        rec = record(spec, run_lm_eval(spec, s), s, time.time() - t0)
    except Exception as e:  # noqa: BLE001 - every failure is either retried or recorded
        traceback.print_exc()
        if retry(e, s, args.retries_left):
            print(f"out of memory at batch size {s['batch_size']} (max {s['max_batch_size']}): "
                  "Snakemake runs this eval again with half of it", file=sys.stderr)
            raise SystemExit(1) from None
        fail = evals.failure(spec, e, args.log, s, time.time())
        write_json(spec["output"], fail)
        print(f"{spec['model']} {spec['task']}: FAILED, {fail['error']}\nfailure record written to "
              f"{spec['output']} (the report lists it; the next snakemake run retries this eval)",
              file=sys.stderr)
        return
    write_json(spec["output"], rec)
    shown = "—" if rec["value"] is None else f"{rec['value']:.4f}"
    print(f"{spec['model']} {spec['task']}: {spec['metric']}={shown} ({rec['seconds']:.1f} s, "
          f"{len(rec['subtasks'])} subtask metrics)")


if __name__ == "__main__":
    main()
