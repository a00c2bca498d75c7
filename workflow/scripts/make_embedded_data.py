"""Generate the project-written corpus and eval tasks of the embedded default (deterministic).

Writes parquet shards under ``--out-data`` (four sources shaped like the production mix:
Italian web prose, English web prose, Italian document-like texts, Python code with a
``content`` column like starcoderdata) and three lm-eval task folders under ``--out-tasks``
shaped like arc_it, hellaswag_it and m_mmlu_it. All text comes from the templates below.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20261123

# (country with article, capital) — facts recur in the corpus and are asked by the evals.
CAPITALS_IT = [("la Francia", "Parigi"), ("la Spagna", "Madrid"), ("il Portogallo", "Lisbona"),
               ("la Germania", "Berlino"), ("l'Italia", "Roma"), ("l'Austria", "Vienna"),
               ("la Grecia", "Atene"), ("la Polonia", "Varsavia"), ("l'Irlanda", "Dublino"),
               ("la Svezia", "Stoccolma"), ("la Norvegia", "Oslo"), ("il Belgio", "Bruxelles")]
CAPITALS_EN = [("France", "Paris"), ("Spain", "Madrid"), ("Portugal", "Lisbon"),
               ("Germany", "Berlin"), ("Italy", "Rome"), ("Austria", "Vienna"),
               ("Greece", "Athens"), ("Poland", "Warsaw"), ("Ireland", "Dublin"),
               ("Sweden", "Stockholm"), ("Norway", "Oslo"), ("Belgium", "Brussels")]
# (animal with article, kind, sound/verb)
ANIMALS_IT = [("il gatto", "un animale domestico", "miagola"), ("il cane", "un animale domestico", "abbaia"),
              ("la mucca", "un animale da fattoria", "muggisce"), ("il cavallo", "un animale da fattoria", "nitrisce"),
              ("il leone", "un animale selvatico", "ruggisce"), ("il lupo", "un animale selvatico", "ulula"),
              ("la pecora", "un animale da fattoria", "bela"), ("l'aquila", "un uccello rapace", "stride")]
ANIMALS_EN = [("the cat", "a pet", "meows"), ("the dog", "a pet", "barks"), ("the cow", "a farm animal", "moos"),
              ("the horse", "a farm animal", "neighs"), ("the lion", "a wild animal", "roars"),
              ("the wolf", "a wild animal", "howls"), ("the sheep", "a farm animal", "bleats")]
COLORS_IT = [("il cielo", "azzurro"), ("l'erba", "verde"), ("la neve", "bianca"), ("il carbone", "nero"),
             ("il sangue", "rosso"), ("il sole", "giallo"), ("l'arancia", "arancione")]
FACTS_IT = ["L'acqua bolle a cento gradi.", "L'acqua gela a zero gradi.",
            "La Terra gira intorno al Sole.", "Una settimana ha sette giorni.",
            "Un anno ha dodici mesi.", "Il Sole sorge a est e tramonta a ovest.",
            "Le piante producono ossigeno.", "La Luna gira intorno alla Terra."]
FACTS_EN = ["Water boils at one hundred degrees.", "Water freezes at zero degrees.",
            "The Earth goes around the Sun.", "A week has seven days.", "A year has twelve months.",
            "The Sun rises in the east and sets in the west.", "Plants produce oxygen."]
NAMES_IT = ["Marco", "Giulia", "Luca", "Sofia", "Matteo", "Chiara", "Andrea", "Elena", "Paolo", "Anna"]
NAMES_EN = ["John", "Mary", "Peter", "Emma", "David", "Alice", "James", "Lucy", "Tom", "Sarah"]
CITIES_IT = ["Milano", "Napoli", "Torino", "Bologna", "Firenze", "Venezia", "Genova", "Bari", "Palermo", "Verona"]
FOODS_IT = ["la pasta", "la pizza", "il risotto", "il pane", "la minestra", "il formaggio", "la frutta", "il gelato"]
FOODS_EN = ["pasta", "bread", "soup", "rice", "cheese", "fruit", "salad", "ice cream"]
JOBS_IT = [("il medico", "cura i malati"), ("l'insegnante", "insegna agli studenti"),
           ("il cuoco", "prepara da mangiare"), ("il contadino", "coltiva la terra"),
           ("il pilota", "guida l'aereo"), ("il pittore", "dipinge quadri")]
JOBS_EN = [("a doctor", "takes care of sick people"), ("a teacher", "teaches students"),
           ("a cook", "prepares food"), ("a farmer", "grows crops"), ("a pilot", "flies planes")]
WEATHER_IT = [("piove", "prende l'ombrello"), ("fa freddo", "indossa il cappotto"),
              ("fa caldo", "beve molta acqua"), ("nevica", "mette i guanti"), ("c'è il sole", "va al parco")]
WEATHER_EN = [("it rains", "takes an umbrella"), ("it is cold", "wears a coat"),
              ("it is hot", "drinks a lot of water"), ("it snows", "puts on gloves")]
DAYS_IT = ["lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"]
SUBJECTS_IT = ["la matematica", "la storia", "la geografia", "la musica", "le scienze", "l'italiano"]
NUM_IT = ["zero", "uno", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove", "dieci",
          "undici", "dodici", "tredici", "quattordici", "quindici", "sedici", "diciassette",
          "diciotto", "diciannove", "venti"]
NUM_EN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen", "twenty"]


def cap(s):
    return s[0].upper() + s[1:]


def di(noun):
    """Italian 'di' + article: di + la Francia -> della Francia."""
    for art, prep in (("il ", "del "), ("la ", "della "), ("l'", "dell'"), ("lo ", "dello ")):
        if noun.startswith(art):
            return prep + noun[len(art):]
    return "di " + noun


def it_sentence(r):
    k = r.randrange(9)
    if k == 0:
        c, city = r.choice(CAPITALS_IT)
        return f"La capitale {di(c)} è {city}."
    if k == 1:
        a, kind, verb = r.choice(ANIMALS_IT)
        return r.choice([f"{cap(a)} è {kind}.", f"{cap(a)} {verb}.", f"{cap(a)} è {kind} e {verb}."])
    if k == 2:
        thing, col = r.choice(COLORS_IT)
        return f"{cap(thing)} è {col}."
    if k == 3:
        return r.choice(FACTS_IT)
    if k == 4:
        n, city, food = r.choice(NAMES_IT), r.choice(CITIES_IT), r.choice(FOODS_IT)
        return f"{n} abita a {city} e il {r.choice(DAYS_IT)} mangia {food}."
    if k == 5:
        job, what = r.choice(JOBS_IT)
        return f"{cap(job)} {what}."
    if k == 6:
        w, act = r.choice(WEATHER_IT)
        return f"Quando {w}, {r.choice(NAMES_IT)} {act}."
    if k == 7:
        a, b = r.randrange(10), r.randrange(10)
        return f"{cap(NUM_IT[a])} più {NUM_IT[b]} fa {NUM_IT[a + b]}."
    n = r.choice(NAMES_IT)
    return f"A scuola {n} studia {r.choice(SUBJECTS_IT)} con passione."


def en_sentence(r):
    k = r.randrange(8)
    if k == 0:
        c, city = r.choice(CAPITALS_EN)
        return f"The capital of {c} is {city}."
    if k == 1:
        a, kind, verb = r.choice(ANIMALS_EN)
        return r.choice([f"{cap(a)} is {kind}.", f"{cap(a)} {verb}."])
    if k == 2:
        return r.choice(FACTS_EN)
    if k == 3:
        n, food = r.choice(NAMES_EN), r.choice(FOODS_EN)
        return f"{n} likes {food} and eats it every {r.choice(['Monday', 'Friday', 'Sunday'])}."
    if k == 4:
        job, what = r.choice(JOBS_EN)
        return f"{cap(job)} {what}."
    if k == 5:
        w, act = r.choice(WEATHER_EN)
        return f"When {w}, {r.choice(NAMES_EN)} {act}."
    if k == 6:
        a, b = r.randrange(10), r.randrange(10)
        return f"{cap(NUM_EN[a])} plus {NUM_EN[b]} is {NUM_EN[a + b]}."
    return f"{r.choice(NAMES_EN)} reads a book in the library after school."


def paragraph(r, fn, n):
    return " ".join(fn(r) for _ in range(n))


def web_doc(r, fn):
    return "\n\n".join(paragraph(r, fn, r.randint(3, 7)) for _ in range(r.randint(1, 4)))


def pdf_doc(r):
    title = r.choice(["Regolamento", "Relazione annuale", "Manuale d'uso", "Circolare", "Verbale"])
    parts = [f"{title} n. {r.randint(1, 99)}/{r.randint(2001, 2025)}"]
    for i in range(r.randint(3, 6)):
        parts.append(f"Articolo {i + 1}.")
        parts.append(paragraph(r, it_sentence, r.randint(3, 6)))
    return "\n\n".join(parts)


def code_doc(r):
    name = r.choice(["somma", "media", "conta", "filtra", "scala", "total", "average", "count"])
    var = r.choice(["valori", "numeri", "items", "values", "dati"])
    n = r.randint(2, 9)
    funcs = [
        f'def {name}_{n}({var}):\n    """Restituisce il risultato su {var}."""\n'
        f"    risultato = 0\n    for x in {var}:\n        risultato += x * {n}\n    return risultato\n",
        f"def {name}_pari({var}):\n    return [x for x in {var} if x % 2 == 0]\n",
        f"class Contatore{n}:\n    def __init__(self):\n        self.valore = 0\n\n"
        f"    def incrementa(self, passo={n}):\n        self.valore += passo\n        return self.valore\n",
        f"def {name}_massimo({var}):\n    migliore = None\n    for x in {var}:\n"
        f"        if migliore is None or x > migliore:\n            migliore = x\n    return migliore\n",
        f'if __name__ == "__main__":\n    print({name}_{n}([{", ".join(str(r.randint(0, 9)) for _ in range(4))}]))\n',
    ]
    r.shuffle(funcs)
    return "import math\n\n\n" + "\n\n".join(funcs[: r.randint(2, 5)])


def write_source(out: Path, name: str, docs: list[dict], shards: int) -> int:
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("*.parquet"):
        old.unlink()
    size = 0
    for s in range(shards):
        part = docs[s::shards]
        cols = {k: [doc[k] for doc in part] for k in part[0]}
        path = d / f"{s:03d}_00000.parquet"
        pq.write_table(pa.table(cols), path, compression="zstd")
        size += path.stat().st_size
    return size


def corpus(out: Path, r: random.Random) -> None:
    plan = [
        ("fineweb2_ita", 3, 1400, lambda i: {"text": web_doc(r, it_sentence), "id": f"ita-{i}",
                                             "url": f"https://www.example.org/it/{i}", "language": "ita"}),
        ("fineweb_eng", 2, 700, lambda i: {"text": web_doc(r, en_sentence), "id": f"eng-{i}",
                                           "url": f"https://www.example.org/en/{i}", "language": "eng"}),
        ("finepdfs_ita", 1, 180, lambda i: {"text": pdf_doc(r), "id": f"pdf-{i}", "language": "ita"}),
        ("starcoder", 1, 500, lambda i: {"content": code_doc(r), "id": f"code-{i}", "lang": "python"}),
    ]
    for name, shards, n, make in plan:
        docs = [make(i) for i in range(n)]
        size = write_source(out, name, docs, shards)
        print(f"{name}: {n} documents, {shards} shards, {size} bytes")


def write_task(out: Path, name: str, yaml_text: str, splits: dict) -> None:
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.yaml").write_text(yaml_text)
    for split, rows in splits.items():
        (d / f"{split}.jsonl").write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    print(f"{name}: " + ", ".join(f"{k}={len(v)}" for k, v in splits.items()))


MC_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: test.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{query}}}}"
doc_to_target: "{{{{gold}}}}"
doc_to_choice: "{{{{choices}}}}"
should_decontaminate: false
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""

MMLU_YAML = """task: mini_m_mmlu_it
dataset_path: json
dataset_kwargs:
  data_files:
    test: test.jsonl
    dev: dev.jsonl
