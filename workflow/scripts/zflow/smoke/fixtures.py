"""Same-shape stand-ins of the hub data sets config/zagreus.yaml downloads (smoke run).

Each supported ``repo_id`` gets files with the data set's real columns, types, nesting and file
layout (``SHAPES`` says which, and where that schema comes from); only the content is local: text
drawn deterministically from the embedded default (``data/embedded``, written for this project,
so nothing copyrighted). The files are written under ``dest`` at the paths the hub layout has,
keeping those that the ``allow_patterns`` select (``fnmatch``, as huggingface_hub filters
``allow_patterns``), so a path pattern that selects the real files also finds these.

- :func:`write_source`: pretraining sources (fineweb-2, fineweb-edu, finepdfs, starcoderdata);
- :func:`write_chat`: post-training sets (OpenItalianData, DeepScaleR, Dolci-Instruct-DPO).

A data set not in ``SHAPES`` raises ValueError: add its entry to ``SHAPES`` and a row writer to
``_ROWS`` (and its file layout to ``_LAYOUT``) in this module.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import random
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["SHAPES", "Shape", "write_source", "write_chat", "schema"]

REPO = Path(__file__).resolve().parents[4]
EMBEDDED = REPO / "data" / "embedded"

MESSAGES = pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))


@dataclass(frozen=True)
class Shape:
    """One hub data set's shape: what the stand-in reproduces."""

    kind: str  # "source" (pretraining text, write_source) or "chat" (write_chat)
    fmt: str  # "parquet" or "json" (one JSON array)
    columns: tuple  # ((name, pyarrow type), ...) in the data set's order
    text: str  # the column holding the text (sources) or the conversation (chat)
    layout: str  # the hub's file layout, and which file a pattern gets here
    schema_from: str  # where the columns and types were read
    verified: bool  # False: some of the schema rests on an unconfirmed copy (see notes)
    notes: str = ""


