"""A local stand-in of the Llama-3.2 tokenizer: the same layout, a small BPE.

The production base models carry meta-llama/Llama-3.2-1B's tokenizer (128,256 ids). Its layout, as
transformers' ``models/llama/convert_llama_weights_to_hf.py`` writes it
(``DEFAULT_LLAMA_SPECIAL_TOKENS["3.2"]`` and its ``Llama3Converter``):

- byte-level BPE ids first (0-127,999 there; 0..``bpe_size``-1 here), then exactly 256 special
  tokens in this order: ``<|begin_of_text|>``, ``<|end_of_text|>``, ``<|reserved_special_token_0|>``,
  ``<|reserved_special_token_1|>``, ``<|finetune_right_pad_id|>``, ``<|reserved_special_token_2|>``,
  ``<|start_header_id|>``, ``<|end_header_id|>``, ``<|eom_id|>``, ``<|eot_id|>``,
  ``<|python_tag|>``, ``<|reserved_special_token_3|>`` ... ``<|reserved_special_token_247|>``;
- pre-tokenizer: the tiktoken-style split regex, then ByteLevel (no prefix space, no regex);
  decoder ByteLevel; BPE with ``ignore_merges``;
- post-processor: Sequence[ByteLevel(add_prefix_space=True, trim_offsets=False),
  TemplateProcessing(single ``<|begin_of_text|> $A``)]: every encode starts with BOS;
- tokenizer_config: PreTrainedTokenizerFast, bos ``<|begin_of_text|>``, eos ``<|end_of_text|>``,
  no pad token, no chat template, ``model_max_length`` 131072.

No ``<|im_start|>`` / ``<|im_end|>``: post-training adds them (posttrain.add_chat_tokens), as it
must for the real tokenizer. The BPE is trained with the ``tokenizers`` library on ``texts``; the
same texts and size give the same files.
"""

from __future__ import annotations

import json
from pathlib import Path

BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
MODEL_MAX_LENGTH = 131072
# The regex of Llama 3's pre-tokenizer (tiktoken's cl100k-style split)
SPLIT_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def special_tokens() -> list[str]:
    """The 256 special tokens of Llama 3.2, in id order."""
    named = [BOS, EOS, "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
             "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>",
             "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
    return named + [f"<|reserved_special_token_{i}|>" for i in range(3, 248)]


def build(out_dir, texts, bpe_size: int = 2000) -> Path:
    """Train the stand-in on ``texts`` and save it as a PreTrainedTokenizerFast directory
    (tokenizer.json, tokenizer_config.json, special_tokens_map.json) in ``out_dir``; returns it.

    Ids 0..bpe_size-1 are the BPE's (the 256 byte symbols first), bpe_size..bpe_size+255 the
    special tokens. ValueError when ``texts`` are too few to learn ``bpe_size`` tokens."""
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers,
                            processors, trainers)
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if bpe_size < len(alphabet):
        raise ValueError(f"bpe_size={bpe_size} is smaller than the {len(alphabet)} byte symbols")
    texts = [t for t in texts if t]
    tok = Tokenizer(models.BPE(fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=bpe_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=sorted(alphabet), special_tokens=[])
    tok.train_from_iterator(texts, trainer=trainer)
    learned = tok.get_vocab_size(with_added_tokens=False)
    if learned != bpe_size:
        raise ValueError(f"the texts ({len(texts)}, {sum(map(len, texts))} characters) give "
                         f"{learned} BPE tokens, not bpe_size={bpe_size}: give more text or a "
                         f"smaller bpe_size")
    # ignore_merges as Llama 3's (a word already in the vocabulary is one token): set through the
    # serialised model, which every tokenizers version reads
    spec = json.loads(tok.to_str())
    spec["model"]["ignore_merges"] = True
    tok = Tokenizer.from_str(json.dumps(spec))
    specials = special_tokens()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    assert tok.token_to_id(specials[0]) == bpe_size and tok.get_vocab_size() == bpe_size + 256
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False),
        processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS}:1 $B:1",
                                      special_tokens=[(BOS, bpe_size)])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS,
                                   model_max_length=MODEL_MAX_LENGTH,
                                   clean_up_tokenization_spaces=True,
                                   model_input_names=["input_ids", "attention_mask"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    # the hub repository's class name (transformers 5 saves its new one, TokenizersBackend, and
    # loads either) and its third file (transformers 5 no longer writes it)
    cfg_file = out / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg.pop("backend", None)
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_file.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    (out / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": _token_entry(BOS), "eos_token": _token_entry(EOS)}, indent=2) + "\n")
    return out


def _token_entry(content: str) -> dict:
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False}
