"""The smoke run's config: the production config, shrunk by one overlay (config/smoke.yaml).

``shrink(prod, overlay, standins)`` walks *every* entry of the production config, so a source,
task, language, posttrain step, table or release added to config/zagreus.yaml shows up in the
smoke run without editing the overlay. It changes two kinds of things and nothing else:

- **sizes** (the overlay's keys, checked against ``SIZE_KEYS``: a key that is not a size is
  refused): model width and depth, sequence lengths, batch sizes, steps, checkpoint intervals,
  nodes and GPUs, eval limits, post-training lengths, decoding lengths, and how many of the
  checkpoints and baselines each list keeps (every rule still runs; fewer jobs of it);
- **what cannot be reached offline**, each swapped for a local stand-in of the same shape
  (``Standins``, written by zflow.smoke.standins): hub data sets and chat sets, the hub tokenizer,
  hub baselines, lm-eval's registry tasks (tiny task folders under the same names), and the
  nanotron trainer (a checkout whose run_train.py is the stand-in trainer, run by the smoke
  run's own python as the nanotron environment's interpreter).

Steps: a language keeps the first and the last checkpoint it evaluates plus every checkpoint the
config names elsewhere (``ita-step775000`` as a posttrain base, a table's model, a release);
kept checkpoints become steps ``interval, 2 x interval, ...`` in order, every reference to them
is rewritten, and the run ends at the last one. The other step fields (warm-up, decay, data
stages) are scaled by the same factor.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

CHECKPOINT = re.compile(r"([a-z]{2,3})-step(\d+)")

# The overlay's keys, each a size (or a count of items): nothing else may change.
SIZE_KEYS = {
    "target": None,
    "checkpoints": None,  # checkpoints kept per language (first, last and those named elsewhere)
    "checkpoint_interval": None,
    "baselines": None,  # baselines kept per list (eval.baselines, compare.baselines)
    "qualitative_baselines": None,  # baselines kept in qualitative.models (beside the own models)
    "model": {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "max_position_embeddings"},
    "pretrain": {"sequence_length", "micro_batch_size", "batch_accumulation_per_replica"},
    "nanotron": {"nodes", "gpus_per_node", "dp", "tp", "pp"},
    "posttrain": {"nodes", "gpus_per_node", "sequence_length", "epochs", "max_steps",
                  "micro_batch_size", "gradient_accumulation_steps", "val_set_size", "eval_steps",
                  "logging_steps", "save_steps", "max_prompt_length", "max_completion_length",
                  "num_generations", "dynamic_sampling_batches"},
    "tasks": {"limit"},
    "eval": {"batch_size", "max_batch_size", "bootstrap_iters"},
    "decoding": {"max_new_tokens"},
    "judge": {"max_tokens"},
    "data": {"rows", "chat_rows", "bpe_size", "tokenizer_vocab_size"},
}
STEP_FIELDS = ("lr_warmup_steps", "lr_decay_starting_step", "lr_decay_steps")


class OverlayError(ValueError):
    pass


@dataclass
class Standins:
    """Where each stand-in was written (paths as the smoke config names them)."""

    sources: dict = field(default_factory=dict)  # source key -> folder of same-shape parquet
    chat: dict = field(default_factory=dict)  # chat_data key -> file or folder
    tokenizers: dict = field(default_factory=dict)  # tokenizer key -> (folder, vocab, bos, eos)
    tasks: str | None = None  # folder of task folders under lm-eval's names
    baselines: dict = field(default_factory=dict)  # baseline key -> local model folder
    nanotron: str | None = None  # stand-in checkout
    nanotron_python: str | None = None  # stand-in environment's interpreter (the smoke run's)

    def describe(self) -> dict:
        """What the smoke run used in place of production, for its summary and the docs."""
        return {
            "sources": self.sources, "chat_data": self.chat,
            "tokenizers": {k: v[0] for k, v in self.tokenizers.items()},
            "tasks": self.tasks, "baselines": self.baselines, "nanotron_trainer": self.nanotron,
            "nanotron_python": self.nanotron_python,
        }


def check_overlay(overlay: dict) -> None:
    """Every key of the overlay is a size: refuse anything else, by name."""
    for key, value in overlay.items():
        if key not in SIZE_KEYS:
            raise OverlayError(f"config/smoke.yaml: '{key}' is not a size the smoke run may "
                               f"shrink (allowed: {', '.join(sorted(SIZE_KEYS))})")
        allowed = SIZE_KEYS[key]
        if allowed is None:
            continue
        items = value.items() if key != "posttrain" else \
            [(k, v) for per in value.values() for k, v in per.items()]
        for k, v in items:
            if k not in allowed:
                raise OverlayError(f"config/smoke.yaml: '{key}.{k}' is not a size (allowed "
                                   f"under {key}: {', '.join(sorted(allowed))})")
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise OverlayError(f"config/smoke.yaml: '{key}.{k}' must be a number, not {v!r}")


def hub_needs(prod: dict) -> dict:
    """What the production config reads from a hub or a registry: the stand-ins to write."""
    tasks = sorted({t["lm_eval_task"] for t in prod.get("tasks", {}).values()})
    return {
        "sources": {k: s["hub"] for k, s in prod.get("sources", {}).items() if s.get("hub")},
        "chat": {k: c["hub"] for k, c in prod.get("chat_data", {}).items() if c.get("hub")},
        "tokenizers": [k for k, t in prod.get("tokenizers", {}).items() if t.get("hub")],
        "tasks": tasks,
        "baselines": {k: b["model"] for k, b in prod.get("baselines", {}).items()},
    }


def _walk_refs(node, out: set, skip=()):
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(k, str) and CHECKPOINT.fullmatch(k):
                out.add(k)
            if k not in skip:
                _walk_refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _walk_refs(v, out)
    elif isinstance(node, str) and CHECKPOINT.fullmatch(node):
        out.add(node)


def named_checkpoints(prod: dict) -> dict[str, set[int]]:
    """lang -> the steps that the config names outside the languages' checkpoint lists."""
    refs: set = set()
    for key, value in prod.items():
        if key == "languages":
            for lc in value.values():
                _walk_refs({k: v for k, v in lc.items() if k != "eval"}, refs)
        else:
            _walk_refs(value, refs)
    out: dict[str, set[int]] = {}
    for ref in refs:
        lang, step = CHECKPOINT.fullmatch(ref).groups()
        out.setdefault(lang, set()).add(int(step))
    return out


