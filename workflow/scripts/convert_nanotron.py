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

Conversion parity (zflow.parity), before anything is written: the converted model's loss on a
fixed batch of the run's own tokenized data (the step's data stage, seeded) is recorded in the
marker's ``parity`` (the report flags a loss above the run's training loss at that step); where
``pretrain.nanotron.python`` runs nanotron (a GPU node), nanotron loads the step (tp=1) and its
logits are compared with the converted model's: beyond the tolerance the job fails with the
numbers and writes no model.
"""

from __future__ import annotations

from pathlib import Path

from zflow import nanotron, parity, paths
from zflow.io import atomic_dir, die, read_json, spec_cli, versions, write_json


def materialize_buffers(model) -> None:
    """Built under the meta device, a module's non-persistent buffers (the rotary embedding's
    inv_freq: not in any state dict) stay meta after loading; each such module is built again
    on the CPU from its config, so that the model can run (the parity check)."""
    for name, mod in list(model.named_modules()):
        if name and any(b.is_meta for b in mod.buffers(recurse=False)):
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr,
                    type(mod)(config=mod.config))
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        die(f"the converted model still has tensors without data: {left[:5]}")


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
    # the checks on the weights as converted (rounded to dtype), computed in float32 (the
    # rotary buffers built afterwards, in float32, as from_pretrained builds them)
    model = model.to(dtype).float().eval()
    materialize_buffers(model)
    try:
        check = parity.check(spec, spec["checkpoint"], step,
                             model.to("cuda" if torch.cuda.is_available() else "cpu"),
                             log=lambda m: print(m, flush=True))
    except parity.ParityError as e:
        die(str(e))
    model = model.to("cpu", dtype)
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
            "parity": check,
        })
    print(f"converted step {step} of {spec['checkpoint']} -> {spec['output']}")


if __name__ == "__main__":
    main()
