"""Post-train a causal LM with TRL: SFT (SFTTrainer), DPO (DPOTrainer) or GRPO (GRPOTrainer), then
a generation check.

SFT uses the project's ChatML template (resources/chat_templates/chatml.jinja: the seed's Axolotl
template with tool calls and {% generation %} markers), so that with ``assistant_only_loss`` only
assistant turns, their ``<|im_end|>`` included, carry loss (Axolotl: roles_to_train [assistant],
train_on_eos turn). ``<|im_end|>`` is the eos and pad token. A base whose tokenizer lacks
``<|im_start|>`` / ``<|im_end|>`` (Llama 3.2's, the production bases') gets them, for every method:
added as special tokens, the embeddings (and an untied output head) grown by exactly those rows,
each the mean of the old rows, the ChatML template set; the job log says so in one line and the
summary records it (``added_tokens``: tokens, ids, vocab_before, vocab_after), and the saved model
directory carries the new vocabulary, tokens and template. DPO trains on prompt/chosen/rejected
message lists with the policy's own starting weights as the reference (ref_model=None). GRPO
samples ``num_generations`` completions of each prompt row, scores them with the rewards of
``train.rewards`` (zflow.rewards) and logs them per step (zflow.grpo: reasoning system prompts,
per-row tools, dynamic sampling).

Layout under the spec's ``run_dir`` (run.json: the run's identity, zflow.identity):
  state/checkpoint-<N>/   Trainer states (COMPLETE-marked); a re-run resumes from the newest.
  model/                  the final HF model directory with tokenizer and chat template, written
                          under ``model.tmp`` and renamed when complete (and after the check).
Settings that changed move the old run to ``superseded/<time>/``. Several processes (torchrun,
FSDP from the config) are started by the script itself, like pretraining.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from zflow import chat, identity, launch, limits, metrics, paths, runs
from zflow.io import die, remove_tree, spec_cli, versions, write_json, write_text

IM_END = "<|im_end|>"
CHATML_TOKENS = ("<|im_start|>", IM_END)
# the project's ChatML template: the default of posttrain.<name>.chat_template
CHATML_TEMPLATE = Path(__file__).resolve().parents[2] / "resources" / "chat_templates" / "chatml.jinja"
# Fixed prompts of the generation check: each must render, and at least one give a non-empty
# answer (an empty one is a warning).
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
# Settings that change no weight: a run that differs only in them is resumed, not restarted.
BOOKKEEPING = {"logging_steps", "save_steps", "save_total_limit", "eval_steps", "dataset_num_proc"}


def load_data(spec: dict, method: str) -> list[dict]:
    rows = []
    for d in spec["datasets"]:
        try:
            rows += chat.load(d["path"], d["format"], method, label=d["name"])
        except chat.DataError as e:
            die(f"dataset '{d['name']}' (config key chat_data.{d['name']}): {e}")
    return rows


def run_identity(spec: dict, world: int) -> tuple[str, dict]:
    """The run's fingerprint and what it is keyed on: the settings, the data files' contents,
    the base model's files."""
    train = {k: v for k, v in spec["train"].items() if k not in BOOKKEEPING}
    keep = ("method", "variant", "base", "datasets", "chat_template", "keyed_on")
    base = Path(spec["base"])
    keyed_on = {**{k: spec.get(k) for k in keep}, "train": train, "world_size": world,
                "base_files": identity.file_stats(base, "*.safetensors") if base.is_dir() else []}
    files = [f for d in spec["datasets"] for f in chat.data_files(d["path"])]
    return identity.fingerprint(keyed_on, files), keyed_on


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
    return cuda if value == "auto" else bool(value)