SHAPES: dict[str, Shape] = {
    "HuggingFaceFW/fineweb-2": Shape(
        kind="source", fmt="parquet",
        columns=(("text", pa.string()), ("id", pa.string()), ("dump", pa.string()),
                 ("url", pa.string()), ("date", pa.string()), ("file_path", pa.string()),
                 ("language", pa.string()), ("language_score", pa.float64()),
                 ("language_script", pa.string()), ("minhash_cluster_size", pa.int64()),
                 ("top_langs", pa.string())),
        text="text",
        layout="data/<lang>_<Script>/{train,test}/NNN_00000.parquet; a pattern's folder "
               "(data/ita_Latn/train/...) and shard prefix (NNN_) are kept, else "
               "data/ita_Latn/train/000_00000.parquet",
        schema_from="dataset card features (dataset_info), as copied by public derivatives "
                    "(e.g. data-is-better-together/fineweb2-2k-samples); layout: the "
                    "production-shapes notes (stored copies of the hub's file tree)",
        verified=True,
        notes="top_langs is a JSON object in a string ({'ita_Latn_score': 0.98, ...})"),
    "HuggingFaceFW/fineweb-edu": Shape(
        kind="source", fmt="parquet",
        columns=(("text", pa.string()), ("id", pa.string()), ("dump", pa.string()),
                 ("url", pa.string()), ("file_path", pa.string()), ("language", pa.string()),
                 ("language_score", pa.float64()), ("token_count", pa.int64()),
                 ("score", pa.float64()), ("int_score", pa.int64())),
        text="text",
        layout="sample/<NNN>BT/<NNN>_00000.parquet (a pattern such as sample/350BT/000_*.parquet "
               "gets sample/350BT/000_00000.parquet) or data/CC-MAIN-YYYY-WW/000_00000.parquet",
        schema_from="dataset viewer columns (copied by public derivatives of sample-10BT); no "
                    "`date` column, unlike fineweb-2",
        verified=True),
    "HuggingFaceFW/finepdfs": Shape(
        kind="source", fmt="parquet",
        columns=(("text", pa.string()), ("id", pa.string()), ("dump", pa.string()),
                 ("url", pa.string()), ("date", pa.string()), ("file_path", pa.string()),
                 ("offset", pa.int64()), ("token_count", pa.int64()), ("language", pa.string()),
                 ("page_average_lid", pa.string()), ("page_average_lid_score", pa.float64()),
                 ("full_doc_lid", pa.string()), ("full_doc_lid_score", pa.float64()),
                 ("per_page_languages", pa.list_(pa.string())), ("is_truncated", pa.bool_()),
                 ("extractor", pa.string()), ("page_ends", pa.list_(pa.int64()))),
        text="text",
        layout="data/<lang>_<Script>/train/NNN_00000.parquet (as fineweb-2)",
        schema_from="dataset card features, as copied by public derivatives (e.g. "
                    "ReactiveAI/finepdfs-pl)",
        verified=True,
        notes="newer score columns (fw_edu_scores, ...) seen only in derivatives: left out "
              "(unverified); page_ends are the character offsets where each page ends"),
    "bigcode/starcoderdata": Shape(
        kind="source", fmt="parquet",
        columns=(("max_stars_repo_path", pa.string()), ("max_stars_repo_name", pa.string()),
                 ("max_stars_count", pa.int64()), ("id", pa.string()), ("content", pa.string())),
        text="content",
        layout="<language>/train-00000-of-00059.parquet under the pattern's folder "
               "(python/*.parquet -> python/train-00000-of-00059.parquet); the shard count is "
               "python's, reused for any folder",
        schema_from="dataset card features, as copied by public derivatives (e.g. "
                    "zhensuuu/starcoderdata_100star_py)",
        verified=True),
    "DeepMount00/OpenItalianData": Shape(
        kind="chat", fmt="parquet",
        columns=(("conversation", MESSAGES),),
        text="conversation",
        layout="data/train-00000-of-00003.parquet (parquet only: json/jsonl patterns select none)",
        schema_from="dataset card features (conversation: list of {content, role}) and the hub's "
                    "file tree, from stored copies of the hub pages",
        verified=True,
        notes="system turns occur in some rows"),
    "agentica-org/DeepScaleR-Preview-Dataset": Shape(
        kind="chat", fmt="json",
        columns=(("problem", pa.string()), ("answer", pa.string()), ("solution", pa.string())),
        text="problem",
        layout="one deepscaler.json at the root: a JSON array of {problem, answer, solution}",
        schema_from="hub file tree (one deepscaler.json, ~21 MB) from a stored copy; the row keys "
                    "from the dataset card (unverified)",
        verified=False,
        notes="solution is often empty; answers here are numbers (checkable by math-verify)"),
    "allenai/Dolci-Instruct-DPO": Shape(
        kind="chat", fmt="parquet",
        columns=(("prompt_id", pa.string()), ("chosen", MESSAGES), ("rejected", MESSAGES),
                 ("chosen_model", pa.string()), ("rejected_model", pa.string()),
                 ("preference_type", pa.string())),
        text="chosen",
        layout="data/train-00000-of-00001.parquet (unverified: the shard names are not known)",
        schema_from="the production-shapes notes (chosen/rejected hold the whole conversation, "
                    "TRL's implicit-prompt format); column order, the shard names and whether "
                    "a separate `prompt` column exists: unverified",
        verified=False,
        notes="chosen and rejected share every turn but the last assistant one"),
}


def schema(repo_id: str) -> pa.Schema:
    """The pyarrow schema of a data set's rows (``SHAPES[repo_id].columns``)."""
    return pa.schema(list(_shape(repo_id).columns))


def _shape(repo_id: str) -> Shape:
    if repo_id not in SHAPES:
        raise ValueError(
            f"no smoke fixture for hub data set '{repo_id}': add its columns and layout to "
            f"SHAPES, and its row writer to _ROWS and file layout to _LAYOUT, in "
            f"workflow/scripts/zflow/smoke/fixtures.py (supported: {', '.join(sorted(SHAPES))})")
    return SHAPES[repo_id]


# ------------------------------------------------------------------------------------------------
# Embedded text (project-written)


@lru_cache(maxsize=None)
def _pool(name: str) -> tuple:
    """The texts of one embedded corpus folder (data/embedded/<name>/*.parquet)."""
    out = []
    for f in sorted((EMBEDDED / name).glob("*.parquet")):
        t = pq.read_table(f)
        col = "content" if "content" in t.column_names else "text"
        out += [x for x in t.column(col).to_pylist() if x and x.strip()]
    if not out:
        raise FileNotFoundError(f"{EMBEDDED / name}: no embedded text to draw fixtures from")
    return tuple(out)


@lru_cache(maxsize=None)
def _jsonl(rel: str) -> tuple:
    path = EMBEDDED / "posttrain" / rel
    return tuple(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip())


