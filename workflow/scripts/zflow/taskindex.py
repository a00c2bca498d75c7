"""The lm-eval task names a config may use, known before any eval job runs.

An eval job builds lm-eval's ``TaskManager``: the installed registry (``lm_eval/tasks``) for a
task without ``include_path``, the task folder alone for one with it (``include_defaults=False``,
as ``run_lm_eval.py`` does). This module answers the same questions at parse time:

* :func:`registry`: every task, group and tag name of the installed lm-eval, with each group's
  members. lm-eval's own ``TaskIndex`` builds it (20-40 s: 11,000 YAML files); the result is
  kept in ``<cache>/lm_eval-<version>.json`` (``<cache>``: ``$ZFLOW_CACHE_DIR``, else
  ``.snakemake/zflow`` of the working directory), rebuilt when lm-eval's version, location or
  task folder changes, so a parse reads one JSON file (tens of milliseconds).
* :func:`folder`: the same for a task folder (``include_path``), read with ``zflow.evals``'s
  reader of task YAMLs (each parse: the folders are small and the user edits them).
* :func:`missing_members`: the members of a group (recursively) that the index does not define,
  which lm-eval would otherwise turn into an empty inline task and fail on in the eval job.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

__all__ = ["Index", "registry", "folder", "missing_members", "cache_dir"]

FORMAT = 2  # of the cache file: bump when the layout changes
_MEMO: dict = {}


class Index:
    """``kinds``: name -> "task" | "group" | "tag"; ``members``: group -> its ``task:`` list
    reduced to names (a string, ``{"group": name, "task": [...]}`` for an inline group,
    ``{"task": name, "inline": bool}`` for a task given as a mapping; ``inline``: it defines a
    task itself, with a ``dataset_path``, an ``include`` or a ``class``); ``where``: name -> the YAML defining it (folders only)."""

    def __init__(self, kinds: dict, members: dict, where: dict | None = None, label: str = ""):
        self.kinds, self.members, self.where, self.label = kinds, members, where or {}, label

    def __contains__(self, name) -> bool:
        return name in self.kinds

    def kind(self, name) -> str | None:
        return self.kinds.get(name)


def _members(task_field, group_cfg: dict) -> list:
    """A group's ``task:`` list reduced to names (see :class:`Index`)."""
    if not isinstance(task_field, list):
        return []
    defining = ("dataset_path", "include", "class")  # what makes a mapping a task of its own
    has_data = any(k in group_cfg for k in defining)
    out = []
    for item in task_field:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and isinstance(item.get("group"), str):
            out.append({"group": item["group"], "task": _members(item.get("task"), item)})
        elif isinstance(item, dict) and isinstance(item.get("task"), str):
            out.append({"task": item["task"],
                        "inline": has_data or any(k in item for k in defining)})
    return out


def cache_dir(base: Path = Path(".")) -> Path:
    return Path(os.environ.get("ZFLOW_CACHE_DIR") or Path(base) / ".snakemake" / "zflow")


def _installed() -> tuple[str, Path] | None:
    """(version, tasks folder) of the installed lm-eval, without importing it; None if absent."""
    import importlib.metadata
    import importlib.util

    try:
        spec = importlib.util.find_spec("lm_eval")
        version = importlib.metadata.version("lm_eval")
    except (ImportError, ValueError, importlib.metadata.PackageNotFoundError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return version, Path(list(spec.submodule_search_locations)[0]) / "tasks"


def _build_registry(tasks_dir: Path) -> dict:
    import logging

    from lm_eval.tasks._index import Kind, TaskIndex

    logging.getLogger("lm_eval").setLevel(logging.ERROR)  # its duplicate-name warnings
    kinds, members = {}, {}
    for name, e in TaskIndex.build([tasks_dir]).items():
        if not isinstance(name, str):
            continue
        kinds[name] = {Kind.GROUP: "group", Kind.TAG: "tag"}.get(e.kind, "task")
        if e.kind == Kind.GROUP:
            members[name] = _members((e.cfg or {}).get("task"), e.cfg or {})
    return {"kinds": kinds, "members": members}


def registry(base: Path = Path("."), log=None) -> Index | None:
    """The installed lm-eval's index (module docstring), None when lm-eval is not installed.
    ``log``: where the one line announcing a rebuild goes (default stderr)."""
    found = _installed()
    if found is None:
        return None
    version, tasks_dir = found
    try:
        stamp = tasks_dir.stat().st_mtime_ns
    except OSError:
        return None
    key = {"format": FORMAT, "lm_eval": version, "tasks_dir": str(tasks_dir), "mtime_ns": stamp}
    memo = json.dumps(key, sort_keys=True)
    if memo in _MEMO:
        return _MEMO[memo]
    path = cache_dir(base) / f"lm_eval-{version}.json"
    data = None
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            data = cached
    except (OSError, ValueError, AttributeError):
        pass
    if data is None:
        import time

        t0 = time.time()
        (log or (lambda m: print(m, file=sys.stderr, flush=True)))(
            f"indexing the tasks of lm-eval {version} for the config check (once per lm-eval "
            f"version, 20-40 s; cached in {path})")
        data = {"key": key, **_build_registry(tasks_dir), "seconds": round(time.time() - t0, 1)}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only working directory: indexed again next time
    index = Index(data["kinds"], data["members"], label=f"lm-eval {version}")
    _MEMO[memo] = index
    return index


def folder(path: Path) -> Index:
    """The index of a task folder (``include_path``), as lm-eval builds it from that folder
    alone: the first YAML (by path) defining a name wins; a task's ``tag:`` names a tag."""
    from zflow.evals import _IGNORE_DIRS, _defines, _load

    import yaml

    kinds, members, where = {}, {}, {}
    root = Path(path)
    for y in sorted(root.glob("**/*.yaml"), key=lambda p: p.as_posix()):
        if any(part in _IGNORE_DIRS for part in y.relative_to(root).parts):
            continue
        try:
            cfg = _load(y)
            d = _defines(cfg)
        except (OSError, ValueError, yaml.YAMLError):
            continue
        if d is None or not isinstance(d[1], str) or d[1] in kinds:  # lm-eval: the first wins
            continue
        kinds[d[1]], where[d[1]] = d[0], y
        if d[0] == "group":
            members[d[1]] = _members(cfg.get("task"), cfg)
        else:
            tags = cfg.get("tag")
            for t in [tags] if isinstance(tags, str) else tags if isinstance(tags, list) else []:
                if isinstance(t, str):
                    kinds.setdefault(t, "tag")
    return Index(kinds, members, where, f"the task folder '{path}'")


def missing_members(index: Index, group: str) -> list[tuple[str, str]]:
    """(group, member) for each member of ``group`` and of its subgroups, at any depth, that
    ``index`` does not define (an inline task defined in place aside)."""
    out, seen = [], set()

    def walk(name: str, items) -> None:
        for item in items:
            if isinstance(item, str):
                if item not in index:
                    out.append((name, item))
                elif index.kind(item) == "group" and item not in seen:
                    seen.add(item)
                    walk(item, index.members.get(item, []))
            elif "group" in item:
                if item["group"] in index:
                    if index.kind(item["group"]) == "group" and item["group"] not in seen:
                        seen.add(item["group"])
                        walk(item["group"], index.members.get(item["group"], []))
                else:  # an inline group: its own members
                    walk(f"{name}::{item['group']}", item["task"])
            elif item["task"] not in index and not item["inline"]:
                out.append((name, item["task"]))

    seen.add(group)
    walk(group, index.members.get(group, []))
    return out
