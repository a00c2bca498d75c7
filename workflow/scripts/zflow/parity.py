"""Conversion parity: does a converted model compute what the nanotron run trained?

Each convert_checkpoint job (workflow/scripts/convert_nanotron.py) checks the model it converted
on a fixed batch of the run's own tokenized data and records the result under ``"parity"`` in
the converted model's marker (zflow_checkpoint.json):

- the batch (``fixed_batch``): ``LOSS_SEQUENCES`` windows of ``sequence_length + 1`` tokens of
  the data stage that trained the step (the step's config.yaml: the config nanotron saved with it),
  each drawn with ``numpy.random.default_rng(SEED)`` from a folder picked by the stage's
  ``dataset_weights``, then a window of that folder's ``.ds`` files (zflow.tokenized). The same
  step always gets the same batch. The checkpoint may have trained on some of these windows (the
  loss can only be lower for it: the flag below is one-sided);
- (b) always: the converted model's loss on the batch (mean next-token cross-entropy, float32),
  its per-sequence losses and their standard error. The report (workflow/scripts/report.py)
  flags a checkpoint whose loss is above the run's training loss at that step by more than
  ``loss_margin`` (``loss_flag``);
- (a) where ``pretrain.nanotron.python`` is configured and nanotron can run in it (a GPU node):
  nanotron itself loads the step (tp=1) and computes the logits of the first ``PARITY_SEQUENCES``
  x ``PARITY_TOKENS`` tokens of the batch (zflow.nanotron_parity, run in that interpreter); the
  job compares them with the converted model's: max / mean |difference|, argmax agreement. Beyond
  the tolerance (``logits_problem``) the job fails with the numbers and writes no model. Where
  nanotron cannot run there (no CUDA, nanotron or flash-attn: a CPU conversion node), the check
  is recorded as not run, with the reason. Real nanotron has NOT been run through this path yet
  (written against the pin's source on a machine without GPU); zflow's stand-in trainer
  (tools/smoke/nanotron) answers in its place in tests and smoke runs.

Tolerances (the numbers tests assert):

- logits, (a): the converted model in float32 (its bfloat16 weights upcast) against nanotron's
  forward in the run's dtype (bf16 matmuls, fp32 logits). The bf16 forward alone moves logits by
  a few tenths at most on a trained model (relative precision 2^-8 per op; nanotron's own
  conversion test allows 0.03 absolute + 3 % relative per element on a random 4-layer model), so
  it fails when ``max |Δ| > LOGITS_ATOL + LOGITS_RTOL x max |nanotron's logit|`` (0.1 + 5 %: 1.35
  for logits up to 25) or when the argmax agrees at fewer than ``ARGMAX_MIN`` (90 %) of the
  positions (bf16 noise flips only near-ties). A layout error (rope pairs, q/k/v or gate/up order,
  a transposed or shifted weight) moves logits by whole units and the argmax at most positions.
- loss, (b): ``loss_margin = LOSS_REL_MARGIN x training loss + LOSS_SE_FACTOR x standard error of
  the batch's loss`` (15 % + 3 SE). The training loss is a noisy per-batch value: the reference
  is the median of the ``WINDOW`` (21) logged losses nearest the step (a checkpoint's weights are
  those the next steps' losses are computed with). The fixed batch has its own sampling error (a
  few sequences: per-sequence losses of web text spread by ~0.3-0.5 nats), measured on the batch
  itself (3 SE). 15 % (0.45 nats at a loss of 3) is above what bf16 rounding and the difference
  between the batch's and the training mix's difficulty add, and far below what a broken
  conversion costs (≥ 1 nat, usually several: towards ln(vocab) = 11.8 for 128k tokens). Only a
  loss above the run's is flagged: lower is what a checkpoint scores on windows it has seen. This
  is a gross-error check; a subtle mismatch is what (a) is for.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
from pathlib import Path

SEED = 1234
LOSS_SEQUENCES = 8  # windows of sequence_length + 1 tokens: the batch of the loss (b)
PARITY_SEQUENCES = 2  # the first of them ...
PARITY_TOKENS = 256  # ... cut to this many tokens: the logits compared with nanotron's (a)
LOGITS_ATOL = 0.1
LOGITS_RTOL = 0.05
ARGMAX_MIN = 0.90
LOSS_REL_MARGIN = 0.15
LOSS_SE_FACTOR = 3.0
WINDOW = 21  # logged training losses around the step (their median: the reference)
TIMEOUT_S = 1800  # nanotron's import, the step's load and one forward on one GPU
CHUNK = 1024  # positions per lm_head call (a 128k vocabulary: 0.5 GB of float32 logits)


class ParityError(RuntimeError):
    """The converted model does not compute what nanotron computes: the job fails."""


class NoBatch(ValueError):
    pass


def settings(spec: dict | None = None) -> dict:
    """The batch sizes and tolerances in force (a spec's ``parity`` may override them: tests)."""
    out = {"seed": SEED, "loss_sequences": LOSS_SEQUENCES, "parity_sequences": PARITY_SEQUENCES,
           "parity_tokens": PARITY_TOKENS, "logits_atol": LOGITS_ATOL,
           "logits_rtol": LOGITS_RTOL, "argmax_min": ARGMAX_MIN,
           "loss_rel_margin": LOSS_REL_MARGIN, "loss_se_factor": LOSS_SE_FACTOR,
           "window": WINDOW, "timeout_s": TIMEOUT_S}
    unknown = set((spec or {}).get("parity") or {}) - set(out)
    if unknown:
        raise ValueError(f"parity: unknown settings {sorted(unknown)}")
    return {**out, **((spec or {}).get("parity") or {})}


# ---------------------------------------------------------------- the fixed batch


def step_config(step_dir) -> dict:
    import yaml

    try:
        return yaml.safe_load((Path(step_dir) / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def stage_at(cfg: dict, step: int) -> dict:
    """The data stage of a nanotron config that trained ``step`` (the last one started)."""
    stages = cfg.get("data_stages") or []
    if not stages:
        raise NoBatch("the step's config.yaml has no data_stages")
    started = [s for s in stages if (s.get("start_training_step") or 1) <= max(step, 1)]
    return (started or stages[:1])[-1]


def _windows(folder: str, width: int) -> list[tuple[Path, int, int]]:
    """(file, token size, windows of ``width`` tokens) of a tokenized folder's ``.ds`` files."""
    from zflow import tokenized

    out = []
    for ds in tokenized.ds_files(folder):
        size = tokenized.metadata(ds)[1]
        n = ds.stat().st_size // size // width
        if n:
            out.append((ds, size, n))
    return out


def fixed_batch(cfg: dict, step: int, n: int = LOSS_SEQUENCES, seed: int = SEED):
    """(token ids ``[n, sequence_length + 1]`` int64, where they come from) for ``step``."""
    import numpy as np

    try:
        seq = int(cfg["tokens"]["sequence_length"])
    except (KeyError, TypeError, ValueError):
        raise NoBatch("the step's config.yaml has no tokens.sequence_length") from None
    stage = stage_at(cfg, step)
    ds = ((stage.get("data") or {}).get("dataset") or {})
    folders = ds.get("dataset_folder")
    folders = [folders] if isinstance(folders, str) else list(folders or [])
    weights = list(ds.get("dataset_weights") or [1.0] * len(folders))
    if not folders:
        raise NoBatch(f"data stage {stage.get('name')!r} names no dataset_folder")
    width = seq + 1
    files, w = [], []
    for folder, weight in zip(folders, weights):
        if not Path(folder).is_dir():
            raise NoBatch(f"{folder} (data stage {stage.get('name')!r}) is not on disk")
        found = _windows(folder, width)
        if found and weight > 0:
            files.append((folder, found))
            w.append(float(weight))
    if not files:
        raise NoBatch(f"no file of data stage {stage.get('name')!r} holds {width} tokens")
    rng = np.random.default_rng(seed)
    p = np.asarray(w) / sum(w)
    total = sum(k for _, found in files for *_, k in found)
    n = min(n, total)
    picked, rows, where = set(), [], []
    while len(rows) < n:
        f = int(rng.choice(len(files), p=p))
        folder, found = files[f]
        k = int(rng.integers(sum(c for *_, c in found)))
        if (f, k) in picked:
            if len(picked) >= total:
                break
            continue
        picked.add((f, k))
        for ds, size, count in found:
            if k < count:
                break
            k -= count
        toks = np.fromfile(ds, dtype=np.uint16 if size == 2 else np.uint32, count=width,
                           offset=k * width * size)
        rows.append(toks.astype(np.int64))
        where.append([str(ds), k * width])
    return np.stack(rows), {"source": "data", "stage": stage.get("name"), "folders": folders,
                            "weights": weights, "sequences": len(rows), "tokens": width,
                            "seed": seed, "windows": where}


# ---------------------------------------------------------------- the converted model's side


def sequence_losses(model, batch) -> list[float]:
    """Mean next-token cross-entropy of each row of ``batch`` ``[n, seq + 1]`` (a transformers
    causal LM in float32, its lm_head applied ``CHUNK`` positions at a time)."""
    import torch
    import torch.nn.functional as F

    dev, out = next(model.parameters()).device, []
    vocab = model.get_output_embeddings().weight.shape[0]
    if int(batch.max()) >= vocab:
        raise NoBatch(f"token id {int(batch.max())} >= the model's vocabulary ({vocab}): the "
                      "data was not tokenized for this model")
    with torch.no_grad():
        for row in batch:
            ids = torch.as_tensor(row[None, :-1], device=dev)
            labels = torch.as_tensor(row[1:], device=dev)
            hidden = model.get_decoder()(input_ids=ids, use_cache=False).last_hidden_state[0]
            total = 0.0
            for a in range(0, hidden.shape[0], CHUNK):
                logits = model.get_output_embeddings()(hidden[a:a + CHUNK]).float()
                total += F.cross_entropy(logits, labels[a:a + CHUNK], reduction="sum").item()
            out.append(total / hidden.shape[0])
    return out


def model_logits(model, ids):
    """float32 logits (numpy ``[batch, seq, vocab]``) of the converted model on ``ids``."""
    import torch

    dev = next(model.parameters()).device
    with torch.no_grad():
        return model(torch.as_tensor(ids, device=dev), use_cache=False).logits.float().cpu().numpy()


def loss_record(losses: list[float]) -> dict:
    n = len(losses)
    mean = sum(losses) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in losses) / (n - 1)) if n > 1 else 0.0
    return {"loss": mean, "loss_se": sd / math.sqrt(n), "loss_per_sequence": losses}


# ---------------------------------------------------------------- nanotron's side (a)


def compare_logits(ref, got) -> dict:
    """Differences of ``got`` (the converted model's logits) from ``ref`` (nanotron's), over the
    vocabulary both have (nanotron's may be padded)."""
    import numpy as np

    v = min(ref.shape[-1], got.shape[-1])
    ref, got = ref[..., :v].astype(np.float32), got[..., :v].astype(np.float32)
    diff = np.abs(ref - got)
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "argmax_agreement": float((ref.argmax(-1) == got.argmax(-1)).mean()),
            "max_abs_logit": float(np.abs(ref).max()), "positions": int(np.prod(ref.shape[:-1]))}


