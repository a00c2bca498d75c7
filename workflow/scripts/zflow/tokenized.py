"""datatrove's tokenized files (``*.ds``, ``*.ds.index``, ``*.ds.metadata``): the one reader.

``<file>.ds.metadata`` starts with ``<tokenizer name>|<bytes per token>``; ``.ds.index`` holds
one 8-byte end offset (in tokens) per document. A source's tokenized folder holds one sub-folder per shard
group (``g00000/``, ...): every reader here recurses, in the sorted order of the files' relative
paths (datatrove's ``DatatroveFolderDataset`` lists them the same way).
"""

from __future__ import annotations

from pathlib import Path

from zflow import identity


def metadata(ds_file) -> tuple[str, int]:
    """(tokenizer name, bytes per token) of one ``.ds`` file."""
    first = Path(f"{ds_file}.metadata").read_text().splitlines()[0]
    name, _, size = first.rpartition("|")
    return name, int(size)


def ds_files(folder) -> list[Path]:
    """The ``.ds`` files of a tokenized folder and its sub-folders, sorted by relative path."""
    folder = Path(folder)
    return sorted((p for p in folder.rglob("*.ds") if p.is_file()),
                  key=lambda p: p.relative_to(folder).as_posix())


def file_stats(folder) -> list:
    """Relative paths, sizes and modification times of a tokenized folder's datatrove files,
    sub-folders included (what a pretraining run's resume is keyed on; large data: not hashed)."""
    return identity.file_stats(folder, "**/*.ds*")


def folder_metadata(folder) -> tuple[str, int]:
    """(tokenizer name, bytes per token) of a tokenized folder (its first file)."""
    files = ds_files(folder)
    if not files:
        raise FileNotFoundError(f"{folder}: no *.ds file (not a datatrove-tokenized folder)")
    return metadata(files[0])


def folder_stats(folder) -> dict:
    """Documents and tokens of a tokenized folder, read back from datatrove's own files."""
    files, docs, tokens = [], 0, 0
    for ds in ds_files(folder):
        name, size = metadata(ds)
        n_tok = ds.stat().st_size // size
        n_doc = Path(f"{ds}.index").stat().st_size // 8
        files.append({"file": ds.relative_to(folder).as_posix(), "documents": n_doc, "tokens": n_tok,
                      "token_size": size, "tokenizer": name})
        docs += n_doc
        tokens += n_tok
    return {"documents": docs, "tokens": tokens, "files": files}


def tokens(folder) -> int:
    return sum(ds.stat().st_size // metadata(ds)[1] for ds in ds_files(folder))


def samples(folder, seq_len: int) -> int:
    """Training windows of ``seq_len + 1`` tokens a folder holds."""
    return tokens(folder) // (seq_len + 1)


def documents(folder) -> list:
    """Every document's token ids (numpy arrays), in reading order: the tests' ground truth."""
    import numpy as np

    out = []
    for ds in ds_files(folder):
        size = metadata(ds)[1]
        toks = np.fromfile(ds, dtype=np.uint16 if size == 2 else np.uint32)
        ends = np.fromfile(f"{ds}.index", dtype=np.uint64)  # token offsets of document ends
        starts = np.concatenate([[0], ends[:-1]])
        out += [toks[int(a):int(b)] for a, b in zip(starts, ends)]
    return out


def group_folders(folder) -> list[tuple[str, int]]:
    """(folder, tokens) of each folder holding ``.ds`` files: a source folder's shard groups,
    or the folder itself when its files are at its top (sorted by path)."""
    folder = Path(folder)
    if not folder.is_dir() or any(folder.glob("*.ds")):
        return [(str(folder), tokens(folder) if folder.is_dir() else 0)]
    subs = sorted({ds.parent for ds in ds_files(folder)}, key=lambda p: p.as_posix())
    return [(str(d), sum(ds.stat().st_size // metadata(ds)[1] for ds in d.glob("*.ds")))
            for d in subs] or [(str(folder), 0)]


def expand_groups(folders, weights) -> tuple[list[str], list[float]]:
    """Each source folder as its shard-group folders, the source's weight split over them by
    their tokens (sampling a source's groups in proportion to their tokens is sampling the
    source): for a reader of top-level ``*.ds`` only (nanotron at the pin)."""
    out_f, out_w = [], []
    for folder, w in zip(folders, weights):
        groups = group_folders(folder)
        total = sum(n for _, n in groups)
        for g, n in groups:
            out_f.append(g)
            out_w.append(w * n / total if total else w / len(groups))
    return out_f, out_w
