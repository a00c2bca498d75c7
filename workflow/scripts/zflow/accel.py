"""The hf backend's training speed features, chosen from the config and the hardware.

``choose(pretrain.hf, dtype=..., cuda=..., world=...)`` returns the Trainer's arguments that
carry them (bf16, fused AdamW, Liger kernels, torch.compile, DDP bucket size or FSDP, pinned
memory, data loader workers, logging interval), the model's attention implementation, and one
line per feature saying whether it is on and why. On a CPU the same code runs: every GPU-only
feature is off, with the reason. The settings' defaults are the schema's
(``languages.*.pretrain.hf``); why each default is what it is lives in its description.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from zflow import schema
from zflow.io import die

# Liger's kernels on a Llama (transformers' use_liger_kernel hands these to liger_kernel's
# _apply_liger_kernel_to_instance -> apply_liger_kernel_to_llama): the logits are never
# materialised (fused linear cross-entropy), RMSNorm, SwiGLU and RoPE are Triton kernels.
LIGER_KERNELS = {"fused_linear_cross_entropy": True, "cross_entropy": False, "rms_norm": True,
                 "swiglu": True, "rope": True}
# FSDP2 full shard (parameters re-sharded after forward), one unit per decoder layer
FSDP_CONFIG = {"version": 2, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
               "transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"],
               "reshard_after_forward": True}
# the Python modules behind the optional GPU features (requirements-gpu.txt)
MODULES = {"liger": "liger_kernel", "flash_attention_2": "flash_attn"}


def importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@dataclass
class Features:
    training_args: dict  # keyword arguments of transformers.TrainingArguments
    attn_implementation: str
    lines: list  # (feature, state, why)

    @property
    def bf16(self) -> bool:
        return self.training_args["bf16"]

    def log(self) -> list[str]:
        return [f"feature {name}: {state} ({why})" for name, state, why in self.lines]

    def summary(self) -> dict:
        """What the pretraining summary and the benchmarks record: feature -> {state, why}."""
        return {name: {"state": state, "why": why} for name, state, why in self.lines}


def settings(hf_cfg: dict) -> dict:
    """``pretrain.hf`` with the schema's defaults (a spec built outside the plan may hold part)."""
    return {**schema.defaults("languages/*/pretrain/hf"), **hf_cfg}


def choose(hf_cfg: dict, *, dtype: str, cuda: bool, world: int,
           importable=importable) -> Features:
    """The features of a run with ``pretrain.hf`` = ``hf_cfg`` and ``pretrain.dtype`` = ``dtype``
    on this hardware (``cuda``: a GPU is there; ``world``: processes in all);
    ``importable(module)`` tells whether an optional package is installed."""
    hf = settings(hf_cfg)
    lines, args = [], {"use_cpu": not cuda}

    bf16 = dtype == "bfloat16" or (dtype == "auto" and cuda)
    args["bf16"] = bf16
    lines.append(("bf16", "on" if bf16 else "off",
                  f"pretrain.dtype {dtype}" + ("" if dtype != "auto" else
                                               ": CUDA" if cuda else ": no CUDA, float32")))

    args["optim"] = "adamw_torch_fused" if cuda else "adamw_torch"
    lines.append(("fused_adamw", "on" if cuda else "off", "CUDA" if cuda else "no CUDA"))

    liger, why = False, "pretrain.hf.liger off"
    if hf["liger"] != "off":
        if not cuda:
            why = "no CUDA"
        elif not importable(MODULES["liger"]):
            if hf["liger"] == "on":
                die("pretrain.hf.liger is on but liger_kernel does not import: "
                    "pip install -r requirements-gpu.txt (or set it to auto)")
            why = "liger-kernel not installed (requirements-gpu.txt)"
        else:
            liger, why = True, (f"{hf['liger']}: CUDA and liger_kernel; kernels "
                                + ", ".join(k for k, v in LIGER_KERNELS.items() if v))
    args["use_liger_kernel"] = liger
    if liger:
        args["liger_kernel_config"] = dict(LIGER_KERNELS)
    lines.append(("liger", "on" if liger else "off", why))

    compiled = hf["compile"] == "model"
    args["torch_compile"] = compiled
    lines.append(("compile", "on" if compiled else "off", {
        "model": "pretrain.hf.compile model: torch.compile of the whole model",
        "auto": "auto: Liger alone was measured faster than Liger + torch.compile",
        "off": "pretrain.hf.compile off"}[hf["compile"]]))

    attn, why = hf["attention"], f"pretrain.hf.attention {hf['attention']}"
    if attn == "auto":
        attn, why = "sdpa", "auto: PyTorch's scaled dot-product attention"
    elif attn == "flash_attention_2" and not cuda:
        attn, why = "sdpa", "flash_attention_2 needs CUDA"
    elif attn == "flash_attention_2" and not importable(MODULES["flash_attention_2"]):
        attn, why = "sdpa", "flash_attention_2 asked for, flash-attn not installed"
    lines.append(("attention", attn, why))

    fsdp = hf["parallelism"] == "fsdp" and world > 1 and cuda
    if fsdp:
        args.update(fsdp=True, fsdp_config=dict(FSDP_CONFIG))
        lines.append(("parallelism", "fsdp", f"{world} processes: full shard, one unit per "
                      "LlamaDecoderLayer"))
    else:
        args["ddp_bucket_cap_mb"] = hf["ddp_bucket_cap_mb"]
        lines.append(("parallelism", "ddp" if world > 1 else "off",
                      (f"{world} processes, buckets of {hf['ddp_bucket_cap_mb']} MB"
                       + (" (fsdp needs CUDA)" if hf["parallelism"] == "fsdp" else ""))
                      if world > 1 else "one process"))

    pin = hf["pin_memory"] and cuda
    args["dataloader_pin_memory"] = pin
    lines.append(("pin_memory", "on" if pin else "off", "CUDA" if pin else
                  "no CUDA" if hf["pin_memory"] else "pretrain.hf.pin_memory false"))
    args["dataloader_num_workers"] = hf["dataloader_workers"]

    # the loss is read from the device at a log only: the Trainer's NaN/inf filter would read it
    # every step (a NaN loss is logged as it is)
    args.update(logging_steps=hf["log_interval"], logging_nan_inf_filter=False)
    n = hf["log_interval"]
    lines.append(("log_interval", str(n), "a metrics row every step" if n == 1 else
                  f"a metrics row every {n} steps: the loss leaves the device only then"))
    return Features(args, attn, lines)


def apply_to_model(model, features: Features) -> None:
    """A model already built (or loaded): switch its attention implementation."""
    if model.config._attn_implementation != features.attn_implementation:
        model.set_attn_implementation(features.attn_implementation)