def logits_problem(cmp: dict, s: dict | None = None) -> str | None:
    """Why the logits differ beyond the tolerance (the job fails), or None."""
    s = s or settings()
    allowed = s["logits_atol"] + s["logits_rtol"] * cmp["max_abs_logit"]
    why = []
    if not cmp["max_abs_diff"] <= allowed:
        why.append(f"max |logit difference| {cmp['max_abs_diff']:.4g} > {allowed:.4g} "
                   f"({s['logits_atol']} + {s['logits_rtol']} x max |logit| "
                   f"{cmp['max_abs_logit']:.4g})")
    if not cmp["argmax_agreement"] >= s["argmax_min"]:
        why.append(f"argmax agrees at {cmp['argmax_agreement']:.1%} of {cmp['positions']} "
                   f"positions (< {s['argmax_min']:.0%})")
    return "; ".join(why) or None


def nanotron_logits(python: str, checkout: str, step_dir, ids, timeout: float = TIMEOUT_S):
    """(logits or None, facts): ``<python> -m zflow.nanotron_parity`` on ``ids``. None with
    ``facts["unavailable"]`` where nanotron cannot run there; ParityError where it runs and fails.
    """
    import numpy as np

    from zflow.nanotron import SCRIPTS
    from zflow.nanotron_parity import ANSWER

    paths_ = [str(SCRIPTS), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths_))
    with tempfile.TemporaryDirectory(prefix="zflow-parity-") as tmp:
        np.save(Path(tmp) / "ids.npy", np.asarray(ids, dtype=np.int64))
        out = Path(tmp) / "logits.npy"
        cmd = [python, "-m", "zflow.nanotron_parity", "--checkpoint", str(step_dir),
               "--checkout", str(checkout), "--ids", str(Path(tmp) / "ids.npy"),
               "--out", str(out)]
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ParityError(f"{python} -m zflow.nanotron_parity gave no answer in "
                              f"{timeout:.0f} s") from None
        except OSError as e:
            return None, {"unavailable": f"{python} cannot be run ({e})"}
        answer = None
        for line in reversed(p.stdout.splitlines()):
            if line.startswith(ANSWER):
                answer = json.loads(line[len(ANSWER):])
                break
        if answer is None:
            tail = " | ".join((p.stderr.strip().splitlines() or ["no output"])[-3:])
            raise ParityError(f"{python} -m zflow.nanotron_parity exited with {p.returncode} "
                              f"before answering ({tail})")
        if "unavailable" in answer:
            return None, answer
        if "error" in answer:
            tail = " | ".join(p.stderr.strip().splitlines()[-3:])
            raise ParityError(f"nanotron ({python}) could not load step {step_dir} or run it: "
                              f"{answer['error']} ({tail})")
        return np.load(out), answer.get("facts", {})


