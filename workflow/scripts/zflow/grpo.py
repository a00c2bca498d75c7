"""GRPO with TRL's GRPOTrainer: what the posttrain job's method ``grpo`` adds (Domyn-Small §4.2-4.4).

Rows are chat.py's ``prompt`` rows: ``prompt`` messages plus the columns zflow.rewards reads.
``prepare_rows`` gives each row its reasoning mode: of the rows whose ``reasoning`` column is
unset, a seeded ``reasoning_share`` are reasoning-on; every row gets its mode's system prompt
(``reasoning_on_prompt`` / ``reasoning_off_prompt``, before the row's own system turn, if any) and
its ``reasoning`` column, which the format reward reads.

``config_kwargs`` maps the config's names onto GRPOConfig; ``build_rewards`` makes the reward
functions of ``train.rewards`` (zflow.rewards), the length penalty reaching its floor at
``max_completion_length`` unless the entry sets ``max_tokens``.

``trainer_class()`` is GRPOTrainer plus:

- per-row tools: each prompt is rendered with its own row's ``tools`` by the chat template, as SFT
  renders them (TRL renders the trainer's tools only);
- dynamic sampling (``dynamic_sampling_batches`` N >= 1): once a generation batch is scored, its
  groups whose rewards are all equal (zero advantage: no signal) are replaced by groups with reward
  variance from up to N - 1 further generation batches, of training prompts drawn with a seed of the
  step; groups still flat after that are masked out of the loss. Each process holds whole groups
  (checked) and all processes generate the same number of batches. Logged per step as
  ``dynamic_sampling/{batches,dropped_groups,masked_groups}``; TRL's reward and length logs then
  cover every completion generated at the step.
"""

from __future__ import annotations

import functools
import random

from zflow import rewards as rw
from zflow.metrics import REWARD_NAMES

# metrics CSV column (zflow.metrics.POSTTRAIN) -> key of the trainer's logs
LOG_KEYS = {
    "reward": "reward", "reward_std": "reward_std",
    **{f"reward_{n}": f"rewards/{n}/mean" for n in REWARD_NAMES},
    "completion_length": "completions/mean_length", "frac_reward_zero_std": "frac_reward_zero_std",
    "generation_batches": "dynamic_sampling/batches",
    "dropped_groups": "dynamic_sampling/dropped_groups",
    "masked_groups": "dynamic_sampling/masked_groups",
}


def log_row(logs: dict) -> dict:
    return {col: logs.get(key) for col, key in LOG_KEYS.items()}


# --- rewards and settings ---------------------------------------------------------------------

def reward_specs(train: dict) -> list[dict]:
    """``train.rewards`` with the length penalty's cap defaulting to ``max_completion_length``."""
    out = []
    for spec in train["rewards"]:
        spec = dict(spec)
        if spec.get("name") == "length":
            spec.setdefault("max_tokens", train["max_completion_length"])
        out.append(spec)
    return out


def build_rewards(train: dict):
    """(reward functions, weights) of ``train.rewards``; ValueError names a bad entry."""
    return rw.build_rewards(reward_specs(train))


def config_kwargs(train: dict) -> dict:
    """GRPOConfig arguments from the config's names (Domyn-Small's settings, TRL's meaning)."""
    kw = dict(num_generations=train["num_generations"], num_iterations=train["num_iterations"],
              beta=train["beta"], epsilon=train["epsilon"], epsilon_high=train["epsilon_high"],
              loss_type=train["loss_type"], temperature=train["temperature"], top_p=train["top_p"],
              max_completion_length=train["max_completion_length"],
              reward_weights=[float(s.get("weight", 1.0)) for s in train["rewards"]])
    if train.get("vllm_server_url"):
        kw.update(use_vllm=True, vllm_mode="server", vllm_server_base_url=train["vllm_server_url"])
    return kw


# --- reasoning modes ----------------------------------------------------------------------------

def reasoning_modes(rows: list[dict], share: float, seed: int) -> list[bool]:
    """Each row's reasoning mode: its ``reasoning`` column where set, else on for a seeded
    ``round(share * n)`` of the n rows without one."""
    free = [i for i, r in enumerate(rows) if r.get("reasoning") is None]
    order = list(free)
    random.Random(seed).shuffle(order)
    on = set(order[:round(share * len(free))])
    return [bool(r["reasoning"]) if r.get("reasoning") is not None else i in on
            for i, r in enumerate(rows)]


