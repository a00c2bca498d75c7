"""Pretraining step throughput of the hf backend's own training code (workflow/scripts/pretrain.py).

Runs pretrain.py (its main(), in a process of its own per row: Liger patches transformers'
modules process-wide, and peak memory is per process) on a synthetic datatrove folder (random
token ids) for the seed's 0.4B architecture by default (hidden 960, 32 layers, 15/5 heads, FFN
2560, vocab 128256, tied), seq 4096, micro batch 4, and reports tokens/s (median after warm-up),
model TFLOPs/GPU, MFU against --peak-tflops (H100/H200 SXM bf16 dense: 989) and peak GPU memory.

Rows: `defaults` (the config's `pretrain.hf` defaults: on a GPU bf16, fused AdamW, Liger, sdpa,
no compile) and `--eager` (the "eager transformers" row of issue 15: bf16, fused AdamW, sdpa,
no Liger, no compile). `--compare` runs both. `--cpu-dry` (alias `--tiny`) runs a tiny model on
the CPU (checks the benchmark itself). `--json PATH` writes the results (and leaves
docs/performance.md alone); otherwise the table goes into docs/performance.md unless --no-doc.

Model TFLOPs, two ways (per token, times tokens/s):
  6N + attention: 6 x (matmul parameters, lm head once) + 12·L·h·s (QK^T and AV, forward and
    backward, no causal discount), as issue 15's table;
  nanotron: src/nanotron/models/llama.py get_flops (the same at the seed's commit d22eb809 and
    at nanotron's HEAD): 3 x forward matmul FLOPs of q/k/v/o, QK^T, AV, gate/up/down and the lm
    head. For a Llama these count the same terms, so the two agree; both are printed so that a
    nanotron log's "model TFLOPs" compare directly.
One command on the GPU machine: `python bench/bench_pretrain.py --compare`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(REPO / "bench"))
PRETRAIN = REPO / "workflow" / "scripts" / "pretrain.py"

from zflow import metrics  # noqa: E402

SEED_MODEL = {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32,
              "num_attention_heads": 15, "num_key_value_heads": 5, "vocab_size": 128256,
              "tie_word_embeddings": True, "rope_theta": 10000.0, "max_position_embeddings": 4096,
              "init_std": 0.03227}
TINY_MODEL = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 4096,
              "max_position_embeddings": 256}
# pretrain.hf of the "eager transformers" row: every hf speed feature off, PyTorch's sdpa
# attention (transformers' own default); bf16 and fused AdamW stay (pretrain.dtype, CUDA)
EAGER = {"liger": "off", "compile": "off", "attention": "sdpa"}
ROWS = {"defaults": {}, "eager": EAGER}


def synthetic_folder(path: Path, tokens: int, vocab: int, successors: int | None = None) -> None:
    """A datatrove tokenized folder of ``tokens`` token ids: uniform random, or (``successors``)
    a fixed random bigram chain (each token followed by one of ``successors`` tokens, over at
    most 8192 ids), which a model can learn: a loss curve that goes down."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    if successors:
        used = min(vocab, 8192)
        table = rng.integers(0, used, (used, successors), dtype=np.uint32)
        pick = rng.integers(0, successors, tokens)
        ids = np.empty(tokens, dtype=np.uint32)
        cur = 0
        for i in range(tokens):
            cur = ids[i] = table[cur, pick[i]]
    else:
        ids = rng.integers(0, vocab, tokens, dtype=np.uint32)
    ids.tofile(path / "000_00000.ds")
    np.arange(4096, tokens + 1, 4096, dtype=np.uint64).tofile(path / "000_00000.ds.index")
    (path / "000_00000.ds.metadata").write_text(f"synthetic|4\n{tokens}\n{tokens}\n")


def tiny_tokenizer(path: Path) -> str:
    """A tokenizer with the special tokens a run needs (the data are token ids already)."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3}
    fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, "<unk>")),
                                   unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")
    fast.save_pretrained(path)
    return str(path)


def flops_per_token(m: dict, seq: int) -> float:
    """6N + attention (12·L·h·s)."""
    h, L, ff, v = m["hidden_size"], m["num_hidden_layers"], m["intermediate_size"], m["vocab_size"]
    kv = h // m["num_attention_heads"] * m["num_key_value_heads"]
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * ff  # q, o, k, v, gate, up, down
    n = L * per_layer + v * h  # lm head (tied: counted once, as the matmul is done)
    return 6 * n + 12 * L * h * seq


def nanotron_flops_per_token(m: dict, seq: int) -> float:
    """nanotron's get_flops (src/nanotron/models/llama.py) for batch 1, divided by ``seq``."""
    L, h, heads = m["num_hidden_layers"], m["hidden_size"], m["num_attention_heads"]
    kv, v, ff, s = m["num_key_value_heads"], m["vocab_size"], m["intermediate_size"], seq
    d = h // heads
    fwd = (2 * L * s * h * heads * d + 2 * L * s * h * 2 * kv * d  # q, k, v projections
           + 2 * L * heads * s * d * s  # QK^T
           + 2 * L * heads * s * s * d  # AV
           + 2 * L * heads * s * d * h  # attention output
           + 4 * L * s * h * ff + 2 * L * s * ff * h  # gate + up, down
           + 2 * s * h * v)  # lm head
    return 3 * fwd / s