def _draw(items, n: int, rng: random.Random) -> list:
    """``n`` items in a seeded order, cycling through the pool when it is shorter."""
    order = list(range(len(items)))
    rng.shuffle(order)
    return [items[order[i % len(order)]] for i in range(n)]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# Three-letter codes of the embedded text: Italian and English prose. The embedded default has no
# Spanish, French or Portuguese text: those configs get Italian documents (the fixture keeps the
# data set's shape, columns and layout; the language of the words does not matter to a smoke run).
def _prose(lang3: str, pdf: bool = False) -> tuple:
    if lang3 == "eng":
        return _pool("fineweb_eng")
    return _pool("finepdfs_ita" if pdf else "fineweb2_ita")


# ------------------------------------------------------------------------------------------------
# File layout: the hub path a pattern selects


def _shard(pattern: str) -> int:
    m = re.search(r"(?:^|/)(\d{3})_[^/]*$", pattern)
    return int(m.group(1)) if m else 0


def _lang_config(pattern: str) -> tuple[str, str]:
    m = re.search(r"data/([a-z]{3}_[A-Z][a-z]{3})/(train|test)/", pattern)
    return (m.group(1), m.group(2)) if m else ("ita_Latn", "train")


def _layout_fineweb2(pattern: str) -> str:
    cfg, split = _lang_config(pattern)
    return f"data/{cfg}/{split}/{_shard(pattern):03d}_00000.parquet"


def _layout_fineweb_edu(pattern: str) -> str:
    m = re.search(r"sample/(\d+BT)/", pattern)
    if m:
        return f"sample/{m.group(1)}/{_shard(pattern):03d}_00000.parquet"
    m = re.search(r"data/(CC-MAIN-\d{4}-\d{2})/", pattern)
    if m:
        return f"data/{m.group(1)}/{_shard(pattern):03d}_00000.parquet"
    return "sample/350BT/000_00000.parquet"


def _layout_starcoder(pattern: str) -> str:
    m = re.match(r"([A-Za-z0-9_+#.-]+)/", pattern)
    folder = m.group(1) if m and "*" not in m.group(1) else "python"
    return f"{folder}/train-00000-of-00059.parquet"


_LAYOUT = {
    "HuggingFaceFW/fineweb-2": _layout_fineweb2,
    "HuggingFaceFW/fineweb-edu": _layout_fineweb_edu,
    "HuggingFaceFW/finepdfs": _layout_fineweb2,
    "bigcode/starcoderdata": _layout_starcoder,
    "DeepMount00/OpenItalianData": lambda p: "data/train-00000-of-00003.parquet",
    "agentica-org/DeepScaleR-Preview-Dataset": lambda p: "deepscaler.json",
    "allenai/Dolci-Instruct-DPO": lambda p: "data/train-00000-of-00001.parquet",
}


def _paths(repo_id: str, allow_patterns: list[str]) -> list[str]:
    """The fixture files (hub paths) that ``allow_patterns`` select, one per pattern at most."""
    if isinstance(allow_patterns, str):
        allow_patterns = [allow_patterns]
    patterns = list(allow_patterns or ["*"])
    out: list[str] = []
    for p in patterns:
        path = _LAYOUT[repo_id](p)
        if any(fnmatch.fnmatch(path, q) for q in patterns) and path not in out:
            out.append(path)
    if not out:
        raise ValueError(f"{repo_id}: allow_patterns {patterns} select none of the fixture's files "
                         f"({SHAPES[repo_id].layout}); extend _LAYOUT in "
                         f"workflow/scripts/zflow/smoke/fixtures.py")
    return out


# ------------------------------------------------------------------------------------------------
# Rows


DUMPS = ("CC-MAIN-2023-50", "CC-MAIN-2024-10", "CC-MAIN-2024-18", "CC-MAIN-2024-33")


def _common(rng: random.Random, i: int, host: str) -> dict:
    dump = DUMPS[rng.randrange(len(DUMPS))]
    seg = 1700000000000 + rng.randrange(10**9)
    return {
        "id": f"<urn:uuid:{_uuid(rng)}>",
        "dump": dump,
        "url": f"https://{host}/{i:05d}",
        "date": f"{dump[8:12]}-0{rng.randrange(1, 10)}-{rng.randrange(10, 29)}T"
                f"{rng.randrange(10, 24)}:{rng.randrange(10, 60)}:{rng.randrange(10, 60)}Z",
        "file_path": f"s3://commoncrawl/crawl-data/{dump}/segments/{seg}.{rng.randrange(10, 99)}"
                     f"/warc/CC-MAIN-{seg}-{seg + 1}-{rng.randrange(100000):05d}.warc.gz",
    }


