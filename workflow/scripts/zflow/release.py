"""A release: the hub-ready folder of one model, built from what the workflow recorded.

``results/release/<model>/`` (zflow.paths.RELEASE) holds the model's files (safetensors, config,
tokenizer, chat template), a ``generation_config.json`` with the decoding the qualitative
benchmark used when there is one, ``provenance.json`` (:func:`provenance`: code revision, the
config that makes the model and its hash, every upstream job's package versions, job ids and
hosts, checksums of the inputs and of every released file, the chain of upstream models), and,
built from the provenance, the model card ``README.md`` (:func:`card`, huggingface_hub's
``ModelCard`` with ``model-index`` eval results) and the EU AI Act Art. 53(1)(d) training-content
summary (:func:`content_summary`, the AI Office template of 24 July 2025: general information,
list of data sources, relevant data processing; ``.md`` and ``.json``). Fields the workflow
cannot know come from ``release.<model>`` in the config; absent ones are listed in
``missing`` (and in a warning), never invented.

:func:`check` is the check before publishing: every checksum of provenance.json, the folder
loaded with ``AutoModelForCausalLM`` / ``AutoTokenizer``, the chat template rendered, a few
tokens generated. ``python -m zflow.release check <folder>`` runs it alone.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import yaml

from zflow import evals, metrics, paths
from zflow.io import read_json

__all__ = ["ReleaseError", "ReleaseCheckError", "sha256", "MODEL_FILES", "copy_model",
           "generation_config", "provenance", "eval_rows", "card", "content_summary",
           "missing_fields", "released_files", "checksums", "check", "required_problems",
           "build"]

# the files of a model directory that a release carries (optimizer states, training_args.bin
# and the workflow's own markers stay behind; the markers are summarised in provenance.json)
MODEL_FILES = ("*.safetensors", "*.safetensors.index.json", "config.json", "tokenizer.json",
               "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
               "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt",
               "tokenizer.model")
QUALITATIVE_FLAGS = ("repetition_loop", "wrong_language", "truncated", "empty",
                     "unclosed_reasoning")


class ReleaseError(RuntimeError):
    pass


class ReleaseCheckError(ReleaseError):
    pass


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _json(path):
    """A JSON file, or None when absent or unreadable."""
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def _rows(path) -> list[dict]:
    """A metrics CSV's rows (zflow.metrics.read), or none when absent."""
    try:
        return metrics.read(path)
    except OSError:
        return []


