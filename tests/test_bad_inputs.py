"""A sweep of bad inputs (tests/data/bad_inputs.yaml): each is refused with one clear message.

Every case asserts: refused (a ConfigError, a failed dry run with no job run, or a job that exits
with one ``error:`` line), the fragments it lists (config key, file, row group or line), no
Python traceback in the message, and no file changed outside the case's own folder. Most run
in-process through ``zflow.plan.Plan`` (the config check Snakemake runs at parse time); a few
through ``snakemake --dry-run`` (the refusal comes before any job); damaged data pages, which
no parse-time check reads (docs/config-errors.md), through the job scripts themselves.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import json
import os
import random
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, copy_workflow, snakemake, write_config

from zflow import inputs
from zflow.plan import Plan
from zflow.schema import ConfigError

DATA = REPO / "tests" / "data" / "bad_inputs.yaml"
CASES = yaml.safe_load(DATA.read_text())["cases"]
EMBEDDED = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
# what a case's folder links to (read-only: the embedded config's relative paths resolve there)
LINKED = ("data", "resources", "config")


# ------------------------------------------------------------------------------ building a case

def _fmt(obj, tmp: Path):
    if isinstance(obj, str):
        return obj.replace("{tmp}", str(tmp))
    if isinstance(obj, list):
        return [_fmt(v, tmp) for v in obj]
    if isinstance(obj, dict):
        return {k: _fmt(v, tmp) for k, v in obj.items()}
    return obj


def _path(dotted: str) -> list:
    """``a.b[0].c`` -> ["a", "b", 0, "c"]."""
    out = []
    for part in dotted.split("."):
        m = re.fullmatch(r"([^\[]+)((?:\[\d+\])*)", part)
        out.append(m.group(1))
        out += [int(i) for i in re.findall(r"\[(\d+)\]", m.group(2))]
    return out


def patched(case: dict, tmp: Path) -> dict:
    cfg = copy.deepcopy(EMBEDDED)
    for dotted, value in _fmt(case.get("set", {}), tmp).items():
        *parents, last = _path(dotted)
        node = cfg
        for p in parents:
            node = node.setdefault(p, {}) if isinstance(node, dict) else node[p]
        node[last] = value
    for dotted in case.get("delete", []):
        *parents, last = _path(dotted)
        node = cfg
        for p in parents:
            node = node[p]
        del node[last]
    return cfg


def _words(seed: str, n: int) -> list[str]:
    rng = random.Random(seed)
    vocab = [f"parola{i}" for i in range(400)] + ["città", "perché", "così", "già"]
    return [" ".join(rng.choices(vocab, k=40)) for _ in range(n)]


TYPES = {  # column type names of the data file: (Arrow type, the i-th value)
    "string": None,
    "int64": (pa.int64(), lambda i: i), "int32": (pa.int32(), lambda i: i),
    "uint8": (pa.uint8(), lambda i: i % 200), "float64": (pa.float64(), lambda i: i / 2),
    "bool": (pa.bool_(), lambda i: bool(i % 2)), "binary": (pa.binary(), lambda i: b"ciao"),
    "large_binary": (pa.large_binary(), lambda i: b"ciao"),
    "fixed_size_binary": (pa.binary(4), lambda i: b"ciao"), "null": (pa.null(), lambda i: None),
    "date32": (pa.date32(), lambda i: datetime.date(2024, 1, 1 + i % 28)),
    "timestamp": (pa.timestamp("s"), lambda i: datetime.datetime(2024, 1, 1)),
    "time64": (pa.time64("us"), lambda i: datetime.time(1, 2)),
    "decimal": (pa.decimal128(6, 2), lambda i: decimal.Decimal("1.25")),
    "struct": (pa.struct([("text", pa.string())]), lambda i: {"text": "ciao"}),
    "list": (pa.list_(pa.string()), lambda i: ["ciao", "mondo"]),
    "list_struct": (pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])),
                    lambda i: [{"role": "user", "content": "ciao"}]),
    "dict_int": "dict_int",
}


def _chunk_of(path: Path, row_group: int, column: str) -> tuple[int, int]:
    """The byte range of a column chunk's pages."""
    meta = pq.read_metadata(path).row_group(row_group)
    chunk = next(meta.column(i) for i in range(meta.num_columns)
                 if meta.column(i).path_in_schema == column)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    return start, start + chunk.total_compressed_size


