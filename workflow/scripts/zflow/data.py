"""Reading parquet sources (shared by the tokenizer trainer and the tests)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

# Special tokens of the embedded tokenizer: the document separator and the ChatML markers that
# the chat stages need (reserved at training time, so embeddings never need resizing).
EOS = "<|endoftext|>"
CHAT_TOKENS = ("<|im_start|>", "<|im_end|>")
PAD = "<|pad|>"


def iter_texts(files, text_key: str = "text", batch_size: int = 1000):
    for f in files:
        pf = pq.ParquetFile(f)
        for batch in pf.iter_batches(batch_size=batch_size, columns=[text_key]):
            for t in batch.column(0).to_pylist():
                if t:
                    yield t


def parquet_files(path, glob: str = "*.parquet") -> list[Path]:
    return sorted(p for p in Path(path).glob(glob) if p.is_file())
