"""The cost plan: tokens, GPU-hours, CPU-hours, disk and wall time of the jobs a target would run.

Plain arithmetic on the plan (``zflow.plan.Plan``) and a list of jobs (rule + wildcards, as a
dry run lists them: ``workflow/scripts/cost_plan.py``). The throughput figures are the config's
``cost`` section; the schema holds their defaults and says where each comes from. Every number
here is an estimate, none a measurement of the run it describes.

- tokenize (one job per shard group): the group's tokens (its share of the source's bytes of
  ``cost.source_tokens``, else the bytes of its shards on disk / ``bytes_per_token``); before a
  hub source is downloaded its groups are unknown and its ``tokenize_stats`` job stands for the
  whole source (tokens unknown unless ``cost.source_tokens``); CPU-hours at
  ``tokenize_tokens_per_sec_per_core``; disk: datatrove's 2 bytes per token (4 when the
  vocabulary exceeds 65,536).
- pretraining: (train_steps - the newest complete checkpoint of the configured run on disk,
  where the run resumes) x micro batch x accumulation x dp x sequence length tokens;
  GPU-hours at ``pretrain_tokens_per_sec_per_gpu``; wall: GPU-hours / GPUs of the job (nodes x
  GPUs per node). Disk per parameter: an exported model WEIGHT_BYTES (bf16; 4 for a float32
  hf run), a training state STATE_BYTES (fp32 weights + Adam's two fp32 moments). nanotron keeps
  every checkpoint's full state (model + optimizer), unless ``pretrain.keep_checkpoints`` sets a
  retention policy: then the disk is the checkpoints the job saves that the policy keeps at the
  end of the run (``kept_checkpoints``: zflow.retention.plan_removals on every step the run
  saves; the note says that all are on disk until the job ends); the hf backend exports weights at every
  checkpoint and keeps ``keep_last_states`` states.
- post-training: epochs x the chat data's tokens (or max_steps x micro x accumulation x GPUs x
  sequence length); GPU-hours at ``posttrain_tokens_per_sec_per_gpu``; disk: the model plus
  ``save_total_limit`` states.
- evaluate: ``eval_gpu_hours_per_task`` per (model, task) job on one GPU; no tokens, no disk.
- convert_checkpoint: disk of one bf16 model; its GPU minutes are not estimated.
- download: disk of the data (tokens x ``bytes_per_token``); its time is network-bound and not
  estimated. Other rules (configs, tables, tokenizer training): not estimated (minutes of CPU).

A quantity that cannot be known is ``None`` (printed ``?``), never a silent zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from zflow import chat, data, retention, schedule, schema

WEIGHT_BYTES = 2  # per parameter: an exported bf16 model
STATE_BYTES = 12  # per parameter: a training state, fp32 weights + Adam's exp_avg, exp_avg_sq
FIGURES = {  # key of `cost` -> (what, unit)
    "pretrain_tokens_per_sec_per_gpu": ("pretraining", "tokens/s per GPU"),
    "posttrain_tokens_per_sec_per_gpu": ("post-training", "tokens/s per GPU"),
    "tokenize_tokens_per_sec_per_core": ("tokenization", "tokens/s per CPU core"),
    "eval_gpu_hours_per_task": ("evaluation", "GPU-hours per (model, task) job"),
    "bytes_per_token": ("data size", "bytes of source data per token"),
}
TYPICAL_NEWEST = 2  # the retention policy `make plan` shows beside an unset one
FIELDS = ("tokens", "gpu_hours", "cpu_hours", "disk_bytes")
# the order of the table's rows (other rules after these, in the order they come)
STAGES = ("download", "train_tokenizer", "tokenize", "tokenize_stats", "nanotron_config",
          "pretrain_segment", "pretrain", "pretrain_nanotron", "convert_checkpoint", "posttrain", "evaluate", "report", "compare")


@dataclass(frozen=True)
class Job:
    """One job of a dry run: its rule, wildcards and CPU cores (threads or cpus_per_task)."""

    rule: str
    wildcards: dict = field(default_factory=dict)
    cores: int = 1


@dataclass
class Cost:
    """One job's estimate. ``None``: unknown (``unknown``: "<why>: <what>"). ``workers``: the
    GPUs of a GPU job, the cores of a CPU job; ``wall_hours`` = hours / workers."""

    rule: str
    wildcards: dict
    tokens: float | None = 0
    gpu_hours: float | None = 0
    cpu_hours: float | None = 0
    disk_bytes: float | None = 0
    wall_hours: float | None = 0
    workers: int = 0
    note: str = ""
    unknown: str = ""


@dataclass
class Row:
    """A rule's jobs, or all jobs (``rule`` = total): sums of the known values, ``unknown``: the
    fields with an unknown part. ``wall_hours``: the rule's longest job (its jobs side by side);
    for the total, the sum of the rules' (rules one after another)."""

    rule: str
    jobs: int = 0
    tokens: float = 0
    gpu_hours: float = 0
    cpu_hours: float = 0
    disk_bytes: float = 0
    wall_hours: float = 0
    serial_wall_hours: float = 0  # every job one after another
    unknown: set = field(default_factory=set)


