"""Eval speed: the seed's lm-eval command against the workflow's eval job, same model, same task.

Builds, in a temporary folder, a ~1,000-item multiple-choice task in the form of the project's
embedded tasks (resources/eval_tasks: a YAML beside its test.jsonl; arithmetic questions made
here, deterministic), a byte-level BPE tokenizer trained on that text, and a random-init Llama of
the seed's 0.4B architecture (bench_pretrain.SEED_MODEL, built by the hf backend's own
``pretrain.build_model``) saved in bfloat16 on a GPU (as converted checkpoints are), float32 on a
CPU. Then times, each as its own process from start to exit:

* ``seed``: the seed's command, ``lm-eval --model hf --model_args pretrained=<model> --tasks <task>
  --device cuda:0 --batch_size 1`` (with ``--include_path`` for the local task);
* ``workflow``: the eval rule's job, ``run_lm_eval.py --spec <spec>``, its spec made by
  ``zflow.plan`` from a config naming the model (a baseline) and the task, with the schema's
  defaults (batch size auto, bfloat16 on a GPU);
* ``workflow_seed_settings`` (not with ``--no-switch``): the same job with
  ``eval.reproduce_seed_command: true``.

Reports each wall time, the speedup, both scores (acc, acc_norm) and their absolute difference.
``--cpu-dry``: a tiny model and 40 items on the CPU (under a minute). ``--json PATH`` writes it all.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(REPO / "bench"))

TASK = "bench_mc_arith"
METRICS = ("acc", "acc_norm")
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
TASK_YAML = f"""task: {TASK}
dataset_path: json
dataset_kwargs:
  data_files:
    test: test.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{query}}}}"
doc_to_target: "{{{{gold}}}}"
doc_to_choice: "{{{{choices}}}}"
should_decontaminate: false
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def items(n: int, seed: int = 0) -> list[dict]:
    """``n`` arithmetic questions with four numeric choices, Italian and English, of varied
    lengths (2 to 7 operands), so that batches hold sequences of different lengths."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.randint(2, 7)
        nums = [rng.randint(1, 999) for _ in range(k)]
        answer = sum(nums)
        expr = " + ".join(map(str, nums))
        q = (f"Domanda: Quanto fa {expr}?\nRisposta:" if i % 2 == 0
             else f"Question: What is {expr}?\nAnswer:")
        wrong = set()
        while len(wrong) < 3:
            w = answer + rng.choice([-1, 1]) * rng.randint(1, 120)
            if w != answer and w > 0:
                wrong.add(w)
        choices = [str(c) for c in sorted(wrong | {answer}, key=lambda _: rng.random())]
        out.append({"id": f"{TASK}-{i:04d}", "query": q, "choices": [" " + c for c in choices],
                    "gold": choices.index(str(answer))})
    return out


def write_task(folder: Path, n: int) -> list[dict]:
    folder.mkdir(parents=True)
    rows = items(n)
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / f"{TASK}.yaml").write_text(TASK_YAML)
    return rows


def write_tokenizer(folder: Path, rows: list[dict], vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<eos>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([r["query"] + "".join(r["choices"]) for r in rows], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<eos>", eos_token="<eos>",
                                   pad_token="<pad>")
    fast.save_pretrained(folder)
    return fast


def write_model(folder: Path, arch: dict, rows: list[dict], dtype: str, device: str) -> dict:
    """The tokenizer and a random-init model (the hf backend's build_model), saved in ``dtype``."""
    import torch
    from pretrain import build_model

    from zflow import schema

    tok = write_tokenizer(folder, rows, min(arch["vocab_size"], 4096))
    model_cfg = {**schema.defaults("languages/*/model"), **arch}
    torch.manual_seed(0)
    with torch.device(device):
        model = build_model({"model": model_cfg, "tokenizer": str(folder)}, tok)
    model.to(getattr(torch, dtype)).save_pretrained(folder)
    n = sum(p.numel() for p in model.parameters())
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"parameters": n, "saved_dtype": dtype, "tokenizer_size": len(tok), **arch}


