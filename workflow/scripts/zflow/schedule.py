"""The training schedule, resolved once for both backends: which steps are saved, and the
learning-rate schedule in the seed's (nanotron's) terms.

warm-up -> constant until ``lr_decay_starting_step`` (never before the warm-up ends) -> decay
over ``lr_decay_steps`` (default: until ``train_steps``) to ``min_decay_lr``.
"""

from __future__ import annotations


def resolve(pre: dict) -> dict:
    """nanotron's learning_rate_scheduler fields, with the nulls of the config resolved."""
    warmup = pre["lr_warmup_steps"]
    start = pre["lr_decay_starting_step"]
    start = warmup if start is None else max(start, warmup)
    decay = pre["lr_decay_steps"]
    if decay is None:
        decay = max(pre["train_steps"] - start, 1)
    return {"learning_rate": pre["learning_rate"], "lr_warmup_steps": warmup,
            "lr_warmup_style": pre["lr_warmup_style"], "lr_decay_style": pre["lr_decay_style"],
            "lr_decay_starting_step": start, "lr_decay_steps": decay,
            "min_decay_lr": pre["min_decay_lr"]}


def wsd(pre: dict) -> tuple[dict, int]:
    """transformers' warmup-stable-decay scheduler kwargs and warm-up steps for the same schedule."""
    s = resolve(pre)
    return {
        "num_stable_steps": s["lr_decay_starting_step"] - s["lr_warmup_steps"],
        "num_decay_steps": s["lr_decay_steps"],
        "decay_type": s["lr_decay_style"],
        "warmup_type": s["lr_warmup_style"],
        "min_lr_ratio": s["min_decay_lr"] / s["learning_rate"],
    }, s["lr_warmup_steps"]


def saved_steps(train_steps: int, interval: int, after: int = 0) -> list[int]:
    """The steps a run saves after step ``after``: every multiple of ``interval`` and
    ``train_steps`` itself (the final state; nanotron's save_final_state when needed)."""
    steps = list(range((after // interval + 1) * interval, train_steps + 1, interval))
    if train_steps > after and train_steps % interval:
        steps.append(train_steps)
    return steps


def is_saved(step: int, pre: dict) -> bool:
    """Is ``step`` saved by a run with the ``pretrain`` settings ``pre``?"""
    return step <= pre["train_steps"] and (step % pre["checkpoint_interval"] == 0
                                           or step == pre["train_steps"])
