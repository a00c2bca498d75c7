"""Pretraining step throughput of the hf backend's own training code (workflow/scripts/pretrain.py).

Runs pretrain.main() on a synthetic datatrove folder (random token ids) for the seed's 0.4B
architecture by default (hidden 960, 32 layers, 15/5 heads, FFN 2560, vocab 128256, tied), seq
4096, micro batch 4, and reports tokens/s (median after warm-up), model TFLOPs/GPU with
6N + attention (12·L·h·s per token), MFU against --peak-tflops (H100 SXM bf16 dense: 989), and
peak GPU memory. `--tiny` runs a small model on the CPU (checks the benchmark itself).
One command on the GPU machine: `python bench/bench_pretrain.py`.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(REPO / "bench"))

SEED_MODEL = {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32,
              "num_attention_heads": 15, "num_key_value_heads": 5, "vocab_size": 128256,
              "tie_word_embeddings": True, "rope_theta": 10000.0, "max_position_embeddings": 4096,
              "init_std": 0.03227}
TINY_MODEL = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 4096,
              "max_position_embeddings": 256}


def synthetic_folder(path: Path, tokens: int, vocab: int) -> None:
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rng.integers(0, vocab, tokens, dtype=np.uint32).tofile(path / "000_00000.ds")
    np.arange(4096, tokens + 1, 4096, dtype=np.uint64).tofile(path / "000_00000.ds.index")
    (path / "000_00000.ds.metadata").write_text(f"synthetic|4\n{tokens}\n{tokens}\n")


def flops_per_token(m: dict, seq: int) -> float:
    h, L, ff, v = m["hidden_size"], m["num_hidden_layers"], m["intermediate_size"], m["vocab_size"]
    kv = h // m["num_attention_heads"] * m["num_key_value_heads"]
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * ff  # q, o, k, v, gate, up, down
    n = L * per_layer + v * h  # lm head (tied: counted once, as the matmul is done)
    return 6 * n + 12 * L * h * seq


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--seq", type=int, default=4096)
    p.add_argument("--micro-batch", type=int, default=4)
    p.add_argument("--peak-tflops", type=float, default=989.0)
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--tokenizer", default=str(REPO / "results/tokenizers/bpe_ita_eng_4k"))
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args(argv)
    from pretrain import main as pretrain
    from zflow.plan import pretrain_spec

    model = dict(TINY_MODEL if args.tiny else SEED_MODEL)
    seq = 128 if args.tiny else args.seq
    model["max_position_embeddings"] = max(model["max_position_embeddings"], seq)
    with tempfile.TemporaryDirectory(prefix="zflow-bench-") as tmp:
        tmp = Path(tmp)
        need = (args.steps + 1) * args.micro_batch * (seq + 1) + 1
        synthetic_folder(tmp / "data", need, model["vocab_size"])
        spec = pretrain_spec(
            model, {"sequence_length": seq, "micro_batch_size": args.micro_batch,
                    "train_steps": args.steps, "checkpoint_interval": 10 ** 9,
                    "learning_rate": 3e-3, "lr_warmup_steps": 5},
            [{"source": "synthetic", "folder": str(tmp / "data"), "weight": 1.0}],
            args.tokenizer, str(tmp / "run"))
        spec.update(metrics=str(tmp / "m.csv"), summary=str(tmp / "s.json"))
        (tmp / "spec.json").write_text(json.dumps(spec))
        pretrain(["--spec", str(tmp / "spec.json"), "--threads", "2"])
        with open(tmp / "m.csv") as f:
            rows = list(csv.DictReader(f))
        summary = json.loads((tmp / "s.json").read_text())
    tps = statistics.median(float(r["tokens_per_sec"]) for r in rows[len(rows) // 4:])
    tflops = tps * flops_per_token(model, seq) / 1e12
    mfu = tflops / args.peak_tflops
    mem = summary.get("peak_memory_gb")
    line = (f"| {'tiny (CPU check)' if args.tiny else 'seed 0.4B'} | {summary['device']} | "
            f"{summary['dtype']} | {seq} | {args.micro_batch} | {tps:,.0f} | {tflops:.1f} | "
            f"{mfu:.1%} | {mem if mem is not None else '—'} |")
    table = ("| model | device | dtype | seq | micro batch | tokens/s | model TFLOPs/GPU (6N+attn) "
             "| MFU | peak memory GB |\n|---|---|---|---|---|---|---|---|---|\n" + line)
    print(table)
    if not args.no_doc:
        from bench_common import update_doc

        update_doc("pretrain-tiny" if args.tiny else "pretrain",
                   f"`python bench/bench_pretrain.py{' --tiny' if args.tiny else ''}` "
                   f"({args.steps} steps, median after warm-up, MFU of {args.peak_tflops} "
                   f"TFLOP/s):\n\n{table}")


if __name__ == "__main__":
    main()