# ---------------------------------------------------------------- the job's check


def check(spec: dict, step_dir, step: int, model, log=print) -> dict:
    """The ``parity`` record of a converted model (float32, on its device); ParityError when (a)
    finds it differs from nanotron beyond the tolerance. ``spec``: the convert job's
    (``nanotron_python``, ``nanotron_checkout``, optional ``parity`` overrides)."""
    import numpy as np

    from zflow.nanotron import interpreter_problem

    s = settings(spec)
    rec: dict = {"settings": s}
    cfg = step_config(step_dir)
    try:
        batch, rec["batch"] = fixed_batch(cfg, step, s["loss_sequences"], s["seed"])
        rec.update(loss_record(sequence_losses(model, batch)))
        log(f"parity: loss {rec['loss']:.4f} (standard error {rec['loss_se']:.4f}) on "
            f"{rec['batch']['sequences']} x {rec['batch']['tokens']} tokens of data stage "
            f"{rec['batch']['stage']!r} (seed {s['seed']})")
    except NoBatch as e:
        rec.update(loss=None, loss_reason=str(e))
        log(f"parity: no loss recorded: {e}")
        vocab = model.get_output_embeddings().weight.shape[0]
        batch = np.random.default_rng(s["seed"]).integers(
            0, vocab, (s["parity_sequences"], s["parity_tokens"] + 1))
        rec["batch"] = {"source": "random", "seed": s["seed"], "reason": str(e)}
    ids = batch[:s["parity_sequences"], :-1][:, :s["parity_tokens"]]  # inputs, not labels
    python = spec.get("nanotron_python")
    key = spec.get("nanotron_key") or "pretrain.nanotron.python"
    nano = {"status": "not run"}
    bad = f"{key} is not set" if not python else interpreter_problem(python, key)
    if bad:
        nano["reason"] = bad
    else:
        ref, facts = nanotron_logits(os.path.abspath(python), spec.get("nanotron_checkout") or "",
                                     step_dir, ids, s["timeout_s"])
        if ref is None:
            nano["reason"] = facts["unavailable"]
        else:
            cmp = compare_logits(ref, model_logits(model, ids))
            why = logits_problem(cmp, s)
            nano = {"status": "failed" if why else "passed", **cmp, "facts": facts,
                    "ids": list(ids.shape)}
            if why:
                raise ParityError(
                    f"step {step}: the converted model's logits differ from nanotron's on "
                    f"{ids.shape[0]} x {ids.shape[1]} tokens of the run's data: {why} "
                    f"(mean |difference| {cmp['mean_abs_diff']:.4g}; nanotron: "
                    f"{facts.get('nanotron')}). The conversion (zflow.nanotron.read_checkpoint "
                    "/ hf_config) does not match this nanotron's format; no model written")
    if nano["status"] == "not run":
        log(f"parity: nanotron's logits not compared: {nano['reason']}")
    else:
        log(f"parity: nanotron's logits compared on {ids.shape[0]} x {ids.shape[1]} tokens: "
            f"max |difference| {nano['max_abs_diff']:.4g}, argmax agreement "
            f"{nano['argmax_agreement']:.1%} ({nano['facts'].get('nanotron')})")
    rec["nanotron"] = nano
    return rec