# ------------------------------------------------------------ the arithmetic


def n_params(model: dict) -> int:
    """Parameters of a Llama model config (embeddings, attention, SwiGLU MLP, RMS norms)."""
    h, v, layers = model["hidden_size"], model["vocab_size"], model["num_hidden_layers"]
    head = h // model["num_attention_heads"]
    kv = model["num_key_value_heads"] * head
    attn = h * h + 2 * h * kv + h * h  # q, k, v, o
    mlp = 3 * h * model["intermediate_size"]  # gate, up, down
    embed = v * h * (1 if model["tie_word_embeddings"] else 2)
    return embed + layers * (attn + mlp + 2 * h) + h


def pretrain_tokens(steps: int, micro_batch: int, accumulation: int, dp: int, seq: int) -> int:
    return steps * micro_batch * accumulation * dp * seq


def hours(tokens: float, tokens_per_sec: float) -> float:
    """Device-hours (GPU or CPU core) of ``tokens`` at ``tokens_per_sec`` per device."""
    return tokens / (tokens_per_sec * 3600)


def wall(device_hours: float | None, devices: int) -> float | None:
    return None if device_hours is None else device_hours / max(devices, 1)


def token_bytes(vocab_size: int | None) -> int:
    """datatrove's bytes per token id: uint16 when the ids fit, else uint32."""
    return 2 if vocab_size is not None and vocab_size <= 65536 else 4


# ------------------------------------------------------------ figures and data sizes


def figures(plan) -> list[dict]:
    """The throughput figures used, each with its value and source label."""
    cost, default = plan.config["cost"], schema.defaults("cost")
    default_label = schema.defaults("cost/sources")
    out = []
    for key, (what, unit) in FIGURES.items():
        label = cost["sources"][key]
        if cost[key] != default[key] and label == default_label[key]:
            label = f"set in the config (no cost.sources.{key} given)"
        out.append({"key": key, "what": what, "value": cost[key], "unit": unit, "source": label})
    return out


def data_tokens(plan, name: str) -> tuple[float | None, str]:
    """Tokens of a source or chat_data entry, and how they were found."""
    cost, cfg = plan.config["cost"], plan.config
    if name in cost["source_tokens"]:
        return cost["source_tokens"][name], "cost.source_tokens"
    if name in cfg["sources"]:
        files = data.parquet_files(plan.base / plan.source_dir(name), plan.source_glob(name))
    else:
        try:
            files = chat.data_files(plan.base / cfg["chat_data"][name]["path"])
        except chat.DataError:
            files = []
    size = sum(f.stat().st_size for f in files)
    if not size:
        return None, f"not on disk: {name}"
    return size / cost["bytes_per_token"], f"{size:,} bytes on disk / bytes_per_token"


