"""datatrove's ParquetReader for the tokenize job, naming a damaged shard in one line.

A parquet file whose footer is intact but whose data pages are not (``OSError: Corrupt snappy
compressed data.``, or a page that decompresses to bytes that are not UTF-8) passes every check made before the jobs (they read footers only:
docs/config-errors.md). datatrove would log the error with a traceback per worker; this reader
stops reading that file instead and writes one line (file, row group, column, byte range:
``zflow.data.locate_damage``) to ``<errors>/``, which the job reports, then fails.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from datatrove.pipeline.readers import ParquetReader

from zflow.data import DAMAGED_HINT, locate_damage


class CheckedParquetReader(ParquetReader):
    def __init__(self, *args, errors_dir: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.errors_dir = errors_dir

    def read_file(self, filepath: str):
        import pyarrow as pa

        try:
            yield from super().read_file(filepath)
        except (OSError, pa.ArrowException, UnicodeDecodeError) as e:  # as data.iter_texts
            local = os.path.join(self.data_folder.path, filepath)
            where = locate_damage(local) or f"'{local}': {type(e).__name__}: {e}"
            line = " ".join(f"{where}; {DAMAGED_HINT}".split())
            out = Path(self.errors_dir)
            out.mkdir(parents=True, exist_ok=True)
            name = hashlib.sha256(filepath.encode()).hexdigest()[:16]
            (out / f"{name}.txt").write_text(line + "\n")


def damaged(errors_dir) -> list[str]:
    """The lines the readers wrote (one per damaged file), sorted."""
    d = Path(errors_dir)
    return sorted(p.read_text().strip() for p in d.glob("*.txt")) if d.is_dir() else []