# ---------------------------------------------------------------- the report's flag (b)


def reference_loss(rows, step: int, window: int = WINDOW) -> dict | None:
    """The median of the ``window`` logged training losses nearest ``step`` (zflow.metrics rows
    of train_metrics.csv), with the steps they span; None when none was logged."""
    from zflow import metrics

    pts = sorted(metrics.series(rows, "loss"), key=lambda p: (abs(p[0] - step), p[0]))[:window]
    pts = [(s, v) for s, v in pts if math.isfinite(v)]
    if not pts:
        return None
    vals = sorted(v for _, v in pts)
    mid = len(vals) // 2
    median = vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2
    return {"loss": median, "from_step": min(s for s, _ in pts),
            "to_step": max(s for s, _ in pts), "n": len(pts)}


def loss_margin(train_loss: float, loss_se: float, s: dict | None = None) -> float:
    s = s or settings()
    return s["loss_rel_margin"] * abs(train_loss) + s["loss_se_factor"] * (loss_se or 0.0)


def loss_flag(record: dict | None, rows, step: int) -> dict | None:
    """The departure of a converted model's loss (its marker's ``parity``) from the run's
    training loss at ``step``, when above ``loss_margin``; None when within it or unchecked.
    The report's margins are this module's (a job's ``parity`` overrides size its batch only)."""
    if not record or record.get("loss") is None or step is None:
        return None
    ref = reference_loss(rows, step)
    if ref is None:
        return None
    margin = loss_margin(ref["loss"], record.get("loss_se") or 0.0)
    excess = record["loss"] - ref["loss"]
    if excess <= margin:
        return None
    return {"step": step, "loss": record["loss"], "train_loss": ref["loss"], "margin": margin,
            "excess": excess, "from_step": ref["from_step"], "to_step": ref["to_step"],
            "n": ref["n"]}


def read_record(model_dir) -> dict | None:
    """The ``parity`` record of a converted model's marker (None: none, or no marker)."""
    from zflow import paths

    try:
        return json.loads(Path(paths.marker(str(model_dir))).read_text()).get("parity")
    except (OSError, ValueError, AttributeError):
        return None


def flag_note(label: str, f: dict) -> str:
    return (f"⚠ {label}: the converted model's loss on its fixed batch is {f['loss']:.3f}, "
            f"{f['excess']:.3f} above the run's training loss {f['train_loss']:.3f} (median of "
            f"the {f['n']} logged steps {f['from_step']}-{f['to_step']}; margin "
            f"{f['margin']:.3f} = {LOSS_REL_MARGIN:.0%} + {LOSS_SE_FACTOR:g} standard errors): "
            "the conversion may not match this nanotron's checkpoint format (zflow.parity).")
