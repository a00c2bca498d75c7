"""lm-eval tasks and groups: find their YAMLs, summarize ``simple_evaluate``'s output, read values.

What lm-evaluation-harness 0.4.13 returns for one requested name (``tasks=[name]``):

* ``out["results"]``: one row per leaf task, then one per group (bottom-up, so subgroups come
  before the group holding them). A task row is ``{"name", "alias", "sample_len",
  "<metric>,<filter>": value, "<metric>_stderr,<filter>": value | "N/A", ...}``. A group row
  holds ``{"alias", "name"}`` and, only when the group YAML has ``aggregate_metric_list``, also
  ``"sample_len"``, ``"sample_count"`` (a dict) and the aggregated ``"<metric>,<filter>"`` /
  ``"<metric>_stderr,<filter>"`` keys (``Group.aggregate`` in ``lm_eval/api/group.py``: mean of
  the leaf tasks' values, weighted by their ``sample_len`` when ``weight_by_size``).
* ``out["groups"]``: the same rows as ``results`` for groups *with* an aggregate; the key is
  absent when no group has one.
* ``out["group_subtasks"]``: ``{group: [direct children]}`` for every group (children may be
  groups themselves); ``{}`` for a plain task.
* ``out["n-samples"]``: ``{leaf task: {"original": int, "effective": int}}``; no entry for groups.
* ``out["configs"]``: leaf tasks only; ``versions`` and ``higher_is_better`` cover groups too.

Metric names. lm-eval keys every metric as ``"<metric>,<filter>"``. The filter ``none`` (what
every loglikelihood task and most generation tasks report) is dropped: ``"acc,none"`` becomes
``"acc"``. Any other filter keeps lm-eval's own spelling, ``"exact_match,strict-match"``: the
comma form is what lm-eval's results files, its ``filter_list`` and its docs use, and joining with
``_`` would be ambiguous (filters contain ``-`` and ``_``; ``acc_norm`` is a metric). A bare
metric name given to :func:`value` still finds ``"<metric>,<filter>"`` when that metric is reported
under exactly one filter, as records written before this module (which kept only the part before
the comma) expect.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

__all__ = ["EvalError", "TaskLoader", "find_task_files", "task_names", "localize_tasks",
           "relative_data_files", "summarize", "generated_tokens", "parse_column", "value", "read",
           "load", "FAILED", "is_failure", "failure", "rerun_token", "is_oom", "batch_for_attempt",
           "SEED_COMMAND", "used_settings"]

_IGNORE_DIRS = {"__pycache__", ".ipynb_checkpoints"}  # as lm_eval.tasks._index


class EvalError(ValueError):
    """An eval record, task reference or lm-eval output that cannot give the number asked for."""


# The settings of the seed's command (`lm-eval --model hf --model_args pretrained=<model>
# --tasks ... --device cuda:0 --batch_size 1`), which ``eval.reproduce_seed_command`` runs every
# eval with: batch size 1 and no dtype in its model_args, so lm-eval's own "auto" (the dtype the
# checkpoint was saved in).
SEED_COMMAND = {"batch_size": 1, "dtype": "auto"}


# ------------------------------------------------------------------------------------------------
# Task / group YAMLs


class Tagged(str):
    """A tagged scalar such as ``!function utils.f``: a plain string that is dumped back with
    its tag (``TaskDumper``)."""

    tag = "!function"


class TaskLoader(yaml.SafeLoader):
    """The one reader of lm-eval task YAMLs: tags are kept (scalars as ``Tagged``; tagged lists
    and mappings as plain values)."""


class TaskDumper(yaml.SafeDumper):
    pass


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = Tagged(loader.construct_scalar(node))
        value.tag = node.tag
        return value
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


TaskLoader.add_multi_constructor("!", _any_tag)
TaskDumper.add_representer(Tagged, lambda dumper, v: dumper.represent_scalar(v.tag, str(v)))


def _load(path: Path, seen: frozenset = frozenset()) -> dict:
    """One YAML with its ``include:`` files merged in, as ``lm_eval.tasks._yaml_loader.load_yaml``
    does (included keys first, the file's own keys win; ``task_list`` is not inherited)."""
    path = path.expanduser().resolve()
    if path in seen:
        raise ValueError(f"include cycle at {path}")
    cfg = yaml.load(path.read_text(), Loader=TaskLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(cfg, dict):
        raise ValueError(f"{path} is not a YAML mapping")
    if "include" not in cfg:
        return cfg
    includes = cfg.pop("include")
    merged: dict = {}
    for inc in includes if isinstance(includes, list) else [includes]:
        inc_path = Path(inc) if Path(inc).is_absolute() else path.parent / inc
        inc_cfg = _load(inc_path, seen | {path})
        inc_cfg.pop("task_list", None)
        merged.update(inc_cfg)
    merged.update(cfg)
    return merged


def _defines(cfg: dict) -> tuple[str, Any] | None:
    """("task" | "group", name) the way lm-eval's TaskIndex classifies a config, else None."""
    if "class" in cfg:  # Python task: named by "task", whatever else it holds
        return ("task", cfg.get("task"))
    if "group" in cfg:  # any config with "group:" is a group (its "task:" lists the children)
        return ("group", cfg["group"])
    if "task" in cfg:
        return ("task", cfg["task"])
    return None


def find_task_files(include_path: Path, name: str) -> list[Path]:
    """The YAMLs under ``include_path`` (recursive) that define lm-eval task or group ``name``.

    Mirrors lm-eval 0.4.13's index (``lm_eval/tasks/_index.py``): files ``*.yaml`` outside
    ``__pycache__``/``.ipynb_checkpoints``, ``include:`` files merged in, then a config with
    ``class:`` is a Python task named by ``task:``, one with ``group:`` is a group named by it
    (even if ``task:`` is a string: lm-eval then treats that task as its only child), otherwise
    ``task:`` names a task. Names must be strings: lm-eval skips a ``group:`` or ``task:`` that is
    a dict or list (unhashable), so those never match. Tags (``tag:``) are not matched: a tag runs
    several tasks and gives no result row of its own. YAMLs that do not parse (or whose includes
    are missing) are skipped, as lm-eval skips them. Sorted by path, as lm-eval walks them; when
    several match, lm-eval uses the first.
    """
    return [y for y, _, defined in _index(Path(include_path)) if defined == name]


def task_names(include_path: Path) -> list[str]:
    """Every task and group name the YAMLs under ``include_path`` define (as
    :func:`find_task_files` reads them), sorted, each once."""
    return sorted({defined for _, _, defined in _index(Path(include_path))})


def _index(root: Path):
    """(YAML, "task" | "group", name) of each YAML under ``root`` defining a task or group with a
    string name, in lm-eval's order (:func:`find_task_files`)."""
    for y in sorted(root.glob("**/*.yaml"), key=lambda p: p.as_posix()):
        if any(part in _IGNORE_DIRS for part in y.relative_to(root).parts):
            continue
        try:
            d = _defines(_load(y))
        except (OSError, ValueError, yaml.YAMLError):
            continue
        if d is not None and isinstance(d[1], str):
            yield y, d[0], d[1]


def _absolute(files, folder: Path):
    """``data_files`` (a path, a list, or split -> path or list) made absolute."""
    if isinstance(files, str):
        return files if Path(files).is_absolute() else str((folder / files).resolve())
    if isinstance(files, list):
        return [_absolute(f, folder) for f in files]
    if isinstance(files, dict):
        return {k: _absolute(v, folder) for k, v in files.items()}
    return files


def _relative(files) -> bool:
    """Does ``data_files`` (a path, a list, or split -> path or list) name a relative path?"""
    if isinstance(files, str):
        return not Path(files).is_absolute()
    if isinstance(files, list):
        return any(_relative(f) for f in files)
    if isinstance(files, dict):
        return any(_relative(f) for f in files.values())
    return False


def _with_relative_data(src: Path):
    """(path, parsed YAML) of each task YAML under ``src`` whose ``dataset_kwargs.data_files``
    names a relative path (what :func:`localize_tasks` rewrites), in path order."""
    for y in sorted(Path(src).rglob("*"), key=lambda p: p.as_posix()):
        if not (y.is_file() and y.name.endswith("yaml")):  # lm-eval's _default_template_yaml too
            continue
        try:
            doc = yaml.load(y.read_text(), Loader=TaskLoader)  # noqa: S506 - SafeLoader subclass
        except (yaml.YAMLError, UnicodeDecodeError):  # not YAML: copied as it is
            continue
        kwargs = doc.get("dataset_kwargs") if isinstance(doc, dict) else None
        if isinstance(kwargs, dict) and _relative(kwargs.get("data_files")):
            yield y, doc


def relative_data_files(src: Path) -> list[str]:
    """The task YAMLs under ``src`` (POSIX paths relative to it) that name their data files
    relative to their own folder: lm-eval resolves such paths against the working directory, so
    the folder must be localized (:func:`localize_tasks`) to run from anywhere else."""
    return [y.relative_to(src).as_posix() for y, _ in _with_relative_data(Path(src))]


def localize_tasks(src: Path, dst: Path) -> list[str]:
    """Copy a task folder (YAMLs, include templates, !function helpers, data), turning relative
    ``dataset_kwargs.data_files`` into absolute paths (relative to each YAML's own folder): lm-eval
    would read them from the working directory. The eval job runs this copy, and so does the
    command printed under every table (``python -m zflow.evals localize <folder> <copy>``).
    Returns the YAMLs rewritten (:func:`relative_data_files`)."""
    import shutil

    src, dst = Path(src), Path(dst)
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    done = []
    for y, doc in _with_relative_data(src):
        kwargs = doc["dataset_kwargs"]
        kwargs["data_files"] = _absolute(kwargs["data_files"], y.parent)
        text = yaml.dump(doc, Dumper=TaskDumper, sort_keys=False, allow_unicode=True)
        (dst / y.relative_to(src)).write_text(text)
        done.append(y.relative_to(src).as_posix())
    return done


# ------------------------------------------------------------------------------------------------
# simple_evaluate output


def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _metric_name(key: str) -> tuple[str, bool] | None:
    """lm-eval key "metric,filter" -> (our metric name, is_stderr); None for non-metric keys."""
    if "," not in key:
        return None
    metric, filt = key.split(",", 1)
    is_stderr = metric.endswith("_stderr")
    if is_stderr:
        metric = metric[: -len("_stderr")]
    return (metric if filt == "none" else f"{metric},{filt}"), is_stderr


def _row_metrics(row: dict) -> tuple[dict[str, float], dict[str, float]]:
    """(metrics, stderr) of one results row, in lm-eval's order; non-numbers skipped."""
    metrics: dict[str, float] = {}
    stderr: dict[str, float] = {}
    for k, v in (row or {}).items():
        m = _metric_name(k)
        x = _number(v)
        if m is None or x is None:
            continue
        (stderr if m[1] else metrics)[m[0]] = x
    return metrics, {k: v for k, v in stderr.items() if k in metrics}


def _int(v) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _task_n(out: dict, name: str) -> int | None:
    ns = (out.get("n-samples") or {}).get(name)
    if isinstance(ns, dict) and _int(ns.get("effective")) is not None:
        return _int(ns["effective"])
    return _int(((out.get("results") or {}).get(name) or {}).get("sample_len"))


def _children(out: dict, name: str) -> list[str]:
    return list((out.get("group_subtasks") or {}).get(name) or [])


def _leaves(out: dict, name: str, seen: set | None = None) -> list[str]:
    seen = set() if seen is None else seen
    kids = _children(out, name)
    if not kids:
        return [name]
    leaves = []
    for k in kids:
        if k in seen:
            continue
        seen.add(k)
        leaves += _leaves(out, k, seen)
    return leaves


def _sum_n(out: dict, leaves: list[str]) -> int | None:
    ns = [_task_n(out, t) for t in dict.fromkeys(leaves)]
    return None if not ns or any(n is None for n in ns) else sum(ns)


def summarize(out: dict, task: str) -> dict:
    """Our summary of ``simple_evaluate``'s output for one requested task or group name.

    Returns ``{"is_group", "metrics", "stderr", "n", "subtasks"}``. ``metrics``/``stderr``: the
    task's own metrics, or the group's aggregate (``{}`` when the group has no
    ``aggregate_metric_list``). ``n``: effective samples (summed over the leaf tasks of a group).
    ``subtasks``: ``[]`` for a task; for a group one entry per (subtask, metric), depth-first in the
    groups' own child order: ``{"name", "metric", "value", "stderr", "n", "is_group", "parent"}``.
    Leaf tasks have ``is_group`` False; a nested group adds its own aggregate rows (``name`` = the
    subgroup, ``is_group`` True, ``n`` summed over its leaves) just before its leaves; ``parent`` is
    the group directly holding the entry. Non-numeric values ("N/A", NaN) are left out.
    """
    results = out.get("results") or {}
    if task not in results:
        raise EvalError(f"lm-eval gave no results for '{task}' "
                        f"(it has: {', '.join(results) or 'nothing'})")
    metrics, stderr = _row_metrics(results[task])
    is_group = bool(_children(out, task))
    if not is_group:
        return {"is_group": False, "metrics": metrics, "stderr": stderr,
                "n": _task_n(out, task), "subtasks": []}

    subtasks: list[dict] = []
    done: set[str] = set()

    def walk(group: str) -> None:
        for child in _children(out, group):
            if child in done:
                continue
            done.add(child)
            sub = bool(_children(out, child))
            m, s = _row_metrics(results.get(child) or {})
            n = _sum_n(out, _leaves(out, child)) if sub else _task_n(out, child)
            for metric, v in m.items():
                subtasks.append({"name": child, "metric": metric, "value": v,
                                 "stderr": s.get(metric), "n": n, "is_group": sub,
                                 "parent": group})
            if sub:
                walk(child)

    walk(task)
    return {"is_group": True, "metrics": metrics, "stderr": stderr,
            "n": _sum_n(out, _leaves(out, task)), "subtasks": subtasks}


def generated_tokens(out: dict, task: str, count) -> dict:
    """Tokens generated per item by the generation (``generate_until``) leaf tasks of ``task`` in
    ``simple_evaluate(..., log_samples=True)``'s output: ``{"mean", "n", "tasks": {leaf: {"mean",
    "n"}}}`` (``mean`` None when ``task`` generates nothing). ``count(text)`` is a text's tokens
    (the model's tokenizer); the response counted is each item's first, before filters."""
    configs, samples = out.get("configs") or {}, out.get("samples") or {}
    per = {}
    for leaf in dict.fromkeys(_leaves(out, task)):
        if (configs.get(leaf) or {}).get("output_type") != "generate_until" or not samples.get(leaf):
            continue
        lens = []
        for s in samples[leaf]:
            resps = s.get("resps") or [[""]]
            first = resps[0][0] if isinstance(resps[0], list) and resps[0] else resps[0]
            lens.append(count(first if isinstance(first, str) else ""))
        per[leaf] = {"mean": sum(lens) / len(lens), "n": len(lens)}
    n = sum(v["n"] for v in per.values())
    mean = sum(v["mean"] * v["n"] for v in per.values()) / n if n else None
    return {"mean": mean, "n": n, "tasks": per}


def used_settings(out: dict) -> dict:
    """What lm-eval ran with, from ``simple_evaluate``'s ``out["config"]``: the batch sizes it
    used (``auto``: the ones it detected; a fixed batch: that one) and the model's dtype as loaded
    (``"bfloat16"``, ``"float32"``...)."""
    cfg = out.get("config") or {}
    sizes = [int(b) for b in cfg.get("batch_sizes") or []]
    fixed = str(cfg.get("batch_size", "")).strip()
    if not sizes and fixed.isdigit():
        sizes = [int(fixed)]
    dtype = cfg.get("model_dtype")
    return {"batch_sizes_used": sizes,
            "model_dtype": str(dtype).removeprefix("torch.") if dtype not in (None, "") else None}


# ------------------------------------------------------------------------------------------------
# Eval records (results/evals/<model>/<task>.json)


def parse_column(ref: str) -> tuple[str, str | None]:
    """A table column: "<task key>" (aggregate / task value) or "<task key>/<subtask name>"."""
    if not isinstance(ref, str):
        raise EvalError(f"column reference must be a string, got {ref!r}")
    task, sep, sub = ref.strip().partition("/")
    task, sub = task.strip(), sub.strip()
    if not task or (sep and not sub):
        raise EvalError(f"bad column reference '{ref}': expected '<task>' or '<task>/<subtask>'")
    return task, (sub if sep else None)


def _lookup(available: dict, metric: str) -> str | None:
    """The key of ``metric`` in ``available``: exact, or a bare name reported under one filter."""
    if metric in available:
        return metric
    if "," not in metric:
        keys = [k for k in available if k.split(",", 1)[0] == metric]
        if len(keys) == 1:
            return keys[0]
    return None


def _finite(v, where: str) -> float:
    x = _number(v)
    if x is None:
        raise EvalError(f"{where} is not a finite number: {v!r}")
    return x


def value(record: dict, metric: str, subtask: str | None = None) -> float:
    """The number for ``metric`` in an eval record: the aggregate (``record["metrics"]``), or the
    entry of ``subtask`` in ``record["subtasks"]`` with that metric, or, if that subtask reports
    exactly one metric, that one. EvalError (naming task, subtask, metric and what is available)
    when it is ambiguous, missing or not a finite number."""
    task = record.get("task", "?")
    if is_failure(record):
        raise EvalError(f"task {task}: the eval of {record.get('model')} failed: "
                        f"{record.get('error')}")
    if subtask is None:
        metrics = record.get("metrics") or {}
        key = _lookup(metrics, metric)
        if key is None:
            hint = ""
            if not metrics and record.get("subtasks"):
                hint = " (a group without aggregate_metric_list: pick a subtask, '<task>/<subtask>')"
            raise EvalError(f"task {task}: no metric '{metric}' (it has: "
                            f"{', '.join(metrics) or 'none'}){hint}")
        return _finite(metrics[key], f"task {task}: metric '{key}'")
    entries = [e for e in record.get("subtasks") or [] if e.get("name") == subtask]
    if not entries:
        names = list(dict.fromkeys(e.get("name") for e in record.get("subtasks") or []))
        raise EvalError(f"task {task}: no subtask '{subtask}' (subtasks: "
                        f"{', '.join(map(str, names)) or 'none'})")
    by_metric = {e.get("metric"): e for e in entries}
    key = _lookup(by_metric, metric)
    if key is None:
        if len(by_metric) != 1:
            raise EvalError(f"task {task}, subtask {subtask}: no metric '{metric}' and more than "
                            f"one to choose from (it has: {', '.join(map(str, by_metric))})")
        key = next(iter(by_metric))
    return _finite(by_metric[key].get("value"), f"task {task}, subtask {subtask}: metric '{key}'")


def read(path) -> dict:
    """One eval JSON (results/evals/<model>/<task>.json); "subtasks" defaults to [] (records
    written before groups were supported). A failure record (:func:`is_failure`) is returned as
    it is, with no metrics: every value of it is missing. EvalError naming the file if it is
    neither."""
    path = Path(path)
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise EvalError(f"{path}: not a readable JSON file ({e})") from e
    if is_failure(rec):
        return {**rec, "metrics": {}, "subtasks": []}
    if not isinstance(rec, dict) or not isinstance(rec.get("metrics"), dict):
        raise EvalError(f"{path}: not an eval record (no 'metrics' mapping)")
    subs = rec.get("subtasks")
    if subs is None:
        rec["subtasks"] = []
    elif not isinstance(subs, list):
        raise EvalError(f"{path}: 'subtasks' is not a list")
    return rec


def load(paths) -> tuple[list[dict], list[dict]]:
    """The eval JSONs ``paths`` as (results, failures): a failure record is no result (its cells
    are "—") but is listed (model, task, error, log)."""
    results, failures = [], []
    for p in paths:
        rec = read(p)
        (failures if is_failure(rec) else results).append(rec)
    return results, failures


# ------------------------------------------------------------------------------------------------
# Failed evals: a failure record in place of the result, retried by the next Snakemake invocation
#
# An eval job that fails for good (an error that is not an out-of-memory, or an out-of-memory on
# its last attempt or at batch size 1) writes, in place of its result, a record with
# ``"status": "failed"``, the error's last line, the log to read and a ``failure_id``. Snakemake
# counts the job done, so the report is still made (the eval's cells "—", the failure listed under
# each table that reads it). The plan puts ``rerun_after: <failure_id>`` into that eval's spec at
# the next parse (:func:`rerun_token`): a changed spec is a changed param, so the next invocation
# runs the eval again. A result written by that re-run keeps the token (``rerun_after``), so the
# spec stays the same afterwards and the result is never re-run for it.

FAILED = "failed"


def is_failure(rec) -> bool:
    return isinstance(rec, dict) and rec.get("status") == FAILED


def last_line(exc: BaseException) -> str:
    """An exception as the last line of its traceback: ``Type: message`` (first line of it)."""
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[-1] if msg else ''}".rstrip(": ")


def failure(spec: dict, exc: BaseException, log: str | None, settings: dict, when: float) -> dict:
    """The failure record of an eval job (written where its result would be)."""
    import hashlib

    error = last_line(exc)
    fid = hashlib.sha256(f"{spec['output']}|{when!r}|{error}".encode()).hexdigest()[:16]
    return {"status": FAILED, "model": spec["model"], "model_path": spec["model_path"],
            "step": spec["step"], "task": spec["task"], "lm_eval_task": spec["lm_eval_task"],
            "metric": spec["metric"], "error": error, "error_type": type(exc).__name__,
            "out_of_memory": is_oom(exc), "log": log, "settings": settings,
            "failure_id": fid, "failed_at": when, "keyed_on": spec["keyed_on"]}


def rerun_token(path) -> str | None:
    """What an eval's spec carries as ``rerun_after`` given its JSON on disk: a failure's
    ``failure_id`` (the spec changes, the eval re-runs), a result's own ``rerun_after`` (the spec
    that made it, unchanged), None when there is no readable JSON."""
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict):
        return None
    return rec.get("failure_id") if is_failure(rec) else rec.get("rerun_after")


