"""Checkpoint retention of a nanotron run within a disk budget (``pretrain.keep_checkpoints``).

nanotron keeps every checkpoint it saves, each a full training state (model + optimizer: 14
bytes per parameter); the Italian production run saves 400 of them (2.45 TB). With
``languages.<lang>.pretrain.keep_checkpoints: {newest: N}`` these are kept:

- every step the config names (``Plan.needed_steps``: ``eval.checkpoints`` and every
  ``<lang>-step<N>`` model reference — post-training bases, tables, compare, releases,
  qualitative models and judge, another run's ``init_from``). They stay after their conversion
  too: ``convert_checkpoint``'s input is the nanotron checkpoint, and a missing input with no job
  to make it stops Snakemake. One whose converted model is not yet written is "conversion
  pending";
- the newest N complete checkpoints, the one ``latest.txt`` names (nanotron resumes from it),
  and any step whose conversion is in progress (``<converted>.tmp`` on disk: ``io.atomic_dir``);
- every incomplete step folder (``nanotron.check_complete`` refuses it: still being written, or
  left by a crash): never counted as a newer complete checkpoint, never removed here — it is
  nanotron's;
- a complete checkpoint with no newer complete one.

Any other complete checkpoint is removed (``zflow.io.remove_tree``: never outside results/),
each removal a line in the job log and a JSONL record in ``<run>/removed_checkpoints.jsonl``.
Without the key nothing is removed. ``plan_removals`` is the policy (pure); ``apply`` does it on
a checkpoints folder; ``apply_spec`` is the pretrain_nanotron job's call after training (its
spec's ``retention``, written by ``Plan.retention_spec``, not part of the spec's hash).

A step removed cannot be evaluated or converted later: add a step to ``eval.checkpoints`` (or
reference it) before the run passes it. While a run trains, the same policy can be applied from
outside the job, e.g. on the login node every hour::

    python -m zflow.retention --configfile config/zagreus.yaml --lang ita --every 3600

(``--dry-run`` lists what would go). It removes only complete checkpoints older than a newer
complete one, never what nanotron is writing or resumes from.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

RECORD = "removed_checkpoints.jsonl"  # inside the run directory (results/pretrain/<lang>/)


def describe(policy: dict | None) -> str:
    return "keep_checkpoints unset: every checkpoint kept" if not policy else \
        f"keep_checkpoints: newest {policy['newest']}"


def plan_removals(steps_on_disk: Mapping[int, bool], latest: int | None, needed: Iterable[int],
                  newest_n: int | None, converted: Iterable[int] = (),
                  converting: Iterable[int] = ()) -> tuple[dict, dict]:
    """(keep, remove): ``{step: reason}`` of every step folder on disk.

    ``steps_on_disk``: ``{step: complete}``; ``latest``: the step of ``latest.txt`` (None: none);
    ``needed``: the steps the config names; ``newest_n``: the policy (None: remove nothing);
    ``converted``: needed steps whose converted model is written; ``converting``: steps whose
    conversion is being written now."""
    needed, converted, converting = set(needed), set(converted), set(converting)
    complete = sorted(s for s, ok in steps_on_disk.items() if ok)
    newest = set(complete[-newest_n:]) if newest_n else set()
    keep, remove = {}, {}
    for step in sorted(steps_on_disk):
        if newest_n is None:
            keep[step] = "no retention policy (keep_checkpoints unset)"
            continue
        why = []
        if not steps_on_disk[step]:
            why.append("incomplete (left to nanotron)")
        if step == latest:
            why.append("latest.txt names it")
        if step in needed:
            why.append("needed by the config" + ("" if step in converted
                                                 else ", conversion pending"))
        if step in converting:
            why.append("conversion in progress")
        if step in newest:
            why.append(f"one of the newest {newest_n} complete")
        if steps_on_disk[step] and not any(c > step for c in complete):
            why.append("no newer complete checkpoint")
        if why:
            keep[step] = "; ".join(why)
        else:
            remove[step] = (f"not needed by the config, older than the newest {newest_n} "
                            f"complete ({', '.join(map(str, sorted(newest)))})")
    return keep, remove


def folder_bytes(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def on_disk(root: Path) -> dict[int, bool]:
    """``{step: complete}`` of the step folders (named by their step) under a checkpoints root."""
    from zflow.nanotron import check_complete

    steps = {}
    for d in root.iterdir() if root.is_dir() else ():
        if d.is_dir() and d.name.isdigit():
            try:
                check_complete(d)
                steps[int(d.name)] = True
            except (OSError, ValueError):  # IncompleteCheckpoint, an unreadable latest.txt
                steps[int(d.name)] = False
    return steps


def converted_steps(pattern: str, steps: Iterable[int], identity: str | None,
                    base: Path = Path(".")) -> tuple[set, set]:
    """(written, in progress) among ``steps``: converted models whose marker records
    ``identity`` (any, when None), and ``<converted>.tmp`` folders being written."""
    from zflow.paths import MARKER

    written, writing = set(), set()
    for s in steps:
        d = base / pattern.format(step=s)
        try:
            marker = json.loads((d / MARKER).read_text())
            if identity is None or marker.get("identity") == identity:
                written.add(s)
        except (OSError, ValueError):
            pass
        if d.with_name(d.name + ".tmp").exists():
            writing.add(s)
    return written, writing


def apply(root, policy: dict | None, needed: Iterable[int] = (), converted: str | None = None,
          record=None, identity: str | None = None, results_root=None, dry_run: bool = False,
          base: Path | str = ".", out=print) -> dict:
    """Apply the policy to the checkpoints under ``root``: remove (``io.remove_tree``) what
    ``plan_removals`` says, each with a line to ``out`` and a JSONL record appended to
    ``record``. ``converted``: the converted model's path pattern with ``{step}``;
    ``results_root``: what removals must stay inside (default ./results). A refused or failed
    removal is reported and recorded (``refused``), never raised. Returns
    ``{"kept", "removed", "refused", "freed_bytes"}`` (``kept``/``removed``: {step: reason})."""
    from zflow.io import UnsafePath, remove_tree
    from zflow.nanotron import finished_step

    root, base = Path(root), Path(base)
    result = {"kept": {}, "removed": {}, "refused": {}, "freed_bytes": 0}
    if not policy:
        return result  # nothing removed, nothing read
    steps = on_disk(root)
    latest = finished_step(root)
    done, writing = (converted_steps(converted, steps, identity, base) if converted
                     else (set(), set()))
    keep, remove = plan_removals(steps, latest, needed, policy["newest"], done & set(needed),
                                 writing)
    result["kept"] = keep
    tag = f"retention ({describe(policy)})"
    for step, why in remove.items():
        path = root / str(step)
        size = folder_bytes(path)
        entry = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 "step": step, "path": str(path), "bytes": size, "reason": why,
                 "latest": latest, "policy": policy, "identity": identity}
        if dry_run:
            out(f"{tag}: would remove step {step} ({size / 1e9:.3g} GB): {why}")
            result["removed"][step] = why
            continue
        try:
            remove_tree(path, results_root)
        except (UnsafePath, OSError) as e:
            out(f"{tag}: NOT removed step {step} ({path}): {e}")
            result["refused"][step] = str(e)
            entry["refused"] = str(e)
        else:
            out(f"{tag}: removed step {step} ({size / 1e9:.3g} GB, {path}): {why}")
            result["removed"][step] = why
            result["freed_bytes"] += size
        if record:
            Path(record).parent.mkdir(parents=True, exist_ok=True)
            with open(record, "a") as f:
                f.write(json.dumps(entry) + "\n")
    out(f"{tag}: kept {len(keep)} ({', '.join(map(str, keep)) or 'none'}), "
        f"{'would remove' if dry_run else 'removed'} {len(result['removed'])}"
        + (f", refused {len(result['refused'])}" if result["refused"] else "")
        + (f", freed {result['freed_bytes'] / 1e9:.3g} GB" if result["freed_bytes"] else ""))
    sys.stdout.flush()
    return result


def apply_spec(spec: dict) -> dict | None:
    """The pretrain_nanotron job's call after training: its spec's ``retention`` (none in a
    spec written before retention existed: nothing done)."""
    r = spec.get("retention")
    if not r:
        return None
    return apply(r["root"], r["policy"], r["needed"], r["converted"], r["record"],
                 r["identity"], out=lambda line: print(line, flush=True))


def prune(plan, lang: str, dry_run: bool = False, out=print) -> dict:
    """The policy of ``lang``'s configured run applied now (``Plan.retention_spec``), from
    outside its job: paths under ``plan.base``."""
    r = plan.retention_spec(lang)
    base = Path(plan.base)
    if r["policy"] and not plan._nanotron_run_current(lang):
        # another run's checkpoints: the next job moves them aside (superseded, never deleted)
        out(f"retention: {base / r['run']} holds no run.json of the configured run (not started, "
            "or another run's checkpoints, which its next job moves aside): nothing removed")
        return {"kept": {}, "removed": {}, "refused": {}, "freed_bytes": 0}
    return apply(base / r["root"], r["policy"], r["needed"], r["converted"],
                 None if dry_run else base / r["record"], r["identity"],
                 results_root=base / "results", dry_run=dry_run, base=base, out=out)


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Apply languages.<lang>.pretrain.keep_checkpoints "
                                 "to a nanotron run's checkpoints now (run in the workflow's "
                                 "directory).")
    ap.add_argument("--configfile", nargs="+", required=True)
    ap.add_argument("--lang", required=True)
    ap.add_argument("--dry-run", action="store_true", help="list what would be removed")
    ap.add_argument("--every", type=float, default=0,
                    help="repeat every this many seconds (0: once)")
    args = ap.parse_args(argv)
    from zflow.cost import read_config
    from zflow.plan import Plan

    plan = Plan(read_config(args.configfile))
    if plan.backend(args.lang) != "nanotron":
        raise SystemExit(f"retention: languages.{args.lang} is not a nanotron run")
    if not plan.lang(args.lang)["pretrain"].get("keep_checkpoints"):
        print(f"retention: languages.{args.lang}.pretrain.keep_checkpoints is not set: every "
              "checkpoint is kept")
        return 0
    while True:
        prune(plan, args.lang, args.dry_run)
        if not args.every or args.dry_run:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
