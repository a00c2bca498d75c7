"""Generate the project-written corpus and eval tasks of the embedded default (deterministic).

Writes parquet shards under ``--out-data`` in four sources shaped like the production mix
(Italian web prose, English web prose, Italian document-like texts, source code with a
``content`` column like starcoderdata) and three lm-eval task folders under ``--out-tasks``
shaped like arc_it, hellaswag_it and m_mmlu_it. Every sentence comes from the templates below and
the facts, vocabularies and templates of ``tools/tables/`` (corpus.yaml, documents.yaml,
task_files.yaml; written for this project); the facts the evals ask about recur across many
documents. Seeded ``random.Random`` streams make the output byte-identical on every run.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

SEED = 20261123
TABLES = Path(__file__).resolve().parent / "tables"


def table(name: str) -> dict:
    """One YAML file of tools/tables/ (rows are lists read by position; see the comments there)."""
    return yaml.safe_load((TABLES / f"{name}.yaml").read_text(encoding="utf-8"))


_C = table("corpus")
NUM_IT, NUM_EN = _C["num_it"], _C["num_en"]
COUNTRIES, REGIONS, ANIMALS, JOBS = _C["countries"], _C["regions"], _C["animals"], _C["jobs"]
COLOUR_BASES, COLOURS = _C["colour_bases"], _C["colours"]
WEATHER, WARM, SCIENCE, EFFECTS = _C["weather"], _C["warm"], _C["science"], _C["effects"]
NAMES_M, NAMES_F, NAMES_EN, CITIES = _C["names_m"], _C["names_f"], _C["names_en"], _C["cities"]
NAMES = NAMES_M + NAMES_F
TOWNS, RIVERS, BUILDINGS = _C["towns"], _C["rivers"], _C["buildings"]
DAYS, MONTHS, SEASONS, SUBJECTS = _C["days"], _C["months"], _C["seasons"], _C["subjects"]
DISHES, DISHES_EN, COUNTABLE, ODD_ENDINGS = _C["dishes"], _C["dishes_en"], _C["countable"], _C["odd_endings"]
_D = table("documents")
PDF_KINDS, PDF_SECTIONS = _D["pdf_kinds"], _D["pdf_sections"]
PY_NOUNS, PY_HEADS, PY_SNIPPETS = _D["python_lists"], _D["python_heads"], _D["python_snippets"]
TASK_FILES = table("task_files")
MC_YAML, MMLU_YAML = TASK_FILES["multiple_choice"], TASK_FILES["mmlu_it"]


def cap(s):
    return s[0].upper() + s[1:]


def low(s):
    return s if s.split()[0] in ("January", "December", "Tuesday") else s[0].lower() + s[1:]


DI = {"il ": "del ", "lo ": "dello ", "la ": "della ", "l'": "dell'", "i ": "dei ", "gli ": "degli ", "le ": "delle "}


def prep(p, noun):
    """'di' + article: prep('di', 'la Francia') -> 'della Francia'."""
    art = next((a for a in DI if noun.startswith(a)), None)
    return DI[art] + noun[len(art):] if art else f"{p} {noun}"


def bare(noun):
    """'la Francia' -> 'Francia' (for 'in Francia')."""
    art = next((a for a in DI if noun.startswith(a)), "")
    return noun[len(art):]


def colour(base, gender):
    return base[:-1] + "a" if gender == "f" and base.endswith("o") else base


# ---------------------------------------------------------------- Italian sentences

def it_fact(r):
    """One stable fact sentence (the evals ask about these)."""
    c, g, a, t, j = (r.choice(x) for x in (COUNTRIES, REGIONS, ANIMALS, COLOURS, JOBS))
    x, y = sorted((r.randint(1, 10), r.randint(1, 10)), reverse=True)
    return r.choice([
        f"La capitale {prep('di', c[0])} è {c[1]}.", f"{c[1]} è la capitale {prep('di', c[0])}.",
        f"In {bare(c[0])} si parla {c[2]}.", f"{cap(c[0])} si trova {c[3]}.",
        f"Il capoluogo {prep('di', g[0])} è {g[2]}.", f"{g[2]} è il capoluogo {prep('di', g[0])}.",
        f"{g[2]} si trova {g[1]}.", f"{cap(a[0])} è {a[1]}.", f"{cap(a[0])} {a[2]}.",
        f"{cap(a[0])} è {a[1]} e {a[2]}.", f"{cap(a[0])} {a[3]} e {a[4]}.", f"{cap(t[0])} è {colour(t[2], t[1])}.",
        f"{cap(t[0])} è {colour(t[2], t[1])}.", f"{cap(j[0])} {j[1]}.", f"{cap(j[0])} lavora {j[2]}.",
        f"{cap(j[0])} {j[1]} {j[2]}.", f"{cap(NUM_IT[x])} più {NUM_IT[y]} fa {NUM_IT[x + y]}.",
        f"{cap(NUM_IT[x])} meno {NUM_IT[y]} fa {NUM_IT[x - y]}.",
        r.choice(SCIENCE)["it"], r.choice(SCIENCE)["it"], r.choice(SCIENCE)["it"], r.choice(SCIENCE)["it"]])


def it_story(r):
    """A short everyday sentence; many mirror the hellaswag-like contexts."""
    n, m = r.choice(NAMES), r.choice(NAMES_M)
    w, j, c, e, a, s = (r.choice(x) for x in (WEATHER, JOBS, COUNTRIES, EFFECTS, ANIMALS, SEASONS))
    (thing, other), x, y = r.choice(COUNTABLE), r.randint(2, 9), r.randint(2, 9)
    return r.choice([
        f"Quando {w[0]}, {n} {w[1]}.", f"{n} {w[1]} perché {w[0]}.", f"{m} fa {j[0]} e ogni giorno {j[1]} {j[2]}.",
        f"{n} va in vacanza in {bare(c[0])} e visita la capitale, {c[1]}.", e[0].format(n=n) + " " + e[1],
        f"{n} ha {NUM_IT[x]} {thing} e ne compra {other} {NUM_IT[y]}, quindi ora ne ha {NUM_IT[x + y]}.",
        f"{n} ha visto {a[0]} e ha imparato che {a[0]} {a[3]}.",
        f"{cap(s[0])} {s[1]}, e {n} passa {r.choice(['il sabato', 'la domenica'])} "
        f"{r.choice(['al parco', 'in montagna', 'al mare', 'dai nonni'])}.",
        f"Il {r.choice(DAYS[:5])} {n} studia {r.choice(SUBJECTS)} con "
        f"{r.choice(['la sorella', 'un amico', 'i compagni', 'la nonna'])}.",
        f"{n} abita a {r.choice(CITIES)} e a pranzo mangia spesso {r.choice(DISHES)[0]}."])


def para(r, fns, lo, hi):
    return " ".join(r.choice(fns)(r) for _ in range(r.randint(lo, hi)))


# Italian web pages: the opening of each genre (n: a name)

def it_travel(r, n):
    c = r.choice([x for x in COUNTRIES if x[1] != "Roma"])
    return (f"Quest'anno siamo partiti da {r.choice(CITIES)} per un viaggio in {bare(c[0])}. "
            f"La capitale {prep('di', c[0])} è {c[1]} e l'abbiamo visitata in {NUM_IT[r.randint(2, 6)]} giorni. "
            f"In {bare(c[0])} si parla {c[2]}, quindi abbiamo imparato qualche parola nuova. "
            f"{cap(c[0])} si trova {c[3]}. {n} va in vacanza in {bare(c[0])} e visita la capitale, {c[1]}.")


def it_recipe(r, n):
    d = r.choice(DISHES)
    return (f"Oggi vi spiego come preparare {d[0]}. Per preparare {d[0]} servono {d[1]}. "
            f"Per prima cosa si mette l'acqua sul fuoco. L'acqua bolle a cento gradi. "
            f"In tutto servono circa {r.choice([20, 30, 40, 50, 60])} minuti. {n} mette la pentola sul fuoco e "
            f"aspetta che l'acqua bolla a cento gradi. Buon appetito!")


def it_animal(r, n):
    a = r.choice(ANIMALS)
    return (f"Oggi parliamo di un animale: {a[0]}. {cap(a[0])} è {a[1]}. {cap(a[0])} {a[2]}. "
            f"{cap(a[0])} {a[3]} e {a[4]}. {cap(a[0])} è {a[1]} e {a[2]}.")


def it_diary(r, n):
    return (f"Caro diario, oggi è {r.choice(DAYS)} e a scuola abbiamo studiato {r.choice(SUBJECTS)}. "
            f"La maestra ci ha spiegato che {low(r.choice(SCIENCE)['it'])} Poi ci ha detto che "
            f"{low(r.choice(SCIENCE)['it'])} Domani ripasseremo tutto insieme.")


def it_history(r, n):
    """Invented local history / news."""
    t, y = r.choice(TOWNS), r.randint(1450, 1950)
    return (f"Secondo le cronache locali, nel {y} gli abitanti di {t} costruirono {r.choice(BUILDINGS)}. "
            f"Nel {y + r.randint(5, 60)} una grande piena del fiume {r.choice(RIVERS)} allagò le campagne. "
            f"Ogni anno, a {r.choice(MONTHS)}, a {t} si tiene la festa {prep('di', r.choice(DISHES)[0])}. "
            f"Il paese ha {r.randint(3, 90)} mila abitanti e si trova vicino a {r.choice(CITIES)}.")


def it_weather(r, n):
    w, c = r.choice(WEATHER), r.choice(CITIES)
    return (f"Previsioni del tempo per {r.choice(DAYS)}: a {c} {w[0]} per tutta la giornata. "
            f"Chi esce di casa {w[1]}. {n} {w[1]} perché {w[0]}. La temperatura sarà di "
            f"{r.randint(24, 34) if w[1] in WARM else r.randint(-3, 12)} gradi.")


def it_quiz(r, n):
    """A quiz page in the eval formats."""
    items = r.sample(QA_POOL, r.randint(3, 6))
    lines = [f"Quiz di cultura generale numero {r.randint(1, 300)}."]
    for q in items:
        if r.random() < 0.5:
            lines.append(f"Domanda: {q[1]}\nRisposta: {q[2]}.")
        else:
            opts = r.sample(q[3], 3) + [q[2]]
            r.shuffle(opts)
            lines.append(q[1] + "".join(f"\n{L}. {o}" for L, o in zip("ABCD", opts))
                         + f"\nRisposta: {'ABCD'[opts.index(q[2])]}")
    return "\n".join(lines)


IT_GENRES = [it_travel, it_recipe, it_animal, it_diary, it_history, it_weather, it_quiz]


def it_web(r):
    """One Italian web page: a genre opening plus paragraphs of facts and stories."""
    g = r.randrange(len(IT_GENRES))
    head = IT_GENRES[g](r, r.choice(NAMES))
    parts = [head] + [para(r, [it_fact, it_story, it_story], 3, 7) for _ in range(r.randint(1, 3))]
    return "\n\n".join(parts)


# ---------------------------------------------------------------- English sentences

def en_sentence(r):
    n = r.choice(NAMES_EN)
    c, a, t, j, w, d = (r.choice(x) for x in (COUNTRIES, ANIMALS, COLOURS, JOBS, WEATHER, DISHES_EN))
    x, y = r.randint(1, 10), r.randint(1, 10)
    return r.choice([
        f"The capital of {c[4]} is {c[5]}.", f"People in {c[4]} speak {c[6]}.", f"{c[4]} is {c[7]}.",
        f"{n} went on holiday to {c[4]} and visited {c[5]}.", f"{cap(a[5])} is {a[6]}.", f"{cap(a[5])} {a[7]}.",
        f"{cap(a[5])} {a[8]}.", f"{cap(t[3])} is {t[4]}.", f"{cap(j[3])} {j[4]}.", f"{cap(j[3])} works {j[5]}.",
        f"{n} is {j[3]} and {j[4]} every day.", f"When {w[2]}, {n} {w[3]}.", f"{n} {w[3]} because {w[2]}.",
        f"{cap(NUM_EN[x])} plus {NUM_EN[y]} is {NUM_EN[x + y]}.", f"To make {d[0]} you need {d[1]}.",
        f"On {r.choice(['Monday', 'Tuesday', 'Friday', 'Saturday'])} {n} reads a book in the library.",
        r.choice(SCIENCE)["en"], r.choice(SCIENCE)["en"], r.choice(SCIENCE)["en"]])


# English web pages: the opening of each genre (n: a name)

def en_travel(r, n):
    c = r.choice(COUNTRIES)
    return (f"Travel notes: this spring we visited {c[4]}. The capital of {c[4]} is {c[5]}. "
            f"People in {c[4]} speak {c[6]}, and {c[4]} is {c[7]}. We stayed in {c[5]} for "
            f"{NUM_EN[r.randint(2, 9)]} days.")


def en_recipe(r, n):
    d = r.choice(DISHES_EN)
    return (f"Today I will show you how to make {d[0]}. To make {d[0]} you need {d[1]}. "
            f"First, put a pot of water on the stove. Water boils at one hundred degrees. "
            f"Cook for {r.choice([10, 15, 20, 30])} minutes and enjoy your meal.")


def en_animal(r, n):
    a = r.choice(ANIMALS)
    return (f"Animal facts: {a[5]}. {cap(a[5])} is {a[6]}. {cap(a[5])} {a[7]} and {a[8]}. "
            f"{n} likes to watch {a[5]} at the {r.choice(['farm', 'zoo', 'park'])}.")


def en_diary(r, n):
    return (f"Dear diary, today at school we studied {r.choice(['maths', 'history', 'geography', 'science'])}. "
            f"The teacher said that {low(r.choice(SCIENCE)['en'])} {n} asked many questions.")


EN_GENRES = [en_travel, en_recipe, en_animal, en_diary]


def en_web(r):
    g = r.randrange(len(EN_GENRES))
    head = EN_GENRES[g](r, r.choice(NAMES_EN))
    return "\n\n".join([head] + [para(r, [en_sentence], 3, 7) for _ in range(r.randint(1, 3))])


# ---------------------------------------------------------------- Italian document-like texts

def pdf_doc(r):
    title_t, pool = r.choice(sorted(PDF_KINDS.items()))
    fill = lambda s: s.format(  # noqa: E731
        t=r.choice(TOWNS), m=f"{r.choice('ABCFKT')}-{r.randint(100, 999)}", h1=r.choice([8, 9]),
        h2=r.choice([18, 19]), k=r.randint(2, 6), d=r.choice([10, 15, 20, 30]),
        c=r.choice(["verde", "rossa", "blu", "gialla"]), cm=r.choice(["blu", "giallo", "bianco"]),
        g=r.choice([180, 200, 220, 250]), day=r.choice(DAYS), n=r.randint(80, 400), s=r.choice(SUBJECTS),
        city=r.choice(CITIES), f=low(r.choice(SCIENCE)["it"]), F=it_fact(r))
    lines = [fill(title_t), f"Anno {r.randint(2005, 2025)} – documento n. {r.randint(1, 120)}"]
    for i, sec in enumerate(sorted(r.sample(PDF_SECTIONS, r.randint(3, 5)), key=PDF_SECTIONS.index)):
        lines.append(f"Art. {i + 1} – {sec}")
        body = [fill(x) for x in r.sample(pool, r.randint(2, 4))]
        body += [it_fact(r) for _ in range(r.randint(1, 3))]
        lines.append(" ".join(body))
    return "\n\n".join(lines)


# ---------------------------------------------------------------- source code

def _animal_fields(a):
    return {"animal": a[0], "sound": a[2]}


# the fields each Python snippet draws besides {v} and {n}, by snippet number
SNIPPET_FIELDS = {
    0: lambda r, n: dict(zip(("op", "word"), r.choice([("+", "add"), ("-", "sub"), ("*", "mul")]))),
    1: lambda r, n: {"cmp": r.choice([">", "<", ">=", "!="])},
    3: lambda r, n: {"cls": r.choice(["Contatore", "Counter", "Accumulatore", "Tally"])},
    5: lambda r, n: {"body": "".join(f'    "{bare(c[0])}": "{c[1]}",\n'
                                     for c in r.sample(COUNTRIES, r.randint(3, 6)))},
    7: lambda r, n: {"f": r.choice(["fattoriale", "factorial"])},
    9: lambda r, n: {"values": ", ".join(str(r.randint(0, 30)) for _ in range(n))},
    10: lambda r, n: _animal_fields(r.choice(ANIMALS)),
}


def py_snippet(r, k):
    v, n = r.choice(PY_NOUNS), r.randint(2, 9)
    fields = SNIPPET_FIELDS[k](r, n) if k in SNIPPET_FIELDS else {}
    return PY_SNIPPETS[k].format(v=v, n=n, **fields)


def code_doc(r):
    k = r.random()
    if k < 0.1:
        d, ext = r.choice(["data", "logs", "dati", "report"]), r.choice(["txt", "csv", "log"])
        return ("content", "shell", _D["shell"].format(dir=d, ext=ext))
    if k < 0.2:
        cs = r.sample(COUNTRIES, r.randint(3, 6))
        vals = ",\n    ".join(f"('{bare(c[0]).replace(chr(39), chr(39) * 2)}', '{c[1]}')" for c in cs)
        return ("content", "sql", _D["sql"].format(values=vals))
    head = r.choice(PY_HEADS)
    src = (head + "\n\n\n" if head else "") + "\n\n".join(
        py_snippet(r, k) for k in r.sample(range(len(PY_SNIPPETS)), r.randint(2, 5)))
    ast.parse(src)  # every Python document must be valid syntax
    return ("content", "python", src)


# ---------------------------------------------------------------- question pool (corpus quizzes + evals)

SUMS = [(2, 3), (4, 5), (3, 6), (7, 2), (5, 5), (8, 4), (6, 7), (9, 3), (1, 8), (4, 4), (6, 2), (9, 9)]


def near_numbers(nums, s):
    """The number words from s - 4 to s + 4 (within 0..20), capitalised, but s."""
    return [cap(nums[x]) for x in range(max(0, s - 4), min(20, s + 4) + 1) if x != s]


def build_pool():
    """(category, question, right answer, wrong candidates) about facts stated in the corpus."""
    pool = []
    caps = sorted({c[1] for c in COUNTRIES})
    for c in COUNTRIES:
        pool.append(("capitale", f"Qual è la capitale {prep('di', c[0])}?", c[1], [x for x in caps if x != c[1]]))
        langs = sorted({cap(x[2]) for x in COUNTRIES} - {cap(c[2])})
        pool.append(("lingua", f"Quale lingua si parla in {bare(c[0])}?", cap(c[2]), langs))
    for g in REGIONS:
        pool.append(("regione", f"Qual è il capoluogo {prep('di', g[0])}?", g[2],
                     [x[2] for x in REGIONS if x[2] != g[2]]))
    for a in ANIMALS:
        pool.append(("verso", f"Quale animale {a[2]}?", cap(a[0]), [cap(x[0]) for x in ANIMALS if x != a]))
        if a[1] != "un anfibio":  # a frog is also wild: not asked
            pool.append(("tipo", f"Che tipo di animale è {a[0]}?", cap(a[1]),
                         sorted({cap(x[1]) for x in ANIMALS} - {cap(a[1])})))
    for t in COLOURS:
        right, near = colour(t[2], t[1]), {"azzurro": "blu", "blu": "azzurro"}.get(t[2], t[2])
        pool.append(("colore", f"Di che colore è {t[0]}?", cap(right),
                     sorted({cap(colour(b, t[1])) for b in COLOUR_BASES if b not in (t[2], near)})))
    for j in JOBS:
        pool.append(("chi", f"Chi {j[1]}?", cap(j[0]), [cap(x[0]) for x in JOBS if x != j]))
        pool.append(("dove", f"Dove lavora {j[0]}?", cap(j[2]), [cap(x[2]) for x in JOBS if x != j]))
    pool += [("scienze", s["q"], s["a"], s["wrong"]) for s in SCIENCE if "q" in s]
    pool += [("conti", f"Quanto fa {NUM_IT[a]} più {NUM_IT[b]}?", cap(NUM_IT[a + b]), near_numbers(NUM_IT, a + b))
             for a, b in SUMS]
    return pool


QA_POOL = build_pool()


# ---------------------------------------------------------------- writing

def write_source(out: Path, name: str, docs: list[dict], shards: int) -> tuple[int, list[Path]]:
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    for old in sorted(d.glob("*.parquet")):
        old.unlink()
    size, paths = 0, []
    for s in range(shards):
        part = docs[s::shards]
        table_ = pa.table({k: pa.array([doc[k] for doc in part], pa.string()) for k in part[0]})
        path = d / f"{s:03d}_00000.parquet"
        pq.write_table(table_, path, compression="snappy")
        size += path.stat().st_size
        paths.append(path)
    return size, paths


def make_docs(r, maker, n, lo=40, hi=400):
    docs = []
    while len(docs) < n:
        d = maker(r)
        if lo <= len((d[2] if isinstance(d, tuple) else d).split()) <= hi:
            docs.append(d)
    return docs


WEB = ["blog", "notizie", "portale", "forum"]
# the four sources: (name, shards, documents, maker, word range, row builder)
SOURCES = [
    ("fineweb2_ita", 3, 1500, it_web, (40, 400), lambda i, r, t: {
        "text": t, "id": f"ita-web-{i:05d}", "url": f"https://{r.choice(WEB)}.example.org/it/{i:05d}",
        "language": "ita"}),
    ("fineweb_eng", 2, 1500, en_web, (40, 400), lambda i, r, t: {
        "text": t, "id": f"eng-web-{i:05d}", "url": f"https://www.example.org/{r.choice(WEB)}/{i:05d}",
        "language": "eng"}),
    ("finepdfs_ita", 1, 490, pdf_doc, (120, 400), lambda i, r, t: {
        "text": t, "id": f"ita-pdf-{i:05d}", "language": "ita"}),
    ("starcoder", 1, 1580, code_doc, (20, 400), lambda i, r, t: {
        "content": t[2], "id": f"code-{i:05d}", "lang": t[1]}),
]


def corpus(out: Path) -> None:
    total = 0
    for off, (name, shards, n, maker, (lo, hi), row) in enumerate(SOURCES):
        r = random.Random(SEED + off)
        docs = [row(i, r, t) for i, t in enumerate(make_docs(r, maker, n, lo, hi))]
        size, paths = write_source(out, name, docs, shards)
        total += size
        print(f"{name}: {len(docs)} documents, {shards} shard(s), {size} bytes "
              f"({', '.join(p.name for p in paths)})")
    print(f"corpus total: {total} bytes under {out}")


def write_jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in rows), encoding="utf-8")


def write_task(out: Path, name: str, yaml_text: str, splits: dict, extra: dict | None = None) -> None:
    """One lm-eval task folder: <name>.yaml, the ``extra`` files and one JSONL file per split."""
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.yaml").write_text(yaml_text, encoding="utf-8")
    for fname, text in (extra or {}).items():
        (d / fname).write_text(text, encoding="utf-8")
    for split, items in splits.items():
        write_jsonl(d / f"{split}.jsonl", items)
    print(f"{name}: " + ", ".join(f"{k}.jsonl={len(v)} items" for k, v in splits.items()))


# ---------------------------------------------------------------- multiple-choice tasks

def golds(r, n):
    g = [i % 4 for i in range(n)]
    r.shuffle(g)
    return g


def place(r, right, wrong, gold):
    choices = r.sample(wrong, 3)
    choices.insert(gold, right)
    return choices


def balance(r, cands):
    """40 of the (category, context, ending) candidates: at most 7 per category, distinct contexts."""
    r.shuffle(cands)
    per, chosen = {}, []
    for c in cands:
        if per.get(c[0], 0) < 7 and c[1] not in {x[1] for x in chosen}:
            per[c[0]] = per.get(c[0], 0) + 1
            chosen.append(c)
    return chosen[:40], cands


def hellaswag_items(r):
    """(category, context, natural ending) built from the same templates as the corpus stories."""
    cands = [("meteo", f"{n} {w[1]} perché", f"{w[0]}.") for w in WEATHER for n in NAMES[::3]]
    cands += [("lavoro", f"{r.choice(NAMES_M)} fa {j[0]} e ogni giorno", f"{j[1]} {j[2]}.") for j in JOBS]
    cands += [("viaggio", f"{r.choice(NAMES)} va in vacanza in {bare(c[0])} e visita la capitale,", f"{c[1]}.")
              for c in COUNTRIES]
    cands += [("animale", f"{cap(a[0])} è {a[1]} e", f"{a[2]}.") for a in ANIMALS]
    cands += [("effetto", e[0].format(n=n), e[1]) for e in EFFECTS for n in r.sample(NAMES, 2)]
    for thing, other in COUNTABLE:
        a, b = r.randint(2, 9), r.randint(2, 9)
        cands.append(("conti", f"{r.choice(NAMES)} ha {NUM_IT[a]} {thing} e ne compra {other} {NUM_IT[b]}, "
                      "quindi ora ne ha", f"{NUM_IT[a + b]}."))
    return balance(r, cands)


def mc_tasks(out: Path, r, pool: list, hellaswag, spec: dict) -> None:
    """The arc-, hellaswag- and mmlu-like tasks of one language: questions from ``pool``, hellaswag
    items from ``hellaswag(r)``; ``spec`` gives the task names, the query format, the categories whose
    endings are distractors for the others and the extra nonsense endings."""
    r.shuffle(pool)
    arc_items, mmlu_items = pool[:40], pool[40:85]
    arc = [{"id": f"{spec['arc']}-{i:03d}", "query": spec["query"].format(q),
            "choices": place(r, right, wrong, g), "gold": g}
           for i, ((_, q, right, wrong), g) in enumerate(zip(arc_items, golds(r, 40)))]
    write_task(out, spec["arc"], MC_YAML.replace("NAME", spec["arc"]), {"test": arc})

    items, cands = hellaswag(r)
    hs = []
    for i, ((cat_, ctx, right), g) in enumerate(zip(items, golds(r, 40))):
        # distractors: endings that cannot follow this context (capitals, animals, numbers, nonsense)
        others = sorted({c[2] for c in cands if c[0] in spec["distractors"] and c[0] != cat_})
        hs.append({"id": f"{spec['hellaswag']}-{i:03d}", "query": ctx,
                   "choices": place(r, right, others + spec["odd"], g), "gold": g})
    write_task(out, spec["hellaswag"], MC_YAML.replace("NAME", spec["hellaswag"]), {"test": hs})

    mm = []
    for i, ((_, q, right, wrong), g) in enumerate(zip(mmlu_items, golds(r, 45))):
        ch = place(r, right, wrong, g)
        mm.append({"id": f"{spec['mmlu']}-{i:03d}", "instruction": q, "option_a": ch[0], "option_b": ch[1],
                   "option_c": ch[2], "option_d": ch[3], "answer": "ABCD"[g]})
    write_task(out, spec["mmlu"], spec["mmlu_yaml"], {"test": mm[5:], "dev": mm[:5]})


TASKS_IT = {"arc": "mini_arc_it", "hellaswag": "mini_hellaswag_it", "mmlu": "mini_m_mmlu_it",
            "mmlu_yaml": MMLU_YAML, "query": "Domanda: {}\nRisposta:",
            "distractors": ("viaggio", "animale", "conti"), "odd": ODD_ENDINGS}


def tasks(out: Path) -> None:
    mc_tasks(out, random.Random(SEED + 10), list(QA_POOL), hellaswag_items, TASKS_IT)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-data", default="data/embedded", help="folder for the parquet sources")
    p.add_argument("--out-tasks", default="resources/eval_tasks", help="folder for the lm-eval task folders")
    args = p.parse_args(argv)
    corpus(Path(args.out_data))
    tasks(Path(args.out_tasks))


if __name__ == "__main__":
    main()