def training_kwargs(train: dict, method: str, cuda: bool, has_eval: bool, state_dir: Path,
                    tracking: dict | None = None, world: int = 1) -> dict:
    """Config keys (the seed's and Domyn-Small's names where they have them) → TRL/transformers
    arguments; the run logs to ``tracking``'s backends (zflow.tracking: TensorBoard files in
    <run_dir>/tensorboard/ by default)."""
    from zflow import tracking as tracks

    kw = dict(
        output_dir=str(state_dir), num_train_epochs=train["epochs"], max_steps=train["max_steps"],
        per_device_train_batch_size=train["micro_batch_size"],
        per_device_eval_batch_size=train["micro_batch_size"],
        gradient_accumulation_steps=train["gradient_accumulation_steps"],
        learning_rate=train["learning_rate"], lr_scheduler_type=train["lr_scheduler"],
        warmup_steps=train["warmup_ratio"], weight_decay=train["weight_decay"],
        max_grad_norm=train["max_grad_norm"],
        optim=train.get("optimizer") or ("adamw_torch_fused" if cuda else "adamw_torch"),
        bf16=auto_flag(train["bf16"], cuda) and (not cuda or _bf16_ok()),
        gradient_checkpointing=auto_flag(train["gradient_checkpointing"], cuda),
        seed=train["seed"], data_seed=train["seed"], logging_steps=train["logging_steps"],
        save_strategy="steps", save_steps=train["save_steps"],
        save_total_limit=train["save_total_limit"], eval_strategy="steps" if has_eval else "no",
        eval_steps=train["eval_steps"] if has_eval else None,
        disable_tqdm=True, use_cpu=not cuda,
        **tracks.training_args(tracking, state_dir.parent, f"{method}-{state_dir.parent.name}"),
    )
    # Adam's betas have schema defaults for GRPO only; SFT and DPO keep transformers' unless set
    kw.update({k: train[k] for k in ("adam_beta1", "adam_beta2") if k in train})
    if train.get("fsdp") and world > 1:
        kw["fsdp"] = train["fsdp"]
        kw["fsdp_config"] = {"transformer_layer_cls_to_wrap": [train["fsdp_layer"]]}
    elif train.get("fsdp"):  # transformers refuses FSDP outside distributed training
        print(f"fsdp '{train['fsdp']}': off (one process: nothing to shard)", flush=True)
    if method == "sft":
        kw.update(packing=train["packing"], assistant_only_loss=True, eos_token=IM_END,
                  dataset_num_proc=train.get("dataset_num_proc"), max_length=train["sequence_length"])
    elif method == "dpo":
        kw.update(beta=train["beta"], loss_type=[train["loss_type"]],
                  max_length=train["sequence_length"])
    else:
        from zflow import grpo

        kw.update(grpo.config_kwargs(train))
    return kw


def _bf16_ok() -> bool:
    import torch

    return torch.cuda.is_bf16_supported()


def drop_long_prompts(rows, tokenizer, max_prompt: int | None):
    """DPO, GRPO: rows whose rendered prompt (with its tools) is longer than ``max_prompt_length``
    tokens are dropped."""
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
    """Answer fixed prompts through the saved chat template; fail loudly when the template does
    not render or every answer is empty, warn for each empty one."""
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
    if len(empty) == len(out):  # nothing but eos: a broken template, eos or model
        die(f"{model_dir}: generation check failed: empty answer to every prompt {empty}")
    if empty:  # a weak model (a few steps of a tiny one) may close some answers at once
        print(f"warning: generation check: empty answer to {empty}", flush=True)
    return out


def resize_embeddings(model, new_size: int, new_ids=None) -> None:
    """Grow the model's embeddings to ``new_size`` rows (exactly: no padding to a multiple) and
    set the rows of ``new_ids`` (default: the added rows) to the mean of the old rows: the input
    embeddings and, when it is its own matrix (untied), the output head (its bias too, if any)."""
    import torch

    old = model.get_input_embeddings().weight.shape[0]
    if new_size < old:
        raise ValueError(f"cannot shrink the embeddings from {old} to {new_size} rows")
    new_ids = list(range(old, new_size)) if new_ids is None else list(new_ids)
    inp = model.get_input_embeddings().weight
    means = [inp.detach()[:old].mean(dim=0)]
    head = model.get_output_embeddings()
    untied = head is not None and head.weight is not inp
    if untied:
        means.append(head.weight.detach()[:old].mean(dim=0))
        bias = getattr(head, "bias", None)
        bias_mean = bias.detach()[:old].mean() if bias is not None else None
    if new_size != old:
        model.resize_token_embeddings(new_size, mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight[new_ids] = means[0]
        if untied:
            head = model.get_output_embeddings()
            head.weight[new_ids] = means[1]
            if bias_mean is not None:
                head.bias[new_ids] = bias_mean


def add_chat_tokens(model, tokenizer, base: str) -> dict | None:
    """The ChatML tokens the base's tokenizer lacks (Llama 3.2's has neither), added as special
    tokens with embedding rows (resize_embeddings: the mean of the old rows). Returns what was
    added ({tokens, ids, vocab_before, vocab_after}; logged), None when the tokenizer has both.
    The new ids follow the tokenizer's last one; where the embeddings already have spare rows
    there (a padded vocabulary), those rows are set and the matrix keeps its size."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in CHATML_TOKENS if t not in vocab]
    if not missing:
        return None
    before = model.get_input_embeddings().weight.shape[0]
    tokenizer.add_special_tokens({"extra_special_tokens": missing}, replace_extra_special_tokens=False)
    ids = tokenizer.convert_tokens_to_ids(missing)
    after = max(before, len(tokenizer), max(ids) + 1)
    resize_embeddings(model, after, ids)
    if launch.world()[1]:  # rank 0: one line in the job's log
        print(f"added ChatML tokens {', '.join(missing)} to the tokenizer of {base} (vocab "
              f"{before} -> {after}); embeddings resized, new rows = mean of the old rows; "
              f"eos/pad = {IM_END}", flush=True)
    return {"tokens": missing, "ids": ids, "vocab_before": before, "vocab_after": after}


def load_model(spec: dict, method: str):
    """The base model and its tokenizer, with the ChatML template and <|im_end|> as eos/pad; the
    ChatML tokens are added where the base lacks them (add_chat_tokens). Returns (model,
    tokenizer, what was added or None)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec["base"])
    lacks = any(t not in tokenizer.get_vocab() for t in CHATML_TOKENS)
    if spec.get("chat_template"):
        tokenizer.chat_template = Path(spec["chat_template"]).read_text()
    elif method == "sft" or lacks or not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE.read_text()  # the project's ChatML
    model = AutoModelForCausalLM.from_pretrained(spec["base"], dtype=torch.float32)
    added = add_chat_tokens(model, tokenizer, spec["base"])
    tokenizer.eos_token = tokenizer.pad_token = IM_END
    for cfg in (model.config, model.generation_config):
        cfg.eos_token_id, cfg.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    return model, tokenizer, added


