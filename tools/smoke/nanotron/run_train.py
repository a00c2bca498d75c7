"""STAND-IN for nanotron's run_train.py. It does NOT run nanotron: smoke runs on one CPU only.

``run_train.py --config-file nanotron.yaml`` (plain or under a one-process torchrun) reads the
YAML zflow.nanotron.make_config writes and trains a tiny transformers LlamaForCausalLM built from
``model.model_config`` (float32 on CPU; the weights are saved in ``model.dtype``), so the workflow
around nanotron (pre-flight, launch, log parsing, checkpoint listing, conversion, resume) runs
end to end without a GPU. From the YAML, with nanotron's meaning (the pin d22eb809):
- tokens: sequence_length, micro_batch_size x batch_accumulation_per_replica (the global batch:
  one process, so dp = tp = pp = 1 is required), train_steps;
- data_stages: at each step the last stage whose start_training_step was reached; its
  dataset_folder list read with datatrove's DatatroveFolderDataset (top-level ``*.ds``, token
  size from the ``.metadata``, data.dataset.shuffle_files with data.seed), blended by
  dataset_weights (uniform when absent) with Megatron's max-error rule (nanotron's
  BlendableDataset, train_steps x global batch long); as at the pin (zflow.nanotron,
  "data stages at the pin", with file:line), each stage reads its blend from its first
  position, so its folders from their first sample, and a resume continues the first and the
  last stage but restarts a stage between them (zflow.nanotron.stage_position);
  checkpoint_metadata.json's per-stage counts and per-folder token counters as nanotron keeps
  them (every stage listed; the counter advanced by the global step's blend positions);
- optimizer: torch AdamW (adam_beta1/2, adam_eps, weight_decay), clip_grad (the logged grad_norm
  is the unclipped one), learning_rate_scheduler with nanotron's warm-up / constant / decay
  formulas: step N updates with lr(N - 1) and logs lr(N), as nanotron's LambdaLR does (so
  step 1 updates with lr 0 under a linear warm-up);
- model: init_method.std, make_vocab_size_divisible_by, dtype; general.seed; tokenizer (its
  length must equal the padded vocab_size, as nanotron asserts);
- checkpoints: checkpoint_interval, save_final_state, checkpoints_path, resume_checkpoint_path
  (its latest.txt), load_optimizer.
One log line per step in nanotron's format (zflow.nanotron.parse_log reads it; model_tflops is an
estimate). Checkpoints: nanotron's layout (zflow.nanotron.write_checkpoint) with the full
config.yaml, checkpoint_metadata.json (consumed samples and tokens per stage and folder), the
AdamW state in optimizer/standin_adamw.pt (not nanotron's format) and standin_probe.pt (float32
logits of the saved weights on fixed ids: tests compare the converted model with them), written
aside (``<root>/.standin-<step>``) and moved in, then latest.txt, then model_config.json (nanotron's
order, zflow.nanotron.WRITE_ORDER). Resuming reloads the weights
(rounded to model.dtype: close to, not bitwise equal to, an uninterrupted run), the AdamW state,
the step count, the LR schedule and the data position. Not modelled: parallelism, mixed
precision, save_initial_state, init_method.path, validation.
``parity_logits(step_dir, ids)``: the step's logits, where the convert_checkpoint job asks
nanotron for them (zflow.nanotron_parity; zflow.parity: conversion parity).
ZFLOW_STANDIN_FAIL_AFTER=N exits 1 after step N (tests: an interrupted run);
ZFLOW_STANDIN_KILL_BEFORE_MODEL_CONFIG=N exits 1 between step N's latest.txt and model_config.json.
ZFLOW_STANDIN_TRACE=FILE appends one JSON line per step: {step, stage, samples: [[folder, j]]}
(the samples read: tests compare them with zflow.nanotron.stage_reads).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from zflow import nanotron, tokenized

STANDIN = ("zflow nanotron STAND-IN (tools/smoke/nanotron/run_train.py): this does NOT run "
           "nanotron; a tiny Llama trained on CPU for smoke runs only")


def log(msg: str) -> None:  # nanotron's console format (rank tags only for dims > 1)
    print(f"\033[2;3m{time.strftime('%m/%d %H:%M:%S')} [INFO]\033[0m: {msg}", flush=True)


def human(x: float) -> str:
    """nanotron's human_format, with the suffixes of the seed's log (B for 1e9)."""
    if abs(x) < 1:
        return f"{x:.3g}"
    x, i = float(f"{x:.3g}"), 0
    while abs(x) >= 1000 and i < 4:
        x, i = x / 1000, i + 1
    return f"{x:f}".rstrip("0").rstrip(".") + ["", "K", "M", "B", "T"][i]


def lr_at(step: int, s: dict, train_steps: int) -> float:
    """The learning rate after ``step`` scheduler steps (nanotron's lr_scheduler_builder)."""
    lr, warm, low = s["learning_rate"], s.get("lr_warmup_steps") or 0, s.get("min_decay_lr") or 0
    start, decay = s.get("lr_decay_starting_step"), s.get("lr_decay_steps")
    if decay is None:
        decay = train_steps - warm - (start or 0)
    start = warm if start is None else start
    if warm == 0 and decay == 0:
        return lr
    if s.get("lr_warmup_style") and step <= warm:
        return lr * step / max(warm, 1) if s["lr_warmup_style"] == "linear" else lr
    if step < start:
        return lr
    if s.get("lr_decay_style") and step < start + decay:
        f = (step - start) / decay
        shape = {"cosine": (1 + math.cos(math.pi * f)) / 2, "linear": 1 - f,
                 "1-sqrt": 1 - math.sqrt(f)}
        return low + (lr - low) * shape[s["lr_decay_style"]]
    return low


def stage_data(cfg: dict, i: int, n: int):
    """Stage i's folders as datasets and the first n positions of its blend as (folder index,
    sample) pairs: each folder's samples in order from its first (helpers.cpp:61-82)."""
    from datatrove.utils.dataset import DatatroveFolderDataset

    st = cfg["data_stages"][i]
    ds_cfg, seq = st["data"]["dataset"], cfg["tokens"]["sequence_length"]
    folders = ds_cfg["dataset_folder"]
    sets = [DatatroveFolderDataset(f, seq, filename_pattern="*.ds", recursive=False,
                                   token_size=tokenized.folder_metadata(f)[1],
                                   shuffle=bool(ds_cfg.get("shuffle_files")),
                                   seed=st["data"]["seed"])
            for f in folders]
    taken, order = [0] * len(folders), []
    for d in nanotron.blend_order(ds_cfg.get("dataset_weights") or [1.0] * len(folders), n):
        order.append((d, taken[d]))
        taken[d] += 1
    return folders, sets, order


def save(cfg, model, optim, step, stages_meta, stage_idx, gbs):
    ck, mc = cfg["checkpoints"], cfg["model"]["model_config"]
    root = Path(ck["checkpoints_path"])
    aside = root / f".standin-{step}"
    shutil.rmtree(aside, ignore_errors=True)
    dtype, frozen = getattr(torch, cfg["model"]["dtype"]), copy.deepcopy(model).eval()
    for q in frozen.parameters():  # the weights as saved (rounded to model.dtype), in float32
        q.data = q.data.to(dtype).float()
    # config.yaml, the weights, the metadata; latest.txt and model_config.json below
    d = nanotron.write_checkpoint(frozen, aside, step, rope_interleaved=mc["rope_interleaved"],
                                  dtype=dtype, config=cfg, stop_after="checkpoint_metadata.json")
    seq = cfg["tokens"]["sequence_length"]
    (d / "checkpoint_metadata.json").write_text(json.dumps({
        "tp": 1, "dp": 1, "cp": 1, "version": "1.5", "metas": {
            "last_train_step": step, "consumed_train_samples": step * gbs,
            "consumed_tokens_total": step * gbs * seq, "last_stage_idx": stage_idx,
            "data_stages": stages_meta}}, indent=2))
    (d / "optimizer").mkdir()
    torch.save(optim.state_dict(), d / "optimizer/standin_adamw.pt")
    ids = torch.arange(min(seq, 16)).unsqueeze(0) % frozen.config.vocab_size
    with torch.no_grad():
        torch.save({"input_ids": ids, "logits": frozen(ids).logits}, d / "standin_probe.pt")
    shutil.rmtree(root / str(step), ignore_errors=True)
    d.rename(root / str(step))
    shutil.rmtree(aside)
    (root / "latest.txt").write_text(str(step))
    if step == int(os.environ.get("ZFLOW_STANDIN_KILL_BEFORE_MODEL_CONFIG", "0")):
        sys.exit(f"stand-in: killed between latest.txt and model_config.json of step {step}")
    # model_config.json after latest.txt, as nanotron (zflow.nanotron.WRITE_ORDER)
    (root / str(step) / nanotron.MODEL_CONFIG).write_text(
        json.dumps(nanotron.derived_model_config(cfg)))
    log(f"[Saving checkpoint] step {step} -> {root / str(step)}")


def parity_logits(step_dir, input_ids) -> torch.Tensor:
    """The conversion-parity entry point (zflow.nanotron_parity asks it where nanotron would
    load the step, tp=1, and compute its logits): the step loaded as this stand-in loads it to
    resume (zflow.nanotron.read_checkpoint: zflow's reader, so NOT an independent check of the
    converter), in float32, and its float32 logits ``[batch, seq, vocab]`` on ``input_ids``."""
    from transformers import LlamaForCausalLM

    sd, mc = nanotron.read_checkpoint(step_dir)
    torch.manual_seed(0)
    model = LlamaForCausalLM(nanotron.hf_config(mc)).float().eval()
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in sd.items()},
                                                strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    if mc.get("tie_word_embeddings"):
        model.tie_weights()
    with torch.no_grad():
        return model(torch.as_tensor(np.asarray(input_ids), dtype=torch.long)).logits.float()


