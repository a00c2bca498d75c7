"""Train a small byte-level BPE tokenizer on parquet sources and save it for AutoTokenizer.

The result directory loads with ``AutoTokenizer.from_pretrained(dir)`` and its
``tokenizer.json`` is what datatrove's DocumentTokenizer reads. The ChatML markers
(<|im_start|>, <|im_end|>) are reserved at training time for the chat stages.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zflow.data import CHAT_TOKENS, EOS, PAD, iter_texts, parquet_files  # noqa: E402
from zflow.io import atomic_dir, versions, write_json  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--source", action="append", required=True, metavar="DIR:TEXT_KEY",
                   help="a parquet source directory and its text column (repeatable)")
    p.add_argument("--vocab-size", type=int, required=True)
    p.add_argument("--min-frequency", type=int, default=2)
    p.add_argument("--output", required=True, help="tokenizer directory to create")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    sources = []
    for spec in args.source:
        path, _, key = spec.rpartition(":")
        if not path:
            path, key = spec, "text"
        sources.append((path, key))

    def texts():
        for path, key in sources:
            yield from iter_texts(parquet_files(path), key)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        special_tokens=[EOS, *CHAT_TOKENS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts(), trainer=trainer)

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(CHAT_TOKENS),
        model_max_length=1_000_000,
    )
    with atomic_dir(args.output) as tmp:
        fast.save_pretrained(tmp)
        write_json(Path(tmp) / "zflow_tokenizer.json", {
            "vocab_size": len(fast),
            "eos_token": EOS,
            "eos_token_id": fast.convert_tokens_to_ids(EOS),
            "sources": [f"{p}:{k}" for p, k in sources],
            "versions": versions(),
        })
    print(f"tokenizer with {len(fast)} tokens written to {args.output}")


if __name__ == "__main__":
    main()