OOM_MESSAGES = ("CUDA out of memory", "CUDA error: out of memory", "HIP out of memory",
                "MPS backend out of memory", "XPU out of memory")


def is_oom(exc: BaseException | None) -> bool:
    """Is ``exc`` (or an exception it was raised from or during) an accelerator out-of-memory:
    ``torch.OutOfMemoryError`` (``torch.cuda.OutOfMemoryError``), or a RuntimeError with one of
    torch's out-of-memory messages (CUDA, HIP, MPS, XPU)?"""
    try:
        from torch import OutOfMemoryError
    except ImportError:  # torch before 2.5: only the CUDA class
        OutOfMemoryError = ()  # noqa: N806
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if (OutOfMemoryError and isinstance(exc, OutOfMemoryError)) or \
                any(m in str(exc) for m in OOM_MESSAGES):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def batch_for_attempt(batch_size, max_batch_size: int, attempt: int) -> tuple:
    """(batch_size, max_batch_size) of Snakemake's ``attempt`` (1 = the first): each retry halves
    the batch (never below 1); with lm-eval's ``auto`` batch size, the largest batch it may pick
    (``max_batch_size``) is halved instead."""
    shift = max(0, int(attempt) - 1)
    if isinstance(batch_size, str) and batch_size.strip().isdigit():
        batch_size = int(batch_size)
    if isinstance(batch_size, int):
        return max(1, batch_size >> shift), max_batch_size
    return batch_size, max(1, int(max_batch_size) >> shift)


# ------------------------------------------------------------------------------------------------
# Command line: the first step of the commands printed under the tables (zflow.tables.command)


def main(argv=None) -> None:
    """``python -m zflow.evals localize <task folder> <copy>``: the eval job's copy of a task
    folder (:func:`localize_tasks`), for ``lm_eval --include_path <copy>`` run from anywhere."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m zflow.evals", description=main.__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    loc = sub.add_parser("localize", help="copy a task folder with its data_files made absolute")
    loc.add_argument("src", type=Path, help="the task folder (a task's include_path)")
    loc.add_argument("dst", type=Path, help="where the copy goes (created; may exist)")
    a = ap.parse_args(argv)
    if not a.src.is_dir():
        ap.error(f"{a.src}: not a directory")
    localize_tasks(a.src, a.dst)


if __name__ == "__main__":
    main()
