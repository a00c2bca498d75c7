"""Pretrain a Llama model with transformers' Trainer on datatrove-tokenized folders (backend hf).

Layout under the spec's ``run_dir``:
  run.json                 the run's identity (zflow.identity): settings + data fingerprint.
  state/checkpoint-<N>/    Trainer states (weights, optimizer, scheduler, RNG); the newest
                           ``keep_last_states`` are kept for resuming. ``COMPLETE`` marks a
                           state that was fully written.
  checkpoints/step-<N>/    an HF model directory with the tokenizer for every saved step,
                           written under ``.tmp`` and renamed when complete; never deleted. Its
                           ``zflow_checkpoint.json`` records the step and the run's identity.
  state/metrics.csv        per-step metrics (zflow.metrics.PRETRAIN).
Re-running after a kill resumes from the newest complete state and stops at the same step.
A run whose settings changed (anything but ``train_steps`` and the checkpoint schedule) is
moved aside to ``superseded/<time>/`` and a new one starts: nothing is ever deleted.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from zflow import (accel, identity, launch, limits, metrics, nanotron, paths, runs, schedule,
                   tokenized)
from zflow.config import ARCH_KEPT
from zflow.io import atomic_dir, die, spec_cli, versions, write_json, write_text


def export_checkpoint(state_ckpt: Path, dest: Path, step: int, meta: dict) -> None:
    """Copy the model and tokenizer files of a Trainer state into an HF model directory."""
    if dest.exists():
        return
    skip = ("optimizer", "scheduler", "rng_state", "trainer_state", "training_args", "COMPLETE")
    with atomic_dir(dest) as tmp:
        for f in state_ckpt.iterdir():
            if f.is_file() and not f.name.startswith(skip):
                shutil.copy2(f, tmp / f.name)
        write_json(tmp / paths.MARKER, {**meta, "step": step, "stage": stage_at(meta, step)})


def stage_at(meta: dict, step: int) -> str | None:
    """The data stage that trained step ``step`` (1-based), from the meta's stage starts."""
    names = [s["name"] for s in meta.get("stages", []) if s["start_step"] < max(step, 1)]
    return names[-1] if names else None