def log_callback(metrics_path: Path):
    from transformers import TrainerCallback

    from zflow import grpo

    t0 = time.time()

    class Log(TrainerCallback):
        def on_log(self, a, state, control, logs=None, **kw):
            if not state.is_world_process_zero or not logs:
                return
            if "loss" not in logs and "eval_loss" not in logs:
                return
            metrics.append(metrics_path, {
                "step": state.global_step, "epoch": logs.get("epoch"), "loss": logs.get("loss"),
                "eval_loss": logs.get("eval_loss"), "lr": logs.get("learning_rate"),
                "grad_norm": logs.get("grad_norm"),
                "rewards_accuracy": logs.get("rewards/accuracies"),
                "rewards_margin": logs.get("rewards/margins"), **grpo.log_row(logs),
                "elapsed_s": round(time.time() - t0, 3)}, metrics.POSTTRAIN)

        def on_save(self, a, state, control, **kw):
            if state.is_world_process_zero:
                runs.mark_complete(Path(a.output_dir), state.global_step)

    return Log()


def make_trainer(spec: dict, model, tokenizer, kwargs: dict, train_ds, val_ds, callbacks,
                 added: dict | None = None):
    """The method's TRL trainer. TRL builds a reference model (DPO; GRPO with beta > 0) by loading
    the base again from its path: where ChatML tokens were added (``added``), that copy lacks
    their rows, so the reference is the resized starting model instead (DPO: a copy passed as
    ``ref_model``; GRPO: the loaded reference resized the same way, rows = the same means)."""
    method = spec["method"]
    if method == "grpo":
        from zflow import grpo

        needs_ref = added and spec["train"].get("beta", 0.0) != 0.0
        if needs_ref and spec["train"].get("fsdp"):
            die(f"posttrain.{spec['name']}: GRPO with a KL term (train.beta > 0) under FSDP cannot "
                f"start from {spec['base']}, whose tokenizer lacks the ChatML tokens (added here: "
                f"the reference model TRL loads would lack them); post-train it with SFT first, "
                f"or set train.beta: 0")
        trainer = grpo.make_trainer(model, tokenizer, spec["train"], kwargs, train_ds, val_ds,
                                    callbacks)
        if needs_ref and trainer.ref_model is not None:
            resize_embeddings(trainer.ref_model, added["vocab_after"], added["ids"])
        return trainer
    if method == "sft":
        from trl import SFTConfig, SFTTrainer

        return SFTTrainer(model=model, args=SFTConfig(**kwargs), train_dataset=train_ds,
                          eval_dataset=val_ds, processing_class=tokenizer, callbacks=callbacks)
    import copy

    from trl import DPOConfig, DPOTrainer

    ref = copy.deepcopy(model).eval() if added else None
    return DPOTrainer(model=model, ref_model=ref, args=DPOConfig(**kwargs),
                      train_dataset=train_ds, eval_dataset=val_ds, processing_class=tokenizer,
                      callbacks=callbacks)


def prepare_rows(spec: dict, rows: list[dict], tokenizer) -> tuple[list, list, int]:
    """(train rows, validation rows, DPO / GRPO rows dropped for their prompt length)."""
    train, dropped = spec["train"], 0
    if spec["method"] == "grpo":
        from zflow import grpo

        rows = grpo.prepare_rows(rows, train)  # the reasoning system prompt counts in the length
    if spec["method"] in ("dpo", "grpo"):
        rows, dropped = drop_long_prompts(rows, tokenizer, train.get("max_prompt_length"))
        if dropped:
            print(f"dropped {dropped} rows whose prompt exceeds max_prompt_length")
        if not rows:
            die(f"every row's prompt exceeds train.max_prompt_length={train['max_prompt_length']} "
                f"(posttrain.{spec['name']})")
    if spec["method"] == "dpo":
        rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows]
    return (*split(rows, train["val_set_size"], train["seed"]), dropped)


