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


# ------------------------------------------------------------ shard groups (tokenize fan-out)

GROUP = "g{:05d}"  # a group's name: its index in the source's sorted files, chunked in order


def parquet_checksum(path) -> str:
    """sha256 of a parquet file's size and footer (its metadata block and the trailing 8 bytes).

    Cheap at DAG time for files of any size (one seek, a few KB read), and content-sensitive:
    the footer records every row group's row count, byte offsets, sizes and column statistics,
    so rewriting a file with other rows changes it; touching a file does not. (A rewrite that
    keeps every size, offset and statistic byte-identical would go unnoticed: not something a
    dataset release does.)
    """
    import hashlib

    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(p, "rb") as f:
        if size >= 12:
            f.seek(size - 8)
            tail = f.read(8)
            meta_len = int.from_bytes(tail[:4], "little")
            if tail[4:] == b"PAR1" and meta_len + 8 <= size:
                f.seek(size - 8 - meta_len)
                h.update(f.read(meta_len + 8))
                return h.hexdigest()
        f.seek(0)  # not a parquet file: hash it all (small by construction)
        h.update(f.read())
    return h.hexdigest()


def shard_groups(files, sizes, files_per_job: int | None, bytes_per_job: int | None) -> list[list]:
    """The source's ``files`` (sorted) chunked in order: a group closes at ``files_per_job``
    files, or before a file that would take it past ``bytes_per_job`` bytes (a group holds at
    least one file). In order, so a file that sorts after all others only extends the last
    group or opens a new one; the earlier groups keep their files."""
    groups, cur, cur_bytes = [], [], 0
    for f, size in zip(files, sizes):
        full = files_per_job is not None and len(cur) >= files_per_job
        over = bytes_per_job is not None and cur and cur_bytes + size > bytes_per_job
        if cur and (full or over):
            groups.append(cur)
            cur, cur_bytes = [], 0
        cur.append(f)
        cur_bytes += size
    if cur:
        groups.append(cur)
    return groups