def model_params(plan, name: str) -> int | None:
    """Parameters of a model of the registry (None for a baseline: not in the config)."""
    m = plan.model(name)
    return None if m.lang is None else n_params(plan.lang(m.lang)["model"])


# ------------------------------------------------------------ one job


def job_cost(plan, job: Job) -> Cost:
    fn = globals().get(f"_cost_{job.rule}")
    c = fn(plan, **job.wildcards) if fn else Cost(job.rule, dict(job.wildcards),
                                                  note="not estimated")
    if job.rule == "tokenize":
        c.workers = job.cores
        c.wall_hours = wall(c.cpu_hours, job.cores)
    return c


def group_tokens(plan, source: str, group: str) -> tuple[float | None, str]:
    """Tokens of one shard group: its bytes' share of the source's tokens."""
    root = plan.base / plan.config["sources"][source]["path"]
    size = sum((root / f).stat().st_size for f in plan.group_files(source, group))
    cost = plan.config["cost"]
    if source in cost["source_tokens"]:
        total = sum((root / f).stat().st_size for f in plan.source_files(source))
        return (cost["source_tokens"][source] * size / total,
                f"cost.source_tokens x the group's share of the bytes ({size:,})")
    return size / cost["bytes_per_token"], f"{size:,} bytes on disk / bytes_per_token"


def _tokenize_cost(plan, tokenizer, wildcards, tokens, how) -> Cost:
    tok = plan.config["tokenizers"][tokenizer]
    vocab = tok["train"]["vocab_size"] if "train" in tok else tok.get("vocab_size")
    rate = plan.config["cost"]["tokenize_tokens_per_sec_per_core"]
    known = tokens is not None
    return Cost("tokenize", wildcards, tokens=tokens,
                gpu_hours=0, cpu_hours=hours(tokens, rate) if known else None,
                disk_bytes=tokens * token_bytes(vocab) if known else None,
                note=how, unknown="" if known else how)


def _cost_tokenize(plan, tokenizer, source, group):
    tokens, how = group_tokens(plan, source, group)
    return _tokenize_cost(plan, tokenizer, {"tokenizer": tokenizer, "source": source,
                                            "group": group}, tokens, how)


def _cost_tokenize_stats(plan, tokenizer, source):
    """Merging the groups' stats costs seconds; but before a hub source is downloaded its
    groups (tokenize jobs) are unknown: then this job stands for the source's tokenization."""
    wc = {"tokenizer": tokenizer, "source": source}
    if plan.source_files(source):
        return Cost("tokenize_stats", wc, note="not estimated (seconds)")
    tokens, how = data_tokens(plan, source)
    c = _tokenize_cost(plan, tokenizer, wc, tokens, f"{how} (shard groups known once downloaded)")
    c.rule, c.wall_hours = "tokenize_stats", None  # wall: as many jobs as the download's groups
    return c


def _cost_download(plan, source):
    tokens, how = data_tokens(plan, source)
    known = tokens is not None
    return Cost("download", {"source": source}, tokens=0,
                disk_bytes=tokens * plan.config["cost"]["bytes_per_token"] if known else None,
                note="time not estimated (network)", unknown="" if known else how)


