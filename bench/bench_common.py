"""Shared by the benchmarks: write a result table into docs/performance.md between markers."""

from __future__ import annotations

import platform
import time
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def update_doc(name: str, body: str) -> None:
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    stamp = f"_{time.strftime('%Y-%m-%d')}, {platform.node()}, {platform.processor() or platform.machine()}_"
    block = f"{begin}\n{stamp}\n\n{body}\n{end}"
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + f"\n\n## Benchmark: {name}\n\n{block}\n"
    DOC.write_text(text)