def _float(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


# ------------------------------------------------------------------------------- model files

def copy_model(src: Path, dst: Path) -> list[str]:
    """Copy the model's own files (MODEL_FILES) from ``src`` to ``dst``; their names."""
    names = sorted({p.name for pat in MODEL_FILES for p in Path(src).glob(pat) if p.is_file()})
    if not any(n.endswith(".safetensors") for n in names):
        raise ReleaseError(f"{src}: no safetensors weights to release")
    for n in names:
        shutil.copy2(Path(src) / n, Path(dst) / n)
    return names


def generation_config(src: Path, dst: Path, decoding: dict | None) -> dict:
    """The model's own GenerationConfig, with the qualitative benchmark's decoding (max new
    tokens, repetition penalty, sampling) when the config has one; saved into ``dst``."""
    from transformers import GenerationConfig

    try:
        gen = GenerationConfig.from_pretrained(src)
        source = "model"
    except OSError:
        gen = GenerationConfig.from_model_config(_model_config(src))
        source = "model config"
    if decoding:
        sample = decoding["temperature"] > 0
        gen.update(max_new_tokens=decoding["max_new_tokens"],
                   repetition_penalty=decoding["repetition_penalty"], do_sample=sample)
        if sample:
            gen.update(temperature=decoding["temperature"], top_p=decoding["top_p"])
        source = "qualitative.decoding"
    gen.save_pretrained(dst)
    return {"source": source, **json.loads((Path(dst) / "generation_config.json").read_text())}


def _model_config(folder):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(folder)


def parameters(folder: Path) -> int:
    """Parameters stored in the folder's safetensors (tied weights once)."""
    from safetensors import safe_open

    n = 0
    for f in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            for k in st.keys():
                n += math.prod(st.get_slice(k).get_shape())
    return n


def architecture(folder: Path) -> dict:
    cfg = json.loads((Path(folder) / "config.json").read_text())
    keys = ("model_type", "architectures", "hidden_size", "intermediate_size",
            "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size",
            "max_position_embeddings", "rope_theta", "tie_word_embeddings", "torch_dtype",
            "dtype")
    return {"parameters": parameters(folder), **{k: cfg[k] for k in keys if k in cfg}}


# ------------------------------------------------------------------------------- provenance

def git_revision(where: Path) -> dict:
    """The workflow's code revision: commit and whether the tree had changes (None: no git)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True,
                              timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None, "note": "not a git checkout"}
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"commit": None, "dirty": None, "note": f"git unavailable ({e})"}
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _compute(seconds, world: int, device: str | None) -> dict:
    gpu = bool(device) and not str(device).startswith("cpu")
    hours = None if seconds is None else round(seconds * world / 3600, 6)
    return {"seconds": seconds, "world_size": world, "device": device,
            "unit": "GPU-hours" if gpu else "CPU-hours", "hours": hours}


def _pretraining(pre: dict) -> dict:
    """What pretraining recorded up to the released step: marker, summary, compute, tokens."""
    marker = _json(pre["marker"]) or {}
    summary = _json(pre["summary"]) or {}
    rows = [r for r in _rows(pre["metrics"]) if (_float(r.get("step")) or 0) <= pre["step"]]
    last = rows[-1] if rows else {}
    device = summary.get("device") or ("cuda" if pre["backend"] == "nanotron" else None)
    init = pre["pretrain"].get("init_from")
    return {"name": pre["name"], "step": pre["step"], "init_from": init,
            "kind": f"continued pretraining of {init}" if init else "pretraining checkpoint",
            "backend": pre["backend"], "identity": pre["identity"],
            "marker": pre["marker"] if marker else None, "versions": marker.get("versions"),
            "tokens_trained": _float(last.get("consumed_tokens")),
            "last_loss": _float(last.get("loss")),
            "compute": _compute(_float(last.get("elapsed_s")), pre["world_size"], device),
            "sources_trained": summary.get("sources"),
            "job": summary.get("job")}


def _stage(st: dict) -> dict:
    summary = _json(st["summary"]) or {}
    rows = _rows(st["metrics"])
    secs = _float(summary.get("train_runtime_s")) or (_float(rows[-1].get("elapsed_s"))
                                                       if rows else None)
    return {"name": st["name"], "kind": f"post-training ({st['method']})",
            "method": st["method"], "variant": st["variant"], "base": st["base"],
            "versions": summary.get("versions") or (_json(st["meta"]) or {}).get("versions"),
            "train_rows": summary.get("train_rows"), "val_rows": summary.get("val_rows"),
            "global_steps": summary.get("global_steps"), "last_loss": summary.get("last_loss"),
            "settings": summary.get("settings"),
            "compute": _compute(secs, summary.get("world_size") or
                                st["nodes"] * st["gpus_per_node"], summary.get("device")),
            "job": summary.get("job")}


def _phase(init_from: str | None) -> str:
    """What a pretraining run was: one from scratch, or one continuing another model."""
    return "continued pretraining" if init_from else "pretraining"


def _runs(spec: dict) -> list[dict]:
    """The pretraining runs of a release: the one its lineage ends in, then those it continues."""
    return [spec["pretraining"], *spec["earlier"]]


def _data(pre: dict, release: dict) -> list[dict]:
    out = []
    stage = _phase(pre["pretrain"].get("init_from"))
    for d in pre["data"]:
        stats = _json(d["stats"]) or {}
        extra = release["data"].get(d["source"], {})
        hub = d["hub"] or {}
        out.append({"name": d["source"], "stage": stage, "run": pre["name"], "weight": d["weight"],
                    "hub_id": hub.get("repo_id"), "revision": hub.get("revision"),
                    "files": hub.get("allow_patterns"), "local_path": d["path"],
                    "documents": stats.get("documents"), "tokens": stats.get("tokens"),
                    "tokenized": d["tokenized"], "stats_file": d["stats"],
                    "modality": extra.get("modality", "text"), "language": extra.get("language"),
                    "period": extra.get("period"), "url": extra.get("url")})
    return out


def _chat_data(stages: list[dict], release: dict) -> list[dict]:
    out = {}
    for st in stages:
        for d in st["datasets"]:
            if d["name"] in out:
                out[d["name"]]["stages"].append(st["name"])
                continue
            p = Path(d["path"])
            files = sorted(p.rglob("*.jsonl")) if p.is_dir() else [p]
            rows = sum(sum(1 for line in open(f) if line.strip()) for f in files if f.is_file())
            extra = release["data"].get(d["name"], {})
            hub = d["hub"] or {}
            out[d["name"]] = {"name": d["name"], "stage": "post-training",
                              "stages": [st["name"]], "format": d["format"],
                              "hub_id": hub.get("repo_id"), "revision": hub.get("revision"),
                              "local_path": d["path"], "rows": rows,
                              "modality": extra.get("modality", "text"),
                              "language": extra.get("language"), "period": extra.get("period"),
                              "url": extra.get("url")}
    return list(out.values())


def _inputs(spec: dict) -> dict:
    """sha256 of every input the release read (tokenize stats, chat data, markers, summaries,
    eval JSONs, qualitative scores)."""
    files = [d["stats"] for pre in _runs(spec) for d in pre["data"]]
    files += [f for pre in _runs(spec) for f in (pre["marker"], pre["summary"])]
    for st in spec["stages"]:
        files += [d["path"] for d in st["datasets"]] + [st["summary"], st["meta"]]
    files += [e["file"] for e in spec["evals"]] + spec["qualitative"]["scores"]
    out = {}
    for f in dict.fromkeys(files):
        if os.path.isfile(f):
            out[f] = sha256(f)
        elif os.path.isdir(f):
            out.update({str(p): sha256(p) for p in sorted(Path(f).rglob("*")) if p.is_file()})
    return out


def provenance(spec: dict, code_dir: Path) -> dict:
    """Everything the card and the summary are built from (without the released files'
    checksums: :func:`build` adds them once the folder is complete)."""
    from zflow.io import versions

    pre = [_pretraining(p) for p in _runs(spec)]
    stages = [_stage(st) for st in spec["stages"]]
    ev = [{"file": e["file"], **{k: r.get(k) for k in ("identity", "keyed_on", "versions",
                                                        "seconds")},
           "job": (r.get("settings") or {}).get("slurm_job_id")}
          for e in spec["evals"] for r in [_json(e["file"]) or {}]]
    return {"model": spec["model"], "kind": spec["kind"],
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "code": git_revision(code_dir), "config_hash": spec["config_hash"],
            "config_file": paths.RELEASE_CONFIG, "config": spec["config"],
            "lineage": [*reversed(stages), *pre],
            "data": [d for p in _runs(spec) for d in _data(p, spec["release"])],
            "chat_data": _chat_data(spec["stages"], spec["release"]),
            "tokenizer": spec["pretraining"]["tokenizer"],
            "pretraining_settings": {"model": spec["pretraining"]["model"],
                                     "pretrain": spec["pretraining"]["pretrain"]},
            "earlier_pretraining_settings": [{"name": p["name"], "model": p["model"],
                                              "pretrain": p["pretrain"]}
                                             for p in spec["earlier"]],
            "evals": ev,
            "release_job": {"host": socket.gethostname(),
                            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
                            "python": platform.python_version(), "versions": versions()},
            "inputs": _inputs(spec)}


# ------------------------------------------------------------------------------- evals

def eval_rows(spec: dict) -> list[dict]:
    """One row per (task or subtask, metric) of the model's eval JSONs (zflow.evals.read)."""
    rows = []
    for e in spec["evals"]:
        rec = evals.read(e["file"])
        for metric, v in rec["metrics"].items():
            if _float(v) is not None:
                rows.append({"task": e["task"], "label": e["label"],
                             "lm_eval_task": rec.get("lm_eval_task", e["lm_eval_task"]),
                             "subtask": None, "metric": metric, "value": float(v),
                             "stderr": _float(rec.get("stderr", {}).get(metric)),
                             "num_fewshot": rec.get("num_fewshot"), "main": metric == e["metric"]})
        for s in rec["subtasks"]:
            if _float(s.get("value")) is not None:
                rows.append({"task": e["task"], "label": e["label"],
                             "lm_eval_task": s["name"], "subtask": s["name"],
                             "metric": s["metric"], "value": float(s["value"]),
                             "stderr": _float(s.get("stderr")),
                             "num_fewshot": rec.get("num_fewshot"), "main": False})
    return rows


def qualitative_findings(spec: dict) -> list[dict]:
    """Per suite: answers, flags raised (loops, wrong language, ...) and the mean score."""
    out = []
    for f in spec["qualitative"]["scores"]:
        if not os.path.isfile(f):
            continue
        recs = [json.loads(line) for line in open(f) if line.strip()]
        if not recs:
            continue
        scores = [r["score"] for r in recs if isinstance(r.get("score"), (int, float))]
        out.append({"suite": recs[0].get("suite"), "file": f, "answers": len(recs),
                    "mean_score": round(sum(scores) / len(scores), 3) if scores else None,
                    "flags": {k: sum(bool((r.get("flags") or {}).get(k)) for r in recs)
                              for k in QUALITATIVE_FLAGS}})
    return out


# ------------------------------------------------------------------------------- card

def _fmt(x, nd=4):
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, float):
        return f"{x:.{nd}g}" if abs(x) < 1e4 else f"{x:,.0f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _card_data(spec: dict, prov: dict, rows: list[dict]):
    from huggingface_hub import EvalResult, ModelCardData

    rc = spec["release"]
    name = (rc["repo_id"] or spec["model"]).split("/")[-1]
    results = [EvalResult(task_type="text-generation", task_name="Text Generation",
                          dataset_type=r["lm_eval_task"],
                          dataset_name=r["label"] + (f"/{r['subtask']}" if r["subtask"] else ""),
                          dataset_args={"num_few_shot": r["num_fewshot"]}
                          if r["num_fewshot"] is not None else None,
                          metric_type=r["metric"], metric_value=r["value"])
               for r in rows]
    hub_data = [d["hub_id"] for d in prov["data"] + prov["chat_data"] if d["hub_id"]]
    return ModelCardData(
        language=rc["language"] or None, license=rc["license"], library_name="transformers",
        pipeline_tag="text-generation", base_model=spec["base_model"],
        datasets=sorted(set(hub_data)) or None, model_name=name, eval_results=results or None,
        tags=["zflow", spec["kind"]] + [s["method"] for s in prov["lineage"] if s.get("method")])


