"""Reading parquet sources: their text columns (type from the footer, damaged pages named), the
shard groups of the tokenize fan-out (shared by the config check, the jobs and the tests)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

# Special tokens of the embedded tokenizer: the document separator and the ChatML markers that
# the chat stages need (reserved at training time, so embeddings never need resizing).
EOS = "<|endoftext|>"
CHAT_TOKENS = ("<|im_start|>", "<|im_end|>")
PAD = "<|pad|>"


class DataError(ValueError):
    """A parquet shard that cannot give the texts asked for: one line naming the file (and the
    row group and column where its data is damaged)."""


def is_text_type(t) -> bool:
    """An Arrow type whose values read as Python strings (dictionary-encoded strings too)."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def text_column_problem(schema, text_key: str) -> str | None:
    """Why the column ``text_key`` of an Arrow ``schema`` (a parquet file's, as
    ``pq.read_schema`` or the footer gives it) holds no texts to tokenize, else None."""
    import pyarrow as pa

    idx = schema.get_all_field_indices(text_key)
    if not idx:
        return f"has no column '{text_key}' (columns: {', '.join(schema.names)})"
    t = schema.field(idx[0]).type
    if is_text_type(t):
        return None
    hint = ""
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        hint = ": bytes, not text; rewrite the column as UTF-8 strings"
    elif pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        hint = ": set text_key to a column of strings, or flatten this one into one"
    return (f"column '{text_key}' has type {t}, not a string column (string or "
            f"large_string){hint}")


def check_text_columns(files, text_key: str) -> None:
    """Every file is a parquet file whose ``text_key`` column is a string column (footers only:
    milliseconds a file); DataError naming the first file that is not."""
    for f in files:
        try:
            schema = pq.read_schema(f)
        except Exception as e:  # noqa: BLE001 - any unreadable footer is the file's fault
            raise DataError(f"'{f}': not a readable parquet file ({_one_line(e)})") from None
        problem = text_column_problem(schema, text_key)
        if problem:
            raise DataError(f"'{f}': {problem}")


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _chunk(pf, rg: int, column: str) -> str:
    """Where a column chunk of a row group sits: its rows and byte range."""
    meta = pf.metadata
    rows = sum(meta.row_group(i).num_rows for i in range(rg))
    n = meta.row_group(rg).num_rows
    names = [meta.row_group(rg).column(c).path_in_schema for c in range(meta.num_columns)]
    where = f"row group {rg} of {meta.num_row_groups} (rows {rows}-{rows + n - 1})"
    paths = [i for i, p in enumerate(names) if p == column or p.startswith(column + ".")]
    if paths:
        c = meta.row_group(rg).column(paths[0])
        start = c.dictionary_page_offset or c.data_page_offset
        where += (f", column '{column}' (its pages at bytes {start}-"
                  f"{start + c.total_compressed_size - 1})")
    else:
        where += f", column '{column}'"
    return where


def locate_damage(path, columns=None) -> str | None:
    """The first row group and column of the parquet file ``path`` whose pages cannot be read
    (corrupt compressed data, a bad page header...), as one line, else None. Reads the file
    (its ``columns``, default all) row group by row group: the diagnosis of a read that failed,
    not a check to run on every file."""
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001
        return f"'{path}': not a readable parquet file ({_one_line(e)})"
    cols = list(columns) if columns else pf.schema_arrow.names
    for rg in range(pf.num_row_groups):
        try:  # full validation: a page that decompresses to bytes that are not UTF-8 too
            pf.read_row_group(rg, columns=cols).validate(full=True)
            continue
        except Exception:  # noqa: BLE001 - narrowed to one column below
            pass
        for col in cols:
            try:
                pf.read_row_group(rg, columns=[col]).validate(full=True)
            except Exception as e:  # noqa: BLE001
                return f"'{path}' {_chunk(pf, rg, col)}: {_one_line(e)}"
        return f"'{path}' row group {rg}: its columns read alone but not together"
    return None


DAMAGED_HINT = ("the file is damaged: fetch it again (delete it and re-run its download) or "
                "remove it from the source")


def iter_texts(files, text_key: str = "text"):
    """The non-empty texts of column ``text_key`` of the parquet ``files``, in order, read a
    row group at a time. Every file's column type is checked first (footers only), so a bad
    file stops the read before any text is used; a damaged data page is a DataError naming the
    file, row group and column."""
    import pyarrow as pa

    files = list(files)
    check_text_columns(files, text_key)
    for f in files:
        pf = pq.ParquetFile(f)
        for rg in range(pf.num_row_groups):
            try:  # a damaged page: an error of its codec, or bytes that are not UTF-8
                texts = pf.read_row_group(rg, columns=[text_key]).column(0).to_pylist()
            except (OSError, pa.ArrowException, UnicodeDecodeError) as e:
                raise DataError(f"'{f}' {_chunk(pf, rg, text_key)}: {_one_line(e)}; "
                                f"{DAMAGED_HINT}") from None
            yield from (t for t in texts if t)


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