def run_pretrain(tmp: Path, model: dict, pre: dict, hf: dict, data: Path, tokenizer: str,
                 threads: int) -> tuple[list[dict], dict]:
    """pretrain.py on one spec in a process of its own; its metrics rows and summary."""
    from zflow.plan import pretrain_spec

    tmp.mkdir(parents=True)
    spec = pretrain_spec(model, {**pre, "hf": hf},
                         [{"source": "synthetic", "folder": str(data), "weight": 1.0}],
                         tokenizer, str(tmp / "run"))
    spec.update(metrics=str(tmp / "m.csv"), summary=str(tmp / "s.json"))
    (tmp / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    out = subprocess.run([sys.executable, str(PRETRAIN), "--spec", str(tmp / "spec.json"),
                          "--threads", str(threads)], env=env, capture_output=True, text=True)
    log = out.stdout + out.stderr
    (tmp / "log.txt").write_text(log)
    if out.returncode:
        raise SystemExit(f"pretrain.py failed ({out.returncode}):\n{log[-4000:]}")
    print("\n".join(x for x in log.splitlines() if x.startswith("feature ")), flush=True)
    return metrics.read(tmp / "m.csv"), json.loads((tmp / "s.json").read_text())


def measure(tmp: Path, name: str, args, model: dict, seq: int, tokenizer: str) -> dict:
    pre = {"sequence_length": seq, "micro_batch_size": args.micro_batch,
           "train_steps": args.steps, "checkpoint_interval": 10 ** 9, "learning_rate": 3e-4,
           "lr_warmup_steps": 5}
    rows, summary = run_pretrain(tmp / name, model, pre, ROWS[name], tmp / "data", tokenizer,
                                 args.threads)
    tps = statistics.median(float(r["tokens_per_sec"]) for r in rows[len(rows) // 4:])
    tflops = tps * flops_per_token(model, seq) / 1e12
    return {"name": name, "model": "tiny (CPU check)" if args.cpu_dry else "seed 0.4B",
            "device": summary["device"], "dtype": summary["dtype"], "seq": seq,
            "micro_batch": args.micro_batch, "steps": args.steps, "tokens_per_s": round(tps, 1),
            "tflops_6n_attn": round(tflops, 4),
            "tflops_nanotron": round(tps * nanotron_flops_per_token(model, seq) / 1e12, 4),
            "mfu": round(tflops / args.peak_tflops, 5), "peak_memory_gb": summary["peak_memory_gb"],
            "features": summary["features"]}


def table(rows: list[dict]) -> str:
    head = ("| row | model | device | dtype | seq | micro batch | tokens/s | model TFLOPs/GPU "
            "(6N+attn) | (nanotron) | MFU | peak memory GB |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    return "\n".join([head] + [
        f"| {r['name']} | {r['model']} | {r['device']} | {r['dtype']} | {r['seq']} | "
        f"{r['micro_batch']} | {r['tokens_per_s']:,.0f} | {r['tflops_6n_attn']:.1f} | "
        f"{r['tflops_nanotron']:.1f} | {r['mfu']:.1%} | "
        f"{r['peak_memory_gb'] if r['peak_memory_gb'] is not None else '—'} |" for r in rows])


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, help="training steps per row (default 30; --cpu-dry: 12)")
    p.add_argument("--seq", type=int, default=4096)
    p.add_argument("--micro-batch", type=int, default=4)
    p.add_argument("--peak-tflops", type=float, default=989.0)
    p.add_argument("--cpu-dry", "--tiny", dest="cpu_dry", action="store_true",
                   help="a tiny model on the CPU, seq 128 (checks the benchmark)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--eager", action="store_true", help="the eager-transformers row only")
    mode.add_argument("--compare", action="store_true", help="defaults and eager, both rows")
    p.add_argument("--json", type=Path, help="write the results here (docs left alone)")
    p.add_argument("--tokenizer", help="a tokenizer directory (default: a tiny one, built)")
    p.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 8))
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args(argv)
    args.steps = args.steps or (12 if args.cpu_dry else 30)
    return args


def main(argv=None):
    args = parse(argv)
    import torch

    if not args.cpu_dry and not torch.cuda.is_available():
        raise SystemExit("no CUDA: the 0.4B benchmark needs a GPU (--cpu-dry checks it on a CPU)")
    model = dict(TINY_MODEL if args.cpu_dry else SEED_MODEL)
    seq = 128 if args.cpu_dry else args.seq
    model["max_position_embeddings"] = max(model["max_position_embeddings"], seq)
    names = ["defaults", "eager"] if args.compare else ["eager" if args.eager else "defaults"]
    with tempfile.TemporaryDirectory(prefix="zflow-bench-") as tmp:
        tmp = Path(tmp)
        tokenizer = args.tokenizer or tiny_tokenizer(tmp / "tokenizer")
        synthetic_folder(tmp / "data", (args.steps + 1) * args.micro_batch * (seq + 1) + 1,
                         model["vocab_size"])
        rows = [measure(tmp, n, args, model, seq, tokenizer) for n in names]
    text = table(rows)
    print(text)
    command = "python bench/bench_pretrain.py" + "".join(
        f" {o}" for o, on in (("--cpu-dry", args.cpu_dry), ("--eager", args.eager),
                              ("--compare", args.compare)) if on)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {"command": command, "peak_tflops": args.peak_tflops, "rows": rows}
        args.json.write_text(json.dumps(out if args.compare else {**out, **rows[0]}, indent=1))
    elif not args.no_doc:
        from bench_common import update_doc

        update_doc("pretrain-tiny" if args.cpu_dry else "pretrain",
                   f"`{command}` ({args.steps} steps, median after warm-up, MFU of "
                   f"{args.peak_tflops} TFLOP/s):\n\n{text}")


if __name__ == "__main__":
    main()