def card(spec: dict, prov: dict, arch: dict, gen: dict):
    """The model card (huggingface_hub.ModelCard): metadata with model-index, and the text."""
    from huggingface_hub import ModelCard

    rows = eval_rows(spec)
    data = _card_data(spec, prov, rows)
    rc, model = spec["release"], spec["model"]
    chain = " → ".join(f"`{s['name']}` ({s['kind']})" for s in reversed(prov["lineage"]))
    lines = [f"# {model}", "",
             f"Made end to end by the zflow workflow: {chain}.", "",
             "## Model", "",
             _table(["field", "value"], [[k, v] for k, v in arch.items()]), "",
             "## Lineage and training", ""]
    for s in reversed(prov["lineage"]):
        c = s["compute"]
        lines.append(f"- **{s['name']}** — {s['kind']}"
                     + (f", step {s['step']}, {_fmt(s['tokens_trained'])} tokens"
                        if s.get("step") is not None else "")
                     + (f", {s['train_rows']} training rows, {s['global_steps']} steps"
                        if s.get("train_rows") is not None else "")
                     + f"; compute {_fmt(c['hours'])} {c['unit']} ({c['world_size']} × "
                       f"{c['device'] or 'unknown device'})")
    total = {}
    for s in prov["lineage"]:
        if s["compute"]["hours"] is not None:
            total[s["compute"]["unit"]] = total.get(s["compute"]["unit"], 0) + s["compute"]["hours"]
    lines += ["", "Compute used: " + (", ".join(f"{_fmt(v)} {k}" for k, v in total.items())
                                       or "not recorded") + ".", ""]
    for title, pre in [("", prov["pretraining_settings"]["pretrain"]),
                       *((f" ({e['name']})", e["pretrain"])
                         for e in prov["earlier_pretraining_settings"])]:
        lines += [f"### Pretraining hyper-parameters{title}", "",
                  _table(["setting", "value"], [[k, json.dumps(v) if isinstance(v, (dict, list))
                                                 else v] for k, v in pre.items()]), ""]
    for s in prov["lineage"]:
        if s.get("settings"):
            lines += [f"### {s['name']} ({s['method']}) hyper-parameters", "",
                      _table(["setting", "value"], [[k, v] for k, v in s["settings"].items()
                                                    if not isinstance(v, (dict, list))]), ""]
    lines += ["## Training data", "", "Pretraining mixture (tokens from the tokenize stats):", "",
              _table(["source", "run", "weight", "hub id / path", "documents", "tokens"],
                     [[d["name"], d["run"], d["weight"], d["hub_id"] or d["local_path"],
                       d["documents"], d["tokens"]] for d in prov["data"]]), ""]
    if prov["chat_data"]:
        lines += ["Post-training data:", "",
                  _table(["dataset", "stages", "format", "hub id / path", "rows"],
                         [[d["name"], ", ".join(d["stages"]), d["format"],
                           d["hub_id"] or d["local_path"], d["rows"]]
                          for d in prov["chat_data"]]), ""]
    lines += [f"The EU AI Act training-content summary: `{paths.RELEASE_SUMMARY_MD}`.", "",
              "## Evaluation", ""]
    if rows:
        lines += [_table(["task", "lm-eval task", "metric", "value", "stderr", "few-shot"],
                         [[r["label"], r["lm_eval_task"], r["metric"], r["value"], r["stderr"],
                           r["num_fewshot"]] for r in rows]), ""]
    else:
        lines += ["No evaluation of this model is configured.", ""]
    lines += ["## Generation settings", "",
              f"`generation_config.json` (from {gen['source']}): "
              + ", ".join(f"{k}={gen[k]}" for k in ("max_new_tokens", "repetition_penalty",
                                                    "do_sample", "temperature", "top_p")
                          if k in gen) + ".", "",
              "## Known limitations", ""]
    for q in qualitative_findings(spec):
        flagged = ", ".join(f"{k.replace('_', ' ')} in {v}" for k, v in q["flags"].items() if v)
        lines.append(f"- Qualitative benchmark, suite `{q['suite']}` ({q['answers']} answers, "
                     f"mean score {_fmt(q['mean_score'])}/5): "
                     + (f"{flagged} of {q['answers']} answers." if flagged else "no flags."))
    lines += [f"- {t}" for t in rc["limitations"]]
    if lines[-1] == "## Known limitations" or lines[-1] == "":
        lines.append("- No qualitative benchmark of this model; none configured.")
    code = prov["code"]
    lines += ["", "## How to reproduce", "",
              f"Workflow revision: `{code['commit'] or 'unknown'}`"
              + (" (with uncommitted changes)" if code.get("dirty") else "") + ". "
              f"The config (`{paths.RELEASE_CONFIG}`, hash `{prov['config_hash']}`) is in this "
              "folder:", "", "```bash",
              f"snakemake --profile profiles/local release_{model} "
              f"--configfile {paths.RELEASE_CONFIG}", "```", "",
              f"Provenance (package versions of every job, checksums): "
              f"`{paths.RELEASE_PROVENANCE}`.", ""]
    text = "\n".join(lines)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{text}"), rows


