"""Post-train a causal LM with TRL: SFT (SFTTrainer) or DPO (DPOTrainer), then a generation check.

SFT uses the project's ChatML template (resources/chat_templates/chatml.jinja: the seed's Axolotl
template with tool calls and {% generation %} markers), so that with ``assistant_only_loss`` only
assistant turns, their ``<|im_end|>`` included, carry loss (Axolotl: roles_to_train [assistant],
train_on_eos turn). ``<|im_end|>`` is the eos and pad token. DPO trains on prompt/chosen/rejected
message lists with the policy's own starting weights as the reference (ref_model=None).

Layout under ``--run-dir``:
  state/checkpoint-<N>/   Trainer states (COMPLETE-marked); a re-run resumes from the newest.
  model/                  the final HF model directory with tokenizer and chat template, written
                          under ``model.tmp`` and renamed when complete (and after the check).
Settings that changed move the old run to ``superseded/<time>/``. Several processes (torchrun,
FSDP from the config) are started by the script itself, like pretraining.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zflow import chat, launch
from zflow.io import die, versions, write_json, write_text
from zflow.runs import append_metrics, complete_states, prepare_run_dir, trim_metrics

IM_END = "<|im_end|>"
METRIC_FIELDS = ["step", "epoch", "loss", "eval_loss", "lr", "grad_norm", "rewards_accuracy",
                 "rewards_margin", "elapsed_s"]
# Fixed prompts of the generation check: each must render and produce a non-empty answer.
SMOKE = [
    [{"role": "user", "content": "Qual è la capitale d'Italia?"}],
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Sei un assistente utile."},
     {"role": "user", "content": "Ciao! Come stai?"},
     {"role": "assistant", "content": "Bene, grazie. Come posso aiutarti?"},
     {"role": "user", "content": "Dimmi il colore del cielo."}],
]
SMOKE_TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=("sft", "dpo"), required=True)
    p.add_argument("--spec", required=True,
                   help="JSON: {base, datasets: [{name, path, format}], chat_template, train: {...},"
                        " variant}")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--metrics", required=True, help="CSV of logged metrics (final copy)")
    p.add_argument("--summary", required=True, help="JSON summary of the run")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--nproc-per-node", type=int, default=1)
    return p.parse_args(argv)


def load_data(spec: dict, method: str) -> list[dict]:
    rows = []
    for d in spec["datasets"]:
        try:
            rows += chat.load(d["path"], d.get("format", "auto"), method, label=d["name"])
        except chat.DataError as e:
            die(f"dataset '{d['name']}' (config key chat_data.{d['name']}): {e}")
    return rows


# Settings that change no weight: a run that differs only in them is resumed, not restarted.
BOOKKEEPING = {"logging_steps", "save_steps", "save_total_limit", "eval_steps", "dataset_num_proc"}


def fingerprint(spec: dict, method: str, world: int) -> str:
    """Settings that define the run; the data files' contents included."""
    train = {k: v for k, v in spec.get("train", {}).items() if k not in BOOKKEEPING}
    h = hashlib.sha256(json.dumps([{**spec, "train": train}, method, world],
                                  sort_keys=True).encode())
    for d in spec["datasets"]:
        for f in chat.data_files(d["path"]):
            h.update(f.read_bytes())
    base = Path(spec["base"])
    for name in ("config.json", "model.safetensors"):
        if (base / name).exists():
            st = (base / name).stat()
            h.update(f"{name}:{st.st_size}:{(base / name).read_bytes()[:4096].hex()}".encode())
    return h.hexdigest()[:16]


def split(rows: list[dict], val: float | int, seed: int):
    """A held-out validation split: a fraction (< 1) or a number of rows."""
    import random

    n_val = int(round(len(rows) * val)) if 0 < val < 1 else int(val)
    if n_val <= 0:
        return rows, []
    if n_val >= len(rows):
        die(f"train.val_set_size={val} leaves no training rows (the data has {len(rows)})")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held = set(order[:n_val])
    return ([r for i, r in enumerate(rows) if i not in held],
            [r for i, r in enumerate(rows) if i in held])


def auto_flag(value, cuda: bool) -> bool:
    return cuda if value in (None, "auto") else bool(value)