def pretrain_cost(plan, lang: str, until: int | None = None) -> Cost:
    """One pretraining job: the whole run, or the segment ending at ``until`` (segment_steps),
    less what the checkpoints on disk already hold."""
    lc = plan.lang(lang)
    pre = lc["pretrain"]
    rule = "pretrain_nanotron" if plan.backend(lang) == "nanotron" else "pretrain"
    gpus = plan.nodes(lang) * plan.nproc(lang)
    dp = pre["nanotron"]["dp"] if rule == "pretrain_nanotron" else gpus
    end = until or pre["train_steps"]
    start = max([e for e in plan.segment_ends(lang) if e < end], default=0)
    done = max([start, *plan.checkpoints_on_disk(lang)])
    steps = max(end - done, 0)
    tokens = pretrain_tokens(steps, pre["micro_batch_size"], pre["batch_accumulation_per_replica"],
                             dp, pre["sequence_length"])
    gpu_h = hours(tokens, plan.config["cost"]["pretrain_tokens_per_sec_per_gpu"])
    saved = [s for s in schedule.saved_steps(pre["train_steps"], pre["checkpoint_interval"],
                                             after=done) if s <= end]
    n = n_params(lc["model"])
    if rule == "pretrain_nanotron":
        r = kept_checkpoints(plan, lang)
        kept_new = [s for s in saved if s in r["kept"]]
        disk = len(kept_new) * r["bytes_each"]
        kept = f"{len(saved)} checkpoints x (model + optimizer state)"
        if r["policy"]:
            kept = (f"{len(kept_new)} of {len(saved)} checkpoints kept "
                    f"({retention.describe(r['policy'])}) x (model + optimizer state), all "
                    f"{len(saved)} on disk until the job ends (each resubmission removes "
                    "what the jobs before it left)")
    else:
        weights = 4 if pre["dtype"] == "float32" else WEIGHT_BYTES
        states = min(pre["keep_last_states"], len(saved))
        disk = len(saved) * n * weights + states * n * STATE_BYTES
        kept = f"{len(saved)} checkpoints + {states} states"
    resumed = f", resuming at step {done:,}" if done else ""
    if pre.get("init_from"):
        resumed += f", continuing {pre['init_from']}"
    note = (f"{steps:,} steps x {pre['micro_batch_size']} x {pre['batch_accumulation_per_replica']}"
            f" x dp {dp} x {pre['sequence_length']}{resumed}; {gpus} GPUs "
            f"({plan.nodes(lang)} nodes x {plan.nproc(lang)}); {n / 1e9:.2f}B params, {kept}"
            f"; {interval_note(plan, lang, dp, gpus)}")
    wildcards = {"lang": lang, **({"step": until} if until else {})}
    return Cost("pretrain_segment" if until else rule, wildcards, tokens=tokens, gpu_hours=gpu_h, cpu_hours=0,
                disk_bytes=disk, wall_hours=wall(gpu_h, gpus), workers=gpus, note=note)


def kept_checkpoints(plan, lang: str, policy: dict | None | str = "config") -> dict:
    """What checkpoint retention keeps and removes of a nanotron run by its end: every step it
    saves and every complete one on disk, under ``policy`` (``{"newest": N}``, None: none;
    default: the config's ``pretrain.keep_checkpoints``). Sizes: a full training state each."""
    pre = plan.lang(lang)["pretrain"]
    if policy == "config":
        policy = pre.get("keep_checkpoints")
    steps = sorted(set(schedule.saved_steps(pre["train_steps"], pre["checkpoint_interval"]))
                   | set(plan.checkpoints_on_disk(lang)))
    needed = [s for s in plan.needed_steps(lang) if s in steps]
    kept, removed = retention.plan_removals(dict.fromkeys(steps, True), pre["train_steps"],
                                            needed, policy and policy["newest"], needed)
    each = n_params(plan.lang(lang)["model"]) * (WEIGHT_BYTES + STATE_BYTES)
    return {"lang": lang, "policy": policy, "steps": steps, "needed": needed,
            "kept": sorted(kept), "removed": sorted(removed), "bytes_each": each,
            "kept_bytes": len(kept) * each, "removed_bytes": len(removed) * each}


def interval_note(plan, lang: str, dp: int, gpus: int) -> str:
    """The wall time between two checkpoints: what a kill that cannot save loses (nanotron;
    an hf job saves the step it is on before its limit, zflow.limits)."""
    pre = plan.lang(lang)["pretrain"]
    tokens = pretrain_tokens(pre["checkpoint_interval"], pre["micro_batch_size"],
                             pre["batch_accumulation_per_replica"], dp, pre["sequence_length"])
    h = wall(hours(tokens, plan.config["cost"]["pretrain_tokens_per_sec_per_gpu"]), gpus)
    return (f"a checkpoint every {h:.3g} h: a kill without a save loses up to that, so give the "
            f"job a runtime of at least {2 * h:.3g} h (two intervals)")


