"""Paths with spaces and apostrophes, end to end: the working directory, the data and the eval task
folder all live under such names, and the whole target `all` runs for real on them.

Shell lines hand each script only `--spec {params.spec:q}` (plus its script and log, quoted with
`:q`); every other path travels inside the spec file (JSON), never through the shell."""

from __future__ import annotations

import csv
import json
import math
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO, copy_workflow, env, load_config, snakemake, spine, write_config
from zflow import paths as P

# each name has a space and an apostrophe (and one a non-ASCII letter)
WD_PARENT = "l'atelier di Zoë"
DATA_DIR = "dati d'esempio"
TASK_DIR = "task folder's copy"
OTHER_WD = "un'altra cartella"
AWKWARD = (WD_PARENT, DATA_DIR, TASK_DIR, OTHER_WD)

TOK = "bpe_ita_eng_4k"
STEPS = [10, 20]


def shell_commands(out: str) -> list[str]:
    cmds = [m.group(1) for m in re.finditer(r"^Shell command: (.+)$", out, re.M)]
    return [c for c in cmds if c != "None"]


def check_quoting(cmd: str) -> list[str]:
    """The shell's words of ``cmd``: balanced quotes, and no awkward name split over words
    (a path with a space left unquoted would be)."""
    words = shlex.split(cmd)  # raises on an unbalanced quote (an apostrophe left bare)
    for word in words:
        for name in AWKWARD:
            first = name.split(" ")[0]
            assert first not in word or name in word, f"unquoted path with a space in: {cmd}"
    return words


def spec_path(words: list[str]) -> str:
    return words[words.index("--spec") + 1]


def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    wd = copy_workflow(tmp_path / WD_PARENT / "my wf")
    data = tmp_path / DATA_DIR
    tasks = tmp_path / TASK_DIR
    shutil.copytree(REPO / "resources" / "eval_tasks", tasks)
    cfg = load_config(wd)
    spine(cfg, "chat_data")
    for name, src in cfg["sources"].items():
        shutil.copytree(REPO / src["path"], data / name)
        src["path"] = str(data / name)  # absolute, with the space and the apostrophe
    cfg["tasks"] = {"arc_it": {**cfg["tasks"]["arc_it"], "include_path": str(tasks), "limit": 8}}
    lc = cfg["languages"]["ita"]
    assert cfg["tokenizers"][TOK]["train"]["vocab_size"] >= lc["model"]["vocab_size"]
    lc["pretrain"].pop("stages")  # the decay stage at 150 is beyond 20 steps
    lc["pretrain"].update(train_steps=20, checkpoint_interval=10, sequence_length=64,
                          lr_warmup_steps=5, lr_decay_starting_step=10, lr_decay_steps=10)
    lc["eval"].update(tasks=["arc_it"], checkpoints=STEPS)
    write_config(wd, cfg)
    # only the copies can be read: the data and the task folder inside the workflow are gone
    shutil.rmtree(wd / "data")
    shutil.rmtree(wd / "resources" / "eval_tasks")
    return wd, data, tasks


def test_awkward_paths_end_to_end(tmp_path):
    wd, data, tasks = setup(tmp_path)
    p = snakemake(wd, "all", "--printshellcmds", timeout=600)
    out = p.stdout + p.stderr  # a real run logs to stderr
    res = lambda p: wd / p  # noqa: E731

    # the shell lines: the quoted spec path, no unquoted path with a space
    cmds = shell_commands(out)
    assert len(cmds) >= 5, out[-3000:]  # tokenizer, tokenize x4, pretrain, evals, report
    for cmd in cmds:
        spec = spec_path(check_quoting(cmd))
        assert f"--spec {shlex.quote(spec)}" in cmd
        assert spec.startswith(P.SPECS + "/") and res(spec).is_file(), cmd
    # the awkward absolute paths went through the specs instead
    specs = [json.loads(res(spec_path(shlex.split(c))).read_text()) for c in cmds]
    text = json.dumps(specs, ensure_ascii=False)
    assert str(data) in text and str(tasks) in text

    # the tokenizer loads
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(res(P.fmt(P.TOKENIZER, tokenizer=TOK))))
    assert 0 < len(tok) <= 4096 and tok("Ciao, mondo!")["input_ids"]

    # every source tokenized, from the copies of the data
    lc = load_config(wd)["languages"]["ita"]
    for source in lc["data"]:
        stats = json.loads(res(P.fmt(P.TOKENIZED_STATS, tokenizer=TOK, source=source)).read_text())
        assert stats["documents"] > 0 and stats["tokens"] > 0, stats
        assert stats["input"] == str(data / source)

    # 20 training steps
    with open(res(P.fmt(P.TRAIN_METRICS, lang="ita")), newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, 21))
    assert all(math.isfinite(float(r["loss"])) for r in rows)

    # both checkpoints evaluated, with the task read from the copied task folder
    values = {}
    for step in STEPS:
        ev = json.loads(res(P.fmt(P.EVAL, model=f"ita-step{step}", task="arc_it")).read_text())
        v = ev["value"]
        assert isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), ev
        assert ev["step"] == step and ev["limit"] == 8
        values[step] = v

    # the progression table: one row per checkpoint, the evals' values
    with open(res(P.fmt(P.PROGRESSION, lang="ita", ext="csv")), newline="") as f:
        table = list(csv.DictReader(f))
    assert [int(r["step"]) for r in table] == STEPS, table
    for r in table:
        assert math.isclose(float(r["arc_it"]), values[int(r["step"])], abs_tol=1e-6), table

    # one job again from another working directory (also awkward): now the script's path (relative
    # to the working directory) has the space and the apostrophe, and it must run as quoted
    other = tmp_path / OTHER_WD
    other.mkdir()
    target = P.fmt(P.TOKENIZER, tokenizer=TOK)
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(other),
           "--snakefile", str(wd / "Snakefile"), "--configfile", str(wd / "config/config.yaml"),
           "--printshellcmds", target]
    p = subprocess.run(cmd, cwd=other, env=env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    (line,) = shell_commands(p.stdout + p.stderr)
    script = shlex.quote(f"../{WD_PARENT}/my wf/workflow/scripts/train_tokenizer.py")
    assert line.startswith(f"python {script} --spec "), line
    check_quoting(line)
    assert (other / target / "tokenizer.json").is_file()
