"""Inside the nanotron environment: a checkpoint step's logits, computed by nanotron itself (tp=1).

    <pretrain.nanotron.python> -m zflow.nanotron_parity --checkpoint STEP_DIR --checkout DIR \\
        --ids IDS.npy --out LOGITS.npy

The convert_checkpoint job runs this (zflow.parity.nanotron_logits, workflow/scripts on
PYTHONPATH, as the pretrain_nanotron pre-flight runs ``zflow.nanotron``) and compares the logits
with those of the model it converted. It answers one line, ``ANSWER`` + JSON:

- ``{"unavailable": why}``: no nanotron to ask here (torch, CUDA, nanotron or flash-attn missing:
  e.g. a CPU conversion node). The job records the check as not run and says why;
- ``{"error": why}``: nanotron is here but could not load the step or run it (an API or format
  change at a new pin, a shape it does not know): the job fails, saying so;
- ``{"logits": path, "shape": [batch, seq, vocab], "facts": {...}}``: float32 logits of the
  ``[batch, seq]`` token ids of IDS.npy, in LOGITS.npy.

Real nanotron (the pin, zflow.nanotron.NANOTRON_COMMIT): a one-process group (tp = dp = pp = 1,
nccl: one GPU), ``LlamaForTraining`` built in the dtype of the step's config.yaml
(``model.dtype``), its weights read with ``nanotron.serialize.load_weights`` from the step folder
(nanotron's own reader of its own format), ``model.model(input_ids, input_mask)``: fp32 logits in
``[seq, batch, vocab]``, as nanotron's examples/llama/convert_weights.py and its conversion test
do. This path was written against the pin's source and NOT run here (no GPU, no flash-attn on the
machine it was written on).

zflow's stand-in checkout (``ZFLOW_STANDIN``, tools/smoke/nanotron) is asked instead through its
``run_train.parity_logits``: the plumbing runs end to end on CPU, but the stand-in is NOT nanotron
(it reads the step with zflow's own reader), so there it checks the job, not the converter.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

ANSWER = "zflow-nanotron-parity: "
STANDIN_MARKER = "ZFLOW_STANDIN"  # = zflow.nanotron.STANDIN_MARKER (kept import-free here)


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"


def _answer(obj: dict) -> None:
    print(ANSWER + json.dumps(obj), flush=True)


def _step_config(step_dir: Path) -> dict:
    import yaml

    return yaml.safe_load((step_dir / "config.yaml").read_text()) or {}


def _model_config(step_dir: Path) -> dict:
    """model_config.json as nanotron wrote it, else the same from config.yaml."""
    try:
        return json.loads((step_dir / "model_config.json").read_text())
    except (OSError, ValueError):
        from zflow.nanotron import derived_model_config

        return derived_model_config(_step_config(step_dir))


def standin_logits(checkout: Path, step_dir: Path, ids):
    """The stand-in's ``parity_logits`` (tools/smoke/nanotron/run_train.py), imported by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("zflow_standin_run_train",
                                                  checkout / "run_train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.parity_logits(step_dir, ids), {"nanotron": "zflow stand-in (NOT nanotron)"}


def _unavailable_here() -> str | None:
    """Why nanotron cannot be asked in this interpreter, or None."""
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        return f"torch is not importable ({_first_line(e)})"
    if not torch.cuda.is_available():
        return "no CUDA device here (nanotron's ParallelContext needs one GPU and nccl)"
    for name in ("nanotron", "flash_attn"):
        try:
            __import__(name)
        except Exception as e:  # noqa: BLE001
            return f"{name} is not importable ({_first_line(e)})"
    return None


def nanotron_logits(step_dir: Path, ids):
    """The step loaded by nanotron (tp=1, one GPU) and its fp32 logits ``[batch, seq, vocab]``."""
    import dataclasses
    import socket

    import torch
    import nanotron
    from nanotron.config import LlamaConfig, ParallelismArgs
    from nanotron.models import build_model
    from nanotron.models.llama import LlamaForTraining
    from nanotron.parallel import ParallelContext
    from nanotron.serialize import load_weights
    from nanotron.trainer import mark_tied_parameters

    if "MASTER_PORT" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    for k, v in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
                 "MASTER_ADDR": "127.0.0.1", "CUDA_DEVICE_MAX_CONNECTIONS": "1"}.items():
        os.environ[k] = v
    mc = _model_config(step_dir)
    known = {f.name for f in dataclasses.fields(LlamaConfig)}
    dropped = sorted(set(mc) - known)
    config = LlamaConfig(**{k: v for k, v in mc.items() if k in known})
    dtype = getattr(torch, str((_step_config(step_dir).get("model") or {}).get("dtype")
                               or "bfloat16"))
    parallel_config = ParallelismArgs(dp=1, pp=1, tp=1)
    try:
        ctx = ParallelContext(data_parallel_size=1, pipeline_parallel_size=1,
                              tensor_parallel_size=1)
        model = build_model(
            model_builder=lambda: LlamaForTraining(config=config, parallel_context=ctx,
                                                   parallel_config=parallel_config,
                                                   random_states=None),
            parallel_context=ctx, dtype=dtype, device=torch.device("cuda"))
        mark_tied_parameters(model=model, parallel_context=ctx)
        load_weights(model=model, parallel_context=ctx, root_folder=step_dir)
        model.eval()
        x = torch.as_tensor(ids, dtype=torch.long, device="cuda")
        with torch.no_grad():
            out = model.model(input_ids=x, input_mask=torch.ones_like(x, dtype=torch.bool))
        out = out[0] if isinstance(out, (tuple, list)) else out
        b, t = x.shape
        if out.dim() == 3 and tuple(out.shape[:2]) == (t, b):  # nanotron: [seq, batch, vocab]
            out = out.permute(1, 0, 2)
        elif not (out.dim() == 3 and tuple(out.shape[:2]) == (b, t)):
            raise ValueError(f"nanotron's logits have shape {tuple(out.shape)} for input ids "
                             f"[{b}, {t}]: a layout this check does not know (a new pin?)")
        logits = out.float().cpu()
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    return logits, {"nanotron": getattr(nanotron, "__version__", "?"), "torch": torch.__version__,
                    "dtype": str(dtype).removeprefix("torch."),
                    "device": torch.cuda.get_device_name(0), "dropped_config_keys": dropped}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--checkout", required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    step_dir, checkout = Path(a.checkpoint), Path(a.checkout)
    standin = (checkout / STANDIN_MARKER).is_file()
    if not standin:
        why = _unavailable_here()
        if why:
            _answer({"unavailable": why})
            return 0
    try:
        import numpy as np

        ids = np.load(a.ids)
        logits, facts = (standin_logits(checkout, step_dir, ids) if standin
                         else nanotron_logits(step_dir, ids))
        np.save(a.out, logits.numpy().astype("float32"))
    except Exception as e:  # noqa: BLE001 - the job fails with this line
        traceback.print_exc()
        _answer({"error": _first_line(e)})
        return 0
    facts["executable"] = sys.executable
    _answer({"logits": a.out, "shape": list(logits.shape), "facts": facts})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