def _cost_pretrain(plan, lang):
    return pretrain_cost(plan, lang)


def _cost_pretrain_segment(plan, lang, step):
    return pretrain_cost(plan, lang, int(step))


def _cost_pretrain_nanotron(plan, lang):
    return pretrain_cost(plan, lang)


def _cost_convert_checkpoint(plan, lang, step):
    return Cost("convert_checkpoint", {"lang": lang, "step": step},
                disk_bytes=n_params(plan.lang(lang)["model"]) * WEIGHT_BYTES,
                note="GPU minutes not estimated")


def _cost_evaluate(plan, model, task):
    gpu_h = plan.config["cost"]["eval_gpu_hours_per_task"]
    return Cost("evaluate", {"model": model, "task": task}, tokens=0, gpu_hours=gpu_h,
                wall_hours=gpu_h, workers=1)


def _cost_posttrain(plan, name):
    pc = plan.post[name]
    t, gpus = pc["train"], pc["nodes"] * pc["gpus_per_node"]
    if t["max_steps"] > 0:
        tokens = (t["max_steps"] * t["micro_batch_size"] * t["gradient_accumulation_steps"] * gpus
                  * t["sequence_length"])
        how, unknown = f"max_steps {t['max_steps']:,}", ""
    else:
        found = [data_tokens(plan, d) for d in pc["data"]]
        unknown = "; ".join(how for n, how in found if n is None)
        tokens = None if unknown else t["epochs"] * sum(n for n, _ in found)
        how = f"{t['epochs']} epochs of {', '.join(pc['data'])}"
    n = model_params(plan, pc["base"])
    rate = plan.config["cost"]["posttrain_tokens_per_sec_per_gpu"]
    gpu_h = None if tokens is None else hours(tokens, rate)
    disk = None if n is None else n * (WEIGHT_BYTES + t["save_total_limit"] * STATE_BYTES)
    return Cost("posttrain", {"name": name}, tokens=tokens, gpu_hours=gpu_h, cpu_hours=0,
                disk_bytes=disk, wall_hours=wall(gpu_h, gpus), workers=gpus,
                note=f"{how}; {gpus} GPUs ({pc['nodes']} nodes x {pc['gpus_per_node']}); "
                     f"model + {t['save_total_limit']} states",
                unknown=unknown or ("" if n is not None
                                    else f"parameters not in the config: {pc['base']}"))


# ------------------------------------------------------------ all jobs


def estimate(plan, jobs: list[Job]) -> tuple[list[Cost], list[Row], Row]:
    """Each job's cost, one row per rule (in STAGES order) and the total."""
    order = {r: i for i, r in enumerate(STAGES)}
    costs = sorted((job_cost(plan, j) for j in jobs), key=lambda c: order.get(c.rule, len(order)))
    rows: dict[str, Row] = {}
    for c in costs:
        r = rows.setdefault(c.rule, Row(c.rule))
        r.jobs += 1
        for f in FIELDS:
            v = getattr(c, f)
            if v is None:
                r.unknown.add(f)
            else:
                setattr(r, f, getattr(r, f) + v)
        if c.wall_hours is None:
            r.unknown.add("wall_hours")
        else:
            r.wall_hours = max(r.wall_hours, c.wall_hours)
            r.serial_wall_hours += c.wall_hours
    total = Row("total")
    for r in rows.values():
        total.jobs += r.jobs
        for f in (*FIELDS, "wall_hours", "serial_wall_hours"):
            setattr(total, f, getattr(total, f) + getattr(r, f))
        total.unknown |= r.unknown
    return costs, list(rows.values()), total


def read_config(files: list[str], base: Path | str = ".") -> dict:
    """The config Snakemake loads from ``files``: later files merged over earlier ones, with
    Snakemake's own merge."""
    import yaml
    from snakemake.utils import update_config

    cfg: dict = {}
    for f in files:
        update_config(cfg, yaml.safe_load((Path(base) / f).read_text()) or {})
    return cfg