# ------------------------------------------------------------------------------- AI Act summary

# what the AI Office template asks that only the provider knows: release.<model> keys
PROVIDER_FIELDS = ("provider.name", "provider.contact", "provider.opt_out_policy",
                   "provider.placement_date", "license")


def _get(rc: dict, key: str):
    v = rc
    for part in key.split("."):
        v = v.get(part) if isinstance(v, dict) else None
    return v


def missing_fields(spec: dict) -> list[str]:
    """The config keys the summary would need and the config leaves out."""
    rc, model = spec["release"], spec["model"]
    miss = [f"release.{model}.{k}" for k in PROVIDER_FIELDS if not _get(rc, k)]
    if not rc["language"]:
        miss.append(f"release.{model}.language")
    for d in (d for pre in _runs(spec) for d in pre["data"]):
        for k in ("language", "period"):
            key = f"release.{model}.data.{d['source']}.{k}"
            if not rc["data"].get(d["source"], {}).get(k) and key not in miss:
                miss.append(key)
    for st in spec["stages"]:
        for d in st["datasets"]:
            key = f"release.{model}.data.{d['name']}.language"
            if not rc["data"].get(d["name"], {}).get("language") and key not in miss:
                miss.append(key)
    return miss


def content_summary(spec: dict, prov: dict, arch: dict) -> tuple[dict, str]:
    """The AI Office template's three sections, as data and as Markdown."""
    rc, model = spec["release"], spec["model"]
    miss = missing_fields(spec)
    runs = [s for s in prov["lineage"] if s.get("method") is None]  # the pretraining runs
    tok = prov["tokenizer"]
    tokens = sum({d["name"]: d["tokens"] or 0 for d in prov["data"]}.values())
    seen = [s["tokens_trained"] for s in runs]
    general = {"provider": rc["provider"]["name"], "contact": rc["provider"]["contact"],
               "model": model, "repo_id": rc["repo_id"], "version": prov["config_hash"],
               "placement_date": rc["provider"]["placement_date"], "license": rc["license"],
               "modalities": {"input": "text", "output": "text"},
               "languages": rc["language"], "parameters": arch["parameters"],
               "training_tokens_available": tokens,
               "training_tokens_seen": None if None in seen else sum(seen)}
    processing = [
        {"step": "tokenization",
         "detail": f"tokenizer `{tok['name']}` ({tok['ref']}); documents tokenized with datatrove "
                   "into shards, an end-of-sequence token after each document"},
        *({"step": "mixture",
           "detail": f"{_phase(s['init_from'])} ({s['name']}) windows drawn by weight: "
                     + ", ".join(f"{d['name']} {d['weight']}" for d in prov["data"]
                                 if d["run"] == s["name"])} for s in reversed(runs)),
        {"step": "filtering",
         "detail": "none by this workflow (the sources are used as published)"},
        {"step": "deduplication", "detail": "none by this workflow"},
    ]
    if prov["chat_data"]:
        processing.append({"step": "post-training data",
                           "detail": "chat rows checked and rendered with the model's chat "
                                     "template; preference and prompt sets as configured"})
    summary = {"template": "EU AI Office, Template for the Public Summary of Training Content "
                           "for general-purpose AI models (Art. 53(1)(d) AI Act), 24 July 2025",
               "general_information": general,
               "data_sources": {"datasets": prov["data"] + prov["chat_data"],
                                "opt_out_policy": rc["provider"]["opt_out_policy"],
                                "web_crawled_by_provider": False,
                                "user_data": False, "synthetic_data": None},
               "data_processing": processing, "missing": miss,
               "provenance": paths.RELEASE_PROVENANCE}
    g = general
    md = [f"# Training-content summary: {model}", "",
          f"Following the {summary['template']}.", "",
          "## 1. General information", "",
          _table(["field", "value"], [[k, json.dumps(v) if isinstance(v, (dict, list)) else
                                       (v if v is not None else "**missing**")]
                                      for k, v in g.items()]), "",
          "## 2. List of data sources", "",
          "### Publicly available datasets and local data (pretraining)", "",
          _table(["dataset", "hub id @ revision / path", "documents", "tokens", "modality",
                  "language", "period"],
                 [[d["name"], (f"{d['hub_id']}@{d['revision'] or 'main'}" if d["hub_id"]
                               else d["local_path"]), d["documents"], d["tokens"], d["modality"],
                   d["language"] or "**missing**", d["period"] or "**missing**"]
                  for d in prov["data"]]), ""]
    if prov["chat_data"]:
        md += ["### Post-training datasets", "",
               _table(["dataset", "hub id @ revision / path", "rows", "format", "stages",
                       "language"],
                      [[d["name"], (f"{d['hub_id']}@{d['revision'] or 'main'}" if d["hub_id"]
                                    else d["local_path"]), d["rows"], d["format"],
                        ", ".join(d["stages"]), d["language"] or "**missing**"]
                       for d in prov["chat_data"]]), ""]
    md += ["### Opt-outs", "", rc["provider"]["opt_out_policy"] or "**missing**", "",
           "No data was crawled by the provider; no user data was used.", "",
           "## 3. Relevant data processing", ""]
    md += [f"- **{p['step']}**: {p['detail']}" for p in processing]
    if miss:
        md += ["", "## Missing fields", "",
               "The config does not give these; they are left blank, not invented:", ""]
        md += [f"- `{k}`" for k in miss]
    return summary, "\n".join(md) + "\n"