test_split: test
fewshot_split: dev
fewshot_config:
  sampler: first_n
output_type: multiple_choice
doc_to_text: "{{instruction.strip()}}\\nA. {{option_a}}\\nB. {{option_b}}\\nC. {{option_c}}\\nD. {{option_d}}\\nRisposta:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def questions(r):
    """(question, right answer, three wrong answers) about facts in the corpus."""
    qs = []
    cities = [c for _, c in CAPITALS_IT]
    for country, city in CAPITALS_IT:
        qs.append((f"Qual è la capitale {di(country)}?", city, r.sample([c for c in cities if c != city], 3)))
    for a, kind, verb in ANIMALS_IT:
        verbs = sorted({v for _, _, v in ANIMALS_IT} - {verb})
        qs.append((f"Che verso fa {a}?", cap(verb), [cap(v) for v in r.sample(verbs, 3)]))
    for thing, col in COLORS_IT:
        cols = sorted({c for _, c in COLORS_IT} - {col})
        qs.append((f"Di che colore è {thing}?", col, r.sample(cols, 3)))
    for job, what in JOBS_IT:
        others = sorted({w for _, w in JOBS_IT} - {what})
        qs.append((f"Che cosa fa {job}?", cap(what), [cap(w) for w in r.sample(others, 3)]))
    for _ in range(12):
        a, b = r.randrange(10), r.randrange(10)
        wrong = r.sample([NUM_IT[x] for x in range(21) if x != a + b], 3)
        qs.append((f"Quanto fa {NUM_IT[a]} più {NUM_IT[b]}?", NUM_IT[a + b], wrong))
    qs.append(("A quanti gradi bolle l'acqua?", "A cento gradi", ["A zero gradi", "A dieci gradi", "A venti gradi"]))
    qs.append(("Quanti giorni ha una settimana?", "Sette", ["Cinque", "Dieci", "Dodici"]))
    r.shuffle(qs)
    return qs


