"""The plan: the config, validated once with its defaults, resolved into what the workflow runs.

Everything the rules ask is answered here, without Snakemake: the model registry (checkpoints,
post-trained models, baselines), every results path (from zflow.paths), each job's spec, the
identities that key re-runs, and what is on disk and current. ``rules/*.smk`` only connect files.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from zflow import config as checks
from zflow import data, evals, identity, paths, schema
from zflow.io import versions, write_json
from zflow.schema import ConfigError

__all__ = ["Plan", "ConfigError", "Model", "Dependency"]

_CHECKSUMS: dict = {}


def _checksum(path: Path) -> str:
    """``data.parquet_checksum``, once per file version (path, size, mtime) per process."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _CHECKSUMS:
        _CHECKSUMS[key] = data.parquet_checksum(path)
    return _CHECKSUMS[key]


CHECKPOINT_MODEL = checks.CHECKPOINT_MODEL
# Pretraining settings a run may change and still be resumed and extended (not a new run):
# its length, its checkpoint schedule and retention (keep_checkpoints: zflow.retention), and the
# hf backend's speed features (pretrain.hf: a run resumed with Liger or another micro-step
# logging goes on; the summary records what ran)
# nanotron settings that say where it runs from, not what it trains: moving the checkout or the
# environment keeps the run (its checkpoints are resumed, not moved aside).
NANOTRON_PLACE = ("python", "checkout")
RESUMABLE = ("train_steps", "checkpoint_interval", "keep_last_states", "keep_checkpoints", "hf")
# Versions that change eval results: every eval job is keyed on them.
EVAL_PACKAGES = ("lm_eval", "transformers", "torch")
# Spec keys that never re-run a job (left out of the spec's hash): where training logs
# (tracking), when a training job saves before its time limit (time_limits), which checkpoints
# a nanotron job removes after training (retention: zflow.retention; the steps the config
# names are in it, and a new eval step must not re-run the pretraining).
# where nanotron is installed (a conversion's parity check runs there: moving it re-runs nothing)
UNKEYED = ("tracking", "time_limits", "retention", "nanotron_python", "nanotron_checkout")


def task_of(column: str) -> str:
    """The task key of a table column (``<task>`` or ``<task>/<subtask>``)."""
    return column.split("/", 1)[0]


@dataclass(frozen=True)
class Model:
    name: str
    kind: str  # checkpoint | posttrain | baseline
    path: str  # what jobs load: an HF directory or a hub id
    lang: str | None = None  # the pretraining language it descends from (None: a baseline)
    step: int | None = None


@dataclass(frozen=True)
class Dependency:
    """What a job on a model waits for: a file, ``ancient`` (never stale by modification time),
    and the checkpoint rule to wait for when the file is not on disk and current."""

    path: str | None
    ancient: bool = False
    wait_for: str | None = None
    lang: str | None = None
    step: int | None = None  # the pretraining segment to wait for (pretrain_segment's end step)


def pretrain_identity(model: dict, pretrain: dict, data: list, tokenizer: str, world: int,
                      parent: str | None = None) -> str:
    """A pretraining run's identity: what its checkpoints record. train_steps and the
    checkpoint schedule may change without changing it (the run is extended). ``parent``: the
    identity of the model a continued pretraining starts from (``pretrain.init_from``)."""
    pre = {k: v for k, v in pretrain.items()
           if k not in RESUMABLE and not (k == "init_from" and v is None)}
    if isinstance(pre.get("nanotron"), dict):  # where nanotron is installed is not the run
        pre["nanotron"] = {k: v for k, v in pre["nanotron"].items() if k not in NANOTRON_PLACE}
    keyed = {"model": model, "pretrain": pre, "data": data, "tokenizer": tokenizer,
             "world_size": world}
    return identity.fingerprint({**keyed, "parent": parent} if parent else keyed)


def pretrain_spec(model: dict, pretrain: dict, data: list, tokenizer: str, run_dir: str,
                  nodes: int = 1, nproc: int = 1, stages: list | None = None,
                  init: dict | None = None) -> dict:
    """A pretraining job's spec (also outside a workflow: tests, benchmarks), with the schema's
    defaults filled in. ``data``: [{source, folder, weight}], every source the run reads;
    ``stages``: [{name, start_step, sequence_length, data: [{source, folder, weight}]}], or None
    for one stage reading ``data`` (``pretrain.stages``, the config's, keys the identity);
    ``init``: {model, path, identity} of the model a continued pretraining starts from."""
    model = {**schema.defaults("languages/*/model"), **model}
    pretrain = {**schema.defaults("languages/*/pretrain"), **pretrain}
    return {"model": model, "pretrain": pretrain, "data": data, "tokenizer": tokenizer,
            "nodes": nodes, "nproc_per_node": nproc, "stages": stages, "init": init,
            "time_limits": schema.defaults("time_limits"), "until": None,
            "identity": pretrain_identity(model, pretrain, data, tokenizer, nodes * nproc,
                                          init and init["identity"]),
            "run_dir": run_dir, "metrics": paths.in_run(paths.TRAIN_METRICS, run_dir),
            "summary": paths.in_run(paths.TRAIN_SUMMARY, run_dir)}