def _tokens(text: str) -> int:
    return max(1, round(len(text.split()) * 1.3))


def _rows_fineweb2(path: str, n: int, rng: random.Random) -> list[dict]:
    cfg = path.split("/")[1]
    lang, script = cfg.split("_")
    rows = []
    for i, text in enumerate(_draw(_prose(lang), n, rng)):
        score = round(rng.uniform(0.7, 1.0), 6)
        top = {f"{cfg}_score": score, "eng_Latn_score": round(rng.uniform(0.0, 1.0 - score), 6)}
        rows.append({"text": text, **_common(rng, i, f"www.example-{lang}.org/page"),
                     "language": lang, "language_score": score, "language_script": script,
                     "minhash_cluster_size": rng.randrange(1, 40),
                     "top_langs": json.dumps(top)})
    return rows


def _rows_fineweb_edu(path: str, n: int, rng: random.Random) -> list[dict]:
    rows = []
    for i, text in enumerate(_draw(_prose("eng"), n, rng)):
        common = _common(rng, i, "www.example.org/edu")
        del common["date"]  # fineweb-edu has no date column
        score = round(rng.uniform(2.5, 4.6), 6)  # the 350BT sample keeps int_score >= 3
        rows.append({"text": text, **common, "language": "en",
                     "language_score": round(rng.uniform(0.85, 1.0), 6),
                     "token_count": _tokens(text), "score": score,
                     "int_score": max(3, int(round(score)))})
    return rows


def _pages(text: str, rng: random.Random) -> list[int]:
    """Page ends (character offsets) at paragraph breaks: two or three pages per document."""
    breaks = [m.end() for m in re.finditer(r"\n\n", text)]
    k = min(len(breaks), rng.randrange(1, 3))
    ends = sorted(rng.sample(breaks, k)) if k else []
    return ends + [len(text)]


def _rows_finepdfs(path: str, n: int, rng: random.Random) -> list[dict]:
    cfg = path.split("/")[1]
    rows = []
    for i, text in enumerate(_draw(_prose(cfg[:3], pdf=True), n, rng)):
        common = _common(rng, i, f"docs.example-{cfg[:3]}.org/pdf")
        common["url"] += ".pdf"
        ends = _pages(text, rng)
        score = round(rng.uniform(0.8, 1.0), 6)
        rows.append({"text": text, **common, "offset": 0, "token_count": _tokens(text),
                     "language": cfg, "page_average_lid": cfg, "page_average_lid_score": score,
                     "full_doc_lid": cfg, "full_doc_lid_score": round(rng.uniform(0.8, 1.0), 6),
                     "per_page_languages": [cfg] * len(ends), "is_truncated": False,
                     "extractor": ("docling", "rolmOCR")[rng.randrange(2)], "page_ends": ends})
    return rows


def _rows_starcoder(path: str, n: int, rng: random.Random) -> list[dict]:
    # the embedded code is Python: folders other than python/ get it too (shape, not language)
    rows = []
    for i, code in enumerate(_draw(_pool("starcoder"), n, rng)):
        rows.append({"max_stars_repo_path": f"src/modulo_{i:03d}.py",
                     "max_stars_repo_name": f"example-user/progetto-{rng.randrange(1000):03d}",
                     "max_stars_count": rng.randrange(0, 500),
                     "id": f"{rng.getrandbits(64):016x}", "content": code})
    return rows


def _msgs(messages: list[dict]) -> list[dict]:
    return [{"content": m["content"], "role": m["role"]} for m in messages]


def _rows_openitaliandata(path: str, n: int, rng: random.Random) -> list[dict]:
    return [{"conversation": _msgs(r["conversation"])}
            for r in _draw(_jsonl("openitaliandata.jsonl"), n, rng)]


_BOXED = re.compile(r"\s*(Scrivi la risposta finale in|Put the final answer in) \\boxed\{\}\.\s*$")
_OPTION = re.compile(r"^([A-D])\) (.+)$", re.M)