def write_parquet(path: Path, spec: dict) -> None:
    rows, groups = spec.get("rows", 150), spec.get("row_groups", 3)
    cols = {}
    for name, kind in spec["columns"].items():
        if kind == "string":
            cols[name] = pa.array(_words(f"{path.name}/{name}", rows), pa.string())
        elif kind == "dict_int":
            cols[name] = pa.array([i % 7 for i in range(rows)], pa.int64()).dictionary_encode()
        else:
            t, value = TYPES[kind]
            cols[name] = pa.array([value(i) for i in range(rows)], t)
    table = pa.table(cols)
    garble = spec.get("garble")  # one byte of one value made not UTF-8: plain, uncompressed pages
    pq.write_table(table, path, row_group_size=max(1, -(-rows // groups)),
                   compression="none" if garble else spec.get("compression", "snappy"),
                   use_dictionary=not garble)
    if garble:  # in its row group's pages (the footer's statistics may hold it too)
        chunk = _chunk_of(path, garble["row"] // max(1, -(-rows // groups)), garble["column"])
        data = bytearray(path.read_bytes())
        value = cols[garble["column"]][garble["row"]].as_py().encode()
        at = data.rfind(value, chunk[0], chunk[1])  # after the page header (its statistics)
        assert at > 0
        data[at + 1] = 0xFF
        path.write_bytes(bytes(data))
    if "corrupt" in spec:  # data pages overwritten; the footer stays intact
        start, end = _chunk_of(path, spec["corrupt"]["row_group"], spec["corrupt"]["column"])
        with open(path, "r+b") as f:
            f.seek((start + end) // 2)
            f.write(b"\xff" * 64)
    if "truncate" in spec:
        data = path.read_bytes()
        path.write_bytes(data[:-spec["truncate"]])


def _bytes(parts: list) -> tuple[bytes, int | None]:
    """The parts' bytes, and the offset of the first part that is not UTF-8 text."""
    out, first = b"", None
    for p in parts:
        (kind, value), = p.items()
        if kind not in ("text", "bom") and first is None:
            first = len(out)
        out += {"text": lambda v: v.encode(), "hex": bytes.fromhex,
                "bom": lambda v: b"\xef\xbb\xbf", "latin1": lambda v: v.encode("latin-1"),
                "utf16": lambda v: v.encode("utf-16")}[kind](value)
    return out, first


def where(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    col = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"byte {offset} (line {line}, column {col})"


def make_files(case: dict, root: Path) -> list[str]:
    """Write the case's files under ``root``; the "byte B (line L, column C)" of the first bad
    bytes of each ``parts`` file."""
    at = []
    for rel, spec in case.get("files", {}).items():
        assert rel.startswith("bad/"), rel  # never inside the linked folders
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if "parquet" in spec:
            write_parquet(path, spec["parquet"])
        elif "parts" in spec:
            data, first = _bytes(spec["parts"])
            path.write_bytes(data)
            if first is not None:
                at.append(where(data, first))
        else:
            path.write_text(spec["text"])
    return at


# ------------------------------------------------------------------------- what must not change

def snapshot(*roots: Path) -> dict:
    out = {}
    for root in roots:
        for p in sorted(root.glob("lm_eval-*.json") if root.name == "zflow" else root.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                st = p.stat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One lm-eval task index for the module (built once, 20-40 s cold: zflow.taskindex); the
    shared cache of the checkout when it exists."""
    from zflow import taskindex

    shared = REPO / ".snakemake" / "zflow"
    d = shared if any(shared.glob("lm_eval-*.json")) else tmp_path_factory.mktemp("c") / "zflow"
    old = os.environ.get("ZFLOW_CACHE_DIR")
    os.environ["ZFLOW_CACHE_DIR"] = str(d)
    taskindex.registry()  # warm: nothing is written from here on
    yield d
    if old is None:
        os.environ.pop("ZFLOW_CACHE_DIR", None)
    else:
        os.environ["ZFLOW_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def untouched(cache):
    """The files a case could reach outside its folder: the linked folders and the cache."""
    roots = [REPO / d for d in LINKED] + [cache]
    before = snapshot(*roots)
    return lambda: snapshot(*roots) == before or pytest.fail(
        f"files changed outside the case's folder: "
        f"{sorted(set(snapshot(*roots).items()) ^ set(before.items()))[:5]}")


def check_message(case: dict, text: str, tmp: Path, at: list[str], edited: str | None = None):
    assert "Traceback" not in text, text
    for frag in _fmt(case["expect"], tmp):
        assert frag in text, f"{case['id']}: {frag!r} not in:\n{text}"
    if case.get("expect_at"):
        assert at and at[0] in text, f"{case['id']}: {at} not in:\n{text}"
    if case.get("expect_line_of"):
        n = next(i for i, ln in enumerate(edited.splitlines(), 1) if case["expect_line_of"] in ln)
        assert f"line {n}," in text, f"{case['id']}: line {n} not in:\n{text}"


def case_dir(tmp_path: Path) -> Path:
    for d in LINKED:
        (tmp_path / d).symlink_to(REPO / d)
    return tmp_path


def by(via: str):
    return [pytest.param(c, id=c["id"]) for c in CASES if c.get("via", "plan") == via]


# ------------------------------------------------------------------------------ the cases

@pytest.mark.parametrize("case", by("plan"))
def test_plan_refuses(case, tmp_path, untouched, capsys):
    tmp = case_dir(tmp_path)
    at = make_files(case, tmp)
    cfg = patched(case, tmp)
    if case.get("warn"):  # allowed, but said on stderr
        Plan(cfg, base=tmp)
        check_message(case, capsys.readouterr().err, tmp, at)
    else:
        with pytest.raises(ConfigError) as e:
            Plan(cfg, base=tmp)
        check_message(case, str(e.value), tmp, at)
    untouched()


@pytest.mark.parametrize("case", by("yaml"))
def test_config_file_refused(case, tmp_path, untouched):
    f = tmp_path / "config.yaml"
    at = []
    if "yaml_parts" in case:
        data, first = _bytes(case["yaml_parts"])
        f.write_bytes(data)
        at = [where(data, first)]
    else:
        f.write_text(case["yaml_text"])
    with pytest.raises(ConfigError) as e:
        inputs.check_yaml([f])
    check_message(case, str(e.value), tmp_path, at)
    untouched()


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory) -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.train_from_iterator(_words("tok", 50), trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return str(path)


@pytest.mark.parametrize("case", by("job"))
def test_job_names_the_damage(case, tmp_path, untouched, tokenizer_json, capsys, monkeypatch):
    import tokenize_source
    import train_tokenizer

    at = make_files(case, tmp_path)
    monkeypatch.chdir(tmp_path)  # the jobs' results/ (zflow.io.owned) is the case's
    src = tmp_path / "bad" / "src"
    files = sorted(p.name for p in src.glob("*.parquet"))
    spec = tmp_path / "spec.json"
    if case["job"] == "train_tokenizer":
        spec.write_text(json.dumps({
            "sources": [{"name": "src", "dir": str(src), "glob": "*.parquet", "text_key": "text"}],
            "vocab_size": 300, "min_frequency": 2, "output": "results/tokenizers/t"}))
        main = train_tokenizer.main
        args = ["--spec", str(spec)]
    else:
        spec.write_text(json.dumps({
            "files": files, "input": str(src), "checksum": "x", "tokenizer": tokenizer_json,
            "eos_token": "<|endoftext|>", "text_key": "text", "source": "src",
            "group": "g00000",  # absolute: fsspec caches a folder by its path as given
            "work_dir": str(tmp_path / "results/logs/tokenize/t/src/g00000"),
            "output": str(tmp_path / "results/tokenized/t/src/g00000"),
            "stats": str(tmp_path / "results/tokenized/t/src/g00000.stats.json")}))
        main = tokenize_source.main
        args = ["--spec", str(spec), "--workers", "1"]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err[-3000:]
    check_message(case, lines[0], tmp_path, at)
    assert "Traceback" not in err
    assert not (tmp_path / "results" / "tokenizers").exists()
    assert not (tmp_path / "results" / "tokenized").exists()
    if case["job"] == "tokenize":  # nothing kept to resume from: the next run reads all again
        work = tmp_path / "results/logs/tokenize/t/src/g00000"
        assert not any((work / e).exists() for e in tokenize_source.STATE)
    untouched()


@pytest.fixture(scope="module")
def wf(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("bad") / "wf")


@pytest.mark.parametrize("case", by("dry_run"))
def test_dry_run_refuses_before_any_job(case, wf, untouched, cache):
    wd = wf
    shutil.rmtree(wd / "bad", ignore_errors=True)
    at = make_files(case, wd)
    edited = None
    if "text_edit" in case:
        old, new = case["text_edit"]
        text = (REPO / "config" / "config.yaml").read_text()
        assert text.count(old) == 1, old
        edited = text.replace(old, new)
        (wd / "config" / "config.yaml").write_text(edited)
    else:
        write_config(wd, patched(case, Path("bad")))
    try:
        p = snakemake(wd, "--dry-run", "all", check=False, timeout=300,
                      extra_env={"ZFLOW_CACHE_DIR": str(cache)})
    finally:
        shutil.copy2(REPO / "config" / "config.yaml", wd / "config" / "config.yaml")
    out = p.stdout + p.stderr
    assert p.returncode != 0, out[-3000:]
    assert not (wd / "results").exists(), "a job ran despite the bad input"
    check_message(case, out, wd, at, edited)
    untouched()


def test_the_sweep_is_big_enough():
    assert len(CASES) >= 100
    assert len({c["id"] for c in CASES}) == len(CASES)


def test_lm_eval_index_is_cached(tmp_path, monkeypatch, capsys):
    """lm-eval's index is built once per lm-eval version, location and task-folder change
    (20-40 s), then read from the cache file; without lm-eval no name is checked."""
    from zflow import taskindex

    monkeypatch.setenv("ZFLOW_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(taskindex, "_MEMO", {})
    built = []

    def build(tasks_dir):
        built.append(tasks_dir)
        return {"kinds": {"t": "task", "g": "group"}, "members": {"g": ["t", "u"]}}

    monkeypatch.setattr(taskindex, "_build_registry", build)
    idx = taskindex.registry()
    assert len(built) == 1 and "indexing the tasks of lm-eval" in capsys.readouterr().err
    assert idx.kind("t") == "task" and taskindex.missing_members(idx, "g") == [("g", "u")]
    [f] = tmp_path.glob("lm_eval-*.json")
    monkeypatch.setattr(taskindex, "_MEMO", {})
    assert taskindex.registry().kinds == idx.kinds and len(built) == 1  # from the file
    data = json.loads(f.read_text())
    data["key"]["mtime_ns"] -= 1  # lm-eval's task folder changed since
    f.write_text(json.dumps(data))
    monkeypatch.setattr(taskindex, "_MEMO", {})
    taskindex.registry()
    assert len(built) == 2
    monkeypatch.setattr(taskindex, "_installed", lambda: None)
    assert taskindex.registry() is None