# ------------------------------------------------------------------------------- check

def released_files(folder) -> list[Path]:
    """The files of a release folder that are published: not hidden ones (Snakemake's
    ``.snakemake_timestamp`` in a directory output, a ``.cache``)."""
    folder = Path(folder)
    return [p for p in sorted(folder.rglob("*")) if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)]


HIDDEN = [".*", ".*/**", "**/.*"]  # upload_folder's ignore_patterns for what released_files skips


def checksums(folder: Path) -> dict:
    """sha256 of every released file of a folder but provenance.json."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): sha256(p) for p in released_files(folder)
            if p.name != paths.RELEASE_PROVENANCE}


def check(folder, prompt: str = "Ciao! Come stai?", max_new_tokens: int = 4) -> dict:
    """The check before publishing; ReleaseCheckError naming what failed."""
    folder = Path(folder)
    prov = _json(folder / paths.RELEASE_PROVENANCE)
    if not prov or "files" not in prov:
        raise ReleaseCheckError(f"{folder}: no readable {paths.RELEASE_PROVENANCE} with 'files'")
    now = checksums(folder)
    bad = [f"{f}: sha256 {now.get(f, 'absent')} != recorded {h}"
           for f, h in prov["files"].items() if now.get(f) != h]
    bad += [f"{f}: not in {paths.RELEASE_PROVENANCE}" for f in now if f not in prov["files"]]
    if bad:
        raise ReleaseCheckError(f"{folder}: checksums do not match provenance:\n  "
                                + "\n  ".join(bad))
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(folder)
        model, info = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                           output_loading_info=True)
    except Exception as e:  # noqa: BLE001 - any load failure stops the release
        raise ReleaseCheckError(f"{folder}: does not load with transformers: {e}") from e
    # transformers initialises what the weights lack (with a warning): here, that is a failure
    bad = {k: sorted(map(str, info.get(k) or [])) for k in ("missing_keys", "mismatched_keys")}
    if any(bad.values()):
        raise ReleaseCheckError(f"{folder}: does not load with transformers: the weights do not "
                                f"match config.json ({'; '.join(f'{k}: {v[:5]}' for k, v in bad.items() if v)})")
    rendered = None
    if tok.chat_template:
        try:
            rendered = tok.apply_chat_template([{"role": "user", "content": prompt}],
                                               add_generation_prompt=True, tokenize=False)
        except Exception as e:  # noqa: BLE001
            raise ReleaseCheckError(f"{folder}: the chat template does not render: {e}") from e
    text = rendered if rendered is not None else prompt
    ids = tok(text, return_tensors="pt", add_special_tokens=rendered is None)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                             min_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id
                             if tok.pad_token_id is not None else tok.eos_token_id)
    new = out[0, ids["input_ids"].shape[1]:]
    if len(new) == 0:
        raise ReleaseCheckError(f"{folder}: generated no token")
    return {"files_verified": len(prov["files"]), "chat_template": rendered is not None,
            "prompt": text, "generated": tok.decode(new), "new_tokens": int(len(new)),
            "parameters": model.num_parameters()}


# ------------------------------------------------------------------------------- upload

def required_problems(folder, spec: dict) -> list[str]:
    """The required fields (``release.<model>.required``) that the card or the config lacks,
    each named by its config key."""
    from huggingface_hub import ModelCard

    folder = Path(folder)
    card_path = folder / paths.RELEASE_CARD
    if not card_path.is_file():
        return [f"{card_path}: no model card (run release_{spec['model']} first)"]
    data = ModelCard.load(card_path).data
    have = {"repo_id": spec["repo_id"], "license": data.license, "language": data.language,
            "base_model": data.base_model}
    summary = _json(folder / paths.RELEASE_SUMMARY_JSON) or {}
    gen = summary.get("general_information", {})
    have |= {"provider.name": gen.get("provider"), "provider.contact": gen.get("contact"),
             "provider.opt_out_policy": summary.get("data_sources", {}).get("opt_out_policy")}
    return [f"release.{spec['model']}.{k}: required for the upload but missing"
            + (" from the model card" if k in ("license", "language", "base_model") else "")
            for k in spec["required"] if not have.get(k)]


# ------------------------------------------------------------------------------- build

def build(spec: dict, code_dir: Path, log=print) -> dict:
    """Write the release folder atomically (zflow.io.atomic_dir); the check runs inside, so a
    failing release leaves nothing at ``spec['output']``."""
    from zflow.io import atomic_dir, write_json, write_text

    src = Path(spec["model_dir"])
    with atomic_dir(spec["output"]) as tmp:
        names = copy_model(src, tmp)
        gen = generation_config(src, tmp, spec["qualitative"]["decoding"])
        arch = architecture(tmp)
        prov = provenance(spec, code_dir)
        prov["architecture"] = arch
        prov["generation_config"] = gen
        prov["model_files"] = {n: sha256(src / n) for n in names}
        model_card, rows = card(spec, prov, arch, gen)
        model_card.save(tmp / paths.RELEASE_CARD)
        summary, md = content_summary(spec, prov, arch)
        write_json(tmp / paths.RELEASE_SUMMARY_JSON, summary)
        write_text(tmp / paths.RELEASE_SUMMARY_MD, md)
        write_text(tmp / paths.RELEASE_CONFIG, yaml.safe_dump(spec["config"], sort_keys=False))
        prov["files"] = checksums(tmp)
        write_json(tmp / paths.RELEASE_PROVENANCE, prov)
        if summary["missing"]:
            log("warning: the training-content summary lacks (set them in the config): "
                + ", ".join(summary["missing"]))
        c = spec["release"]["check"]
        result = check(tmp, c["prompt"], c["max_new_tokens"])
        log(f"check: {result['files_verified']} checksums verified, chat template "
            f"{'rendered' if result['chat_template'] else 'absent'}, generated "
            f"{result['new_tokens']} tokens: {result['generated']!r}")
    return {"files": prov["files"], "evals": len(rows), "missing": summary["missing"],
            "check": result}


def main(argv=None) -> int:
    """``python -m zflow.release check <folder>``: the check before publishing, alone."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("command", choices=["check"])
    p.add_argument("folder")
    p.add_argument("--max-new-tokens", type=int, default=4)
    args = p.parse_args(argv)
    try:
        result = check(args.folder, max_new_tokens=args.max_new_tokens)
    except ReleaseCheckError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
