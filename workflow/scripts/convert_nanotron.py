"""Convert one nanotron checkpoint step into an HF LlamaForCausalLM directory.

Handles tensor-parallel shards, tied embeddings and rope_interleaved. The output (safetensors +
config + tokenizer) appears only when whole.

Which steps, whatever instant a kill stopped nanotron at (zflow.nanotron.WRITE_ORDER, nanotron's
write order at the pin): a step ``latest.txt`` has not reached is not a checkpoint yet and is
refused, saying so (nanotron resumes from the previous step and writes this one again; the plan
makes the conversion wait for the pretrain_nanotron job). A step ``latest.txt`` has reached is
nanotron's: what it writes after latest.txt and a kill left out (model_config.json) is written
first from the step's config.yaml (nanotron saves the same model config there), then the step is
converted. A truncated weight file is refused with its name.
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
        try:
            for f in nanotron.complete_checkpoint(spec["checkpoint"]):
                print(f"step {step}: {f} written from its config.yaml (nanotron was stopped "
                      "after latest.txt, before it)", flush=True)
        except OSError as e:  # a read-only checkpoint: the model config is read from config.yaml
            print(f"step {step}: could not complete the checkpoint ({e}); its model config is "
                  "read from its config.yaml", flush=True)
        sd, mc = nanotron.read_checkpoint(spec["checkpoint"])
    except nanotron.IncompleteCheckpoint as e:
        die(f"not converting step {Path(spec['checkpoint']).name}: {e}")
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
