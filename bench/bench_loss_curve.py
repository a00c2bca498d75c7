"""Loss curve of the hf backend's defaults against eager transformers, same initialisation and data.

Runs pretrain.py (its main(), one process per run) twice on the same synthetic datatrove folder
with the same seed: once with the config's `pretrain.hf` defaults (on a GPU: bf16, fused AdamW,
Liger kernels, sdpa) and once with the eager row of bench_pretrain.py (bf16, fused AdamW, sdpa,
no Liger, no compile). The seed fixes the initial weights (Liger patches the modules after they
are initialised) and the data order. The data are a fixed random bigram chain (each token is
followed by one of 4 tokens), so the loss falls from ln(vocab) towards ln 4 and the curves mean
something. Prints and writes (`--json PATH`) both curves and their largest absolute and relative
difference.

On the GPU (default): the seed's 0.4B architecture (32 layers, hidden 960, vocab 128256) at seq
1024, micro batch 4, 200 steps, learning rate 1e-3 (warm-up 20, linear decay): about a minute
per run on one H100. `--cpu-dry`: a tiny model on the CPU, seq 64, 30 steps, learning rate 1e-2
(checks the benchmark; on a CPU both runs have the same features, so the curves are equal).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_pretrain import (ROWS, SEED_MODEL, TINY_MODEL, run_pretrain,  # noqa: E402
                            synthetic_folder, tiny_tokenizer)


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, help="default 200 (--cpu-dry: 30)")
    p.add_argument("--seq", type=int, help="default 1024 (--cpu-dry: 64)")
    p.add_argument("--micro-batch", type=int, default=4)
    p.add_argument("--layers", type=int, help="decoder layers (default: the model's)")
    p.add_argument("--learning-rate", type=float, help="default 1e-3 (--cpu-dry: 1e-2)")
    p.add_argument("--cpu-dry", action="store_true", help="a tiny model on the CPU, 30 steps")
    p.add_argument("--json", type=Path)
    p.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 8))
    args = p.parse_args(argv)
    args.steps = args.steps or (30 if args.cpu_dry else 200)
    args.seq = args.seq or (64 if args.cpu_dry else 1024)
    args.learning_rate = args.learning_rate or (1e-2 if args.cpu_dry else 1e-3)
    return args


def curves(runs: dict) -> dict:
    """Both loss curves on the steps they share, and their largest differences."""
    loss = {n: {int(r["step"]): float(r["loss"]) for r in rows} for n, rows in runs.items()}
    steps = sorted(set(loss["defaults"]) & set(loss["eager"]))
    a, b = [loss["defaults"][s] for s in steps], [loss["eager"][s] for s in steps]
    diff = [abs(x - y) for x, y in zip(a, b)]
    return {"steps": steps, "loss_default": a, "loss_eager": b,
            "max_abs_diff": max(diff), "max_rel_diff": max(d / abs(y) for d, y in zip(diff, b)),
            "final_loss_default": a[-1], "final_loss_eager": b[-1]}


def main(argv=None):
    args = parse(argv)
    import torch

    if not args.cpu_dry and not torch.cuda.is_available():
        raise SystemExit("no CUDA: the 0.4B loss curve needs a GPU (--cpu-dry checks it)")
    model = dict(TINY_MODEL if args.cpu_dry else SEED_MODEL)
    model["num_hidden_layers"] = args.layers or model["num_hidden_layers"]
    model["max_position_embeddings"] = max(model["max_position_embeddings"], args.seq)
    pre = {"sequence_length": args.seq, "micro_batch_size": args.micro_batch,
           "train_steps": args.steps, "checkpoint_interval": 10 ** 9,
           "learning_rate": args.learning_rate, "lr_warmup_steps": max(1, args.steps // 10)}
    runs, summaries = {}, {}
    with tempfile.TemporaryDirectory(prefix="zflow-loss-") as tmp:
        tmp = Path(tmp)
        tokenizer = tiny_tokenizer(tmp / "tokenizer")
        synthetic_folder(tmp / "data", (args.steps + 1) * args.micro_batch * (args.seq + 1) + 1,
                         model["vocab_size"], successors=4)
        for name in ("defaults", "eager"):
            runs[name], summaries[name] = run_pretrain(tmp / name, model, pre, ROWS[name],
                                                       tmp / "data", tokenizer, args.threads)
    out = {**curves(runs), "model": model, "pretrain": pre,
           "ln_vocab": math.log(model["vocab_size"]),
           "data": "synthetic bigram chain, 4 successors per token",
           "device": summaries["defaults"]["device"], "dtype": summaries["defaults"]["dtype"],
           "features_default": summaries["defaults"]["features"],
           "features_eager": summaries["eager"]["features"],
           "command": "python bench/bench_loss_curve.py" + (" --cpu-dry" if args.cpu_dry else "")}
    print(f"{len(out['steps'])} steps on {out['device']} ({out['dtype']}): loss "
          f"{out['loss_default'][0]:.4f} -> {out['final_loss_default']:.4f} (defaults), "
          f"{out['loss_eager'][0]:.4f} -> {out['final_loss_eager']:.4f} (eager); largest "
          f"difference {out['max_abs_diff']:.4g} ({out['max_rel_diff']:.3%})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
