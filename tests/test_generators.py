"""The embedded-data generators in tools/ reproduce the committed data byte for byte.

They run as plain command-line programs (``python tools/<name>.py``, from another folder, as a
user would) into a temporary output root; every file they write must equal the committed one under
data/embedded/ and resources/eval_tasks/, and every committed data file there must be one they write.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "tools"
DATA = REPO / "data" / "embedded"
TASKS = REPO / "resources" / "eval_tasks"


def files(root: Path) -> dict[str, bytes]:
    """Relative path -> content of the files under ``root`` (no bytecode caches, which lm-eval may
    leave next to a task's utils.py)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def run(script: str, out_data: Path, out_tasks: Path, cwd: Path) -> None:
    subprocess.run([sys.executable, str(TOOLS / script), "--out-data", str(out_data), "--out-tasks", str(out_tasks)],
                   cwd=cwd, check=True, capture_output=True, text=True, timeout=120)


def test_generators_reproduce_the_committed_files(tmp_path):
    data, tasks = tmp_path / "data", tmp_path / "tasks"
    run("make_embedded_data.py", data, tasks, cwd=tmp_path)
    run("make_posttrain_data.py", data / "posttrain", tasks, cwd=tmp_path)
    run("make_grpo_data.py", data / "posttrain", tasks, cwd=tmp_path)
    run("make_group_tasks.py", data, tasks, cwd=tmp_path)
    for generated, committed in ((files(data), files(DATA)), (files(tasks), files(TASKS))):
        assert generated, "nothing generated"
        assert sorted(generated) == sorted(committed)
        different = [k for k in generated if generated[k] != committed[k]]
        assert not different, f"generated files differ from the committed ones: {different}"
