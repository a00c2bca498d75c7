"""datatrove's tokenized files (``*.ds``, ``*.ds.index``, ``*.ds.metadata``): the one reader.

``<file>.ds.metadata`` starts with ``<tokenizer name>|<bytes per token>``; ``.ds.index`` holds
one 8-byte end offset per document.
"""

from __future__ import annotations

from pathlib import Path


def metadata(ds_file) -> tuple[str, int]:
    """(tokenizer name, bytes per token) of one ``.ds`` file."""
    first = Path(f"{ds_file}.metadata").read_text().splitlines()[0]
    name, _, size = first.rpartition("|")
    return name, int(size)


def folder_metadata(folder) -> tuple[str, int]:
    """(tokenizer name, bytes per token) of a tokenized folder (its first file)."""
    files = sorted(Path(folder).glob("*.ds"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *.ds file (not a datatrove-tokenized folder)")
    return metadata(files[0])


def folder_stats(folder) -> dict:
    """Documents and tokens of a tokenized folder, read back from datatrove's own files."""
    files, docs, tokens = [], 0, 0
    for ds in sorted(Path(folder).glob("*.ds")):
        name, size = metadata(ds)
        n_tok = ds.stat().st_size // size
        n_doc = Path(f"{ds}.index").stat().st_size // 8
        files.append({"file": ds.name, "documents": n_doc, "tokens": n_tok,
                      "token_size": size, "tokenizer": name})
        docs += n_doc
        tokens += n_tok
    return {"documents": docs, "tokens": tokens, "files": files}


def tokens(folder) -> int:
    return sum(ds.stat().st_size // metadata(ds)[1] for ds in Path(folder).glob("*.ds"))


def samples(folder, seq_len: int) -> int:
    """Training windows of ``seq_len + 1`` tokens a folder holds."""
    return tokens(folder) // (seq_len + 1)