def build_model(spec: dict, tokenizer):
    from transformers import LlamaForCausalLM

    mc = spec["model"]
    if mc["vocab_size"] < len(tokenizer):
        die(f"model.vocab_size={mc['vocab_size']} is smaller than the tokenizer's "
            f"{len(tokenizer)} tokens ({spec['tokenizer']})")
    config = nanotron.hf_config({
        **nanotron.model_config(mc),
        "initializer_range": mc["init_std"],  # the init std of both backends
        "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id})
    if spec.get("init"):
        return continued(spec["init"], config, tokenizer, spec.get("lang"))
    return LlamaForCausalLM(config)


def continued(init: dict, config, tokenizer, lang: str | None):
    """Continued pretraining: the weights of the model ``init`` names, under this run's config
    (its context length and RoPE base); its architecture (zflow.config.ARCH_KEPT) and tokenizer
    must be this run's (checked before loading: a hub model is not checked at config time)."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

    key = f"languages.{lang}.pretrain.init_from" if lang else "pretrain.init_from"
    parent = AutoConfig.from_pretrained(init["path"])
    diff = [f"{k} = {getattr(parent, k, None)} (this run: {getattr(config, k)})"
            for k in ARCH_KEPT if getattr(parent, k, None) != getattr(config, k)]
    if diff:
        die(f"{key}: '{init['model']}' ({init['path']}) has another architecture: "
            + "; ".join(diff))
    if AutoTokenizer.from_pretrained(init["path"]).get_vocab() != tokenizer.get_vocab():
        die(f"{key}: '{init['model']}' ({init['path']}) was trained with another tokenizer "
            "than this run's")
    model = LlamaForCausalLM.from_pretrained(init["path"], config=config, dtype=torch.float32)
    theta = (parent.rope_parameters or {}).get("rope_theta")
    print(f"continued pretraining from {init['model']} ({init['path']}): rope_theta {theta} -> "
          f"{config.rope_parameters['rope_theta']}, max_position_embeddings "
          f"{parent.max_position_embeddings} -> {config.max_position_embeddings}", flush=True)
    return model


def training_args(spec: dict, run: Path, features):
    """The Trainer's arguments; the speed features (bf16, fused AdamW, Liger, compile, DDP/FSDP,
    loader, logging interval) are zflow.accel's choice. It logs to the config's tracking
    backends (zflow.tracking: TensorBoard files in <run>/tensorboard/ by default)."""
    from transformers import TrainingArguments

    from zflow import tracking

    pre = spec["pretrain"]
    wsd, warmup = schedule.wsd(pre)
    return TrainingArguments(
        output_dir=str(run / paths.STATE), max_steps=pre["train_steps"],
        per_device_train_batch_size=pre["micro_batch_size"],
        gradient_accumulation_steps=pre["batch_accumulation_per_replica"],
        learning_rate=pre["learning_rate"], adam_beta1=pre["adam_beta1"],
        adam_beta2=pre["adam_beta2"], adam_epsilon=pre["adam_eps"],
        weight_decay=pre["weight_decay"], max_grad_norm=pre["clip_grad"],
        lr_scheduler_type="warmup_stable_decay", lr_scheduler_kwargs=wsd, warmup_steps=warmup,
        seed=pre["seed"], data_seed=pre["seed"], train_sampling_strategy="sequential",
        save_strategy="steps", save_steps=pre["checkpoint_interval"],
        save_total_limit=pre["keep_last_states"], disable_tqdm=True,
        dataloader_drop_last=True, **features.training_args,
        **tracking.training_args(spec.get("tracking"), run, f"pretrain-{spec.get('lang', run.name)}"))


def progress_callback(run: Path, start_step: int, tokens_through, meta: dict, pre: dict,
                      until: int):
    """Logs in the metrics schema (every ``pretrain.hf.log_interval`` steps and the last; tokens/s
    over the steps since the previous row; ``tokens_through(step)``: the tokens trained on up to
    ``step``, each data stage at its own sequence length); marks every saved state and exports
    those of the checkpoint schedule (a state saved before a time limit is only resumed from);
    stops at ``until`` (the end of a segment)."""
    from transformers import TrainerCallback

    metrics_path = run / paths.STATE_METRICS

    class Progress(TrainerCallback):
        def __init__(self):
            self.t0 = self.t_last = time.time()
            self.step_last = start_step

        def on_log(self, a, state, control, logs=None, **kw):
            if not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            now = time.time()
            step = state.global_step
            tokens = tokens_through(step) - tokens_through(min(self.step_last, step - 1))
            metrics.append(metrics_path, {
                "step": step, "consumed_tokens": tokens_through(step),
                "loss": logs["loss"], "lr": logs.get("learning_rate"),
                "grad_norm": logs.get("grad_norm"),
                "tokens_per_sec": round(tokens / max(now - self.t_last, 1e-9), 1),
                "elapsed_s": round(now - self.t0, 3)}, metrics.PRETRAIN)
            self.t_last, self.step_last = now, state.global_step

        def on_step_end(self, a, state, control, **kw):
            if state.global_step >= until:  # logged too, whatever pretrain.hf.log_interval
                control.should_save = control.should_training_stop = control.should_log = True

        def on_save(self, a, state, control, **kw):
            if not state.is_world_process_zero:
                return
            step = state.global_step
            runs.mark_complete(run / paths.STATE, step)
            if schedule.is_saved(step, pre):
                export_checkpoint(run / paths.STATE / f"checkpoint-{step}",
                                  run / paths.CHECKPOINTS / f"step-{step}", step, meta)
            print(f"checkpoint {step} complete", flush=True)

    return Progress()


def write_summary(spec: dict, run: Path, start_step: int, dataset, meta: dict, extra: dict):
    rows = metrics.read(run / paths.STATE_METRICS)
    write_text(spec["metrics"], (run / paths.STATE_METRICS).read_text())
    exported = exported_steps(run)
    stages = dataset.accounting()
    for stage in stages:
        for d, s in zip(spec["data"], stage["sources"]):
            s["source"] = d["source"]
    write_json(spec["summary"], {
        "backend": "hf", "final_step": spec["pretrain"]["train_steps"], "checkpoints": exported,
        "checkpoints_dir": str(run / paths.CHECKPOINTS), "resumed_from_step": start_step,
        "first_loss": float(rows[0]["loss"]) if rows else None,
        "last_loss": float(rows[-1]["loss"]) if rows else None,
        # per source over the whole run: windows available (of the run's sequence length), windows
        # and tokens consumed, epochs over the source (all stages); per stage: the same, its own
        "sources": [{"source": d["source"], "folder": d["folder"], "weight": d["weight"],
                     "windows": dataset.length(f, spec["pretrain"]["sequence_length"]),
                     "windows_consumed": sum(st["sources"][f]["windows"] for st in stages),
                     "tokens_consumed": sum(st["sources"][f]["tokens"] for st in stages),
                     "epochs": round(sum(st["sources"][f]["epochs"] for st in stages), 3)}
                    for f, d in enumerate(spec["data"])],
        **extra, **meta, "stages": stages})


def exported_steps(run: Path) -> list[int]:
    return sorted(int(d.name.split("-")[1]) for d in (run / paths.CHECKPOINTS).glob("step-*")
                  if not d.name.endswith(".tmp"))


def mixture(spec: dict, global_batch: int):
    """The tokenized folders' mixture of each data stage, as many windows as the run consumes."""
    from zflow.mixture import MixtureDataset, spec_stages

    pre = spec["pretrain"]
    sources = [d["source"] for d in spec["data"]]
    stages = []
    for st in spec_stages(spec):
        w = {d["source"]: d["weight"] for d in st["data"]}
        stages.append({"name": st["name"], "start_step": st["start_step"],
                       "sequence_length": st.get("sequence_length"),
                       "weights": [w.get(s, 0) for s in sources]})
    dataset = MixtureDataset([d["folder"] for d in spec["data"]], stages, pre["sequence_length"],
                             global_batch, pre["train_steps"])
    for stage in dataset.accounting():
        for d, s in zip(spec["data"], stage["sources"]):
            print(f"stage {stage['name']} (from step {stage['start_step']}) source {d['source']}: "
                  f"{s['windows']} windows of {stage['sequence_length'] + 1} tokens, "
                  f"{s['epochs']:.2f} epochs")
    return dataset


def resume(spec: dict, cuda: bool):
    """Claim the run directory (a run of other settings or data moves aside) and return the
    newest complete state to resume from, the same on every rank."""
    keyed_on = {"identity": spec["identity"],
                "data": [tokenized.file_stats(d["folder"]) for d in spec["data"]]}
    state = runs.resume_state(Path(spec["run_dir"]), identity.fingerprint(keyed_on),
                              (paths.STATE, paths.CHECKPOINTS), keyed_on, metrics.PRETRAIN, cuda)
    print(f"resuming from {state} (step {runs.state_step(state)})" if state
          else "starting from scratch")
    return state


def main(argv=None):
    spec, args = spec_cli(__doc__, argv)
    launch.relaunch(__file__, sys.argv[1:] if argv is None else argv, spec["nodes"],
                    spec["nproc_per_node"])
    import torch
    from transformers import AutoTokenizer, Trainer

    torch.set_num_threads(max(1, args.threads))
    world, is_main = launch.world()
    pre, run, cuda = spec["pretrain"], Path(spec["run_dir"]), torch.cuda.is_available()
    features = accel.choose(pre["hf"], dtype=pre["dtype"], cuda=cuda, world=world)
    if is_main:
        print("\n".join(features.log()), flush=True)
    tokenizer = AutoTokenizer.from_pretrained(spec["tokenizer"])
    global_batch = pre["micro_batch_size"] * pre["batch_accumulation_per_replica"] * world
    dataset = mixture(spec, global_batch)
    state = resume(spec, cuda)
    start_step = runs.state_step(state)
    torch.manual_seed(pre["seed"])
    model = build_model(spec, tokenizer)
    accel.apply_to_model(model, features)  # its attention implementation
    tokens_per_step = global_batch * pre["sequence_length"]
    # identity: what the plan compares, before running anything, to tell whether a checkpoint
    # on disk belongs to the configured run (zflow.plan.Plan.checkpoint_current)
    meta = {"n_params": sum(p.numel() for p in model.parameters()), "identity": spec["identity"],
            "tokens_per_step": tokens_per_step, "tokenizer": spec["tokenizer"],
            "versions": versions(), "init_from": spec.get("init"),
            "stages": [{"name": s["name"], "start_step": s["start_step"]} for s in dataset.stages]}
    if is_main:  # a kill between a state's COMPLETE marker and its export: export it now
        for step, d in runs.complete_states(run / paths.STATE):
            if schedule.is_saved(step, pre):
                export_checkpoint(d, run / paths.CHECKPOINTS / f"step-{step}", step, meta)
    until = spec["until"] or pre["train_steps"]  # a segment's end, or the run's
    stopper = limits.start(run, start_step, spec.get("time_limits"), is_main)
    trainer = Trainer(model=model, args=training_args(spec, run, features),
                      train_dataset=dataset, processing_class=tokenizer,
                      callbacks=[progress_callback(
                          run, start_step, lambda s: dataset.tokens_through(s, global_batch),
                          meta, pre, until), limits.callback(stopper)])
    if start_step < until:  # else a segment that an extended run has already gone past
        trainer.train(resume_from_checkpoint=str(state) if state else None)
    if stopper.stopped and stopper.stopped[0] < until:  # saved before a limit or at a signal
        launch.end_distributed()
        raise SystemExit(limits.stop_early(run, stopper, is_main))
    if is_main:
        limits.end_attempt(run, until)
    if is_main and until < pre["train_steps"]:
        write_json(spec["segment"], {"until": until, "identity": spec["identity"],
                                     "checkpoints": exported_steps(run), "versions": versions()})
    elif is_main:
        write_summary(spec, run, start_step, dataset, meta, {
            "world_size": world, "global_batch_size": global_batch,
            "sequence_length": pre["sequence_length"],
            "dtype": "bfloat16" if features.bf16 else "float32",
            "device": torch.cuda.get_device_name(0) if cuda else "cpu",
            "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if cuda else None,
            "features": features.summary()})
    launch.end_distributed()


if __name__ == "__main__":
    main()