def main() -> None:
    p = argparse.ArgumentParser(description=STANDIN)
    p.add_argument("--config-file", required=True)
    cfg = yaml.safe_load(Path(p.parse_args().config_file).read_text())
    log(STANDIN)
    tok, opt, ck, par = cfg["tokens"], cfg["optimizer"], cfg["checkpoints"], cfg["parallelism"]
    if int(os.environ.get("WORLD_SIZE", "1")) != 1 or par["dp"] * par["tp"] * par["pp"] != 1:
        sys.exit("stand-in: one process only (WORLD_SIZE 1, dp = tp = pp = 1)")
    if opt["optimizer_factory"]["name"] != "adamW" or "std" not in cfg["model"]["init_method"]:
        sys.exit("stand-in: only optimizer adamW and init_method.std are modelled")
    steps, seq, mbs, acc = (tok[k] for k in ("train_steps", "sequence_length", "micro_batch_size",
                                             "batch_accumulation_per_replica"))
    gbs, sched, clip = mbs * acc, opt["learning_rate_scheduler"], opt.get("clip_grad")
    mc = dict(cfg["model"]["model_config"], initializer_range=cfg["model"]["init_method"]["std"])
    div = cfg["model"].get("make_vocab_size_divisible_by") or 1
    mc["vocab_size"] = -(-mc["vocab_size"] // div) * div  # nanotron pads the vocabulary
    from transformers import AutoTokenizer, LlamaForCausalLM

    n_tok = len(AutoTokenizer.from_pretrained(cfg["tokenizer"]["tokenizer_name_or_path"]))
    if n_tok != mc["vocab_size"]:  # as nanotron's run_train.py asserts
        sys.exit(f"stand-in: the tokenizer has {n_tok} tokens, the model {mc['vocab_size']}")
    torch.manual_seed(cfg["general"]["seed"])
    model = LlamaForCausalLM(nanotron.hf_config(mc)).float().train()
    f = opt["optimizer_factory"]
    optim = torch.optim.AdamW(model.parameters(), lr=sched["learning_rate"], eps=f["adam_eps"],
                              betas=(f["adam_beta1"], f["adam_beta2"]),
                              weight_decay=opt["weight_decay"])
    resume = ck.get("resume_checkpoint_path")
    last = (nanotron.finished_step(resume) if resume else None) or 0
    if last:
        if last >= steps:
            sys.exit(f"stand-in: train_steps {steps} must exceed the checkpoint's step {last}")
        sd, _ = nanotron.read_checkpoint(Path(resume) / str(last))
        missing, unexpected = model.load_state_dict({k: v.float() for k, v in sd.items()},
                                                    strict=False)
        assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
        state = Path(resume) / str(last) / "optimizer/standin_adamw.pt"
        if ck.get("load_optimizer", True) and state.exists():
            optim.load_state_dict(torch.load(state))
        log(f"resuming from {Path(resume) / str(last)}: step {last + 1} of {steps}")
    stages = cfg["data_stages"]
    starts = [st["start_training_step"] for st in stages]
    # nanotron's DataStageMetadata of every stage (trainer.py:250-255), a checkpoint's on resume
    metas = [{"name": st["name"], "start_training_step": st["start_training_step"],
              "consumed_train_samples": 0, "consumed_tokens_per_dataset_folder": {}}
             for st in stages]
    if last:
        saved = json.loads((Path(resume) / str(last) / "checkpoint_metadata.json").read_text())
        by_start = {m["start_training_step"]: m
                    for m in saved.get("metas", {}).get("data_stages") or []}
        metas = [{**m, **by_start.get(m["start_training_step"], {})} for m in metas]
    trace = os.environ.get("ZFLOW_STANDIN_TRACE")
    n_params = sum(q.numel() for q in model.parameters())
    flops = (6 * n_params + 12 * mc["num_hidden_layers"] * mc["hidden_size"] * seq) * gbs * seq
    cur, fail_after = None, int(os.environ.get("ZFLOW_STANDIN_FAIL_AFTER", "0"))
    for step in range(last + 1, steps + 1):
        t0 = time.time()
        i, base = nanotron.stage_position(starts, step, last + 1, gbs)
        if i != cur:
            cur, (folders, sets, order) = i, stage_data(cfg, i, steps * gbs)
            # its logged counters start from the stage's own (the first stage, built at once)
            # or the last stage's (the others: run_train.py:348-355 binds them late)
            seed = metas[0 if i == 0 else -1]["consumed_tokens_per_dataset_folder"]
            counter = [seed.get(f, 0) for f in folders]
            log(f"data stage '{stages[i]['name']}' from step {starts[i]}: {len(folders)} folders,"
                f" read from position {base} of its blend")
        for g in optim.param_groups:
            g["lr"] = lr_at(step - 1, sched, steps)
        losses, read = [], []
        for m in range(acc):
            rows = []
            for k in range(base + m * mbs, base + (m + 1) * mbs):
                d, j = order[k]
                if j >= len(sets[d]):
                    raise IndexError(f"{folders[d]}: sample {j} asked, it holds {len(sets[d])}")
                rows.append(sets[d][j]["input_ids"])
                read.append([folders[d], j])
            batch = torch.stack(rows)
            logits = model(input_ids=batch[:, :-1]).logits
            loss = F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
            (loss / acc).backward()
            losses.append(loss.item())
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), math.inf if clip is None else clip)
        optim.step()
        optim.zero_grad()
        dt = time.time() - t0
        # nanotron's bookkeeping (trainer.py:563-585): the counters advance by the blend's
        # positions of the global step, whatever the loader read
        for d, _ in order[(step - 1) * gbs:step * gbs]:
            counter[d] += seq
        metas[i]["consumed_tokens_per_dataset_folder"].update(zip(folders, counter))
        metas[i]["consumed_train_samples"] += gbs
        if trace:
            with open(trace, "a") as out:
                out.write(json.dumps({"step": step, "stage": stages[i]["name"],
                                    "samples": read}) + "\n")
        fields = [("consumed_tokens", step * gbs * seq), ("time_per_iteration_ms", dt * 1000),
                  ("tokens_per_sec", gbs * seq / dt), ("tokens_per_sec_per_gpu", gbs * seq / dt),
                  ("global_batch_size", gbs * seq), ("grad_norm", norm.item()),
                  ("lm_loss", sum(losses) / acc), ("lr", lr_at(step, sched, steps)),
                  ("model_tflops_per_gpu", flops / dt / 1e12)]
        if clip is None:  # nanotron logs grad_norm only when it clips
            fields.pop(5)
        eta = datetime.timedelta(seconds=int((steps - step) * dt))
        log(" | ".join([f"iteration: {step} / {steps}"] + [f"{k}: {human(v)}" for k, v in fields]
                       + [f"eta: {eta}"]))
        if step % ck["checkpoint_interval"] == 0 or (step == steps and ck.get("save_final_state")):
            save(cfg, model, optim, step, copy.deepcopy(metas), i, gbs)
        if step == fail_after:
            sys.exit(f"stand-in: stopped after step {step} (ZFLOW_STANDIN_FAIL_AFTER)")
    log(f"training done: step {steps}")


if __name__ == "__main__":
    main()
