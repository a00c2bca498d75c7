"""Write the smoke run's stand-ins: everything config/zagreus.yaml reads from a hub or a registry,
made locally in the same shape (zflow.smoke.shrink says what each replaces).

- hub data sets and chat sets: zflow.smoke.fixtures (the real columns, nesting and layout);
- the Llama-3.2-1B tokenizer: zflow.smoke.llama_tokenizer (its special-token layout and
  post-processor, no ChatML tokens), trained on the embedded corpus;
- lm-eval's tasks: zflow.smoke.tasks (tiny folders under the production names);
- hub baselines: a tiny random Llama each, with the stand-in tokenizer plus the ChatML tokens and
  template (the shape of an instruct model such as Qwen3 or Nesso-instruct);
- the nanotron trainer: tools/smoke/nanotron (a checkout whose run_train.py is a stand-in), and
  its environment: the smoke run's own python (``pretrain.nanotron.python``).

Paths are written relative to the smoke workflow copy (``workdir``), as the config names them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq

from zflow.smoke import fixtures, llama_tokenizer, tasks
from zflow.smoke.shrink import Standins

CHATML = ("<|im_start|>", "<|im_end|>")
NANOTRON = "tools/smoke/nanotron"


def corpus(workdir: Path, limit: int = 600) -> list[str]:
    """Texts of the embedded default (project-written) to train the stand-in tokenizer on."""
    texts = []
    for f in sorted((workdir / "data/embedded").glob("*/*.parquet")):
        t = pq.read_table(f)
        col = "content" if "content" in t.column_names else "text"
        texts += [x for x in t.column(col).to_pylist() if x][: limit // 8]
    return texts


def baseline(dest: Path, tokenizer_dir: Path, template: Path, model: dict, seed: int) -> None:
    """A tiny random Llama with the stand-in tokenizer, the ChatML tokens and template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    tok.add_special_tokens({"additional_special_tokens": list(CHATML)})
    tok.chat_template = template.read_text()
    tok.eos_token = tok.pad_token = CHATML[1]
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=True, **model)
    LlamaForCausalLM(cfg).save_pretrained(dest)
    tok.save_pretrained(dest)


def write(prod: dict, overlay: dict, needs: dict, workdir: Path) -> Standins:
    """Write every stand-in under ``workdir/smoke`` (skipping those already written)."""
    root = workdir / "smoke"
    rel = lambda p: str(Path(p).relative_to(workdir))  # noqa: E731
    sizes = overlay["data"]
    # the nanotron environment: the smoke run's own python (torch, transformers, datatrove)
    out = Standins(tasks=rel(root / "tasks"), nanotron=NANOTRON, nanotron_python=sys.executable)

    for key, hub in needs["sources"].items():
        dest = root / "data" / key
        if not dest.exists():
            fixtures.write_source(hub["repo_id"], hub["allow_patterns"], dest, rows=sizes["rows"],
                                  seed=len(out.sources))
        out.sources[key] = rel(dest)
    for key, hub in needs["chat"].items():
        dest = root / "chat" / key
        if not dest.exists():
            fixtures.write_chat(hub["repo_id"], hub["allow_patterns"], dest,
                                rows=sizes["chat_rows"])
        out.chat[key] = rel(dest)

    tok_dir = root / "tokenizers" / "llama32-standin"
    if needs["tokenizers"]:
        if not (tok_dir / "tokenizer.json").exists():
            llama_tokenizer.build(tok_dir, corpus(workdir), bpe_size=sizes["bpe_size"])
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tok_dir)
        for key in needs["tokenizers"]:
            out.tokenizers[key] = (rel(tok_dir), len(tok), tok.bos_token_id, tok.eos_token_id)

    if not (root / "tasks").exists():
        tasks.write_tasks(root / "tasks", needs["tasks"])

    model = dict(overlay["model"])
    for i, key in enumerate(sorted(needs["baselines"])):
        dest = root / "baselines" / key
        if not (dest / "config.json").exists():
            if not tok_dir.exists():
                llama_tokenizer.build(tok_dir, corpus(workdir), bpe_size=sizes["bpe_size"])
            baseline(dest, tok_dir, workdir / "resources/chat_templates/chatml.jinja", model,
                     seed=i)
        out.baselines[key] = rel(dest)
    return out