def with_system(messages: list[dict], text: str) -> list[dict]:
    """``text`` as the system prompt, before the conversation's own system turn if it has one."""
    if not text:
        return messages
    if messages[0]["role"] == "system":
        return [{**messages[0], "content": f"{text}\n\n{messages[0]['content']}"}, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def prepare_rows(rows: list[dict], train: dict) -> list[dict]:
    modes = reasoning_modes(rows, train["reasoning_share"], train["seed"])
    return [{**r, "reasoning": on,
             "prompt": with_system(r["prompt"], train["reasoning_on_prompt" if on else
                                                     "reasoning_off_prompt"])}
            for r, on in zip(rows, modes)]


# --- dynamic sampling: the batch surgery ---------------------------------------------------------

# A scored generation batch of GRPOTrainer: per-row tensors, token tensors padded on one side.
LEFT = {"prompt_ids": None, "prompt_mask": 0}  # None: the tokenizer's pad id
RIGHT = {"completion_ids": None, "completion_mask": 0, "old_per_token_logps": 0.0,
         "sampling_per_token_logps": 0.0, "ref_per_token_logps": 0.0, "tool_mask": 1,
         "importance_sampling_ratio": 1.0}
ROWS = {"advantages"}
RECOMPUTED = {"num_items_in_batch"}


def _widen(t, length: int, side: str, value):
    import torch

    if t.size(1) >= length:
        return t
    pad = t.new_full((t.size(0), length - t.size(1)), value)
    return torch.cat([pad, t] if side == "left" else [t, pad], dim=1)


def replace_rows(batch: dict, rows: list[int], donor: dict, donor_rows: list[int], pad_id: int) -> dict:
    """``batch`` with its rows ``rows`` taken from rows ``donor_rows`` of ``donor`` (both scored
    generation batches); token tensors are padded to the longer of the two, on their side."""
    import torch

    rows_t, donor_t = torch.tensor(rows), torch.tensor(donor_rows)
    out = dict(batch)
    for key, value in batch.items():
        if value is None or key in RECOMPUTED:
            continue
        other = donor[key]
        if key in ROWS:
            value = value.clone()
            value[rows_t] = other[donor_t].to(value.dtype)
        elif key in LEFT or key in RIGHT:
            side, fill = ("left", LEFT[key]) if key in LEFT else ("right", RIGHT[key])
            fill = pad_id if fill is None else fill
            length = max(value.size(1), other.size(1))
            value = _widen(value, length, side, fill).clone()
            value[rows_t] = _widen(other, length, side, fill)[donor_t].to(value.dtype)
        else:
            raise ValueError(f"dynamic sampling cannot merge the batch's '{key}' (multimodal or "
                             f"custom rollouts are not supported with dynamic_sampling_batches)")
        out[key] = value
    return out


def group_rows(groups: list[int], size: int) -> list[int]:
    return [g * size + k for g in groups for k in range(size)]


# --- the trainer --------------------------------------------------------------------------------

@functools.cache
def trainer_class():
    import json

    import torch
    from trl import GRPOTrainer
    from trl.data_utils import is_conversational

    class Trainer(GRPOTrainer):
        """GRPOTrainer with per-row tools and dynamic sampling (see zflow.grpo)."""

        def __init__(self, *args, dynamic_sampling_batches: int = 0, **kwargs):
            self.sampling_batches = dynamic_sampling_batches
            self._row_tools = None
            self._scored = None
            super().__init__(*args, **kwargs)
            local = self.args.per_device_train_batch_size * self.args.steps_per_generation
            if self.sampling_batches and local % self.num_generations:
                raise ValueError(
                    f"dynamic sampling needs whole groups on each process: the per-process "
                    f"generation batch ({local} completions) is not a multiple of "
                    f"num_generations ({self.num_generations})")

        # per-row tools ---------------------------------------------------------------------

        def _tokenize_prompts(self, prompts):
            tools = self._row_tools
            if not tools or not any(tools) or not is_conversational({"prompt": prompts[0]}):
                return super()._tokenize_prompts(prompts)
            ids = []
            for prompt, spec in zip(prompts, tools, strict=True):
                enc = self.processing_class.apply_chat_template(
                    conversation=[prompt], tools=json.loads(spec) if spec else None,
                    chat_template=self.chat_template, add_generation_prompt=True, tokenize=True,
                    return_dict=True, **self.chat_template_kwargs)
                ids.append(list(enc["input_ids"][0]))
            return ids, None, {}

        def _score(self, inputs):
            self._row_tools = [x.get("tools") for x in inputs]
            try:
                return super()._generate_and_score_completions(inputs)
            finally:
                self._row_tools = None

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            self._scored = super()._calculate_rewards(inputs, prompts, completions,
                                                      completion_ids_list)
            return self._scored

        # dynamic sampling --------------------------------------------------------------------

        def _generate_and_score_completions(self, inputs):
            batch = self._score(inputs)
            if self.sampling_batches and self.model.training:
                batch = self._dynamic_sampling(batch, len(inputs))
            return batch

        def _local_rewards(self, n: int) -> list[float]:
            """This process's total rewards of the last scored batch (NaN: unscorable)."""
            per_func = self._scored
            total = (per_func * self.reward_weights.to(per_func.device).unsqueeze(0)).nansum(dim=1)
            total[torch.isnan(per_func).all(dim=1)] = torch.nan
            start = self.accelerator.process_index * n
            return total[start:start + n].tolist()

        def _draw(self, n_prompts: int, round_: int) -> list[dict]:
            """Training rows for a further generation batch: seeded by the step, the round, the
            process; each prompt repeated num_generations times, as RepeatSampler lays them out."""
            rng = random.Random(f"{self.args.seed}:{self.state.global_step}:{round_}:"
                                f"{self.accelerator.process_index}")
            data = self.train_dataset
            picks = [rng.randrange(len(data)) for _ in range(n_prompts)]
            return [data[i] for i in picks for _ in range(self.num_generations)]

        def _anyone(self, count: int) -> bool:
            mine = torch.tensor([count], device=self.accelerator.device)
            return bool(self.accelerator.gather(mine).max().item() > 0)

        def _dynamic_sampling(self, batch: dict, n: int) -> dict:
            size, pad_id = self.num_generations, self._tokenizer.pad_token_id
            flat = rw.zero_variance_groups(self._local_rewards(n), size)
            dropped, batches = len(flat), 1
            while batches < self.sampling_batches and self._anyone(len(flat)):
                extra = self._score(self._draw(n // size, batches))
                batches += 1
                still = set(rw.zero_variance_groups(self._local_rewards(n), size))
                good = [g for g in range(n // size) if g not in still][:len(flat)]
                if good:
                    batch = replace_rows(batch, group_rows(flat[:len(good)], size), extra,
                                         group_rows(good, size), pad_id)
                    flat = flat[len(good):]
            if flat:  # nothing to learn from them: out of the loss and of its token count
                batch["completion_mask"] = batch["completion_mask"].clone()
                batch["completion_mask"][torch.tensor(group_rows(flat, size))] = 0
            mask = batch["completion_mask"]
            if batch.get("tool_mask") is not None:
                mask = mask * batch["tool_mask"]
            batch["num_items_in_batch"] = self.accelerator.gather(mask.sum()).sum()
            counts = torch.tensor([dropped, len(flat)], device=self.accelerator.device)
            dropped_all, masked_all = self.accelerator.gather(counts).view(-1, 2).sum(0).tolist()
            metrics = self._metrics["train"]
            metrics["dynamic_sampling/batches"].append(batches)
            metrics["dynamic_sampling/dropped_groups"].append(dropped_all)
            metrics["dynamic_sampling/masked_groups"].append(masked_all)
            return batch

    return Trainer


def make_trainer(model, tokenizer, train: dict, kwargs: dict, train_ds, val_ds, callbacks):
    from trl import GRPOConfig

    funcs, _ = build_rewards(train)
    return trainer_class()(model=model, reward_funcs=funcs, args=GRPOConfig(**kwargs),
                           train_dataset=train_ds, eval_dataset=val_ds, processing_class=tokenizer,
                           callbacks=callbacks,
                           dynamic_sampling_batches=train["dynamic_sampling_batches"])