def _math_problems() -> list[tuple[str, str]]:
    """(problem, numeric answer): grpo/math.jsonl without its \\boxed{} request (DeepScaleR's
    problems do not ask for one), then grpo/choice.jsonl's arithmetic items as open questions."""
    out = [(_BOXED.sub("", r["prompt"]), str(r["answer"])) for r in _jsonl("grpo/math.jsonl")]
    for r in _jsonl("grpo/choice.jsonl"):
        options = dict(_OPTION.findall(r["prompt"]))
        answer = options.get(r["choice_answer"], "")
        if re.fullmatch(r"-?\d+", answer):
            out.append((r["prompt"].split("\n", 1)[0], answer))
    return out


def _rows_deepscaler(path: str, n: int, rng: random.Random) -> list[dict]:
    rows = []
    for i, (problem, answer) in enumerate(_draw(_math_problems(), n, rng)):
        solution = "" if i % 4 else f"The result is {answer}.\n\\boxed{{{answer}}}"
        rows.append({"problem": problem, "answer": answer, "solution": solution})
    return rows


def _rows_dolci(path: str, n: int, rng: random.Random) -> list[dict]:
    chats = [r["messages"] for r in _jsonl("chat_en.jsonl")]
    rows = []
    for i, r in enumerate(_draw(_jsonl("preferences_en.jsonl"), n, rng)):
        prefix: list[dict] = []
        if i % 3 == 1:  # a multi-turn conversation: an earlier exchange before the prompt
            chat = chats[rng.randrange(len(chats))]
            first = next(k for k, m in enumerate(chat) if m["role"] == "assistant")
            prefix = chat[: first + 1]
        prompt = prefix + r["prompt"]
        pid = hashlib.sha256(json.dumps(prompt, sort_keys=True).encode()).hexdigest()[:24]
        rows.append({"prompt_id": pid, "chosen": _msgs(prompt + r["chosen"]),
                     "rejected": _msgs(prompt + r["rejected"]),
                     "chosen_model": "standin-chosen-model",
                     "rejected_model": "standin-rejected-model",
                     "preference_type": ("delta_learning", "on_policy")[i % 2]})
    return rows


_ROWS = {
    "HuggingFaceFW/fineweb-2": _rows_fineweb2,
    "HuggingFaceFW/fineweb-edu": _rows_fineweb_edu,
    "HuggingFaceFW/finepdfs": _rows_finepdfs,
    "bigcode/starcoderdata": _rows_starcoder,
    "DeepMount00/OpenItalianData": _rows_openitaliandata,
    "agentica-org/DeepScaleR-Preview-Dataset": _rows_deepscaler,
    "allenai/Dolci-Instruct-DPO": _rows_dolci,
}


# ------------------------------------------------------------------------------------------------
# Writers


def _write(repo_id: str, kind: str, allow_patterns: list[str], dest: Path, rows: int,
           seed: int) -> list[Path]:
    shape = _shape(repo_id)
    if shape.kind != kind:
        other = "write_chat" if shape.kind == "chat" else "write_source"
        raise ValueError(f"'{repo_id}' is a {shape.kind} data set: write it with {other}")
    if rows < 1:
        raise ValueError(f"rows must be at least 1, not {rows}")
    dest = Path(dest)
    written = []
    for rel in _paths(repo_id, allow_patterns):
        rng = random.Random(f"{seed}:{repo_id}:{rel}")
        data = _ROWS[repo_id](rel, rows, rng)
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if shape.fmt == "json":
            names = [c for c, _ in shape.columns]
            out.write_text(json.dumps([{k: r[k] for k in names} for r in data],
                                      ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        else:
            pq.write_table(pa.Table.from_pylist(data, schema=schema(repo_id)), out)
        written.append(out)
    return written


def write_source(repo_id: str, allow_patterns: list[str], dest: Path, rows: int = 200,
                 seed: int = 0) -> list[Path]:
    """Write a pretraining source's stand-in files under ``dest`` (the hub layout that
    ``allow_patterns`` select, ``rows`` rows each); returns the files written."""
    return _write(repo_id, "source", allow_patterns, dest, rows, seed)


def write_chat(repo_id: str, allow_patterns: list[str], dest: Path, rows: int = 64,
               seed: int = 0) -> list[Path]:
    """Write a post-training set's stand-in files under ``dest`` (the hub layout that
    ``allow_patterns`` select, ``rows`` rows each); returns the files written."""
    return _write(repo_id, "chat", allow_patterns, dest, rows, seed)