def training_kwargs(train: dict, method: str, cuda: bool, has_eval: bool, state_dir: Path) -> dict:
    """Config keys (the seed's names where it has them) → TRL/transformers arguments."""
    bf16 = auto_flag(train.get("bf16"), cuda) and (not cuda or _bf16_ok())
    kw = dict(
        output_dir=str(state_dir),
        num_train_epochs=train.get("epochs", 1),
        max_steps=train.get("max_steps", -1),
        per_device_train_batch_size=train.get("micro_batch_size", 1),
        per_device_eval_batch_size=train.get("micro_batch_size", 1),
        gradient_accumulation_steps=train.get("gradient_accumulation_steps", 1),
        learning_rate=train["learning_rate"],
        lr_scheduler_type=train.get("lr_scheduler", "constant"),
        warmup_steps=train.get("warmup_ratio", 0.0),
        weight_decay=train.get("weight_decay", 0.0),
        max_grad_norm=train.get("max_grad_norm", 1.0),
        optim=train.get("optimizer", "adamw_torch_fused" if cuda else "adamw_torch"),
        bf16=bf16,
        gradient_checkpointing=auto_flag(train.get("gradient_checkpointing"), cuda),
        seed=train.get("seed", 42),
        data_seed=train.get("seed", 42),
        logging_steps=train.get("logging_steps", 10),
        save_strategy="steps",
        save_steps=train.get("save_steps", 500),
        save_total_limit=train.get("save_total_limit", 3),
        eval_strategy="steps" if has_eval else "no",
        eval_steps=train.get("eval_steps", 300) if has_eval else None,
        report_to="none",
        disable_tqdm=True,
        use_cpu=not cuda,
        max_length=train.get("sequence_length", 1024),
    )
    if train.get("fsdp"):
        kw["fsdp"] = train["fsdp"]
        kw["fsdp_config"] = {"transformer_layer_cls_to_wrap": [train.get("fsdp_layer",
                                                                         "LlamaDecoderLayer")]}
    if method == "sft":
        kw.update(packing=train.get("packing", True), assistant_only_loss=True, eos_token=IM_END,
                  dataset_num_proc=train.get("dataset_num_proc"))
    else:
        kw.update(beta=train.get("beta", 0.1), loss_type=[train.get("loss_type", "sigmoid")])
    return kw


def _bf16_ok() -> bool:
    import torch

    return torch.cuda.is_bf16_supported()


def drop_long_prompts(rows, tokenizer, max_prompt: int | None):
    """DPO: rows whose rendered prompt is longer than ``max_prompt_length`` tokens are dropped."""
    if not max_prompt:
        return rows, 0
    keep = []
    for r in rows:
        tools = json.loads(r["tools"]) if r.get("tools") else None
        ids = tokenizer.apply_chat_template(r["prompt"], tools=tools or None,
                                            add_generation_prompt=True, tokenize=True,
                                            return_dict=False)
        if len(ids) <= max_prompt:
            keep.append(r)
    return keep, len(rows) - len(keep)