def eval_spec(model_dir: Path, task_dir: Path, output: Path, reproduce: bool) -> dict:
    """The eval job's spec as the workflow makes it: zflow.plan on the embedded default with the
    model added as a baseline and the task added, its ``eval`` section the schema's defaults
    (the embedded one fixes a CPU batch) but for ``reproduce_seed_command``."""
    import yaml

    from zflow.plan import Plan

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["baselines"] = {"bench": {"model": str(model_dir)}}
    config["tasks"][TASK] = {"lm_eval_task": TASK, "include_path": str(task_dir), "metric": "acc"}
    config["eval"] = {"reproduce_seed_command": reproduce}
    spec = Plan(config, base=REPO, check_files=False).spec("evaluate", model="bench", task=TASK)
    spec["output"] = str(output)
    return spec


def run(cmd: list[str], cwd: Path, log: Path) -> tuple[float, int]:
    env = {**os.environ, **OFFLINE}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "workflow" / "scripts"),
                                                      env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    with log.open("w") as f:
        rc = subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    return time.perf_counter() - t0, rc


def tail(log: Path, n: int = 3000) -> str:
    return log.read_text()[-n:] if log.exists() else ""


def seed_command(model_dir: Path, task_dir: Path, device: str, out: Path) -> list[str]:
    """The seed's command (`lm-eval` is lm_eval.__main__:cli_evaluate, run here through the same
    interpreter), with --include_path for the local task and --output_path for its scores."""
    return [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
            f"pretrained={model_dir}", "--tasks", TASK, "--include_path", str(task_dir),
            "--device", device, "--batch_size", "1", "--output_path", str(out)]


def seed_scores(out: Path) -> dict:
    found = sorted(out.rglob("results_*.json"))
    if not found:
        raise RuntimeError(f"lm-eval wrote no results_*.json under {out}")
    res = json.loads(found[-1].read_text())
    row = res["results"][TASK]
    cfg = res.get("config") or {}
    return {"scores": {m: row[f"{m},none"] for m in METRICS},
            "model_dtype": str(cfg.get("model_dtype", "")).removeprefix("torch.") or None,
            "batch_size": cfg.get("batch_size")}


def workflow_run(name: str, tmp: Path, model_dir: Path, task_dir: Path, reproduce: bool,
                 threads: int) -> dict:
    spec = eval_spec(model_dir, task_dir, tmp / name / "result.json", reproduce)
    (tmp / name).mkdir(parents=True, exist_ok=True)
    (tmp / name / "spec.json").write_text(json.dumps(spec))
    cmd = [sys.executable, str(REPO / "workflow" / "scripts" / "run_lm_eval.py"), "--spec",
           str(tmp / name / "spec.json"), "--threads", str(threads)]
    seconds, rc = run(cmd, tmp, tmp / name / "log.txt")
    r = {"command": "python workflow/scripts/run_lm_eval.py --spec <spec> (the eval rule's job)",
         "spec": {k: spec[k] for k in ("batch_size", "max_batch_size", "device", "dtype",
                                       "reproduce_seed_command")},
         "seconds": round(seconds, 2), "returncode": rc}
    out = Path(spec["output"])
    rec = json.loads(out.read_text()) if out.exists() else {}
    if rc != 0 or rec.get("status") == "failed" or not rec:
        r["error"] = rec.get("error") or tail(tmp / name / "log.txt")
        return r
    r["scores"] = {m: rec["metrics"][m] for m in METRICS}
    r["settings"] = {k: rec["settings"].get(k) for k in (
        "device", "dtype", "batch_size", "max_batch_size", "reproduce_seed_command",
        "batch_sizes_used", "model_dtype")}
    return r


