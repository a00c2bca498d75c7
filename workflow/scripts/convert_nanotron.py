"""Convert one nanotron checkpoint step into an HF LlamaForCausalLM directory.

Handles tensor-parallel shards, tied embeddings and rope_interleaved. A step is converted only
when it is complete (its metadata written and ``latest.txt`` at or past it); anything else is
refused with the reason. The output (safetensors + config + tokenizer) appears only when whole.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zflow import nanotron  # noqa: E402
from zflow.io import atomic_dir, die, versions, write_json  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", required=True, help="<checkpoints_path>/<step> directory")
    p.add_argument("--output", required=True, help="HF model directory to create")
    p.add_argument("--tokenizer", default=None,
                   help="tokenizer (hub name or directory) saved beside the model")
    p.add_argument("--vocab-size", type=int, default=None,
                   help="trim a padded embedding back to this many rows")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32", "float16"])
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch
    from transformers import LlamaForCausalLM

    try:
        step = nanotron.check_complete(args.checkpoint)
        sd, mc = nanotron.read_checkpoint(args.checkpoint)
    except nanotron.IncompleteCheckpoint as e:
        die(f"refusing to convert an incomplete checkpoint: {e}")
    vocab = args.vocab_size or mc["vocab_size"]
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        if key in sd:
            sd[key] = sd[key][:vocab]
    config = nanotron.hf_config(mc, vocab)
    dtype = getattr(torch, args.dtype)
    config.dtype = args.dtype
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        die(f"weights do not match LlamaForCausalLM: missing {missing}, unexpected {unexpected}")
    if config.tie_word_embeddings:
        model.tie_weights()
    model = model.to(dtype)
    with atomic_dir(args.output) as tmp:
        model.save_pretrained(tmp)
        if args.tokenizer:
            from transformers import AutoTokenizer

            AutoTokenizer.from_pretrained(args.tokenizer).save_pretrained(tmp)
        meta = nanotron.json.loads((Path(args.checkpoint) / "checkpoint_metadata.json").read_text())
        write_json(Path(tmp) / "zflow_checkpoint.json", {
            "step": step, "source": str(args.checkpoint), "backend": "nanotron",
            "tp": meta.get("tp", 1), "dtype": args.dtype, "versions": versions(),
        })
    print(f"converted step {step} of {args.checkpoint} -> {args.output}")


if __name__ == "__main__":
    main()