def finish(spec: dict, trainer, tokenizer, result, resume, info: dict) -> None:
    """Save the model under model.tmp, check it generates, rename it, write the summary (with
    ``added_tokens``: the ChatML tokens added to the base's tokenizer, or null)."""
    run, final = Path(spec["run_dir"]), Path(spec["model_dir"])
    tmp = final.with_name(final.name + ".tmp")
    trainer.save_model(str(tmp))  # every rank takes part under FSDP
    if not launch.world()[1]:
        return
    limits.end_attempt(run, result.global_step)
    tokenizer.save_pretrained(tmp)
    write_json(tmp / paths.POSTTRAIN_META, {"spec": spec, "added_tokens": info.get("added_tokens"),
                                            "versions": versions()})
    answers = smoke_check(tmp, tools=spec["variant"] == "agentic")
    if final.exists():
        remove_tree(final)
    os.replace(tmp, final)
    logged = metrics.read(run / paths.STATE_METRICS)
    losses = [float(r["loss"]) for r in logged if r["loss"]]
    evals = [float(r["eval_loss"]) for r in logged if r["eval_loss"]]
    rewards = [float(r["reward"]) for r in logged if r.get("reward")]
    write_text(spec["metrics"], (run / paths.STATE_METRICS).read_text())
    write_json(spec["summary"], {
        "method": spec["method"], "variant": spec["variant"], "base": spec["base"],
        "model_dir": str(final), "datasets": [d["name"] for d in spec["datasets"]],
        **info, "global_steps": result.global_step,
        "resumed_from": str(resume) if resume else None,
        "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
        "first_eval_loss": evals[0] if evals else None,
        "last_eval_loss": evals[-1] if evals else None,
        "first_reward": rewards[0] if rewards else None,
        "last_reward": rewards[-1] if rewards else None,
        "train_runtime_s": round(result.metrics.get("train_runtime", 0.0), 2),
        "smoke": answers, "versions": versions()})


def main(argv=None):
    spec, args = spec_cli(__doc__, argv)
    launch.relaunch(__file__, sys.argv[1:] if argv is None else argv, spec["nodes"],
                    spec["nproc_per_node"])
    method = spec["method"]
    rows = load_data(spec, method)  # every row checked before the model is even loaded
    print(f"{len(rows)} {method} rows from {', '.join(d['name'] for d in spec['datasets'])}")
    import torch
    from datasets import Dataset

    torch.set_num_threads(max(1, args.threads))
    cuda, run = torch.cuda.is_available(), Path(spec["run_dir"])
    world = launch.world()[0]
    fp, keyed_on = run_identity(spec, world)
    resume = runs.resume_state(run, fp, (paths.STATE, Path(spec["model_dir"]).name), keyed_on,
                               metrics.POSTTRAIN, cuda)
    print(f"resuming from {resume}" if resume else "starting from the base model", flush=True)
    model, tokenizer, added = load_model(spec, method)
    train_rows, val_rows, dropped = prepare_rows(spec, rows, tokenizer)
    kwargs = training_kwargs(spec["train"], method, cuda, bool(val_rows), run / paths.STATE,
                             spec.get("tracking"), world)
    stopper = limits.start(run, runs.state_step(resume), spec.get("time_limits"),
                           launch.world()[1])
    trainer = make_trainer(spec, model, tokenizer, kwargs, Dataset.from_list(train_rows),
                           Dataset.from_list(val_rows) if val_rows else None,
                           [log_callback(run / paths.STATE_METRICS), limits.callback(stopper)],
                           added)
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if stopper.stopped:  # saved before a time limit or a signal: requeued, or resumed next time
        launch.end_distributed()
        raise SystemExit(limits.stop_early(run, stopper, launch.world()[1]))
    finish(spec, trainer, tokenizer, result, resume, {
        "train_rows": len(train_rows), "val_rows": len(val_rows), "dropped_long_prompts": dropped,
        "added_tokens": added, "world_size": world,
        "dtype": "bfloat16" if kwargs["bf16"] else "float32",
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "settings": {k: v for k, v in kwargs.items() if k != "output_dir"},
        **({"rewards": spec["train"]["rewards"]} if method == "grpo" else {})})
    launch.end_distributed()


if __name__ == "__main__":
    main()
