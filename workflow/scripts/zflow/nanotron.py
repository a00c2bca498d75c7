"""nanotron files without nanotron: its checkpoint layout, its YAML config, its log lines.

nanotron itself needs CUDA + flash-attn even to import its config module, so everything here
reads and writes the files directly (layout facts: docs/nanotron.md in the field notes), and checks
the environment a nanotron job launches in (the pinned nanotron and datatrove commits below).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from zflow import metrics, schedule, tokenized

# ---------------------------------------------------------------- checkpoint layout

LAYERS = "model/model/decoder/{i}/pp_block"

# What nanotron writes for a checkpoint, in its order (Trainer.save_checkpoint, trainer.py:1178,
# and serialize/main.py save() at NANOTRON_COMMIT), relative to the step directory (``..``: the
# checkpoints root), and what zflow does when a kill stops it right before that entry:
#   "skip":     the entry comes before latest.txt, so latest.txt still names the previous step:
#               nanotron resumes from that one and writes this step again; until then the step is
#               not a checkpoint (check_complete refuses it, saying so; complete_steps omits it).
#   "complete": the entry comes after latest.txt: nanotron resumes from this step and never writes
#               it again; zflow writes it from what the step holds (complete_checkpoint).
#   "ignore":   not needed by nanotron's resume nor by the converter.
# save() ends with a barrier of every rank: once any rank writes latest.txt, every rank's config,
# weights, optimizer, lr_scheduler and metadata of the step are on disk. random/ (each rank's own
# file) and model_config.json (every rank, json.dumps(asdict(model_config))) follow with no barrier.
WRITE_ORDER = (
    ("config.yaml", "skip"),  # rank 0 (re-read by nanotron as a sanity check)
    ("model", "skip"),  # weights: dp rank 0 of each tp / pp rank
    ("optimizer", "skip"),
    ("lr_scheduler", "skip"),
    ("checkpoint_metadata.json", "skip"),  # rank 0, then the barrier
    ("random", "ignore"),  # RNG states, one file per rank; never loaded at the pin
    ("../latest.txt", "skip"),  # every rank, the step number (no newline)
    ("model_config.json", "complete"),  # every rank; = config.yaml's model.model_config
)
MODEL_CONFIG = "model_config.json"


def _shard_name(tp_rank: int, tp: int) -> str:
    return f"model_weight_pp-rank-0-of-1_tp-rank-{tp_rank}-of-{tp}.safetensors"


class IncompleteCheckpoint(ValueError):
    pass


def _step_number(step_dir: Path) -> int | None:
    if step_dir.name.isdigit():
        return int(step_dir.name)
    try:
        return int(json.loads((step_dir / "checkpoint_metadata.json").read_text())
                   ["metas"]["last_train_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _written_model_config(step_dir: Path) -> dict | None:
    """model_config.json as nanotron wrote it; None when absent or cut short by a kill."""
    try:
        mc = json.loads((step_dir / MODEL_CONFIG).read_text())
    except (OSError, ValueError):
        return None
    return mc if isinstance(mc, dict) else None


def derived_model_config(cfg: dict) -> dict:
    """The model_config.json nanotron writes, from its config (the step's config.yaml): the
    same ``model.model_config`` object (the trainer pads its vocab_size in place before the first
    save), vocab padded to make_vocab_size_divisible_by x tp (a no-op on nanotron's own
    config.yaml; the stand-in's keeps the unpadded size), kv heads defaulting to heads."""
    mc = dict(cfg["model"]["model_config"])
    multiple = (cfg["model"].get("make_vocab_size_divisible_by") or 1) * \
        ((cfg.get("parallelism") or {}).get("tp") or 1)
    mc["vocab_size"] = -(-mc["vocab_size"] // multiple) * multiple
    if mc.get("num_key_value_heads") is None:
        mc["num_key_value_heads"] = mc["num_attention_heads"]
    return mc


def _config_model_config(step_dir: Path) -> dict | None:
    import yaml

    try:
        return derived_model_config(yaml.safe_load((step_dir / "config.yaml").read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError):
        return None


def check_complete(step_dir) -> int:
    """Return the step of a nanotron checkpoint directory that is a checkpoint, else raise with
    the reason. A checkpoint: latest.txt has reached it (nanotron writes latest.txt once every
    rank has written the step's weights, optimizer and metadata), its metadata names it, and its
    model config is there or can be completed from its config.yaml (WRITE_ORDER: a kill between
    latest.txt and model_config.json leaves a step nanotron resumes from)."""
    step_dir = Path(step_dir)
    step, latest = _step_number(step_dir), finished_step(step_dir.parent)
    if step is not None and (latest is None or latest < step):
        raise IncompleteCheckpoint(
            f"{step_dir}: latest.txt has not reached step {step} yet (it is at "
            f"{'no step' if latest is None else latest}): the step is still being written, or "
            "nanotron was stopped while writing it and writes it again after resuming from "
            "latest.txt's step; skipped until then")
    meta = step_dir / "checkpoint_metadata.json"
    if not meta.exists():
        raise IncompleteCheckpoint(f"{step_dir}: no checkpoint_metadata.json (still being "
                                   "written? nanotron writes it before latest.txt)")
    try:
        m = json.loads(meta.read_text())
        meta_step = int(m["metas"]["last_train_step"])
    except (ValueError, KeyError, TypeError) as e:
        raise IncompleteCheckpoint(f"{step_dir}: unreadable checkpoint_metadata.json ({e})") from e
    if step is not None and meta_step != step:
        raise IncompleteCheckpoint(f"{step_dir}: metadata says step {meta_step}")
    if not (step_dir / "config.yaml").exists():
        raise IncompleteCheckpoint(f"{step_dir}: missing config.yaml (nanotron writes it first: "
                                   "the step was damaged after it was written)")
    if _written_model_config(step_dir) is None and _config_model_config(step_dir) is None:
        raise IncompleteCheckpoint(f"{step_dir}: missing {MODEL_CONFIG}, and its config.yaml "
                                   "has no model.model_config to complete it from")
    return meta_step


def model_config_of(step_dir) -> dict:
    """The step's model_config.json, or, where a kill came between latest.txt and it, the same
    dict from the step's config.yaml (derived_model_config)."""
    step_dir = Path(step_dir)
    mc = _written_model_config(step_dir) or _config_model_config(step_dir)
    if mc is None:
        raise IncompleteCheckpoint(f"{step_dir}: no {MODEL_CONFIG} and no config.yaml to derive "
                                   "it from")
    return mc


def complete_checkpoint(step_dir) -> list[str]:
    """Write what a kill after latest.txt left out of a checkpoint (WRITE_ORDER's "complete"
    entries: model_config.json, from config.yaml), atomically; the files written (none when the
    step was whole). Refuses (IncompleteCheckpoint) a step that is not a checkpoint yet."""
    from zflow.io import write_text

    step_dir = Path(step_dir)
    check_complete(step_dir)
    if _written_model_config(step_dir) is not None:
        return []
    write_text(step_dir / MODEL_CONFIG, json.dumps(_config_model_config(step_dir)))
    return [MODEL_CONFIG]


def complete_steps(root) -> list[int]:
    """The steps of the complete checkpoints under a checkpoints root (whatever run made them),
    those a kill left without model_config.json included (check_complete)."""
    root, steps = Path(root), []
    for d in root.iterdir() if root.is_dir() else []:
        try:
            if d.is_dir() and d.name.isdigit():
                steps.append(check_complete(d))
        except (OSError, ValueError):  # IncompleteCheckpoint, or an unreadable latest.txt
            continue
    return sorted(steps)


def complete_all(root) -> dict[int, list[str]]:
    """complete_checkpoint on every checkpoint under ``root``: {step: files written}."""
    out = {}
    for step in complete_steps(root):
        written = complete_checkpoint(Path(root) / str(step))
        if written:
            out[step] = written
    return out


def repair_latest(root) -> str | None:
    """A kill while latest.txt is being written (every rank truncates it, then writes the step)
    leaves it empty: nanotron's int() of it fails at every relaunch. Rewrite it to the newest
    step whose model_config.json exists (nanotron writes that after latest.txt, so that step's
    save was finished), or remove it when there is none (nanotron then starts from scratch).
    What was done, or None when latest.txt is absent or readable."""
    root = Path(root)
    latest = root / "latest.txt"
    if not latest.exists() or finished_step(root) is not None:
        return None
    done = [int(d.name) for d in root.iterdir()
            if d.name.isdigit() and _written_model_config(d) is not None]
    if not done:
        latest.unlink()
        return (f"{latest} was empty (nanotron was stopped while writing it) and no step has "
                "its model_config.json: removed, nanotron starts from scratch")
    from zflow.io import write_text

    write_text(latest, str(max(done)))
    return (f"{latest} was empty (nanotron was stopped while writing it): set to step "
            f"{max(done)}, the newest step nanotron finished saving")


def _load(path: Path):
    from safetensors.torch import load_file

    if not path.exists():
        raise IncompleteCheckpoint(f"missing weight file {path}")
    try:
        return load_file(str(path))["data"]
    except Exception as e:  # noqa: BLE001 - a truncated file is an incomplete checkpoint
        raise IncompleteCheckpoint(f"unreadable weight file {path} ({e})") from e


def _load_sharded(folder: Path, tp: int):
    return [_load(folder / _shard_name(t, tp)) for t in range(tp)]


def read_checkpoint(step_dir) -> tuple[dict, dict]:
    """(HF LlamaForCausalLM state dict, nanotron model_config) of a complete checkpoint."""
    import torch

    step_dir = Path(step_dir)
    check_complete(step_dir)
    mc = model_config_of(step_dir)
    tp = int(json.loads((step_dir / "checkpoint_metadata.json").read_text()).get("tp", 1))
    h, nq, nkv = mc["hidden_size"], mc["num_attention_heads"], mc["num_key_value_heads"]
    d = h // nq
    sd = {}
    emb = torch.cat(_load_sharded(
        step_dir / "model/model/token_position_embeddings/pp_block/token_embedding", tp), 0)
    sd["model.embed_tokens.weight"] = emb
    for i in range(mc["num_hidden_layers"]):
        base = step_dir / LAYERS.format(i=i)
        qs, ks, vs = [], [], []
        for shard in _load_sharded(base / "attn/qkv_proj", tp):
            q_rows, kv_rows = nq * d // tp, nkv * d // tp
            qs.append(shard[:q_rows])
            ks.append(shard[q_rows:q_rows + kv_rows])
            vs.append(shard[q_rows + kv_rows:])
        q, k, v = torch.cat(qs), torch.cat(ks), torch.cat(vs)
        if mc.get("rope_interleaved"):
            q, k = _interleaved_to_half(q, nq, d), _interleaved_to_half(k, nkv, d)
        p = f"model.layers.{i}"
        sd[f"{p}.self_attn.q_proj.weight"] = q
        sd[f"{p}.self_attn.k_proj.weight"] = k
        sd[f"{p}.self_attn.v_proj.weight"] = v
        sd[f"{p}.self_attn.o_proj.weight"] = torch.cat(_load_sharded(base / "attn/o_proj", tp), 1)
        gates, ups = [], []
        for shard in _load_sharded(base / "mlp/gate_up_proj", tp):
            half = shard.shape[0] // 2
            gates.append(shard[:half])
            ups.append(shard[half:])
        sd[f"{p}.mlp.gate_proj.weight"] = torch.cat(gates)
        sd[f"{p}.mlp.up_proj.weight"] = torch.cat(ups)
        sd[f"{p}.mlp.down_proj.weight"] = torch.cat(_load_sharded(base / "mlp/down_proj", tp), 1)
        sd[f"{p}.input_layernorm.weight"] = _load(base / "input_layernorm/model_weight.safetensors")
        sd[f"{p}.post_attention_layernorm.weight"] = _load(
            base / "post_attention_layernorm/model_weight.safetensors")
    sd["model.norm.weight"] = _load(
        step_dir / "model/model/final_layer_norm/pp_block/model_weight.safetensors")
    if not mc.get("tie_word_embeddings"):
        sd["lm_head.weight"] = torch.cat(_load_sharded(step_dir / "model/model/lm_head/pp_block", tp), 0)
    return sd, mc


def _interleaved_to_half(w, heads: int, d: int):
    """GPT-J (interleaved pairs) rotary rows -> NeoX / HF rotate-half rows, per head."""
    w = w.view(heads, d, -1)
    w = w.view(heads, d // 2, 2, -1).transpose(1, 2).reshape(heads, d, -1)
    return w.reshape(heads * d, -1)


def _half_to_interleaved(w, heads: int, d: int):
    w = w.view(heads, 2, d // 2, -1).transpose(1, 2).reshape(heads, d, -1)
    return w.reshape(heads * d, -1)


def hf_config(mc: dict, vocab_size: int | None = None):
    """transformers' LlamaConfig of a nanotron model_config (the config's model section
    through ``model_config``, or a checkpoint's model_config.json)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size or mc["vocab_size"],
        hidden_size=mc["hidden_size"],
        intermediate_size=mc["intermediate_size"],
        num_hidden_layers=mc["num_hidden_layers"],
        num_attention_heads=mc["num_attention_heads"],
        num_key_value_heads=mc["num_key_value_heads"],
        hidden_act=mc["hidden_act"],
        max_position_embeddings=mc["max_position_embeddings"],
        rms_norm_eps=mc["rms_norm_eps"],
        rope_theta=mc["rope_theta"],
        tie_word_embeddings=mc["tie_word_embeddings"],
        bos_token_id=mc.get("bos_token_id"),
        eos_token_id=mc.get("eos_token_id"),
        pad_token_id=mc.get("pad_token_id"),
        initializer_range=mc["initializer_range"],
        attention_bias=False,
        mlp_bias=False,
        head_dim=mc["hidden_size"] // mc["num_attention_heads"],
    )


def write_checkpoint(model, root, step: int, tp: int = 1, rope_interleaved: bool = False,
                     dtype=None, config: dict | None = None, stop_after: str | None = None) -> Path:
    """Write an HF LlamaForCausalLM in nanotron's layout (test fixtures, the reverse direction),
    in nanotron's order (WRITE_ORDER; optimizer/, lr_scheduler/ and random/ are not written).
    ``config``: the nanotron config written as config.yaml (default: its model and parallelism
    sections only). ``stop_after``: a WRITE_ORDER entry after which to stop, as a kill would."""
    import torch
    import yaml
    from safetensors.torch import save_file

    if stop_after is not None and stop_after not in dict(WRITE_ORDER):
        raise ValueError(f"stop_after: {stop_after!r} is none of {[n for n, _ in WRITE_ORDER]}")
    cfg = model.config
    sd = {k: v.detach().to(dtype or v.dtype).contiguous() for k, v in model.state_dict().items()}
    h, nq, nkv = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads
    d = h // nq
    if nq % tp or nkv % tp or cfg.vocab_size % tp:
        raise ValueError(f"tp={tp} does not divide heads / kv heads / vocab")
    root = Path(root)
    step_dir = root / str(step)
    mc = {
        "bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id,
        "hidden_act": cfg.hidden_act, "hidden_size": h, "initializer_range": cfg.initializer_range,
        "intermediate_size": cfg.intermediate_size, "is_llama_config": True,
        "max_position_embeddings": cfg.max_position_embeddings, "num_attention_heads": nq,
        "num_hidden_layers": cfg.num_hidden_layers, "num_key_value_heads": nkv,
        "pad_token_id": cfg.pad_token_id, "pretraining_tp": 1, "rms_norm_eps": cfg.rms_norm_eps,
        "rope_interleaved": rope_interleaved, "rope_scaling": None,
        "rope_theta": getattr(cfg, "rope_theta", None) or cfg.rope_parameters["rope_theta"],
        "tie_word_embeddings": cfg.tie_word_embeddings, "use_cache": True,
        "vocab_size": cfg.vocab_size,
    }
    if config is None:
        config = {"model": {"model_config": mc, "make_vocab_size_divisible_by": 1},
                  "parallelism": {"dp": 1, "pp": 1, "tp": tp}}

    def save(folder: Path, tensor, t=None):
        folder.mkdir(parents=True, exist_ok=True)
        name = "model_weight.safetensors" if t is None else _shard_name(t, tp)
        meta = {"version": "1.5"}
        save_file({"data": tensor.contiguous()}, str(folder / name), metadata=meta)

    def split(tensor, dim):
        return torch.chunk(tensor, tp, dim=dim)

    def weights():
        for t, part in enumerate(split(sd["model.embed_tokens.weight"], 0)):
            save(step_dir / "model/model/token_position_embeddings/pp_block/token_embedding",
                 part, t)
        for i in range(cfg.num_hidden_layers):
            p, base = f"model.layers.{i}", step_dir / LAYERS.format(i=i)
            q, k, v = (sd[f"{p}.self_attn.{x}_proj.weight"] for x in "qkv")
            if rope_interleaved:
                q, k = _half_to_interleaved(q, nq, d), _half_to_interleaved(k, nkv, d)
            for t, (qt, kt, vt) in enumerate(zip(split(q, 0), split(k, 0), split(v, 0))):
                save(base / "attn/qkv_proj", torch.cat([qt, kt, vt]), t)
            for t, part in enumerate(split(sd[f"{p}.self_attn.o_proj.weight"], 1)):
                save(base / "attn/o_proj", part, t)
            gate, up = sd[f"{p}.mlp.gate_proj.weight"], sd[f"{p}.mlp.up_proj.weight"]
            for t, (gt, ut) in enumerate(zip(split(gate, 0), split(up, 0))):
                save(base / "mlp/gate_up_proj", torch.cat([gt, ut]), t)
            for t, part in enumerate(split(sd[f"{p}.mlp.down_proj.weight"], 1)):
                save(base / "mlp/down_proj", part, t)
            save(base / "input_layernorm", sd[f"{p}.input_layernorm.weight"])
            save(base / "post_attention_layernorm", sd[f"{p}.post_attention_layernorm.weight"])
        save(step_dir / "model/model/final_layer_norm/pp_block", sd["model.norm.weight"])
        if not cfg.tie_word_embeddings:
            for t, part in enumerate(split(sd["lm_head.weight"], 0)):
                save(step_dir / "model/model/lm_head/pp_block", part, t)

    writers = {
        "config.yaml": lambda: (step_dir / "config.yaml").write_text(
            yaml.safe_dump(config, sort_keys=True)),
        "model": weights,
        "checkpoint_metadata.json": lambda: (step_dir / "checkpoint_metadata.json").write_text(
            json.dumps({"tp": tp, "dp": 1, "cp": 1, "version": "1.5",
                        "metas": {"last_train_step": step, "consumed_train_samples": 0,
                                  "consumed_tokens_total": 0, "data_stages": []}})),
        "../latest.txt": lambda: (root / "latest.txt").write_text(str(step)),
        MODEL_CONFIG: lambda: (step_dir / MODEL_CONFIG).write_text(json.dumps(mc)),
    }
    step_dir.mkdir(parents=True, exist_ok=True)
    for name, _ in WRITE_ORDER:
        if name in writers:
            writers[name]()
        if name == stop_after:
            break
    return step_dir


# ---------------------------------------------------------------- log lines

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ITER = re.compile(r"iteration:\s*(\d+)\s*/\s*(\d+)")
_SUFFIX = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
LOG_FIELDS = ["step", "train_steps", "consumed_tokens", "time_per_iteration_ms", "tokens_per_sec",
              "tokens_per_sec_per_gpu", "global_batch_size", "grad_norm", "lm_loss", "lr",
              "model_tflops_per_gpu", "mfu"]


def humanized(value: str) -> float:
    """'480B' -> 4.8e11, '8.79K' -> 8790.0, '0.112' -> 0.112 (nanotron's powers of 1000)."""
    value = value.strip()
    if value and value[-1] in _SUFFIX:
        return float(value[:-1]) * _SUFFIX[value[-1]]
    return float(value)


def parse_log_line(line: str, peak_tflops: float | None = None) -> dict | None:
    line = _ANSI.sub("", line)
    m = _ITER.search(line)
    if not m:
        return None
    row = {"step": int(m.group(1)), "train_steps": int(m.group(2))}
    for part in line[m.end():].split("|"):
        key, sep, value = part.partition(":")
        key = key.strip()
        if sep and key in LOG_FIELDS:
            try:
                row[key] = humanized(value)
            except ValueError:
                continue
    if peak_tflops and "model_tflops_per_gpu" in row:
        row["mfu"] = row["model_tflops_per_gpu"] / peak_tflops
    return row


def parse_log(lines, peak_tflops: float | None = None) -> list[dict]:
    rows = {}
    for line in lines:
        row = parse_log_line(line, peak_tflops)
        if row:
            rows[row["step"]] = row  # a resumed run re-logs steps: keep the newest
    return [rows[s] for s in sorted(rows)]


def metrics_rows(log_rows: list[dict]) -> list[dict]:
    """Parsed log rows in the pretraining metrics schema (zflow.metrics.PRETRAIN)."""
    out = []
    for r in log_rows:
        row = {k: r.get(k) for k in metrics.PRETRAIN}
        row["loss"] = r.get("lm_loss")
        ms = r.get("time_per_iteration_ms")
        prev = out[-1]["elapsed_s"] if out and out[-1]["elapsed_s"] is not None else 0.0
        row["elapsed_s"] = round(prev + ms / 1000, 3) if ms is not None else None
        out.append(row)
    return out


# ---------------------------------------------------------------- the nanotron we run

# The nanotron commit the workflow is written against (README "Install nanotron", `make
# nanotron-env`, envs/nanotron.yaml). 2025-04-14, "can only merge to main from dev (#348)": it
# has the TokenizedBytes data loader of 2025-04-10 and still initialises a new Llama. Its
# successor 37cc8b0c (2025-04-18) makes StandardParametrizator read
# config.model.init_method.std while LlamaForTraining.init_model_randomly still passes it
# config.model, so every later commit up to main (2411b022) dies before step 1.
NANOTRON_COMMIT = "d22eb80973cd7906afc975262c1725d34322037e"
# The datatrove it needs: the head of datatrove's branch nouamane/avoid-s3 (2025-04-10). Its
# DatatroveFolderDataset takes read_path (since 966dccf1) and matched_files / file_sizes (since
# 5bb7c9f7), which nanotron passes; the branch's 01a900e0 (2025-04-02) lacks all three, and
# PyPI's 0.5-0.10 call the first parameter data_folder (datatrove issue 374).
DATATROVE_COMMIT = "2c895af7a95010a96fa53e2dc77cc0ce92799e3f"
DATATROVE_PIP = f"datatrove @ git+https://github.com/huggingface/datatrove@{DATATROVE_COMMIT}"
# The keywords nanotron passes to DatatroveFolderDataset: TokenizedBytesFolderDataset's
# super().__init__ (src/nanotron/data/tokenized_bytes.py:419 at NANOTRON_COMMIT, the loader
# run_train.py uses for dataset_folder stages).
DATATROVE_KEYWORDS = ("folder_path", "seq_len", "filename_pattern", "recursive", "token_size",
                      "max_tokens", "shuffle", "seed", "return_positions", "eos_token_id",
                      "read_path", "matched_files", "file_sizes")

# ---------------------------------------------------------------- YAML config

# Every key nanotron accepts (dacite strict=True), mirrored from the config dataclasses at
# NANOTRON_COMMIT (d22eb809): src/nanotron/config/config.py, models_config.py (LlamaConfig,
# RandomInit / SpectralMupInit / ExistingCheckpointInit), parallelism_config.py,
# lighteval_config.py (top level only). Anything else is refused up front, because a misspelled
# model_config key silently selects another model class there. (data_stages[].sequence_length
# came later: main has it, the pin does not.)
KNOWN_KEYS = {
    "": {"general", "checkpoints", "logging", "metrics_logging", "parallelism", "model",
         "tokenizer", "tokens", "optimizer", "data_stages", "profiler", "lighteval", "s3_upload"},
    "general": {"project", "run", "seed", "step", "consumed_train_samples", "benchmark_csv_path",
                "ignore_sanity_checks"},
    "checkpoints": {"checkpoints_path", "checkpoint_interval", "save_initial_state",
                    "save_final_state", "resume_checkpoint_path", "load_lr_scheduler",
                    "load_optimizer", "checkpoints_path_is_shared_file_system"},
    "logging": {"iteration_step_info_interval", "log_level", "log_level_replica"},
    "metrics_logging": {"log_level", "log_detail_interval"},
    "parallelism": {"dp", "pp", "tp", "pp_engine", "tp_mode", "tp_linear_async_communication",
                    "recompute_layer", "moe_layer_recompute", "tp_recompute_allgather",
                    "expert_parallel_size", "context_parallel_size"},
    "model": {"model_config", "init_method", "dtype", "make_vocab_size_divisible_by",
              "ddp_bucket_cap_mb"},
    "model.init_method": {"std", "use_mup", "path"},
    "model.model_config": {"bos_token_id", "eos_token_id", "hidden_act", "hidden_size",
                           "initializer_range", "intermediate_size", "is_llama_config",
                           "max_position_embeddings", "num_attention_heads", "num_hidden_layers",
                           "attention_bias", "num_key_value_heads", "pad_token_id",
                           "pretraining_tp", "rms_norm_eps", "rope_scaling", "rope_theta",
                           "rope_interleaved", "tie_word_embeddings", "use_cache", "vocab_size",
                           "_attn_implementation", "z_loss_enabled", "z_loss_coefficient"},
    "tokenizer": {"tokenizer_name_or_path", "tokenizer_revision", "tokenizer_max_length"},
    "tokens": {"sequence_length", "train_steps", "micro_batch_size",
               "batch_accumulation_per_replica", "val_check_interval", "limit_val_batches",
               "limit_test_batches"},
    "optimizer": {"optimizer_factory", "zero_stage", "weight_decay", "clip_grad",
                  "accumulate_grad_in_fp32", "learning_rate_scheduler",
                  "weight_decay_exclude_named_params"},
    "optimizer.optimizer_factory": {"name", "adam_beta1", "adam_beta2", "adam_eps",
                                    "torch_adam_is_fused"},
    "optimizer.learning_rate_scheduler": {"learning_rate", "lr_warmup_steps", "lr_warmup_style",
                                          "lr_decay_style", "lr_decay_steps",
                                          "lr_decay_starting_step", "min_decay_lr"},
    "profiler": {"profiler_export_path", "wait", "warmup", "active", "repeat", "skip_first",
                 "record_shapes", "profile_memory", "with_stack", "export_chrome_trace"},
    "s3_upload": {"upload_s3_path", "remove_after_upload", "s5cmd_numworkers",
                  "s5cmd_concurrency", "s5cmd_path"},
    "lighteval": {"slurm_template", "slurm_script_dir", "checkpoints_path", "parallelism",
                  "batch_size", "generation", "tasks", "logging", "wandb"},
}
STAGE_KEYS = {"name", "start_training_step", "data"}  # DatasetStageArgs
DATA_KEYS = {"dataset", "seed", "num_loading_workers"}  # DataArgs
DATASET_KEYS = {"dataset_folder", "dataset_weights", "dataset_read_path", "tokenizer_name",
                "vocab_size", "token_size_in_bytes", "return_positions", "skip_in_stream",
                "pad_samples_to_global_batch_size", "dataset_max_tokens", "shuffle_files",
                "use_old_brrr_dataloader"}  # NanosetDatasetsArgs


def unknown_keys(cfg: dict) -> list[str]:
    bad = []
    for section, allowed in KNOWN_KEYS.items():
        node = cfg
        for part in [p for p in section.split(".") if p]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            bad += [f"{section + '.' if section else ''}{k}" for k in node if k not in allowed]
    for i, stage in enumerate(cfg.get("data_stages") or []):
        bad += [f"data_stages[{i}].{k}" for k in stage if k not in STAGE_KEYS]
        data = stage.get("data", {})
        bad += [f"data_stages[{i}].data.{k}" for k in data if k not in DATA_KEYS]
        bad += [f"data_stages[{i}].data.dataset.{k}" for k in data.get("dataset", {})
                if k not in DATASET_KEYS]
    return bad


def data_stages(stages: list[dict], num_loading_workers: int, seed: int) -> list[dict]:
    """nanotron's ``data_stages`` (DatasetStageArgs at the pin) of zflow's stages
    ``[{name, start_step, folders, weights}]``: ``start_step`` counts the steps trained before
    the stage, nanotron's ``start_training_step`` is the 1-based step it starts at. (At the pin,
    each stage's loader reads its folders from their start: consumed samples are per stage.)"""
    out = []
    for st in stages:
        # nanotron reads a folder's top-level *.ds only (build_dataset: recursive=False at the
        # pin): a source's shard-group folders are listed, its weight split by their tokens
        folders, weights = tokenized.expand_groups(st["folders"], st["weights"])
        total = sum(weights)
        dataset = {"dataset_folder": folders, "dataset_weights": [w / total for w in weights]}
        out.append({"data": {"dataset": dataset, "num_loading_workers": num_loading_workers,
                             "seed": seed},
                    "name": st["name"], "start_training_step": st["start_step"] + 1})
    return out


def make_config(*, model: dict, pretrain: dict, nano: dict, tokenizer: str,
                checkpoints_path: str, run: str, project: str, stages: list[dict] | None = None,
                folders: list[str] | None = None, weights: list[float] | None = None) -> dict:
    """The nanotron YAML (as a dict) for one language: its data stages (``data_stages``:
    ``stages``, or one stage ``nano.stage_name`` of ``folders`` / ``weights``), auto-resume.

    ``dataset_weights`` is always written, normalised: the mixture the run samples is the one in
    the file. (Without it nanotron samples the folders uniformly, get_tb_datasets at the pin;
    the seed's config relies on that. Equal weights in ``languages.<l>.data`` reproduce it.)
    ``save_final_state`` only when the last step is not a checkpoint step anyway: the workflow
    converts and evaluates ``train_steps`` (the seed's 2,000,000 / 5,000 keeps it false)."""
    if stages is None:
        stages = [{"name": nano["stage_name"], "start_step": 0, "folders": folders,
                   "weights": weights}]
    return {
        "checkpoints": {
            "checkpoint_interval": pretrain["checkpoint_interval"],
            "checkpoints_path": checkpoints_path,
            "checkpoints_path_is_shared_file_system": nano["shared_file_system"],
            # the checkpoints root: nanotron follows latest.txt, so a re-run resumes
            "resume_checkpoint_path": checkpoints_path,
            "save_final_state": bool(pretrain["train_steps"] % pretrain["checkpoint_interval"]),
            "save_initial_state": False,
        },
        "data_stages": data_stages(stages, nano["num_loading_workers"], pretrain["seed"]),
        "general": {"benchmark_csv_path": None, "consumed_train_samples": None,
                    "ignore_sanity_checks": nano["ignore_sanity_checks"],
                    "project": project, "run": run, "seed": pretrain["seed"], "step": None},
        "logging": {"iteration_step_info_interval": 1, "log_level": "info",
                    "log_level_replica": "info"},
        "model": {
            "ddp_bucket_cap_mb": nano["ddp_bucket_cap_mb"],
            "dtype": nano["dtype"],
            "init_method": {"std": model["init_std"]},
            "make_vocab_size_divisible_by": nano["make_vocab_size_divisible_by"],
            "model_config": model_config(model),
        },
        "optimizer": {
            "accumulate_grad_in_fp32": nano["accumulate_grad_in_fp32"],
            "clip_grad": pretrain["clip_grad"],
            "learning_rate_scheduler": schedule.resolve(pretrain),
            "optimizer_factory": {"adam_beta1": pretrain["adam_beta1"],
                                  "adam_beta2": pretrain["adam_beta2"],
                                  "adam_eps": pretrain["adam_eps"], "name": "adamW",
                                  "torch_adam_is_fused": nano["torch_adam_is_fused"]},
            "weight_decay": pretrain["weight_decay"],
            "zero_stage": nano["zero_stage"],
        },
        "parallelism": {
            "dp": nano["dp"], "expert_parallel_size": 1, "pp": nano["pp"],
            "pp_engine": nano["pp_engine"], "recompute_layer": nano["recompute_layer"],
            "tp": nano["tp"], "tp_linear_async_communication": nano["tp_linear_async_communication"],
            "tp_mode": nano["tp_mode"], "tp_recompute_allgather": nano["tp_recompute_allgather"],
        },
        "profiler": None,
        "tokenizer": {"tokenizer_max_length": None, "tokenizer_name_or_path": tokenizer,
                      "tokenizer_revision": None},
        "tokens": {
            "batch_accumulation_per_replica": pretrain["batch_accumulation_per_replica"],
            "limit_test_batches": 0, "limit_val_batches": 0,
            "micro_batch_size": pretrain["micro_batch_size"],
            "sequence_length": pretrain["sequence_length"],
            "train_steps": pretrain["train_steps"],
            "val_check_interval": nano.get("val_check_interval", pretrain["checkpoint_interval"]),
        },
    }


def model_config(model: dict) -> dict:
    """nanotron's model_config (LlamaConfig fields) of the config's ``model`` section."""
    return {
        "bos_token_id": model.get("bos_token_id"), "eos_token_id": model.get("eos_token_id"),
        "hidden_act": model["hidden_act"], "hidden_size": model["hidden_size"],
        "initializer_range": model["initializer_range"],
        "intermediate_size": model["intermediate_size"], "is_llama_config": True,
        "max_position_embeddings": model["max_position_embeddings"],
        "num_attention_heads": model["num_attention_heads"],
        "num_hidden_layers": model["num_hidden_layers"],
        "num_key_value_heads": model["num_key_value_heads"],
        "pad_token_id": model.get("pad_token_id"), "pretraining_tp": 1,
        "rms_norm_eps": model["rms_norm_eps"], "rope_interleaved": model["rope_interleaved"],
        "rope_scaling": None, "rope_theta": float(model["rope_theta"]),
        "tie_word_embeddings": model["tie_word_embeddings"], "use_cache": True,
        "vocab_size": model["vocab_size"],
    }


def folder_samples(folder, seq_len: int) -> tuple[int, str, int]:
    """(samples of seq_len + 1 tokens, tokenizer name, token size) of a tokenized folder."""
    name, size = tokenized.folder_metadata(folder)
    return tokenized.samples(folder, seq_len), name, size


def same_tokenizer(a: str, b: str) -> bool:
    """Two tokenizer references name the same tokenizer: equal hub names, or local paths to the
    same tokenizer (a folder and its tokenizer.json, which tokenize jobs hand datatrove)."""
    if a == b:
        return True

    def local(ref):
        p = Path(ref)
        p = p / "tokenizer.json" if p.is_dir() else p
        return p.resolve() if p.is_file() else None

    return local(a) is not None and local(a) == local(b)


def preflight(cfg: dict, world_size: int, tokenizer_vocab: int | None = None,
              check_folders: bool = True) -> list[str]:
    """Problems nanotron would hit hours into a job, found before launch (one line each)."""
    errors = [f"unknown nanotron key '{k}'" for k in unknown_keys(cfg)] + stage_problems(cfg)
    par, tok, mc = cfg["parallelism"], cfg["tokens"], cfg["model"]["model_config"]
    prod = par["dp"] * par["tp"] * par["pp"] * par.get("context_parallel_size", 1)
    if prod != world_size:
        errors.append(f"parallelism: dp*tp*pp = {prod} but the job has {world_size} GPUs "
                      f"(nodes x gpus_per_node)")
    if mc["num_attention_heads"] % par["tp"] or mc["num_key_value_heads"] < par["tp"]:
        errors.append(f"parallelism.tp={par['tp']} does not fit {mc['num_attention_heads']} heads "
                      f"/ {mc['num_key_value_heads']} kv heads")
    if mc["num_attention_heads"] % mc["num_key_value_heads"]:
        errors.append("model: num_attention_heads must be a multiple of num_key_value_heads")
    if tokenizer_vocab is not None and mc["vocab_size"] != -1 and mc["vocab_size"] != tokenizer_vocab:
        errors.append(f"model.vocab_size={mc['vocab_size']} but the tokenizer has {tokenizer_vocab} tokens")
    if not check_folders:
        return errors
    gbs = par["dp"] * tok["micro_batch_size"] * tok["batch_accumulation_per_replica"]
    want_name = cfg["tokenizer"]["tokenizer_name_or_path"]
    stages, seen = cfg["data_stages"], {}
    for i, st in enumerate(stages):
        stage = st["data"]["dataset"]
        folders = stage["dataset_folder"]
        weights = stage.get("dataset_weights") or [1 / len(folders)] * len(folders)
        # the steps of this stage: each stage's loader reads its folders from their start
        end = stages[i + 1]["start_training_step"] if i + 1 < len(stages) else tok["train_steps"] + 1
        steps = max(end - st["start_training_step"], 0)
        where = f" (stage '{st['name']}')" if len(stages) > 1 else ""
        for folder, w in zip(folders, weights):
            if folder not in seen:
                try:
                    seen[folder] = folder_samples(folder, tok["sequence_length"])
                except FileNotFoundError as e:
                    seen[folder] = None
                    errors.append(str(e))
                    continue
                if not same_tokenizer(seen[folder][1], want_name):
                    errors.append(f"{folder}: tokenized with '{seen[folder][1]}', the config trains "
                                  f"with '{want_name}' (nanotron loads the metadata's tokenizer by name)")
            if seen[folder] is None:
                continue
            n, need = seen[folder][0], int(w * steps * gbs)
            if n < need:
                errors.append(f"{folder}: {n} samples of {tok['sequence_length'] + 1} tokens, but "
                              f"weight {w:.4g} x {steps} steps x global batch {gbs} needs {need}"
                              f"{where}")
    return errors


def stage_problems(cfg: dict) -> list[str]:
    """What nanotron's Config.__post_init__ (d22eb809) refuses in ``data_stages``: a stage
    starting at 1, unique names, unique and increasing start steps (it sorts them first)."""
    stages = cfg.get("data_stages") or []
    starts = [st["start_training_step"] for st in stages]
    names = [st["name"] for st in stages]
    errors = []
    if stages and 1 not in starts:
        errors.append("data_stages: no stage starts at step 1")
    if len(set(names)) < len(names):
        errors.append(f"data_stages: stage names are not unique ({names})")
    if len(set(starts)) < len(starts):
        errors.append(f"data_stages: start_training_step values are not unique ({starts})")
    if starts != sorted(starts):
        errors.append(f"data_stages: not in order of start_training_step ({starts})")
    return errors


def stage_folders(cfg: dict) -> list[str]:
    """Every folder the YAML's data stages read, in order of first use."""
    out = []
    for st in cfg.get("data_stages") or []:
        out += [f for f in st["data"]["dataset"]["dataset_folder"] if f not in out]
    return out


# ---------------------------------------------------------------- the launch environment

def finished_step(root) -> int | None:
    """The step in ``latest.txt`` of a checkpoints root (None: no run there yet)."""
    try:
        return int((Path(root) / "latest.txt").read_text().strip())
    except (OSError, ValueError):
        return None


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def checkout_problem(checkout) -> str | None:
    """The checkout has run_train.py, and not the Llama init that dies before step 1."""
    root = Path(checkout)
    fix = (f"check out nanotron {NANOTRON_COMMIT[:8]} there (`make nanotron-env "
           f"NANOTRON_DIR={checkout}` builds it; without NANOTRON_DIR it prints the commands)")
    if not (root / "run_train.py").exists():
        return f"pretrain.nanotron.checkout: no run_train.py in {checkout}: {fix}"
    llama = root / "src/nanotron/models/llama.py"
    param = root / "src/nanotron/scaling/parametrization.py"
    if llama.exists() and param.exists() and \
            "parametrizator_cls(config=config.model)" in llama.read_text() and \
            "config.model.init_method.std" in param.read_text():
        return (f"pretrain.nanotron.checkout: {checkout} is a nanotron whose new Llama dies "
                "before step 1 (init_model_randomly passes config.model, StandardParametrizator "
                f"reads config.model.init_method.std: nanotron 37cc8b0c and later): {fix}")
    return None


def nanotron_problem(checkout=None) -> str | None:
    """nanotron (and the flash-attn its Llama imports) import here, from the checkout."""
    fix = (f"build the nanotron environment (`make nanotron-env NANOTRON_DIR=<checkout>`: "
           f"nanotron {NANOTRON_COMMIT[:8]}, flash-attn, datatrove {DATATROVE_COMMIT[:8]}; "
           "envs/nanotron.yaml) and point pretrain.nanotron.python at its interpreter "
           "(<checkout>-env/bin/python)")
    try:
        import nanotron
    except Exception as e:  # noqa: BLE001 - any import failure is the same problem
        return f"nanotron is not importable ({_first_line(e)}): {fix}"
    try:
        import flash_attn  # noqa: F401
    except Exception as e:  # noqa: BLE001
        return f"flash-attn is not importable ({_first_line(e)}), nanotron's Llama needs it: {fix}"
    where = Path(nanotron.__file__).resolve()
    if checkout and Path(checkout).resolve() not in where.parents:
        return (f"nanotron is imported from {where.parent}, not from the checkout {checkout} "
                f"whose run_train.py is launched: pip install --no-deps -e {checkout}")
    return None


def datatrove_problem() -> str | None:
    """datatrove's DatatroveFolderDataset takes every keyword nanotron passes it."""
    import inspect

    fix = f"pip install '{DATATROVE_PIP}'"
    try:
        from datatrove.utils.dataset import DatatroveFolderDataset
    except Exception as e:  # noqa: BLE001
        return f"datatrove's DatatroveFolderDataset is not importable ({_first_line(e)}): {fix}"
    params = inspect.signature(DatatroveFolderDataset.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    missing = [k for k in DATATROVE_KEYWORDS if k not in params]
    if not missing:
        return None
    try:
        from importlib.metadata import version

        have = f"datatrove {version('datatrove')}"
    except Exception:  # noqa: BLE001
        have = "the installed datatrove"
    return (f"{have}: DatatroveFolderDataset takes no {', '.join(missing)}, which nanotron "
            f"{NANOTRON_COMMIT[:8]} passes (TypeError when it builds the data loader): {fix}")


def tokenizer_problem(name: str) -> str | None:
    """The config's tokenizer loads offline: nanotron calls AutoTokenizer.from_pretrained(name)
    when it reads the config, and the job runs with HF_HUB_OFFLINE=1."""
    try:
        from huggingface_hub import constants

        cache = constants.HF_HUB_CACHE
    except Exception:  # noqa: BLE001 - the environment lacks it: transformers will say so
        cache = "the HF cache"
    try:
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception as e:  # noqa: BLE001
        return (f"tokenizer '{name}' does not load offline from {cache} "
                f"({_first_line(e)}): "
                "run `snakemake prefetch` on a node with hub access (with this HF_HOME)")
    return None


STANDIN_MARKER = "ZFLOW_STANDIN"


def is_standin(checkout) -> bool:
    """Is the checkout zflow's stand-in trainer (tools/smoke/nanotron: a ``run_train.py`` that
    trains a tiny Llama on CPU without nanotron, for smoke runs), marked by ``ZFLOW_STANDIN``?"""
    return (Path(checkout) / STANDIN_MARKER).is_file()


# ---------------------------------------------------------------- the nanotron environment

# The interpreter of the nanotron environment (`make nanotron-env NANOTRON_DIR=<dir>` builds it
# at <dir>-env: <dir>-env/bin/python). Everything a pretrain_nanotron job starts uses it, whatever
# python runs the job script (the workflow's .venv under `make run`, a conda env under --sdm):
# the pre-flight runs in it (``python -m zflow.nanotron preflight``, zflow importable through
# PYTHONPATH), torchrun is ``<python> -m torch.distributed.run`` on every node, and nanotron's C++
# data helper is built with its headers, pybind11 and extension suffix (build_data_helper).
PYTHON_KEY = "languages.{lang}.pretrain.nanotron.python"
SCRIPTS = Path(__file__).resolve().parents[1]  # workflow/scripts: the folder holding zflow
PREFLIGHT_TIMEOUT_S = 600  # importing nanotron, flash-attn and a tokenizer: seconds, not minutes
_ANSWER = "zflow-nanotron-env: "  # the line the interpreter answers on (its other output is noise)
_BUILD = ("`make nanotron-env NANOTRON_DIR=<dir>` builds the environment at <dir>-env: set it to "
          "<dir>-env/bin/python")


def python_key(spec: dict) -> str:
    return PYTHON_KEY.format(lang=spec.get("lang") or "<lang>")


def interpreter_problem(python, key: str) -> str | None:
    """The configured interpreter is a file that can be executed (its contents: preflight)."""
    if not python:
        return (f"{key} is not set: the python of the nanotron environment, which runs the "
                "pre-flight, torchrun on every node and the build of nanotron's data helper "
                f"({_BUILD})")
    p = Path(python)
    if not p.exists():
        return f"{key}: {python} does not exist ({_BUILD})"
    if p.is_dir():
        inside = p / "bin/python"
        hint = f"; set it to {inside}" if inside.exists() else ""
        return f"{key}: {python} is a directory, not an interpreter{hint}"
    if not os.access(p, os.X_OK):
        return f"{key}: {python} is not executable"
    return None


def in_environment(python: str, *args: str, timeout: float = PREFLIGHT_TIMEOUT_S):
    """(answer, None) of ``<python> -m zflow.nanotron <args>``, or (None, why it gave none)."""
    paths_ = [str(SCRIPTS), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths_))
    try:
        p = subprocess.run([python, "-m", "zflow.nanotron", *args], env=env, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"gave no answer in {timeout:.0f} s"
    except OSError as e:
        return None, f"cannot be run ({_first_line(e)})"
    for line in reversed(p.stdout.splitlines()):
        if line.startswith(_ANSWER):
            return json.loads(line[len(_ANSWER):]), None
    last = (p.stderr.strip().splitlines() or ["no output"])[-1]
    return None, f"exited with {p.returncode} before answering ({last})"


def _here_preflight(checkout: str, tokenizer: str | None, standin: bool) -> dict:
    """In the nanotron environment's interpreter: what it lacks, and what it is."""
    import importlib.util
    import sys

    env, facts = [], {"executable": sys.executable, "version": sys.version.split()[0]}
    try:
        import torch

        facts["torch"] = torch.__version__
        if importlib.util.find_spec("torch.distributed.run") is None:
            env.append(f"torch {torch.__version__} has no torch.distributed.run (torchrun)")
    except Exception as e:  # noqa: BLE001
        env.append(f"torch is not importable ({_first_line(e)}): not a nanotron environment")
    if not standin:
        env += [p for p in (nanotron_problem(checkout), datatrove_problem()) if p]
    return {"environment": env, "tokenizer": tokenizer and tokenizer_problem(tokenizer),
            "facts": facts}


def _here_helper() -> dict:
    """In the nanotron environment's interpreter: where nanotron's C++ data helper lives and
    what building it for this interpreter takes (what ``python3 -m pybind11 --includes`` and
    ``python3-config --extension-suffix`` would say of it)."""
    import importlib.util
    import sysconfig

    found = importlib.util.find_spec("nanotron")
    where = list(found.submodule_search_locations or []) if found else []
    folder = Path(where[0]) / "data/nemo_dataset" if where else None
    paths_ = sysconfig.get_paths()
    includes = list(dict.fromkeys([paths_["include"], paths_["platinclude"]]))
    problem = None
    if not (Path(paths_["include"]) / "Python.h").exists():
        problem = f"no Python.h in {paths_['include']} (the interpreter's headers)"
    try:
        import pybind11

        includes.append(pybind11.get_include())
    except Exception as e:  # noqa: BLE001
        problem = f"pybind11 is not importable ({_first_line(e)})"
    return {"folder": str(folder) if folder and (folder / "Makefile").exists() else None,
            "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"), "includes": includes,
            "problem": problem}


def data_helper_command(python: str, info: dict) -> list[str]:
    """nanotron's own Makefile (nemo_dataset/), its two ``$(shell python3 ...)`` overridden with
    what the environment's interpreter says of itself."""
    return ["make", "-C", info["folder"], f"LIBEXT={info['ext_suffix']}",
            "CPPFLAGS=" + " ".join(f"-I{i}" for i in info["includes"])]


def build_data_helper(python: str, key: str) -> str | None:
    """Build nanotron's C++ data helper (helpers<EXT_SUFFIX>, which nanotron otherwise compiles
    at its first data stage with python3 / python3-config from PATH: another Python's headers
    and suffix, and an ImportError hours into a queue) for ``python``, before torchrun starts.
    Up to date: make does nothing. A problem (one line, naming ``key``) or None."""
    info, why = in_environment(python, "helper", timeout=120)
    if info is None:
        return f"{key}: {python} {why}"
    if info["folder"] is None:
        return None  # no nemo_dataset helper in this nanotron
    built = Path(info["folder"]) / f"helpers{info['ext_suffix']}"
    if info["problem"] and not built.exists():
        return (f"{key} ({python}): cannot build nanotron's data helper in {info['folder']}: "
                f"{info['problem']}")
    import fcntl

    cmd = data_helper_command(python, info)
    print("data helper:", " ".join(cmd), flush=True)
    env = dict(os.environ, PATH=f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    try:  # one build at a time: the jobs of several languages share a checkout
        with open(Path(info["folder"]) / ".zflow-build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        return (f"building nanotron's data helper for {key} = {python} failed "
                f"({_first_line(e)}): {' '.join(cmd)}")
    if p.returncode:
        tail = " | ".join((p.stdout + p.stderr).strip().splitlines()[-3:])
        return (f"building nanotron's data helper for {key} = {python} failed ({tail}): it needs "
                f"make, g++, pybind11 and write access to {info['folder']}")
    return None


def environment_problems(spec: dict, cfg: dict) -> list[str]:
    """What would stop nanotron before step 1 (hours into a queue), found in seconds, all of it
    at once, in the interpreter the job launches nanotron with (``spec["python"]``, the config's
    ``languages.<lang>.pretrain.nanotron.python``): the interpreter itself (set, a file,
    executable, running, with torch and torch.distributed.run), the checkout, nanotron and
    flash-attn importable there from the checkout, datatrove's signature there, the tokenizer
    loading offline there. Prints one line: where the pre-flight ran. A stand-in checkout
    (``is_standin``) needs neither nanotron and flash-attn nor the datatrove that nanotron's data
    loader calls (the stand-in reads the folders with the installed one): those checks are
    skipped, saying so; the others run as for nanotron."""
    checkout, key, python = spec["checkout"], python_key(spec), spec.get("python")
    standin = is_standin(checkout)
    problems = [checkout_problem(checkout)]
    bad = interpreter_problem(python, key)
    if bad:
        return [p for p in [bad, *problems] if p]
    tokenizer = (cfg.get("tokenizer") or {}).get("tokenizer_name_or_path")
    answer, why = in_environment(python, "preflight", json.dumps(
        {"checkout": str(checkout), "tokenizer": tokenizer, "standin": standin}))
    if answer is None:
        return [p for p in [f"{key}: {python} {why}: not a working Python environment "
                            f"({_BUILD})", *problems] if p]
    facts = answer["facts"]
    where = (f"pre-flight in {python} (Python {facts['version']}, torch "
             f"{facts.get('torch', 'missing')})")
    if standin:
        print(f"{where}: {checkout} is zflow's nanotron stand-in ({STANDIN_MARKER}; smoke runs "
              "only, nanotron is not run): the nanotron, flash-attn and datatrove-signature "
              "checks are skipped", flush=True)
    else:
        print(where, flush=True)
    problems += [f"{key} ({python}): {p}" for p in answer["environment"]]
    problems.append(answer["tokenizer"])
    return [p for p in problems if p]


def _main(argv: list[str]) -> None:
    """``python -m zflow.nanotron preflight '<json>'`` | ``helper``: run by the job's script in
    the nanotron environment's interpreter; answers one line (``_ANSWER`` + JSON)."""
    if argv[:1] == ["preflight"]:
        answer = _here_preflight(**json.loads(argv[1]))
    elif argv[:1] == ["helper"]:
        answer = _here_helper()
    else:
        raise SystemExit("usage: python -m zflow.nanotron preflight '<json>' | helper")
    print(_ANSWER + json.dumps(answer), flush=True)


# ---------------------------------------------------------------- data stages at the pin
#
# What nanotron at NANOTRON_COMMIT (d22eb809) reads when a data stage starts (read from its
# source; file:line at that commit):
# - run_train.py:318-357 (get_dataloader): one loader per stage, the first built at once, every
#   later one by a lambda the trainer calls when it reaches the stage (trainer.py:474-511: when
#   iteration_step == start_training_step, or the stage a resume lands in). Each loader gets
#   consumed_train_samples from helpers.py:824-851: the stage's own DataStageMetadata count, 0 for
#   a stage not begun (a new run creates every stage with 0, trainer.py:250-255;
#   serialize/metadata.py:21 "each stage starts from zero"; run_train.py:72 says the same).
# - run_train.py:205-232: the loader is a new BlendableDataset of the stage's folders
#   (tokenized_bytes.py:545-585, size train_steps x global batch) read by a
#   MegatronPretrainingSampler from that count (tokenized_bytes.py:632-641, samplers.py:211).
#   The blend hands each folder its samples in order from sample 0 (helpers.cpp:61-82,
#   build_blending_indices: dataset_sample_index is the folder's count so far in this blend);
#   the folder's dataset is unshuffled (NanosetDatasetsArgs.shuffle_files defaults to false,
#   config/config.py:163), so its sample j is its j-th window of sequence_length + 1 tokens.
#   consumed_tokens_per_dataset_folder only seeds logged counters (blendable_dataset.py:116-124,
#   advanced from the global step's indices, trainer.py:563-578): it moves no reader.
# So a folder a later stage reads again restarts from its first sample: of the n_k samples stage
# k reads, min(n_k, max_{j<k} n_j) repeat what earlier stages read. (zflow.mixture, the hf
# backend, continues each source instead.)
# Resume: the lambdas of run_train.py:348-355 bind consumed_train_samples late (a closure over
# the loop variable), so every stage after the first gets the count of the LAST stage in the
# checkpoint: the first and the last stage continue where they were, a stage between them
# (three stages or more) restarts from its first sample at every resume inside it (the last
# stage's count is still 0 then).

GROUP_NAME = re.compile(r"g\d{5}")  # a shard group's folder (zflow.data.GROUP, "g{:05d}")
EXACT_BLEND = 20_000_000  # positions x folders of a stage blended one by one (seconds of
# Python); beyond, the counts are estimated (blend_counts)


def stage_position(starts: list[int], step: int, launch: int, gbs: int) -> tuple[int, int]:
    """(stage index, position in that stage's blend of the step's first sample) of 1-based
    ``step`` at the pin, in a launch that started at step ``launch`` (1: a new run; N: resumed
    from the checkpoint of step N - 1). ``starts``: the stages' start_training_step, increasing."""
    k = max(i for i, s in enumerate(starts) if s <= step)
    if launch > starts[k] and 0 < k < len(starts) - 1:  # resumed inside a middle stage
        return k, (step - launch) * gbs  # the last stage's count (0): from its first sample
    return k, (step - starts[k]) * gbs  # begun in this launch (from 0), or its own count


def blend_order(weights, n: int) -> list[int]:
    """The folder of each of the first ``n`` samples of nanotron's blend (Megatron's max-error
    rule, helpers.cpp:61-82 at the pin: the folder furthest behind weight x max(i, 1), the first
    on a tie; weights normalised as BlendableDataset does, blendable_dataset.py:59-62)."""
    total = float(sum(weights))
    w = [x / total for x in weights]
    taken, out = [0] * len(w), []
    for i in range(n):
        x = float(max(i, 1))
        best, err = 0, w[0] * x - taken[0]
        for d in range(1, len(w)):
            e = w[d] * x - taken[d]
            if e > err:
                best, err = d, e
        taken[best] += 1
        out.append(best)
    return out


def blend_counts(weights, marks) -> tuple[dict[int, list[int]], bool]:
    """Samples of each folder among the first m of nanotron's blend, for each m of ``marks``;
    and whether exact (blend_order up to EXACT_BLEND positions x folders; beyond, the
    largest-remainder share of m, which the max-error rule keeps within a sample or two of per
    folder)."""
    top = max(marks, default=0)
    if top * len(weights) <= EXACT_BLEND:
        order, want, out = blend_order(weights, top), set(marks), {}
        counts = [0] * len(weights)
        if 0 in want:
            out[0] = list(counts)
        for i, d in enumerate(order, 1):
            counts[d] += 1
            if i in want:
                out[i] = list(counts)
        return out, True
    total = float(sum(weights))
    out = {}
    for m in marks:
        share = [x / total * m for x in weights]
        base = [int(s) for s in share]
        for d in sorted(range(len(share)), key=lambda d: base[d] - share[d])[:m - sum(base)]:
            base[d] += 1
        out[m] = base
    return out, False


def launch_starts(lines) -> list[int]:
    """The first step of each launch of the run that led to its last logged step, from the
    log every launch appends to (a launch starts where the step does not follow the previous
    one's; a launch whose steps a later one redid from an earlier checkpoint drops out)."""
    starts, prev = [], None
    for line in lines:
        row = parse_log_line(line)
        if row is None:
            continue
        if prev is None or row["step"] != prev + 1:
            starts = [s for s in starts if s < row["step"]] + [row["step"]]
        prev = row["step"]
    return starts if starts[:1] == [1] else [1] + starts  # a log begun mid-run: one launch before


def _overlap(spans: list[tuple[int, int]], lo: int, hi: int) -> int:
    return sum(max(0, min(hi, b) - max(lo, a)) for a, b in spans)


def _merge(spans: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    out = []
    for a, b in sorted(spans + [(lo, hi)]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def stage_reads(cfg: dict, through: int | None = None, launches=(1,)) -> dict:
    """What nanotron at the pin reads of each folder of a YAML's data stages in steps 1 ..
    ``through`` (default train_steps), launched at the steps ``launches`` (launch_starts):
    ``{"stages": [{"name", "start_training_step", "folders": {folder: [samples, repeated]}}],
    "exact": bool}``. A sample is repeated when an earlier read of the run (an earlier stage,
    or the same stage before a resume that restarted it) already trained on it."""
    tok, par, stages = cfg["tokens"], cfg["parallelism"], cfg["data_stages"]
    gbs = par["dp"] * tok["micro_batch_size"] * tok["batch_accumulation_per_replica"]
    last = tok["train_steps"] if through is None else min(through, tok["train_steps"])
    starts = [st["start_training_step"] for st in stages]
    ends = [s - 1 for s in starts[1:]] + [tok["train_steps"]]
    launches = sorted(set(launches) | {1})
    # the reads, in order: (stage, first and end position in its blend)
    reads = []
    for a, b in zip(launches, [s - 1 for s in launches[1:]] + [last]):
        for k in range(len(stages)):
            lo, hi = max(a, starts[k]), min(b, ends[k])
            if lo <= hi:
                p = stage_position(starts, lo, a, gbs)[1]
                reads.append((k, p, p + (hi - lo + 1) * gbs))
    counts, exact = {}, True
    for k, st in enumerate(stages):
        ds = st["data"]["dataset"]
        weights = ds.get("dataset_weights") or [1.0] * len(ds["dataset_folder"])
        marks = {m for r in reads if r[0] == k for m in r[1:]}
        counts[k], ok = blend_counts(weights, sorted(marks))
        exact = exact and ok
    out = [{"name": st["name"], "start_training_step": st["start_training_step"],
            "folders": {f: [0, 0] for f in st["data"]["dataset"]["dataset_folder"]}}
           for st in stages]
    spans: dict[str, list] = {}  # per folder: the sample ranges read so far
    for k, p, q in reads:
        for d, f in enumerate(stages[k]["data"]["dataset"]["dataset_folder"]):
            lo, hi = counts[k][p][d], counts[k][q][d]
            seen = spans.get(f, [])
            out[k]["folders"][f][0] += hi - lo
            out[k]["folders"][f][1] += _overlap(seen, lo, hi)
            spans[f] = _merge(seen, lo, hi) if hi > lo else seen
    return {"stages": out, "exact": exact}


def source_name(folder: str) -> str:
    """The source of a tokenized folder: results/tokenized/<tokenizer>/<source>[/<group>]."""
    p = Path(folder)
    return p.parent.name if GROUP_NAME.fullmatch(p.name) else p.name


def source_reads(cfg: dict, through: int | None = None, launches=(1,)) -> dict:
    """stage_reads per source, in tokens (samples x sequence_length, as nanotron counts
    consumed_tokens): the run summary's ``sources`` and ``stages``."""
    reads, seq = stage_reads(cfg, through, launches), cfg["tokens"]["sequence_length"]
    total: dict[str, dict] = {}
    stages = []
    for st in reads["stages"]:
        per: dict[str, dict] = {}
        for f, (n, r) in st["folders"].items():
            s = source_name(f)
            for acc in (per.setdefault(s, {"source": s, "tokens_seen": 0, "tokens_repeated": 0}),
                        total.setdefault(s, {"source": s, "folders": [], "tokens_seen": 0,
                                             "tokens_repeated": 0})):
                acc["tokens_seen"] += n * seq
                acc["tokens_repeated"] += r * seq
            if f not in total[s]["folders"]:
                total[s]["folders"].append(f)
        stages.append({"name": st["name"], "start_step": st["start_training_step"] - 1,
                       "sources": list(per.values())})
    return {"sources": list(total.values()), "stages": stages, "counts_exact": reads["exact"],
            "note": "nanotron d22eb809 restarts every folder of a stage from its first sample "
                    "(zflow.nanotron.stage_reads): tokens_repeated of tokens_seen were already "
                    "trained on earlier in the run"}


if __name__ == "__main__":
    import sys

    _main(sys.argv[1:])
