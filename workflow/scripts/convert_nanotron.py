"""Convert one nanotron checkpoint step into an HF LlamaForCausalLM directory.

Handles tensor-parallel shards, tied embeddings and rope_interleaved. A step is converted only
when it is complete (its metadata written and ``latest.txt`` at or past it); anything else is
refused with the reason. The output (safetensors + config + tokenizer) appears only when whole.
"""

from __future__ import annotations

from pathlib import Path

from zflow import nanotron, paths
from zflow.io import atomic_dir, die, read_json, spec_cli, versions, write_json


def main(argv=None):
    spec, _ = spec_cli(__doc__, argv, counts=())
    import torch
    from transformers import LlamaForCausalLM

    try:
        step = nanotron.check_complete(spec["checkpoint"])
        sd, mc = nanotron.read_checkpoint(spec["checkpoint"])
    except nanotron.IncompleteCheckpoint as e:
        die(f"refusing to convert an incomplete checkpoint: {e}")
    vocab = spec["vocab_size"] or mc["vocab_size"]
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        if key in sd:
            sd[key] = sd[key][:vocab]
    config = nanotron.hf_config(mc, vocab)
    dtype = getattr(torch, spec["dtype"])
    config.dtype = spec["dtype"]
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        die(f"weights do not match LlamaForCausalLM: missing {missing}, unexpected {unexpected}")
    if config.tie_word_embeddings:
        model.tie_weights()
    model = model.to(dtype)
    with atomic_dir(spec["output"]) as tmp:
        model.save_pretrained(tmp)
        if spec["tokenizer"]:
            from transformers import AutoTokenizer

            AutoTokenizer.from_pretrained(spec["tokenizer"]).save_pretrained(tmp)
        meta = read_json(Path(spec["checkpoint"]) / "checkpoint_metadata.json")
        write_json(Path(tmp) / paths.MARKER, {
            "step": step, "identity": spec["identity"], "source": spec["checkpoint"],
            "backend": "nanotron",
            "tp": meta.get("tp", 1), "dtype": spec["dtype"], "versions": versions(),
        })
    print(f"converted step {step} of {spec['checkpoint']} -> {spec['output']}")


if __name__ == "__main__":
    main()