def step_maps(prod: dict, keep: int, interval: int) -> dict[str, dict[int, int]]:
    """lang -> {production step: smoke step} for every checkpoint the smoke run keeps."""
    named = named_checkpoints(prod)
    maps = {}
    for lang, lc in prod["languages"].items():
        evaluated = sorted((lc.get("eval") or {}).get("checkpoints") or [])
        kept = set(named.get(lang, ()))
        if evaluated:
            kept |= set(evaluated[:max(1, keep - 1)]) | {evaluated[-1]}
        if not kept:
            kept = {lc["pretrain"]["train_steps"]}
        maps[lang] = {s: interval * (i + 1) for i, s in enumerate(sorted(kept))}
    return maps


def _rewrite(node, maps):
    """Every ``<lang>-step<N>`` (values and keys) through the step maps."""
    def one(s):
        m = CHECKPOINT.fullmatch(s) if isinstance(s, str) else None
        if m and m.group(1) in maps and int(m.group(2)) in maps[m.group(1)]:
            return f"{m.group(1)}-step{maps[m.group(1)][int(m.group(2))]}"
        return s

    if isinstance(node, dict):
        return {one(k): _rewrite(v, maps) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite(v, maps) for v in node]
    return one(node)


def _shrink_language(lc: dict, smap: dict, overlay: dict, standins: Standins, prod: dict) -> None:
    interval = overlay["checkpoint_interval"]
    pre = lc["pretrain"]
    last_prod, last = max(smap), max(smap.values())
    factor = last / last_prod
    pre["train_steps"] = last
    pre["checkpoint_interval"] = interval
    for f in STEP_FIELDS:
        if f in pre:
            pre[f] = max(1, min(last, round(pre[f] * factor)))
    if "segment_steps" in pre:
        pre["segment_steps"] = interval
    if pre.get("stages"):
        prev = -1
        for st in pre["stages"]:
            st["start_step"] = max(prev + 1, min(last - 1, round(st["start_step"] * factor)))
            prev = st["start_step"]
    pre.update(overlay.get("pretrain", {}))
    if pre.get("nanotron") is not None:
        nano = pre["nanotron"]
        nano.update(overlay.get("nanotron", {}))
        nano["checkout"] = standins.nanotron
        if standins.nanotron_python:
            nano["python"] = standins.nanotron_python
        if "val_check_interval" in nano:
            nano["val_check_interval"] = interval
    if lc.get("eval", {}).get("checkpoints"):
        lc["eval"]["checkpoints"] = sorted(v for k, v in smap.items()
                                           if k in set(lc["eval"]["checkpoints"]))
    model = lc["model"]
    model.update(overlay.get("model", {}))
    tok = lc.get("tokenizer")
    if tok in standins.tokenizers:
        _, vocab, bos, eos = standins.tokenizers[tok]
        model["vocab_size"] = vocab
        for k, v in (("bos_token_id", bos), ("eos_token_id", eos)):
            if k in model:
                model[k] = v
    elif tok in prod.get("tokenizers", {}) and prod["tokenizers"][tok].get("train"):
        model["vocab_size"] = overlay["data"]["tokenizer_vocab_size"]


