"""Where the training stages log, besides zflow.metrics' CSV: transformers' own integrations.

Every stage built on transformers' Trainer (pretraining's hf backend, SFT, DPO, GRPO) reports to
the config's ``tracking.backends`` through ``TrainingArguments(report_to=...)``: TensorBoard by
default, its event files in ``<run_dir>/tensorboard/`` (offline, nothing leaves the machine;
``tensorboard --logdir results/``), and W&B or trackio when asked. W&B runs offline unless
``tracking.mode`` is ``online`` (``WANDB_MODE=offline``, its files under ``<run_dir>/wandb/``;
``wandb sync`` uploads them later); trackio keeps its local database unless a Space is given
(TRACKIO_SPACE_ID). Neither is a requirement of the project: asking for one that is not installed
is a config error (zflow.config). Tracking never changes results, so it never re-runs a job
(``Plan.spec_file`` leaves it out of the spec's hash).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from zflow import paths, schema

# backend (transformers' report_to name) -> the module it needs
MODULES = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio"}


def missing(backends) -> list[str]:
    """The backends whose package is not installed."""
    return [b for b in backends if importlib.util.find_spec(MODULES[b]) is None]


def settings(tracking: dict | None) -> dict:
    """The ``tracking`` section with the schema's defaults (a spec made outside a workflow)."""
    return {**schema.defaults("tracking"), **(tracking or {})}


def training_args(tracking: dict | None, run_dir, name: str) -> dict:
    """TrainingArguments keywords (``report_to``, ``run_name``, ``project``) of a run in
    ``run_dir``, and the environment transformers' callbacks read, set in this process:
    TENSORBOARD_LOGGING_DIR (``<run_dir>/tensorboard``), WANDB_DIR / WANDB_PROJECT / WANDB_MODE."""
    t, run = settings(tracking), Path(run_dir)
    backends = list(t["backends"])
    if "tensorboard" in backends:
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(run / paths.TENSORBOARD)
    if "wandb" in backends:
        os.environ["WANDB_DIR"] = str(run)
        os.environ["WANDB_PROJECT"] = t["project"]
        if t["mode"] == "offline":
            os.environ["WANDB_MODE"] = "offline"
    return {"report_to": backends or "none", "run_name": name, "project": t["project"]}