class Plan:
    def __init__(self, config: dict, base: Path | str = ".", check_files: bool = True):
        self.config = schema.load(config)
        self.base = Path(base)
        checks.check(self.config, self.base, check_files)
        self.langs = sorted(self.config["languages"])
        hf_keep = [f"languages.{x}.pretrain.keep_checkpoints: checkpoint retention is for backend "
                   "nanotron (the hf backend exports bf16 weights at every checkpoint and keeps "
                   "keep_last_states training states); remove it"
                   for x in self.langs if self.lang(x)["pretrain"].get("keep_checkpoints")
                   and self.backend(x) != "nanotron"]
        if hf_keep:
            raise ConfigError("\n".join(hf_keep))
        self.post = self.config["posttrain"]
        if check_files:
            self.check_tokenized_files()

    # ------------------------------------------------------------ config lookups

    def lang(self, lang: str) -> dict:
        return self.config["languages"][lang]

    def backend(self, lang: str) -> str:
        return self.lang(lang)["pretrain"]["backend"]

    def nodes(self, lang: str) -> int:
        pre = self.lang(lang)["pretrain"]
        return pre["nanotron"]["nodes"] if pre["backend"] == "nanotron" else pre["nodes"]

    def nproc(self, lang: str) -> int:
        pre = self.lang(lang)["pretrain"]
        if pre["backend"] == "nanotron":
            return pre["nanotron"]["gpus_per_node"]
        return pre["nproc_per_node"]

    def langs_regex(self, backend: str) -> str:
        """Wildcard constraint: the languages of one backend (never matching if none)."""
        return "|".join(x for x in self.langs if self.backend(x) == backend) or "(?!)"

    def posttrain_regex(self) -> str:
        return "|".join(re.escape(n) for n in sorted(self.post)) or "(?!x)x"

    def hub_entry(self, name: str) -> dict:
        """A source or chat dataset downloaded from the hub."""
        return self.config["sources"].get(name) or self.config["chat_data"][name]

    def tokenizer_ref(self, tok: str) -> str:
        """What jobs load: a trained tokenizer's directory, or the hub name."""
        t = self.config["tokenizers"][tok]
        return t["hub"] if "hub" in t else paths.fmt(paths.TOKENIZER, tokenizer=tok)

    def source_dir(self, name: str) -> str:
        """The directory tokenization reads: the source's path, or where its hub files land."""
        src = self.config["sources"][name]
        if "hub" in src:
            sub = os.path.dirname(src["hub"]["allow_patterns"][0])
            return os.path.join(src["path"], sub) if sub else src["path"]
        return src["path"]

    def source_glob(self, name: str) -> str:
        src = self.config["sources"][name]
        return os.path.basename(src["hub"]["allow_patterns"][0]) if "hub" in src else src["glob"]

    def pretrain_sources(self, lang: str) -> list[str]:
        """Every source a language's pretraining reads: its ``data``, then the stages' others."""
        lc = self.lang(lang)
        out = list(lc["data"])
        for st in lc["pretrain"].get("stages") or []:
            out += [s for s in st.get("data") or {} if s not in out]
        return out

    def tokenized_dirs(self, lang: str) -> list[str]:
        lc = self.lang(lang)
        return [paths.fmt(paths.TOKENIZED, tokenizer=lc["tokenizer"], source=s)
                for s in self.pretrain_sources(lang)]

    def tokenized_stats(self, lang: str) -> list[str]:
        """The merged stats of each source a language reads: written once all its groups are."""
        tok = self.lang(lang)["tokenizer"]
        return [paths.fmt(paths.TOKENIZED_STATS, tokenizer=tok, source=s)
                for s in self.pretrain_sources(lang)]

    # ------------------------------------------------------------ tokenize shard groups

    def is_hub_source(self, source: str) -> bool:
        return "hub" in self.config["sources"][source]

    def source_files(self, source: str) -> list[str]:
        """The parquet files a source tokenizes, sorted, relative to its ``path``: the glob's
        matches, or (hub) the files on disk matching an allow pattern (none before download).
        Read from disk at every call: a hub source's files appear when its download is done."""
        from fnmatch import fnmatch

        src = self.config["sources"][source]
        root = self.base / src["path"]
        if "hub" not in src:
            return [str(p.relative_to(root)) for p in data.parquet_files(root, src["glob"])]
        pats = src["hub"]["allow_patterns"]
        return sorted(rel for p in root.rglob("*.parquet") if p.is_file()
                      and ".cache" not in (rel := str(p.relative_to(root))).split(os.sep)
                      and any(fnmatch(rel, pat) for pat in pats))

    def source_groups(self, source: str) -> dict[str, list[str]]:
        """Shard groups of a source: group name -> its files (``data.shard_groups``: sorted
        files chunked in order by ``files_per_job`` / ``bytes_per_job``)."""
        src = self.config["sources"][source]
        files = self.source_files(source)
        sizes = [(self.base / src["path"] / f).stat().st_size for f in files]
        groups = data.shard_groups(files, sizes, src["files_per_job"], src["bytes_per_job"])
        return {data.GROUP.format(i): g for i, g in enumerate(groups)}

    def group_files(self, source: str, group: str) -> list[str]:
        groups = self.source_groups(source)
        if group not in groups:
            raise ConfigError(f"sources.{source}: no shard group '{group}' (it has "
                              f"{', '.join(groups) or 'no parquet files on disk'})")
        return groups[group]

    def group_inputs(self, source: str, group: str) -> list[str]:
        """The parquet files of one group (paths the tokenize job reads)."""
        root = self.base / self.config["sources"][source]["path"]
        return [str(root / f) for f in self.group_files(source, group)]

    def group_checksum(self, source: str, files: list[str]) -> str:
        """Content checksum of a group's files (name + ``data.parquet_checksum`` of each)."""
        root = self.base / self.config["sources"][source]["path"]
        return identity.fingerprint([(f, _checksum(root / f)) for f in files])

    def group_stats_files(self, tokenizer: str, source: str) -> list[str]:
        return [paths.fmt(paths.TOKENIZED_GROUP_STATS, tokenizer=tokenizer, source=source, group=g)
                for g in self.source_groups(source)]

    def check_tokenized_files(self) -> None:
        """A file that a tokenized group on disk holds and that is gone from its source: one
        error naming the source, the group and the file (before any job starts)."""
        problems = []
        for tok in self.config["tokenizers"]:
            for source, src in self.config["sources"].items():
                pattern = paths.fmt(paths.TOKENIZED_GROUP_STATS, tokenizer=tok, source=source,
                                    group="*")
                for stats in sorted(self.base.glob(pattern)):
                    try:
                        held = json.loads(stats.read_text())["parquet"]
                    except (OSError, ValueError, KeyError):
                        continue
                    group = stats.name.split(".")[0]
                    root = self.base / src["path"]
                    folder = paths.fmt(paths.TOKENIZED, tokenizer=tok, source=source)
                    problems += [f"sources.{source}: '{f}' was removed from {src['path']}, but the "
                                 f"tokenized shard group {group} holds it ({stats}); restore it, "
                                 f"or delete {stats} and {folder}/{group} to re-tokenize the "
                                 "source's groups" for f in held if not (root / f).is_file()]
        if problems:
            raise ConfigError("\n".join(problems))

    # ------------------------------------------------------------ inputs of jobs

    def source_inputs(self, source: str) -> list[str]:
        """Local shards, or the download's manifest for a hub source."""
        src = self.config["sources"][source]
        if "hub" in src:
            return [paths.fmt(paths.DOWNLOAD, source=source)]
        return [str(p) for p in data.parquet_files(self.base / src["path"], src["glob"])]

    def tokenizer_inputs(self, tok: str) -> list[str]:
        return [] if "hub" in self.config["tokenizers"][tok] else [self.tokenizer_ref(tok)]

    def tokenizer_train_inputs(self, tok: str) -> list[str]:
        return [f for s in self.config["tokenizers"][tok]["train"]["sources"]
                for f in self.source_inputs(s)]

    def pretrain_inputs(self, lang: str) -> dict:
        return {"data": self.tokenized_stats(lang),
                "tokenizer": self.tokenizer_inputs(self.lang(lang)["tokenizer"])}

    def segment_inputs(self, lang: str, step: int | None = None) -> dict:
        """A pretraining job's inputs: the data, and the segment before it (segment_steps)."""
        return {**self.pretrain_inputs(lang), "previous": self.previous_segment(lang, step)}

    def chat_data_input(self, name: str) -> str:
        d = self.config["chat_data"][name]
        return paths.fmt(paths.DOWNLOAD, source=name) if "hub" in d else d["path"]

    def posttrain_inputs(self, name: str) -> dict:
        pc = self.post[name]
        return {"data": [self.chat_data_input(d) for d in pc["data"]],
                "template": pc["chat_template"]}

    # ------------------------------------------------------------ identities

    @functools.cache
    def pretrain_identity(self, lang: str) -> str:
        lc = self.lang(lang)
        init = self.init(lang)
        return pretrain_identity(lc["model"], lc["pretrain"], self._mixture(lang),
                                 self.tokenizer_ref(lc["tokenizer"]),
                                 self.nodes(lang) * self.nproc(lang), init and init["identity"])

    def init(self, lang: str) -> dict | None:
        """The model a continued pretraining starts from (``pretrain.init_from``), or None."""
        name = self.lang(lang)["pretrain"]["init_from"]
        if name is None:
            return None
        return {"model": name, "path": self.model(name).path,
                "identity": self.model_identity(name)}

    def init_dependency(self, lang: str) -> Dependency:
        """What a continued pretraining waits for: the model it starts from (none otherwise)."""
        name = self.lang(lang)["pretrain"]["init_from"]
        return self.dependency(name) if name else Dependency(None)

    def model_identity(self, name: str) -> str:
        """Changes when ``name`` would be a different model: every job on it is keyed on it."""
        m = self.model(name)
        if m.kind == "baseline":
            return m.path
        if m.kind == "posttrain":
            return f"posttrain:{name}:{self.model_identity(self.post[name]['base'])}"
        return f"{self.pretrain_identity(m.lang)}:step-{m.step}"

    @functools.cache
    def eval_versions(self) -> str:
        v = versions(EVAL_PACKAGES)
        return ",".join(f"{k}={v[k]}" for k in EVAL_PACKAGES)

    # ------------------------------------------------------------ model registry

    def model(self, name: str) -> Model:
        baselines = self.config["baselines"]
        if name in baselines:
            return Model(name, "baseline", baselines[name]["model"])
        if name in self.post:
            base = self.model(self.post[name]["base"])
            return Model(name, "posttrain", paths.fmt(paths.POSTTRAIN_MODEL, name=name), base.lang)
        m = CHECKPOINT_MODEL.fullmatch(name)
        if not m or m.group(1) not in self.config["languages"]:
            raise ConfigError(f"unknown model '{name}': not a baseline, a posttrain key or "
                              "<lang>-step<N> of a configured language")
        lang, step = m.group(1), int(m.group(2))
        pattern = paths.CONVERTED if self.backend(lang) == "nanotron" else paths.HF_CHECKPOINT
        return Model(name, "checkpoint", paths.fmt(pattern, lang=lang, step=step), lang, step)

    def checkpoint_models(self, lang: str) -> list[str]:
        return [f"{lang}-step{s}" for s in self.lang(lang)["eval"]["checkpoints"]]

    def posttrain_models(self, lang: str) -> list[str]:
        return [n for n in self.post if self.model(n).lang == lang]

    def dependency(self, name: str) -> Dependency:
        """The file a job on model ``name`` depends on (the job that makes it)."""
        m = self.model(name)
        if m.kind == "baseline":
            return Dependency(m.path if os.path.isdir(self.base / m.path) else None)
        if m.kind == "posttrain":
            return Dependency(paths.fmt(paths.POSTTRAIN_SUMMARY, name=name))
        if self.backend(m.lang) == "nanotron":
            return Dependency(m.path)
        if self.checkpoint_current(m.lang, m.step):
            return Dependency(paths.marker(m.path), ancient=True, lang=m.lang)
        end = self.segment_of(m.lang, m.step)
        return Dependency(paths.marker(m.path), ancient=True, lang=m.lang, step=end,
                          wait_for="pretrain_segment" if end else "pretrain")

    def segment_ends(self, lang: str) -> list[int]:
        """Where pretraining jobs end before ``train_steps`` (hf backend, segment_steps)."""
        pre = self.lang(lang)["pretrain"]
        if not pre["segment_steps"] or self.backend(lang) != "hf":
            return []
        return list(range(pre["segment_steps"], pre["train_steps"], pre["segment_steps"]))

    def segment_of(self, lang: str, step: int) -> int | None:
        """The end of the pretraining segment that saves ``step`` (None: the last job)."""
        return next((e for e in self.segment_ends(lang) if e >= step), None)

    def previous_segment(self, lang: str, step: int | None = None) -> list[str]:
        """The record of the segment before the one ending at ``step`` (None: the last job)."""
        before = [e for e in self.segment_ends(lang) if step is None or e < step]
        return [paths.fmt(paths.PRETRAIN_SEGMENT, lang=lang, step=before[-1])] if before else []

    def nanotron_step_dependency(self, lang: str, step: int) -> Dependency:
        wait = None if self.checkpoint_current(lang, step) else "pretrain_nanotron"
        d = paths.fmt(paths.NANOTRON_STEP, lang=lang, step=step)
        return Dependency(f"{d}/checkpoint_metadata.json", ancient=True, wait_for=wait, lang=lang)

    # ------------------------------------------------------------ on disk

    def checkpoint_current(self, lang: str, step: int) -> bool:
        """Is checkpoint ``step`` complete on disk and made by the configured run?"""
        if self.backend(lang) == "nanotron":
            from zflow.nanotron import IncompleteCheckpoint, check_complete

            try:
                check_complete(self.base / paths.fmt(paths.NANOTRON_STEP, lang=lang, step=step))
            except (OSError, ValueError, IncompleteCheckpoint):
                return False
            return self._nanotron_run_current(lang)
        marker = self.base / paths.marker(paths.fmt(paths.HF_CHECKPOINT, lang=lang, step=step))
        try:
            return json.loads(marker.read_text()).get("identity") == self.pretrain_identity(lang)
        except (OSError, ValueError):
            return False

    def _nanotron_run_current(self, lang: str) -> bool:
        """Does the nanotron run directory hold the configured run (its run.json)?"""
        run = identity.read(self.base / paths.fmt(paths.PRETRAIN_RUN, lang=lang)) or {}
        return run.get("keyed_on", {}).get("identity") == self.pretrain_identity(lang)

    def needed_steps(self, lang: str) -> list[int]:
        """The steps of ``lang``'s run that the config names: ``eval.checkpoints`` and every
        ``<lang>-step<N>`` anywhere in the config (post-training bases, tables, compare,
        release keys, qualitative models and judge, another run's ``init_from``). Checkpoint
        retention never removes them (zflow.retention)."""
        steps = set(self.lang(lang)["eval"]["checkpoints"])

        def walk(x):
            if isinstance(x, dict):
                for k, v in x.items():
                    walk(k)
                    walk(v)
            elif isinstance(x, list):
                for v in x:
                    walk(v)
            elif isinstance(x, str):
                m = CHECKPOINT_MODEL.fullmatch(x)
                if m and m.group(1) == lang:
                    steps.add(int(m.group(2)))

        walk(self.config)
        return sorted(steps)

    def retention_spec(self, lang: str) -> dict:
        """What the pretrain_nanotron job removes after training (zflow.retention.apply): the
        policy (``pretrain.keep_checkpoints``, None: nothing), the steps the config names, the
        converted models' path pattern, the JSONL record of removals."""
        from zflow import retention

        run = paths.fmt(paths.PRETRAIN_RUN, lang=lang)
        return {"policy": self.lang(lang)["pretrain"].get("keep_checkpoints"), "run": run,
                "root": paths.fmt(paths.NANOTRON_CHECKPOINTS, lang=lang),
                "needed": self.needed_steps(lang),
                "converted": paths.CONVERTED.replace("{lang}", lang),
                "record": f"{run}/{retention.RECORD}", "identity": self.pretrain_identity(lang)}

    def checkpoints_on_disk(self, lang: str) -> list[int]:
        """Steps of the complete checkpoints of the configured run now on disk."""
        if self.backend(lang) == "nanotron":
            from zflow.nanotron import complete_steps

            if not self._nanotron_run_current(lang):
                return []
            return complete_steps(self.base / paths.fmt(paths.NANOTRON_CHECKPOINTS, lang=lang))
        root = self.base / paths.fmt(paths.HF_CHECKPOINTS, lang=lang)
        steps = [d.name.split("-", 1)[1] for d in root.glob("step-*")]
        return sorted(int(s) for s in steps if s.isdigit() and self.checkpoint_current(lang, int(s)))

    # ------------------------------------------------------------ targets

    def eval_files(self, lang: str) -> list[str]:
        lc = self.lang(lang)
        models = self.checkpoint_models(lang) + lc["eval"]["baselines"]
        return [paths.fmt(paths.EVAL, model=m, task=t) for m in models for t in lc["eval"]["tasks"]]

    def evals_on_disk(self, lang: str) -> list[str]:
        """``evals_<lang>``: every complete checkpoint on disk on the language's tasks."""
        return [paths.fmt(paths.EVAL, model=f"{lang}-step{s}", task=t)
                for s in self.checkpoints_on_disk(lang) for t in self.lang(lang)["eval"]["tasks"]]

    def report_files(self, lang: str) -> dict:
        return {**{ext: paths.fmt(paths.PROGRESSION, lang=lang, ext=ext)
                   for ext in ("md", "csv", "html", "png")},
                "loss": paths.fmt(paths.LOSS_PNG, lang=lang)}

    def compare_outputs(self, lang: str) -> dict:
        groups = self.config.get("compare", {}).get("groups", {})
        return {**{ext: paths.fmt(paths.COMPARE, lang=lang, ext=ext)
                   for ext in ("md", "csv", "html", "png")},
                **{f"png_{g}": paths.fmt(paths.COMPARE_GROUP_PNG, lang=lang, group=g) for g in groups},
                **{f"delta_{ext}": paths.fmt(paths.SFT_DELTA, lang=lang, ext=ext)
                   for ext in ("md", "csv")}}

    def compare_files(self, lang: str) -> list[str]:
        if not self.config.get("compare") or not self.posttrain_models(lang):
            return []
        return list(self.compare_outputs(lang).values())

    def compare_tasks(self) -> list[str]:
        """The columns of Table 7: task keys, or ``<task>/<subtask>`` of a group task."""
        groups = self.config.get("compare", {}).get("groups", {})
        return [t for tasks in groups.values() for t in tasks]

    def delta_tasks(self) -> list[str]:
        """Table 9's columns: those of Table 7 a base model can take (no chat template)."""
        return [t for t in self.compare_tasks()
                if not self.config["tasks"][task_of(t)]["chat_template"]]

    def compare_evals(self, lang: str) -> list[str]:
        spec = self._compare(lang)
        pairs = {(m, task_of(t)) for m in spec["models"] for t in self.compare_tasks()}
        pairs |= {(m, task_of(t)) for pair in spec["deltas"] for m in pair
                  for t in spec["delta_tasks"]}
        return sorted(paths.fmt(paths.EVAL, model=m, task=t) for m, t in pairs)

    def tables(self, lang: str) -> list[str]:
        return [n for n, t in self.config["tables"].items() if t["lang"] == lang]

    def table_outputs(self, name: str) -> dict:
        lang = self.config["tables"][name]["lang"]
        return {ext: paths.fmt(paths.TABLE, lang=lang, table=name, ext=ext)
                for ext in ("md", "csv", "html", "png")}

    def table_evals(self, name: str) -> list[str]:
        t = self.config["tables"][name]
        if t["kind"] in ("breakdown", "versus"):
            pairs = [(m, t["task"]) for m in (t.get("base"), t["model"]) if m]
        else:
            pairs = [(m, task_of(c)) for m in t["models"] for c in t["columns"]]
        return sorted({paths.fmt(paths.EVAL, model=m, task=task) for m, task in pairs})

    def lang_files(self, lang: str) -> list[str]:
        """What ``all_<lang>`` makes: the progression, Table 7 and the language's other tables."""
        return ([*self.report_files(lang).values(), *self.compare_files(lang)]
                + [f for n in self.tables(lang) for f in self.table_outputs(n).values()])

    def report_order(self) -> list[tuple[str, str]]:
        """(name, Markdown file) of every table in report.md's order (``report.order`` first)."""
        md = {}
        for lang in self.config["languages"]:
            md[f"progression_{lang}"] = self.report_files(lang)["md"]
            md.update({n: self.table_outputs(n)["md"] for n in self.tables(lang)})
            if self.compare_files(lang):
                out = self.compare_outputs(lang)
                md[f"compare_{lang}"], md[f"sft_delta_{lang}"] = out["md"], out["delta_md"]
        if self.config.get("qualitative"):
            md["qualitative"] = paths.QUALITATIVE_MD
        first = [n for n in self.config["report"]["order"] if n in md]
        return [(n, md[n]) for n in first + [n for n in md if n not in first]]

    def all_evals(self) -> list[str]:
        """Every eval JSON a table of the report reads."""
        evs = {e for lang in self.config["languages"] for e in self.eval_files(lang)}
        for lang in self.config["languages"]:
            if self.compare_files(lang):
                evs |= set(self.compare_evals(lang))
        for n in self.config["tables"]:
            evs |= set(self.table_evals(n))
        return sorted(evs)

    # ------------------------------------------------------------ job specs

    def spec(self, rule: str, **wc) -> dict:
        """Everything one job needs, its outputs included; ``keyed_on``: what else re-runs it."""
        return getattr(self, f"_spec_{rule}")(**wc)

    def spec_file(self, rule: str, **wc) -> str:
        """The job's spec, written once under its content's hash (a changed spec is a changed
        param, so the job re-runs); the path is what the rule hands its script."""
        spec = self.spec(rule, **wc)
        key = "-".join(str(v) for v in wc.values()) or rule
        keyed = {k: v for k, v in spec.items() if k not in UNKEYED}
        path = f"{paths.SPECS}/{rule}/{key}.{identity.fingerprint(keyed)}.json"
        f = self.base / path
        if not f.exists() or (len(keyed) < len(spec) and
                              identity.fingerprint(json.loads(f.read_text())) !=
                              identity.fingerprint(spec)):
            write_json(f, spec)  # an unkeyed setting changed: the same name, the new content
        return path

    def _spec_train_tokenizer(self, tokenizer):
        t = self.config["tokenizers"][tokenizer]["train"]
        srcs = self.config["sources"]
        return {"sources": [{"name": s, "dir": self.source_dir(s), "glob": self.source_glob(s),
                             "text_key": srcs[s]["text_key"]} for s in t["sources"]],
                "vocab_size": t["vocab_size"], "min_frequency": t["min_frequency"],
                "output": paths.fmt(paths.TOKENIZER, tokenizer=tokenizer)}

    def _spec_tokenize(self, tokenizer, source, group):
        """One shard group: its files and their content checksum (a changed file re-runs exactly
        its group; the rule declares the files ``ancient``, so touching one re-runs nothing)."""
        tok = self.config["tokenizers"][tokenizer]
        src = self.config["sources"][source]
        wc = {"tokenizer": tokenizer, "source": source, "group": group}
        files = self.group_files(source, group)
        return {"source": source, "group": group, "input": src["path"], "files": files,
                "checksum": self.group_checksum(source, files), "text_key": src["text_key"],
                "tokenizer": self.tokenizer_ref(tokenizer),
                "eos_token": tok["eos_token"] if "hub" in tok else data.EOS,
                "output": paths.fmt(paths.TOKENIZED_GROUP, **wc),
                "stats": paths.fmt(paths.TOKENIZED_GROUP_STATS, **wc),
                "work_dir": paths.fmt(paths.TOKENIZE_WORK, **wc)}

    def _spec_tokenize_stats(self, tokenizer, source):
        wc = {"tokenizer": tokenizer, "source": source}
        return {"source": source, "tokenizer": self.tokenizer_ref(tokenizer),
                "folder": paths.fmt(paths.TOKENIZED, **wc),
                "groups": {g: paths.fmt(paths.TOKENIZED_GROUP_STATS, **wc, group=g)
                           for g in self.source_groups(source)},
                "output": paths.fmt(paths.TOKENIZED_STATS, **wc)}

    def _spec_download(self, source):
        e = self.hub_entry(source)
        return {"repo_id": e["hub"]["repo_id"], "allow_patterns": e["hub"]["allow_patterns"],
                "revision": e["hub"]["revision"], "local_dir": e["path"],
                "manifest": paths.fmt(paths.DOWNLOAD, source=source)}

    def _spec_prefetch(self):
        cfg = self.config
        hub = {t["hub"] for t in cfg["tokenizers"].values() if "hub" in t}
        hub |= {b["model"] for b in cfg["baselines"].values()
                if not os.path.isdir(self.base / b["model"])}
        tasks = {t["lm_eval_task"] for t in cfg["tasks"].values() if not t.get("include_path")}
        return {"models": sorted(hub), "tasks": sorted(tasks), "output": paths.PREFETCH}

    def _mixture(self, lang):
        """Every source the run reads, weighted as in ``languages.<lang>.data`` (0: a source
        only the declared stages read)."""
        lc = self.lang(lang)
        return [{"source": s, "folder": d, "weight": lc["data"].get(s, 0)}
                for s, d in zip(self.pretrain_sources(lang), self.tokenized_dirs(lang))]

    def _stages(self, lang):
        """The declared data stages with their folders (None: one stage, ``data``)."""
        lc = self.lang(lang)
        folders = {d["source"]: d["folder"] for d in self._mixture(lang)}
        return [{"name": st["name"], "start_step": st["start_step"],
                 "sequence_length": st.get("sequence_length"),
                 "data": [{"source": s, "folder": folders[s], "weight": w}
                          for s, w in (st.get("data") or lc["data"]).items()]}
                for st in lc["pretrain"].get("stages") or []] or None

    def _spec_pretrain(self, lang):
        lc = self.lang(lang)
        return {"lang": lang, **pretrain_spec(
            lc["model"], lc["pretrain"], self._mixture(lang), self.tokenizer_ref(lc["tokenizer"]),
            paths.fmt(paths.PRETRAIN_RUN, lang=lang), self.nodes(lang), self.nproc(lang),
            self._stages(lang), self.init(lang)), "time_limits": self.config["time_limits"],
            "tracking": self.config["tracking"]}

    def _spec_pretrain_segment(self, lang, step):
        return {**self._spec_pretrain(lang), "until": int(step),
                "segment": paths.fmt(paths.PRETRAIN_SEGMENT, lang=lang, step=step)}

    def _spec_nanotron_config(self, lang):
        lc = self.lang(lang)
        tok = self.config["tokenizers"][lc["tokenizer"]]
        pre = {k: v for k, v in self._spec_pretrain(lang).items() if k != "time_limits"}
        pre["pretrain"] = {k: v for k, v in pre["pretrain"].items()
                           if k != "keep_checkpoints"}  # the job's (retention), not nanotron's
        return {**pre,
                "checkpoints_path": paths.fmt(paths.NANOTRON_CHECKPOINTS, lang=lang),
                "tokenizer_vocab": tok.get("vocab_size", lc["model"]["vocab_size"]),
                "output": paths.fmt(paths.NANOTRON_YAML, lang=lang)}

    def _spec_pretrain_nanotron(self, lang):
        nano = self.lang(lang)["pretrain"]["nanotron"]
        if not nano.get("python"):  # no fallback to whatever python runs the job (zflow.nanotron)
            from zflow.nanotron import PYTHON_KEY, interpreter_problem

            raise ConfigError(interpreter_problem(None, PYTHON_KEY.format(lang=lang)))
        return {"lang": lang, "config": paths.fmt(paths.NANOTRON_YAML, lang=lang),
                "checkout": nano["checkout"], "python": nano["python"], "nodes": nano["nodes"],
                "gpus_per_node": nano["gpus_per_node"], "peak_tflops": nano["peak_tflops"],
                "identity": self.pretrain_identity(lang),
                "run_dir": paths.fmt(paths.PRETRAIN_RUN, lang=lang),
                "log": paths.fmt(paths.NANOTRON_LOG, lang=lang),
                "metrics": paths.fmt(paths.TRAIN_METRICS, lang=lang),
                "summary": paths.fmt(paths.TRAIN_SUMMARY, lang=lang),
                "retention": self.retention_spec(lang)}

    def _spec_convert_checkpoint(self, lang, step):
        lc = self.lang(lang)
        nano = lc["pretrain"].get("nanotron") or {}
        from zflow.nanotron import PYTHON_KEY

        # conversion parity (zflow.parity): nanotron's own logits of the step, where its
        # environment runs on the conversion node (unset or unusable there: not compared)
        return {"checkpoint": paths.fmt(paths.NANOTRON_STEP, lang=lang, step=step),
                "output": paths.fmt(paths.CONVERTED, lang=lang, step=step),
                "tokenizer": self.tokenizer_ref(lc["tokenizer"]),
                "vocab_size": lc["model"]["vocab_size"], "dtype": "bfloat16",
                "identity": self.pretrain_identity(lang),
                "nanotron_python": nano.get("python"), "nanotron_checkout": nano.get("checkout"),
                "nanotron_key": PYTHON_KEY.format(lang=lang)}

    def _spec_evaluate(self, model, task):
        t, e, m = self.config["tasks"][task], self.config["eval"], self.model(model)
        return {"model": model, "model_path": m.path, "step": m.step, "task": task,
                "lm_eval_task": t["lm_eval_task"], "include_path": t.get("include_path"),
                "num_fewshot": t["num_fewshot"], "metric": t["metric"], "limit": t["limit"],
                "apply_chat_template": t["chat_template"], "batch_size": e["batch_size"],
                "max_batch_size": e["max_batch_size"], "device": e["device"], "dtype": e["dtype"],
                "bootstrap_iters": e["bootstrap_iters"],
                "reproduce_seed_command": e["reproduce_seed_command"],
                "output": paths.fmt(paths.EVAL, model=model, task=task),
                "keyed_on": {"model": self.model_identity(model), "versions": self.eval_versions()},
                **self.eval_rerun(model, task)}

    def eval_rerun(self, model: str, task: str) -> dict:
        """``{"rerun_after": <failure id>}`` when the eval's JSON on disk is a failure record (the
        spec changes, so the next invocation runs the eval again), the same key of the result
        written by that re-run (the spec then stays as it was), else nothing (zflow.evals,
        "Failed evals"). An on-disk query at DAG time, as ``checkpoint_current``."""
        token = evals.rerun_token(self.base / paths.fmt(paths.EVAL, model=model, task=task))
        return {} if token is None else {"rerun_after": token}

    def eval_batch(self, attempt: int) -> tuple:
        """(batch_size, max_batch_size) of Snakemake's ``attempt`` of an eval: the config's,
        halved at each retry (rules/eval.smk's resources; zflow.evals.batch_for_attempt)."""
        e = self.config["eval"]
        return evals.batch_for_attempt(e["batch_size"], e["max_batch_size"], attempt)

    def eval_retries(self) -> int:
        """Snakemake retries of an eval job (each with half the batch after an out-of-memory)."""
        return self.config["eval"]["oom_retries"]

    def _spec_posttrain(self, name):
        pc, chat = self.post[name], self.config["chat_data"]
        return {"name": name, "method": pc["method"], "variant": pc.get("variant"),
                "base": self.model(pc["base"]).path,
                "datasets": [{"name": d, "path": chat[d]["path"], "format": chat[d]["format"]}
                             for d in pc["data"]],
                "chat_template": pc["chat_template"], "train": pc["train"],
                "nodes": pc["nodes"], "nproc_per_node": pc["gpus_per_node"],
                "run_dir": paths.fmt(paths.POSTTRAIN_RUN, name=name),
                "model_dir": paths.fmt(paths.POSTTRAIN_MODEL, name=name),
                "metrics": paths.fmt(paths.POSTTRAIN_METRICS, name=name),
                "summary": paths.fmt(paths.POSTTRAIN_SUMMARY, name=name),
                "time_limits": self.config["time_limits"], "tracking": self.config["tracking"],
                "keyed_on": {"base": self.model_identity(pc["base"])}}

    def _column(self, ref: str, label: str | None = None, metric: str | None = None) -> list:
        task = task_of(ref)
        t = self.config["tasks"][task]
        return [ref, label or (t.get("label", task) if ref == task else ref), metric or t["metric"]]

    def _spec_report(self, lang):
        tbl = self.lang(lang)["table"]
        cols = []
        for ref in tbl["columns"] or self.lang(lang)["eval"]["tasks"]:
            c = self._column(ref)
            cols.append([ref, tbl["labels"].get(ref) or f"{c[1]} ({c[2]})", c[2]])
        return {"lang": lang, "columns": cols, "title": tbl["title"].format(lang=lang),
                "first": tbl["first"], "mean_label": tbl["mean_label"], "decimals": tbl["decimals"],
                "evals": self.eval_files(lang),
                "stages": [[st["name"], st["start_step"]] for st in self._stages(lang) or []],
                "train_metrics": paths.fmt(paths.TRAIN_METRICS, lang=lang),
                "outputs": self.report_files(lang)}

    def _compare(self, lang):
        cmp = self.config.get("compare", {})
        labels = cmp.get("labels", {})
        sft = [n for n in self.posttrain_models(lang) if self.post[n]["method"] == "sft"]
        return {"groups": {g: [self._column(t, labels.get(t)) for t in tasks]
                           for g, tasks in cmp.get("groups", {}).items()},
                "models": self.posttrain_models(lang) + cmp.get("baselines", []),
                "deltas": [[n, self.post[n]["base"]] for n in sft],
                "delta_tasks": self.delta_tasks()}

    def _spec_compare(self, lang):
        cmp = self.config["compare"]
        return {**self._compare(lang), "title": cmp["title"], "mean_label": cmp["mean_label"],
                "total_label": cmp["total_label"], "decimals": cmp["decimals"],
                "evals": self.compare_evals(lang), "outputs": self.compare_outputs(lang)}

    def _spec_table(self, table, lang=None):
        t = self.config["tables"][table]
        spec = {k: v for k, v in t.items() if k not in ("columns",)}
        spec["columns"] = [self._column(c, t["labels"].get(c), t["metrics"].get(c))
                           for c in t.get("columns", [])]
        return {**spec, "name": table, "evals": self.table_evals(table),
                "outputs": self.table_outputs(table)}

    def _spec_report_md(self):
        return {"tables": [[n, md] for n, md in self.report_order()], "evals": self.all_evals(),
                "outputs": {"md": paths.REPORT_MD, "evals_csv": paths.EVALS_CSV}}

    # ------------------------------------------------------------ qualitative benchmark

    # versions that change a local model's answers (its jobs are keyed on them); the report's tables
    QUALITATIVE_PACKAGES = ("transformers", "torch")
    QUALITATIVE_TABLES = ("leaderboard", "per_task", "delta", "flags", "winners", "failures")

    def qualitative_models(self) -> list[str]:
        """The names of ``qualitative.models`` (registry names and endpoints' names)."""
        q = self.config.get("qualitative")
        return [checks.qualitative_name(e) for e in q["models"]] if q else []

    def qualitative_suites(self) -> list[str]:
        q = self.config.get("qualitative")
        return list(q["suites"]) if q else []

    def qualitative_regex(self, wildcard: str) -> str:
        """Wildcard constraint of ``model`` or ``suite`` in the qualitative rules."""
        names = self.qualitative_models() if wildcard == "model" else self.qualitative_suites()
        return "|".join(re.escape(n) for n in names) or "(?!x)x"

    def qualitative_suite_file(self, suite: str) -> str:
        return self.config["qualitative"]["suites"][suite]

    def qualitative_endpoint(self, name: str) -> dict | None:
        """The ``{name, url, model, api_key_env}`` entry of an endpoint model; None otherwise."""
        return next((e for e in self.config["qualitative"]["models"]
                     if isinstance(e, dict) and e["name"] == name), None)

    def qualitative_dependency(self, name: str) -> Dependency:
        """What a job answering with ``name`` waits for (nothing for an endpoint)."""
        return Dependency(None) if self.qualitative_endpoint(name) else self.dependency(name)

    def qualitative_judge_dependency(self) -> Dependency:
        """What a scoring job waits for: a local judge model (nothing for an endpoint)."""
        j = self.config["qualitative"]["judge"]
        return self.dependency(j["model"]) if j and "url" not in j else Dependency(None)

    def qualitative_answers(self, suite: str | None = None) -> list[str]:
        return [paths.fmt(paths.QUALITATIVE_ANSWERS, model=m, suite=s)
                for m in self.qualitative_models() for s in self.qualitative_suites()
                if suite in (None, s)]

    def qualitative_scores(self) -> list[str]:
        return [paths.fmt(paths.QUALITATIVE_SCORES, model=m, suite=s)
                for m in self.qualitative_models() for s in self.qualitative_suites()]

    def qualitative_outputs(self) -> dict:
        return {"md": paths.QUALITATIVE_MD,
                **{t: paths.fmt(paths.QUALITATIVE_TABLE, table=t) for t in self.QUALITATIVE_TABLES},
                "png": paths.QUALITATIVE_PNG, "sheet": paths.QUALITATIVE_SHEET}

    def qualitative_files(self) -> list[str]:
        """What the qualitative report makes (nothing without a ``qualitative`` section)."""
        return list(self.qualitative_outputs().values()) if self.config.get("qualitative") else []

    def qualitative_identity(self, name: str) -> str:
        e = self.qualitative_endpoint(name)
        return f"endpoint:{e['url']}:{e['model']}" if e else self.model_identity(name)

    @functools.cache
    def _qualitative_versions(self) -> str:
        v = versions(self.QUALITATIVE_PACKAGES)
        return ",".join(f"{k}={v[k]}" for k in self.QUALITATIVE_PACKAGES)

    @functools.cache
    def _human_scores(self) -> dict:
        """{(model, suite, task): score} of the filled scoring sheet, if there is one."""
        from zflow import scoresheet

        sheet = self.config["qualitative"]["sheet"]
        if not sheet or not (self.base / sheet).is_file():
            return {}
        return scoresheet.read_sheet(self.base / sheet)

    def _qualitative_judge(self) -> dict | None:
        j = self.config["qualitative"]["judge"]
        if not j:
            return None
        settings = {k: j[k] for k in ("max_tokens", "temperature", "seed", "retries")}
        if "url" in j:
            return {"kind": "endpoint", "url": j["url"], "model": j["model"],
                    "api_key_env": j["api_key_env"], **settings}
        return {"kind": "local", "name": j["model"], "path": self.model(j["model"]).path,
                "startup_timeout_s": j["startup_timeout_s"], **settings}

    def _spec_qualitative_answer(self, model, suite):
        q = self.config["qualitative"]
        e = self.qualitative_endpoint(model)
        if e:
            source = {"kind": "endpoint", "url": e["url"], "model": e["model"],
                      "api_key_env": e["api_key_env"]}
            keyed = {"model": self.qualitative_identity(model)}
        else:
            m = self.model(model)
            source = {"kind": "local", "path": m.path, "registry": m.kind}
            keyed = {"model": self.model_identity(model), "versions": self._qualitative_versions()}
        return {"model": model, "suite": suite, "suite_file": self.qualitative_suite_file(suite),
                "source": source, "decoding": q["decoding"], "device": q["device"],
                "dtype": q["dtype"], "timeout_s": q["timeout_s"],
                "request_retries": q["request_retries"],
                "output": paths.fmt(paths.QUALITATIVE_ANSWERS, model=model, suite=suite),
                "keyed_on": keyed}

    def _spec_qualitative_score(self, model, suite):
        q = self.config["qualitative"]
        judge = self._qualitative_judge()
        human = {t: v for (m, s, t), v in self._human_scores().items()
                 if m == model and s == suite}
        wc = {"model": model, "suite": suite}
        return {**wc, "suite_file": self.qualitative_suite_file(suite),
                "answers": paths.fmt(paths.QUALITATIVE_ANSWERS, **wc), "judge": judge,
                "sheet": q["sheet"], "reasoning_tags": q["decoding"]["reasoning_tags"],
                "device": q["device"], "dtype": q["dtype"], "timeout_s": q["timeout_s"],
                "request_retries": q["request_retries"],
                "outputs": {"scores": paths.fmt(paths.QUALITATIVE_SCORES, **wc),
                            "sheet": paths.fmt(paths.QUALITATIVE_JOB_SHEET, **wc)},
                "keyed_on": {"judge": judge and (self.model_identity(judge["name"])
                                                 if judge["kind"] == "local"
                                                 else f"endpoint:{judge['url']}:{judge['model']}"),
                             "human": human}}

    def _spec_qualitative_report(self):
        q = self.config["qualitative"]
        return {"suites": q["suites"], "models": self.qualitative_models(),
                "scores": self.qualitative_scores(), "pass_threshold": q["pass_threshold"],
                "pair": self.qualitative_suites()[:2], "decoding": q["decoding"],
                "judge": self._qualitative_judge(), "outputs": self.qualitative_outputs()}

    # ------------------------------------------------------------ releases

    # release settings that only the upload reads (changing them re-runs no release)
    UPLOAD_KEYS = ("upload", "required")

    def release_models(self) -> list[str]:
        return list(self.config["release"])

    def release_regex(self) -> str:
        return "|".join(re.escape(n) for n in self.release_models()) or "(?!x)x"

    def release_files(self) -> list[str]:
        """What ``all`` makes of the ``release`` section: one folder per model."""
        return [paths.fmt(paths.RELEASE, model=m) for m in self.release_models()]

    def lineage(self, name: str) -> list[str]:
        """``name``, its base, the base's base, ... down to the pretraining checkpoint."""
        chain = [name]
        while chain[-1] in self.post:
            chain.append(self.post[chain[-1]]["base"])
        return chain

    def pretraining_chain(self, checkpoint: str) -> list[str]:
        """A pretraining checkpoint and, for a continued pretraining, the checkpoints it
        continues (``pretrain.init_from``), newest first; a baseline it starts from is not made
        here (it is the release's base model)."""
        chain = [checkpoint]
        while True:
            parent = self.lang(self.model(chain[-1]).lang)["pretrain"]["init_from"]
            if parent is None or self.model(parent).kind != "checkpoint":
                return chain
            chain.append(parent)

    def release_evals(self, name: str) -> list[str]:
        """The eval JSONs the card of ``name`` shows: ``release.<name>.evals``, or every eval of
        the model that the workflow makes."""
        tasks = self.config["release"].get(name, {}).get("evals")
        if tasks is not None:
            return [paths.fmt(paths.EVAL, model=name, task=t) for t in tasks]
        folder = os.path.dirname(paths.fmt(paths.EVAL, model=name, task="_"))
        evs = set(self.all_evals()) | {e for lang in self.langs for e in self.eval_files(lang)}
        return sorted(e for e in evs if os.path.dirname(e) == folder)

    def release_inputs(self, name: str) -> dict:
        """Besides the model itself: its evals, the tokenize stats of its pretraining data, the
        chat data and summaries of its post-training stages, its qualitative scores."""
        chain = self.lineage(name)
        langs = [self.model(c).lang for c in self.pretraining_chain(chain[-1])]
        quali = [s for s in self.qualitative_scores()
                 if name in self.qualitative_models() and s.startswith(
                     paths.fmt(paths.QUALITATIVE, model=name, suite=""))]
        return {"evals": self.release_evals(name),
                "stats": list(dict.fromkeys(
                    paths.fmt(paths.TOKENIZED_STATS, tokenizer=self.lang(x)["tokenizer"], source=s)
                    for x in langs for s in self.lang(x)["data"])),
                "chat": sorted({self.chat_data_input(d) for n in chain[:-1]
                                for d in self.post[n]["data"]}),
                "summaries": [paths.fmt(paths.POSTTRAIN_SUMMARY, name=n) for n in chain[:-1]],
                "qualitative": quali}

    def release_config(self, name: str) -> dict:
        """The smallest config that makes ``name`` again (``release_<name>``): its language, its
        post-training chain, the data, tokenizer and tasks they use; written into the release."""
        chain = self.lineage(name)
        cks = [self.model(c) for c in self.pretraining_chain(chain[-1])]
        lc = self.lang(cks[0].lang)
        tok = self.config["tokenizers"][lc["tokenizer"]]
        post = {n: self.post[n] for n in reversed(chain[:-1])}
        tasks = sorted({os.path.basename(e)[:-len(".json")] for e in self.release_evals(name)})
        langs = {ck.lang: {**self.lang(ck.lang),
                           "eval": {**self.lang(ck.lang)["eval"],
                                    "tasks": tasks or lc["eval"]["tasks"],
                                    "checkpoints": [ck.step], "baselines": []}}
                 for ck in reversed(cks)}
        used = [s for x in langs.values() for s in x["data"]]
        used += [s for x in langs.values() for st in x["pretrain"].get("stages") or []
                 for s in st.get("data") or {}]
        srcs = list(dict.fromkeys(used + tok.get("train", {}).get("sources", [])))
        chat = list(dict.fromkeys(d for pc in post.values() for d in pc["data"]))
        starts = {b: self.config["baselines"][b] for b in
                  (x["pretrain"]["init_from"] for x in langs.values())
                  if b in self.config["baselines"]}  # baselines its pretraining starts from
        cfg = {"offline": self.config["offline"],
               "sources": {s: self.config["sources"][s] for s in srcs},
               "tokenizers": {lc["tokenizer"]: tok},
               "tasks": {t: self.config["tasks"][t] for t in
                         sorted({t for x in langs.values() for t in x["eval"]["tasks"]})},
               "eval": self.config["eval"], "languages": langs,
               **({"baselines": starts} if starts else {}),
               "chat_data": {d: self.config["chat_data"][d] for d in chat}, "posttrain": post,
               "release": {name: {**{k: v for k, v in self.config["release"][name].items()
                                     if k not in self.UPLOAD_KEYS}, "evals": tasks}}}
        q = self.config.get("qualitative")
        if q and name in self.qualitative_models():
            judge = q["judge"]
            keep = judge and ("url" in judge or judge["model"] in chain)
            cfg["qualitative"] = {**q, "models": [name], "judge": judge if keep else None}
        return cfg

    def _spec_release(self, model):
        rc = self.config["release"][model]
        chain = self.lineage(model)
        stages = [{"name": n, "method": self.post[n]["method"],
                   "variant": self.post[n].get("variant"), "base": self.post[n]["base"],
                   "model_dir": paths.fmt(paths.POSTTRAIN_MODEL, name=n),
                   "meta": f"{paths.fmt(paths.POSTTRAIN_MODEL, name=n)}/{paths.POSTTRAIN_META}",
                   "summary": paths.fmt(paths.POSTTRAIN_SUMMARY, name=n),
                   "metrics": paths.fmt(paths.POSTTRAIN_METRICS, name=n),
                   "train": self.post[n]["train"], "nodes": self.post[n]["nodes"],
                   "gpus_per_node": self.post[n]["gpus_per_node"],
                   "datasets": [{"name": d, "path": self.config["chat_data"][d]["path"],
                                 "format": self.config["chat_data"][d]["format"],
                                 "hub": self.config["chat_data"][d].get("hub")}
                                for d in self.post[n]["data"]]}
                  for n in chain[:-1]]
        pretraining = [self._release_pretraining(c) for c in self.pretraining_chain(chain[-1])]
        tasks = self.config["tasks"]
        evals = [{"file": e, "task": os.path.basename(e)[:-len(".json")]}
                 for e in self.release_evals(model)]
        for e in evals:
            t = tasks[e["task"]]
            e.update(label=t.get("label", e["task"]), lm_eval_task=t["lm_eval_task"],
                     metric=t["metric"])
        q = self.config.get("qualitative")
        m = self.model(model)
        cfg = self.release_config(model)
        base = chain[1] if len(chain) > 1 else None
        start = self.lang(pretraining[-1]["lang"])["pretrain"]["init_from"]  # a baseline, or None
        base_model = (rc["base_model"] or (self.config["release"].get(base) or {}).get("repo_id")
                      or (start and self.model(start).path))
        return {"model": model, "kind": m.kind, "model_dir": m.path, "lineage": chain,
                "release": {k: v for k, v in rc.items() if k not in self.UPLOAD_KEYS},
                "stages": stages, "pretraining": pretraining[0], "earlier": pretraining[1:],
                "evals": evals,
                "qualitative": {"decoding": q["decoding"] if q else None,
                                "scores": self.release_inputs(model)["qualitative"]},
                "base_model": base_model, "config": cfg, "config_hash": identity.fingerprint(cfg),
                "output": paths.fmt(paths.RELEASE, model=model),
                "keyed_on": {"model": self.model_identity(model)}}

    def _release_pretraining(self, checkpoint: str) -> dict:
        """What a release records of the pretraining run that saved ``checkpoint``."""
        ck = self.model(checkpoint)
        lang, lc = ck.lang, self.lang(ck.lang)
        tok = lc["tokenizer"]
        data = [{"source": s, "weight": w, "tokenized": d,
                 "stats": paths.fmt(paths.TOKENIZED_STATS, tokenizer=tok, source=s),
                 "path": self.config["sources"][s]["path"],
                 "hub": self.config["sources"][s].get("hub"),
                 "text_key": self.config["sources"][s]["text_key"]}
                for (s, w), d in zip(lc["data"].items(), self.tokenized_dirs(lang))]
        return {"name": checkpoint, "lang": lang, "step": ck.step,
                "backend": self.backend(lang), "model_dir": ck.path,
                "marker": paths.marker(ck.path), "model": lc["model"],
                "pretrain": lc["pretrain"], "world_size": self.nodes(lang) * self.nproc(lang),
                "identity": self.pretrain_identity(lang),
                "tokenizer": {"name": tok, "ref": self.tokenizer_ref(tok),
                              **self.config["tokenizers"][tok]},
                "summary": paths.fmt(paths.TRAIN_SUMMARY, lang=lang),
                "metrics": paths.fmt(paths.TRAIN_METRICS, lang=lang), "data": data}

    def _spec_upload(self, model):
        rc = self.config["release"][model]
        up = rc["upload"]
        return {"model": model, "folder": paths.fmt(paths.RELEASE, model=model),
                "repo_id": rc["repo_id"], "private": up["private"], "revision": up["revision"],
                "commit_message": up["commit_message"] or f"Release {model}",
                "dry_run": up["dry_run"], "required": rc["required"],
                "offline": self.config["offline"],
                "output": paths.fmt(paths.RELEASE_UPLOAD, model=model)}

    # ------------------------------------------------------------ environment of jobs

    def job_env(self) -> dict:
        """Set in the Snakemake process, inherited by every job: the hub offline when the config
        says so, and this interpreter's bin/ first on PATH (jobs' ``python`` is the one that
        runs Snakemake, e.g. the project's .venv, unless a conda env is activated)."""
        env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                        os.environ.get("PATH", "")])}
        if self.config["offline"]:
            env.update({v: os.environ.get(v, "1") for v in
                        ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")})
        return env