def shrink(prod: dict, overlay: dict, standins: Standins) -> dict:
    """The smoke config: ``prod`` with the overlay's sizes and the stand-ins (see module doc)."""
    check_overlay(overlay)
    cfg = copy.deepcopy(prod)
    maps = step_maps(cfg, overlay["checkpoints"], overlay["checkpoint_interval"])
    for lang, lc in cfg["languages"].items():
        _shrink_language(lc, maps[lang], overlay, standins, prod)

    for key, src in cfg.get("sources", {}).items():
        if key in standins.sources:
            src.pop("hub", None)
            src["path"] = standins.sources[key]
            src["glob"] = "**/*.parquet"
    for key, chat in cfg.get("chat_data", {}).items():
        if key in standins.chat:
            chat.pop("hub", None)
            chat["path"] = standins.chat[key]
    for key, tok in cfg.get("tokenizers", {}).items():
        if key in standins.tokenizers:
            tok["hub"], tok["vocab_size"] = standins.tokenizers[key][0], standins.tokenizers[key][1]
        elif tok.get("train"):
            tok["train"]["vocab_size"] = overlay["data"]["tokenizer_vocab_size"]
    for task in cfg.get("tasks", {}).values():
        task["include_path"] = standins.tasks
        task.update(overlay.get("tasks", {}))
    for key, base in cfg.get("baselines", {}).items():
        base["model"] = standins.baselines[key]
    cfg.setdefault("eval", {}).update(overlay.get("eval", {}))

    sizes = overlay.get("posttrain", {})
    for entry in cfg.get("posttrain", {}).values():
        for per in (sizes.get("all", {}), sizes.get(entry["method"], {})):
            for k, v in per.items():
                if k in ("nodes", "gpus_per_node"):
                    entry[k] = v
                else:
                    entry.setdefault("train", {})[k] = v

    n = overlay.get("baselines")
    if n is not None:
        for lc in cfg["languages"].values():
            if (lc.get("eval") or {}).get("baselines"):
                lc["eval"]["baselines"] = lc["eval"]["baselines"][:n]
        if (cfg.get("compare") or {}).get("baselines"):
            cfg["compare"]["baselines"] = cfg["compare"]["baselines"][:n]
    qual = cfg.get("qualitative")
    n = overlay.get("qualitative_baselines")
    if qual and n is not None:  # every model the workflow makes stays; the first n baselines
        names = [m if isinstance(m, str) else m.get("name") for m in qual["models"]]
        keep = [b for b in names if b in cfg.get("baselines", {})][:n]
        qual["models"] = [m for m, name in zip(qual["models"], names)
                          if name not in cfg.get("baselines", {}) or name in keep]
    if qual:
        qual.setdefault("decoding", {}).update(overlay.get("decoding", {}))
        if qual.get("judge"):
            qual["judge"].update(overlay.get("judge", {}))
    return _rewrite(cfg, maps)
