"""Train a small byte-level BPE tokenizer on parquet sources and save it for AutoTokenizer.

The result directory loads with ``AutoTokenizer.from_pretrained(dir)`` and its
``tokenizer.json`` is what datatrove's DocumentTokenizer reads. The ChatML markers
(<|im_start|>, <|im_end|>) are reserved at training time for the chat stages.
"""

from __future__ import annotations

from pathlib import Path

from zflow.data import (CHAT_TOKENS, EOS, PAD, DataError, check_text_columns, iter_texts,
                        parquet_files)
from zflow.io import atomic_dir, die, spec_cli, versions, write_json


def train(spec: dict):
    """A byte-level BPE trained on the spec's sources, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    def texts():
        for src in spec["sources"]:
            try:
                yield from iter_texts(parquet_files(src["dir"], src["glob"]), src["text_key"])
            except DataError as e:
                raise DataError(f"sources.{src['name']}: {e}") from None

    for src in spec["sources"]:  # every source's text column type, before training starts
        try:
            check_text_columns(parquet_files(src["dir"], src["glob"]), src["text_key"])
        except DataError as e:
            raise DataError(f"sources.{src['name']}.text_key: {e}") from None

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=spec["vocab_size"],
        min_frequency=spec["min_frequency"],
        special_tokens=[EOS, *CHAT_TOKENS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts(), trainer=trainer)

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(CHAT_TOKENS),
        model_max_length=1_000_000,
    )


def main(argv=None):
    spec, _ = spec_cli(__doc__, argv, counts=())
    try:
        fast = train(spec)
    except DataError as e:  # one line: the source's key, the file, where it is damaged
        die(str(e))
    with atomic_dir(spec["output"]) as tmp:
        fast.save_pretrained(tmp)
        write_json(Path(tmp) / "zflow_tokenizer.json", {
            "vocab_size": len(fast),
            "eos_token": EOS,
            "eos_token_id": fast.convert_tokens_to_ids(EOS),
            "sources": [s["name"] for s in spec["sources"]],
            "versions": versions(),
        })
    print(f"tokenizer with {len(fast)} tokens written to {spec['output']}")


if __name__ == "__main__":
    main()