def shuffled(r, right, wrong, i):
    choices = list(wrong)
    gold = i % 4
    choices.insert(gold, right)
    return choices, gold


def tasks(out: Path, r: random.Random) -> None:
    qs = questions(r)
    arc = []
    for i, (q, right, wrong) in enumerate(qs[:40]):
        choices, gold = shuffled(r, right, wrong, i + 1)
        arc.append({"id": f"arc-{i}", "query": f"Domanda: {q}\nRisposta:", "choices": choices, "gold": gold})
    write_task(out, "mini_arc_it", MC_YAML.format(name="mini_arc_it"), {"test": arc})

    hs = []
    for i in range(40):
        k = i % 4
        if k == 0:
            w, act = r.choice(WEATHER_IT)
            n = r.choice(NAMES_IT)
            ctx, right = f"Quando {w}, {n}", f"{act}."
            wrong = [f"{a}." for _, a in WEATHER_IT if a != act][:3]
        elif k == 1:
            a, kind, verb = r.choice(ANIMALS_IT)
            ctx, right = f"{cap(a)} è", f"{kind}."
            wrong = ["una capitale europea.", "un numero pari.", "una materia scolastica."]
        elif k == 2:
            country, city = r.choice(CAPITALS_IT)
            ctx, right = f"La capitale {di(country)} è", f"{city}."
            wrong = [f"{c}." for c in r.sample([c for _, c in CAPITALS_IT if c != city], 3)]
        else:
            job, what = r.choice(JOBS_IT)
            ctx, right = cap(job), f"{what}."
            wrong = [f"{w}." for w in r.sample([w for _, w in JOBS_IT if w != what], 3)]
        choices, gold = shuffled(r, right, wrong, i + 2)
        hs.append({"id": f"hs-{i}", "query": ctx, "choices": choices, "gold": gold})
    write_task(out, "mini_hellaswag_it", MC_YAML.format(name="mini_hellaswag_it"), {"test": hs})

    mm = []
    pool = qs[-45:]
    for i, (q, right, wrong) in enumerate(pool):
        choices, gold = shuffled(r, right, wrong, i + 3)
        mm.append({"id": f"mmlu-{i}", "instruction": q, "option_a": choices[0], "option_b": choices[1],
                   "option_c": choices[2], "option_d": choices[3], "answer": "ABCD"[gold]})
    write_task(out, "mini_m_mmlu_it", MMLU_YAML, {"test": mm[5:], "dev": mm[:5]})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out-data", default="data/embedded")
    p.add_argument("--out-tasks", default="resources/eval_tasks")
    args = p.parse_args(argv)
    r = random.Random(SEED)
    corpus(Path(args.out_data), r)
    tasks(Path(args.out_tasks), r)


if __name__ == "__main__":
    main()