def bench(cpu_dry: bool, n_items: int | None, switch: bool, threads: int, save=None) -> dict:
    """The three runs; ``save(result)`` after each (a run killed later keeps the earlier)."""
    import torch

    from bench_pretrain import SEED_MODEL, TINY_MODEL

    cuda = torch.cuda.is_available() and not cpu_dry
    device = "cuda:0" if cuda else "cpu"
    arch = dict(TINY_MODEL if cpu_dry else SEED_MODEL)
    n = n_items or (40 if cpu_dry else 1000)
    # the checkpoint in the dtype the workflow evaluates in here (bfloat16 on a GPU), so that
    # the seed's command (lm-eval's dtype auto: the saved one) runs the same weights
    saved = "bfloat16" if cuda else "float32"
    result = {"name": "eval", "device": device, "items": n, "task": TASK, "cpu_dry": cpu_dry}
    with tempfile.TemporaryDirectory(prefix="zflow-bench-eval-") as tmp:
        tmp = Path(tmp)
        task_dir = tmp / "tasks" / TASK
        rows = write_task(task_dir, n)
        t0 = time.perf_counter()
        result["model"] = write_model(tmp / "model", arch, rows, saved, device)
        result["model"]["build_seconds"] = round(time.perf_counter() - t0, 2)

        seconds, rc = run(seed_command(tmp / "model", task_dir, device, tmp / "seed_out"),
                          task_dir, tmp / "seed.log")
        seed = {"command": f"lm-eval --model hf --model_args pretrained=<model> --tasks {TASK} "
                           f"--include_path <tasks> --device {device} --batch_size 1",
                "seconds": round(seconds, 2), "returncode": rc}
        try:
            if rc != 0:
                raise RuntimeError(tail(tmp / "seed.log"))
            seed.update(seed_scores(tmp / "seed_out"))
        except Exception as e:  # noqa: BLE001 - recorded, the other runs still go
            seed["error"] = str(e)[-3000:]
        result["seed"] = seed
        save and save(result)
        result["workflow"] = workflow_run("workflow", tmp, tmp / "model", task_dir, False, threads)
        compare(result)
        save and save(result)
        if switch:
            result["workflow_seed_settings"] = workflow_run(
                "workflow_seed_settings", tmp, tmp / "model", task_dir, True, threads)
    compare(result)
    return result


def compare(r: dict) -> None:
    """Speedup of the workflow over the seed's command, and each run's score differences."""
    seed, wf = r["seed"], r["workflow"]
    if seed.get("returncode") == 0 and wf.get("returncode") == 0 and wf["seconds"] > 0:
        r["speedup"] = round(seed["seconds"] / wf["seconds"], 2)
    for key in ("workflow", "workflow_seed_settings"):
        other = r.get(key)
        if other and "scores" in other and "scores" in seed:
            other["abs_diff_vs_seed"] = {m: abs(other["scores"][m] - seed["scores"][m])
                                         for m in METRICS}
            other["max_abs_diff_vs_seed"] = max(other["abs_diff_vs_seed"].values())
            other["equal_to_seed_within_1e-4"] = other["max_abs_diff_vs_seed"] <= 1e-4
    r.pop("failed", None)
    errors = [k for k in ("seed", "workflow", "workflow_seed_settings")
              if k in r and ("error" in r[k] or "scores" not in r[k])]
    r["ok"] = not errors
    if errors:
        r["failed"] = errors


def table(r: dict) -> str:
    rows = ["| run | batch | dtype | wall s | acc | acc_norm | abs diff vs seed |",
            "|---|---|---|---|---|---|---|"]
    seed = r["seed"]
    for key, label in (("seed", "seed's command"), ("workflow", "workflow (defaults)"),
                       ("workflow_seed_settings", "workflow, reproduce_seed_command")):
        x = r.get(key)
        if not x:
            continue
        s = x.get("settings") or {}
        batch = (1 if key == "seed" else f"{s.get('batch_size')} (used {s.get('batch_sizes_used')})")
        dtype = seed.get("model_dtype") if key == "seed" else s.get("model_dtype")
        sc = x.get("scores") or {}
        diff = x.get("max_abs_diff_vs_seed", "—" if key != "seed" else "")
        rows.append(f"| {label} | {batch} | {dtype} | {x['seconds']} | "
                    f"{sc.get('acc', 'FAILED')} | {sc.get('acc_norm', 'FAILED')} | {diff} |")
    rows.append(f"\nspeedup of the workflow's eval over the seed's command: {r.get('speedup', '—')}x "
                f"({r['items']} items, {r['model']['parameters'] / 1e6:.1f}M parameters, "
                f"{r['device']})")
    return "\n".join(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu-dry", action="store_true", help="tiny model, 40 items, on the CPU")
    p.add_argument("--items", type=int, help="questions in the task (default 1000; dry: 40)")
    p.add_argument("--no-switch", action="store_true",
                   help="skip the run with eval.reproduce_seed_command: true")
    p.add_argument("--threads", type=int, default=2, help="the workflow job's --threads")
    p.add_argument("--json", help="write the result here")
    args = p.parse_args(argv)
    def save(r):
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(r, indent=1))

    r = bench(args.cpu_dry, args.items, not args.no_switch, args.threads, save)
    save(r)
    print(table(r))
    if not r["ok"]:
        raise SystemExit(f"bench_eval: {', '.join(r['failed'])} failed")


if __name__ == "__main__":
    main()
