"""Pretrain a Llama model with transformers' Trainer on datatrove-tokenized folders (backend hf).

Layout under ``--run-dir``:
  state/checkpoint-<N>/    Trainer states (weights, optimizer, scheduler, RNG); the newest
                           ``keep_last_states`` are kept for resuming. ``COMPLETE`` marks a
                           state that was fully written.
  checkpoints/step-<N>/    an HF model directory with the tokenizer for every saved step,
                           written under ``.tmp`` and renamed when complete; never deleted.
  state/metrics.csv        per-step loss, lr, grad norm, tokens/s.
Re-running after a kill resumes from the newest complete state and stops at the same step.
A run whose settings changed (anything but ``train_steps`` and the checkpoint schedule) is
moved aside to ``superseded/<time>/`` and a new one starts: nothing is ever deleted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zflow import launch, nanotron  # noqa: E402
from zflow.io import atomic_dir, die, versions, write_json, write_text  # noqa: E402
from zflow.pretrain_id import run_fingerprint as fingerprint  # noqa: E402
from zflow.pretrain_id import schedule  # noqa: E402
from zflow.runs import append_metrics, complete_states, prepare_run_dir, trim_metrics  # noqa: E402

METRIC_FIELDS = ["step", "consumed_tokens", "loss", "lr", "grad_norm", "tokens_per_sec",
                 "elapsed_s"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", required=True,
                   help="JSON: {model: {...}, pretrain: {...}, data: [{folder, weight}], "
                        "tokenizer: dir or hub name}")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--metrics", required=True, help="CSV of per-step metrics (final copy)")
    p.add_argument("--summary", required=True, help="JSON summary of the run")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--nodes", type=int, default=1,
                   help="nodes of the job: one torchrun per node through srun")
    p.add_argument("--nproc-per-node", type=int, default=1)
    return p.parse_args(argv)


def export_checkpoint(state_ckpt: Path, dest: Path, step: int, meta: dict) -> None:
    """Copy the model and tokenizer files of a Trainer state into an HF model directory."""
    if dest.exists():
        return
    skip = ("optimizer", "scheduler", "rng_state", "trainer_state", "training_args", "COMPLETE")
    with atomic_dir(dest) as tmp:
        for f in state_ckpt.iterdir():
            if f.is_file() and not f.name.startswith(skip):
                shutil.copy2(f, tmp / f.name)
        write_json(tmp / "zflow_checkpoint.json", {**meta, "step": step})


def main(argv=None):
    args = parse_args(argv)
    launch.relaunch(__file__, sys.argv[1:] if argv is None else argv, args.nodes,
                    args.nproc_per_node)
    spec = json.loads(args.spec)
    import torch

    torch.set_num_threads(max(1, args.threads))
    from transformers import (AutoTokenizer, LlamaForCausalLM, Trainer, TrainerCallback,
                              TrainingArguments)

    from zflow.mixture import MixtureDataset

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    is_main = rank == 0
    model_cfg, pre = spec["model"], spec["pretrain"]
    run = Path(args.run_dir)
    fp = fingerprint(spec, world, with_data=True)

    tok_path = spec["tokenizer"]
    tokenizer = AutoTokenizer.from_pretrained(tok_path)
    if model_cfg["vocab_size"] < len(tokenizer):
        die(f"model.vocab_size={model_cfg['vocab_size']} is smaller than the tokenizer's "
            f"{len(tokenizer)} tokens ({tok_path})")

    cuda = torch.cuda.is_available()
    dtype = pre.get("dtype", "auto")
    bf16 = dtype == "bfloat16" or (dtype == "auto" and cuda)
    global_batch = pre["micro_batch_size"] * pre.get("batch_accumulation_per_replica", 1) * world
    seq = pre["sequence_length"]
    total = pre["train_steps"] * global_batch
    dataset = MixtureDataset([d["folder"] for d in spec["data"]],
                             [d["weight"] for d in spec["data"]], seq, total)
    for d, n, e in zip(spec["data"], dataset.lengths, dataset.epochs):
        print(f"source {d['folder']}: {n} windows of {seq + 1} tokens, read {e:.2f} times")

    resume = prepare_run_dir(run, fp, is_main)
    if world > 1:
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
        torch.distributed.barrier()
        resume = (complete_states(run / "state") or [(0, None)])[-1][1]
    metrics_path = run / "state" / "metrics.csv"
    start_step = int(resume.name.split("-")[-1]) if resume else 0
    if is_main:
        trim_metrics(metrics_path, start_step, METRIC_FIELDS)
        print(f"resuming from {resume} (step {start_step})" if resume else "starting from scratch")

    torch.manual_seed(pre.get("seed", 8))
    config = nanotron.hf_config({
        **model_cfg,
        "tie_word_embeddings": model_cfg.get("tie_word_embeddings", True),
        "initializer_range": model_cfg.get("init_std", 0.02),  # HF inits weights with this std
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    })
    model = LlamaForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())
    sched_kwargs, warmup = schedule(pre)

    targs = TrainingArguments(
        output_dir=str(run / "state"),
        max_steps=pre["train_steps"],
        per_device_train_batch_size=pre["micro_batch_size"],
        gradient_accumulation_steps=pre.get("batch_accumulation_per_replica", 1),
        learning_rate=pre["learning_rate"],
        adam_beta1=pre.get("adam_beta1", 0.9),
        adam_beta2=pre.get("adam_beta2", 0.95),
        adam_epsilon=pre.get("adam_eps", 1e-8),
        weight_decay=pre.get("weight_decay", 0.01),
        max_grad_norm=pre.get("clip_grad", 1.0),
        lr_scheduler_type="warmup_stable_decay",
        lr_scheduler_kwargs=sched_kwargs,
        warmup_steps=warmup,
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        bf16=bf16,
        seed=pre.get("seed", 8),
        data_seed=pre.get("seed", 8),
        train_sampling_strategy="sequential",
        logging_steps=1,
        save_strategy="steps",
        save_steps=pre["checkpoint_interval"],
        save_total_limit=pre.get("keep_last_states", 2),
        report_to="none",
        disable_tqdm=True,
        dataloader_drop_last=True,
        dataloader_num_workers=0,
        use_cpu=not cuda,
    )

    tokens_per_step = global_batch * seq
    # config_fingerprint: what the workflow compares, before running anything, to tell whether a
    # checkpoint on disk belongs to the configured run (rules/common.smk: checkpoint_marker)
    meta = {"n_params": n_params, "fingerprint": fp,
            "config_fingerprint": fingerprint(spec, world, with_data=False),
            "tokens_per_step": tokens_per_step,
            "tokenizer": tok_path, "versions": versions()}

    class Progress(TrainerCallback):
        def __init__(self):
            self.t_last = time.time()
            self.t0 = time.time()
            self.step_last = start_step

        def on_log(self, a, state, control, logs=None, **kw):
            if not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            now = time.time()
            steps = max(state.global_step - self.step_last, 1)
            row = {
                "step": state.global_step,
                "consumed_tokens": state.global_step * tokens_per_step,
                "loss": logs["loss"],
                "lr": logs.get("learning_rate"),
                "grad_norm": logs.get("grad_norm"),
                "tokens_per_sec": round(steps * tokens_per_step / max(now - self.t_last, 1e-9), 1),
                "elapsed_s": round(now - self.t0, 3),
            }
            self.t_last, self.step_last = now, state.global_step
            append_metrics(metrics_path, row, METRIC_FIELDS)

        def on_save(self, a, state, control, **kw):
            if not state.is_world_process_zero:
                return
            ckpt = run / "state" / f"checkpoint-{state.global_step}"
            (ckpt / "COMPLETE").write_text(str(state.global_step))
            export_checkpoint(ckpt, run / "checkpoints" / f"step-{state.global_step}",
                              state.global_step, meta)
            print(f"checkpoint {state.global_step} complete", flush=True)

    if is_main:  # a kill between a state's COMPLETE marker and its export: export it now
        for step, d in complete_states(run / "state"):
            export_checkpoint(d, run / "checkpoints" / f"step-{step}", step, meta)

    trainer = Trainer(model=model, args=targs, train_dataset=dataset,
                      processing_class=tokenizer, callbacks=[Progress()])
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)

    if is_main:
        final = pre["train_steps"]  # every complete state was exported (on_save, or on resume)
        with metrics_path.open() as f:
            rows = list(csv.DictReader(f))
        write_text(args.metrics, metrics_path.read_text())
        exported = sorted(int(d.name.split("-")[1]) for d in (run / "checkpoints").glob("step-*")
                          if not d.name.endswith(".tmp"))
        write_json(args.summary, {
            "final_step": final,
            "checkpoints": exported,
            "checkpoints_dir": str(run / "checkpoints"),
            "resumed_from_step": start_step,
            "first_loss": float(rows[0]["loss"]) if rows else None,
            "last_loss": float(rows[-1]["loss"]) if rows else None,
            "world_size": world,
            "global_batch_size": global_batch,
            "sequence_length": seq,
            "dtype": "bfloat16" if bf16 else "float32",
            "device": torch.cuda.get_device_name(0) if cuda else "cpu",
            "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if cuda else None,
            "sources": [{"folder": d["folder"], "weight": d["weight"], "windows": n,
                         "epochs": round(e, 3)}
                        for d, n, e in zip(spec["data"], dataset.lengths, dataset.epochs)],
            **meta,
        })
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
