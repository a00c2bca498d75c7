"""Identity of a pretraining run: what invalidates its checkpoints (and their evals)."""

from __future__ import annotations

import hashlib
import json

# Settings that may change without invalidating a run: it is resumed and extended.
RESUMABLE_KEYS = {"train_steps", "checkpoint_interval", "keep_last_states"}


def schedule(pre: dict) -> tuple[dict, int]:
    """The seed's (nanotron) scheduler fields as transformers' warmup-stable-decay schedule."""
    warmup = pre.get("lr_warmup_steps", 0)
    start = pre.get("lr_decay_starting_step")
    start = warmup if start is None else max(start, warmup)
    decay = pre.get("lr_decay_steps")
    decay = max(pre["train_steps"] - start, 1) if decay is None else decay
    lr = pre["learning_rate"]
    return {
        "num_stable_steps": start - warmup,
        "num_decay_steps": decay,
        "decay_type": pre.get("lr_decay_style", "linear"),
        "warmup_type": pre.get("lr_warmup_style", "linear"),
        "min_lr_ratio": pre.get("min_decay_lr", 0.0) / lr,
    }, warmup


def data_identity(folder) -> list:
    """Names, sizes and times of a tokenized folder's files: re-tokenized data is new data."""
    from pathlib import Path

    return [(p.name, p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(Path(folder).glob("*.ds*"))]


def run_fingerprint(spec: dict, world_size: int, with_data: bool = False) -> str:
    pre = {k: v for k, v in spec["pretrain"].items() if k not in RESUMABLE_KEYS}
    ident = {"model": spec["model"], "pretrain": pre, "schedule": schedule(spec["pretrain"])[0],
             "data": spec["data"], "tokenizer": spec["tokenizer"], "world_size": world_size}
    if with_data:
        ident["data_files"] = [data_identity(d["folder"]) for d in spec["data"]]
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