def smoke_check(model_dir: Path, tools: bool, max_new_tokens: int = 24) -> list[dict]:
    """Answer fixed prompts through the saved chat template; fail loudly on empty answers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.eval()
    prompts = [(m, None) for m in SMOKE] + ([(SMOKE[0], SMOKE_TOOLS)] if tools else [])
    out = []
    for msgs, tl in prompts:
        try:
            ids = tok.apply_chat_template(msgs, tools=tl, add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)
        except Exception as e:  # noqa: BLE001 - any template failure is the job's failure
            die(f"{model_dir}: the chat template cannot render {msgs!r}: {e}")
        with torch.no_grad():
            gen = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=tok.convert_tokens_to_ids(IM_END),
                                 pad_token_id=tok.pad_token_id)
        answer = tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        out.append({"prompt": msgs[-1]["content"], "tools": bool(tl), "answer": answer})
        print(f"smoke: {msgs[-1]['content']!r} -> {answer!r}", flush=True)
    empty = [o["prompt"] for o in out if not o["answer"]]
    if empty:
        die(f"{model_dir}: generation check failed: empty answer to {empty}")
    return out


def main(argv=None):
    args = parse_args(argv)
    launch.relaunch(__file__, sys.argv[1:] if argv is None else argv, args.nodes,
                    args.nproc_per_node)
    spec = json.loads(args.spec)
    method, train = args.method, spec.get("train", {})
    rows = load_data(spec, method)  # every row checked before the model is even loaded
    print(f"{len(rows)} {method} rows from {', '.join(d['name'] for d in spec['datasets'])}")

    import torch

    torch.set_num_threads(max(1, args.threads))
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    cuda = torch.cuda.is_available()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    is_main = int(os.environ.get("RANK", "0")) == 0
    run = Path(args.run_dir)
    resume = prepare_run_dir(run, fingerprint(spec, method, world), is_main, move=("state", "model"))
    if world > 1:
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
        torch.distributed.barrier()
        resume = (complete_states(run / "state") or [(0, None)])[-1][1]
    metrics_path = run / "state" / "metrics.csv"
    if is_main:  # drop what was logged after the state resumed from (all of it on a fresh start)
        trim_metrics(metrics_path, int(resume.name.split("-")[-1]) if resume else 0, METRIC_FIELDS)
    print(f"resuming from {resume}" if resume else "starting from the base model", flush=True)

    tokenizer = AutoTokenizer.from_pretrained(spec["base"])
    if method == "sft" or spec.get("chat_template"):
        tokenizer.chat_template = Path(spec["chat_template"]).read_text()
    if not tokenizer.chat_template:
        die(f"base model {spec['base']} has no chat template and none is configured "
            f"(posttrain.<name>.chat_template)")
    if IM_END not in tokenizer.get_vocab():
        die(f"tokenizer of {spec['base']} has no {IM_END} token: the ChatML template needs it")
    tokenizer.eos_token = IM_END
    tokenizer.pad_token = IM_END
    model = AutoModelForCausalLM.from_pretrained(spec["base"], dtype=torch.float32)
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    dropped = 0
    if method == "dpo":
        rows, dropped = drop_long_prompts(rows, tokenizer, train.get("max_prompt_length"))
        if dropped:
            print(f"dropped {dropped} rows whose prompt exceeds max_prompt_length")
        rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows]
    train_rows, val_rows = split(rows, train.get("val_set_size", 0), train.get("seed", 42))
    train_ds = Dataset.from_list(train_rows)
    val_ds = Dataset.from_list(val_rows) if val_rows else None
    kwargs = training_kwargs(train, method, cuda, bool(val_rows), run / "state")

    t0 = time.time()

    class Log(TrainerCallback):
        def on_log(self, a, state, control, logs=None, **kw):
            if not state.is_world_process_zero or not logs:
                return
            if "loss" not in logs and "eval_loss" not in logs:
                return
            row = {"step": state.global_step, "epoch": logs.get("epoch"), "loss": logs.get("loss"),
                   "eval_loss": logs.get("eval_loss"), "lr": logs.get("learning_rate"),
                   "grad_norm": logs.get("grad_norm"),
                   "rewards_accuracy": logs.get("rewards/accuracies"),
                   "rewards_margin": logs.get("rewards/margins"),
                   "elapsed_s": round(time.time() - t0, 3)}
            append_metrics(metrics_path, row, METRIC_FIELDS)

        def on_save(self, a, state, control, **kw):
            if state.is_world_process_zero:
                ckpt = run / "state" / f"checkpoint-{state.global_step}"
                (ckpt / "COMPLETE").write_text(str(state.global_step))

    if method == "sft":
        from trl import SFTConfig, SFTTrainer

        trainer = SFTTrainer(model=model, args=SFTConfig(**kwargs), train_dataset=train_ds,
                             eval_dataset=val_ds, processing_class=tokenizer, callbacks=[Log()])
    else:
        from trl import DPOConfig, DPOTrainer

        trainer = DPOTrainer(model=model, ref_model=None, args=DPOConfig(**kwargs),
                             train_dataset=train_ds, eval_dataset=val_ds,
                             processing_class=tokenizer, callbacks=[Log()])
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)

    final = run / "model"
    tmp = run / "model.tmp"
    trainer.save_model(str(tmp))  # every rank takes part under FSDP
    if is_main:
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "zflow_posttrain.json", {"method": method, "spec": spec,
                                                  "versions": versions()})
        answers = smoke_check(tmp, tools=spec.get("variant") == "agentic")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        with metrics_path.open() as f:
            logged = list(csv.DictReader(f))
        losses = [float(r["loss"]) for r in logged if r["loss"]]
        evals = [float(r["eval_loss"]) for r in logged if r["eval_loss"]]
        write_text(args.metrics, metrics_path.read_text())
        write_json(args.summary, {
            "method": method,
            "variant": spec.get("variant"),
            "base": spec["base"],
            "model_dir": str(final),
            "datasets": [d["name"] for d in spec["datasets"]],
            "train_rows": len(train_rows),
            "val_rows": len(val_rows),
            "dropped_long_prompts": dropped,
            "global_steps": result.global_step,
            "resumed_from": str(resume) if resume else None,
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "first_eval_loss": evals[0] if evals else None,
            "last_eval_loss": evals[-1] if evals else None,
            "train_runtime_s": round(result.metrics.get("train_runtime", 0.0), 2),
            "world_size": world,
            "dtype": "bfloat16" if kwargs["bf16"] else "float32",
            "device": torch.cuda.get_device_name(0) if cuda else "cpu",
            "smoke": answers,
            "settings": {k: v for k, v in kwargs.items() if k != "output_dir"},
            "versions": versions(),
        })
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
