"""The training metrics CSVs: one schema per stage, the same for both pretraining backends."""

from __future__ import annotations

import csv
import io
from pathlib import Path

# Pretraining (hf and nanotron): what a backend cannot measure is left empty.
PRETRAIN = ["step", "consumed_tokens", "loss", "lr", "grad_norm", "tokens_per_sec",
            "tokens_per_sec_per_gpu", "model_tflops_per_gpu", "mfu", "elapsed_s"]
# Post-training (SFT, DPO, GRPO): rewards_accuracy / rewards_margin are DPO's implicit rewards;
# reward ... masked_groups are GRPO's, per logged step: the mean total reward of the step's
# completions and its spread, the mean of each reward function (one column per name of
# zflow.rewards.REWARDS, empty where unused), mean completion length in tokens, the share of groups
# with zero reward variance, and dynamic sampling's generation batches, dropped and masked groups.
REWARD_NAMES = ("math", "format", "length", "code", "choice", "ifeval", "tool")
POSTTRAIN = ["step", "epoch", "loss", "eval_loss", "lr", "grad_norm", "rewards_accuracy",
             "rewards_margin", "reward", "reward_std", *(f"reward_{n}" for n in REWARD_NAMES),
             "completion_length", "frac_reward_zero_std", "generation_batches", "dropped_groups",
             "masked_groups", "elapsed_s"]


def append(path: Path, row: dict, fields: list[str]) -> None:
    """Append one row (the header when the file is new)."""
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        if new:
            w.writeheader()
        w.writerow(row)


def read(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def trim(path: Path, upto: int, fields: list[str]) -> None:
    """Keep the rows up to step ``upto``: those after the state a run resumes from go."""
    if path.exists():
        text = to_csv([r for r in read(path) if int(r["step"]) <= upto], fields)
        path.write_text(text)


def to_csv(rows, fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def series(rows, field: str) -> list[tuple[int, float]]:
    """(step, value) of the rows where ``field`` was logged."""
    return [(int(float(r["step"])), float(r[field])) for r in rows if r.get(field) not in (None, "")]
