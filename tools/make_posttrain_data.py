"""Generate the project-written post-training sets and the English and IFEval-style eval tasks (deterministic).

Writes, under ``--out-data``, chat SFT sets in the shapes the field uses (TRL ``messages``, ShareGPT
``conversations``, the OpenItalianData ``conversation`` field), a function-calling set with
OpenAI-style tool schemas plus a few structured-output rows, and Italian/English preference pairs
for DPO; under ``--out-tasks``, the lm-eval task folders mini_arc_en, mini_hellaswag_en and
mini_mmlu_en (shaped like the Italian ones written by make_embedded_data.py, about the facts of its
English corpus) and mini_ifeval_it / mini_ifeval_en (IFEval rows scored by lm-eval's own ifeval
code). Every text comes from the templates below and the small fact tables of ``tools/tables/``
(qa.yaml, instructions.yaml, tools.yaml, ifeval.yaml, and the corpus facts of corpus.yaml), written
for this project. The instruction-following answers obey their instruction (checked here by
``obeys``), the rejected preference answers do not. Fixed-seed ``random.Random`` streams make the
output byte-identical.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

# the facts of the pretraining corpus, so that the chat data and the eval tasks speak of them
from make_embedded_data import (
    ANIMALS, COLOUR_BASES, COLOURS, COUNTRIES, JOBS, NAMES_EN, NUM_EN, NUM_IT, SCIENCE, SUMS, TASK_FILES, WEATHER,
    balance, bare, cap, colour, mc_tasks, near_numbers, table, write_jsonl, write_task,
)
from make_embedded_data import DAYS as DAYS_IT
from make_embedded_data import MONTHS as MONTHS_IT
from make_embedded_data import prep as _prep

SEED = 20261207
LANGS = ("it", "en")

_Q = table("qa")
REGIONS, COLOUR_EN, NAMES_IT, ODD_EN = _Q["regions"], _Q["colour_en"], _Q["names_it"], _Q["odd_en"]
SCIENCE_IT = [s for s in SCIENCE if "q" in s]  # the corpus facts that come with a question
SCIENCE_EN = _Q["science_en"]
DEFS = {"it": _Q["definitions_it"], "en": _Q["definitions_en"]}
HOWTO = {"it": _Q["howto_it"], "en": _Q["howto_en"]}
DISHES_IT, DISHES_EN = _Q["dishes_it"], _Q["dishes_en"]
MONTHS_EN, DAYS_EN = _Q["months_en"], _Q["days_en"]
_I = table("instructions")
INSTR, KEYWORD_SENTENCES, END_PHRASES = _I["instructions"], _I["keyword_sentences"], _I["end_phrases"]
POSTSCRIPTS, COMMA_TAILS, FILLER = _I["postscripts"], _I["comma_tails"], _I["filler"]
STOP = {lang: set(words) for lang, words in _I["stop"].items()}
SYSTEMS, FOLLOW_UPS, OP_WORDS = _I["systems"], _I["follow_ups"], _I["op_words"]
IF_KINDS = sorted(INSTR)


def prep(noun):
    """'di' + article: prep('la Francia') -> 'della Francia'."""
    return _prep("di", noun)


def join(items, lang):
    return ", ".join(items[:-1]) + (" e " if lang == "it" else " and ") + items[-1] if len(items) > 1 else items[0]


def nwords(text):
    """Words as IFEval counts them (runs of \\w)."""
    return len(re.findall(r"\w+", text))


def fmt_num(x, lang):
    s = str(int(x)) if float(x).is_integer() else f"{x:.2f}"
    return s.replace(".", ",") if lang == "it" else s


# ---------------------------------------------------------------- question/answer pool

def fact(q, a, short, bad, title):
    return {"q": q, "a": a, "short": short, "bad": bad, "title": title}


def other(r, values, right):
    return r.choice(sorted({v for v in values if v != right}))


def it_countries(r):
    out = []
    caps_, langs = [c[1] for c in COUNTRIES], [c[2] for c in COUNTRIES]
    for c in COUNTRIES:
        d = prep(c[0])
        out.append(fact(f"Qual è la capitale {d}?", f"La capitale {d} è {c[1]}.", c[1],
                        f"La capitale {d} è {other(r, caps_, c[1])}.", f"La capitale {d}"))
        out.append(fact(f"Quale lingua si parla in {bare(c[0])}?", f"In {bare(c[0])} si parla {c[2]}.", cap(c[2]),
                        f"In {bare(c[0])} si parla {other(r, langs, c[2])}.", f"La lingua {d}"))
        out.append(fact(f"Dove si trova {c[0]}?", f"{cap(c[0])} si trova {c[3]}.", cap(c[3]),
                        f"{cap(c[0])} si trova {r.choice(['in Africa', 'in America', 'in Oceania'])}.",
                        f"Dove si trova {c[0]}"))
    for g in REGIONS:
        d = prep(g[0])
        out.append(fact(f"Qual è il capoluogo {d}?", f"Il capoluogo {d} è {g[2]}.", g[2],
                        f"Il capoluogo {d} è {other(r, [x[2] for x in REGIONS], g[2])}.", f"Il capoluogo {d}"))
    return out


def it_animals(r):
    out = []
    for a in ANIMALS:
        A, d = cap(a[0]), prep(a[0])
        out.append(fact(f"Che verso fa {a[0]}?", f"{A} {a[2]}.", cap(a[2]),
                        f"{A} {other(r, [x[2] for x in ANIMALS], a[2])}.", f"Il verso {d}"))
        out.append(fact(f"Che cosa mangia {a[0]}?", f"{A} {a[3]}.", cap(a[3][len('mangia '):]),
                        f"{A} {other(r, [x[3] for x in ANIMALS], a[3])}.", f"Il cibo {d}"))
        out.append(fact(f"Dove vive {a[0]}?", f"{A} {a[4]}.", cap(a[4][len('vive '):]),
                        f"{A} {other(r, [x[4] for x in ANIMALS if x[4].split()[-1] != a[4].split()[-1]], a[4])}.",
                        f"La casa {d}"))
        if a[1] != "un anfibio":
            out.append(fact(f"Che tipo di animale è {a[0]}?", f"{A} è {a[1]}.", cap(a[1]),
                            f"{A} è {other(r, [x[1] for x in ANIMALS if x[1] != 'un anfibio'], a[1])}.",
                            f"Che animale è {a[0]}"))
    return out


def it_colours_jobs_weather(r):
    out = []
    for t in COLOURS:
        right = colour(t[2], t[1])
        near = {"azzurro": "blu", "blu": "azzurro"}.get(t[2], t[2])
        wrong = colour(r.choice([b for b in COLOUR_BASES if b not in (t[2], near)]), t[1])
        out.append(fact(f"Di che colore è {t[0]}?", f"{cap(t[0])} è {right}.", cap(right),
                        f"{cap(t[0])} è {wrong}.", f"Il colore {prep(t[0])}"))
    for j in JOBS:
        J, d = cap(j[0]), prep(j[0])
        out.append(fact(f"Che cosa fa {j[0]}?", f"{J} {j[1]} {j[2]}.", cap(j[1]),
                        f"{J} {other(r, [x[1] for x in JOBS], j[1])}.", f"Il lavoro {d}"))
        out.append(fact(f"Dove lavora {j[0]}?", f"{J} lavora {j[2]}.", cap(j[2]),
                        f"{J} lavora {other(r, [x[2] for x in JOBS], j[2])}.", f"Dove lavora {j[0]}"))
    for w in WEATHER:
        n = r.choice(NAMES_IT)
        out.append(fact(f"Che cosa fa {n} quando {w[0]}?", f"Quando {w[0]} {n} {w[1]}.", cap(w[1]),
                        f"Quando {w[0]} {n} {other(r, [x[1] for x in WEATHER], w[1])}.", "Il tempo"))
    return out


def it_science_dishes(r):
    out = [fact(s["q"], s["it"], s["a"], f"{r.choice(s['wrong'])}.", "Una domanda di scienze") for s in SCIENCE_IT]
    out += [fact(**d, title="Una definizione") for d in DEFS["it"]]
    out += [fact(**h, title="Come fare") for h in HOWTO["it"]]
    for dish in DISHES_IT:
        out.append(fact(f"Che cosa serve per preparare {dish[0]}?",
                        f"Per preparare {dish[0]} servono {join(dish[2], 'it')}.", cap(join(dish[2][:2], "it")),
                        f"Per preparare {dish[0]} servono solo {r.choice(['sabbia', 'sapone', 'carta'])} e acqua.",
                        cap(dish[1])))
    return out


def facts_it(r):
    return [f for part in (it_countries, it_animals, it_colours_jobs_weather, it_science_dishes) for f in part(r)]


def en_countries_animals(r):
    out = []
    caps_, langs = [c[5] for c in COUNTRIES], [c[6] for c in COUNTRIES]
    for c in COUNTRIES:
        out.append(fact(f"What is the capital of {c[4]}?", f"The capital of {c[4]} is {c[5]}.", c[5],
                        f"The capital of {c[4]} is {other(r, caps_, c[5])}.", f"The capital of {c[4]}"))
        out.append(fact(f"What language do people speak in {c[4]}?", f"People in {c[4]} speak {c[6]}.", c[6],
                        f"People in {c[4]} speak {other(r, langs, c[6])}.", f"The language of {c[4]}"))
        out.append(fact(f"Where is {c[4]}?", f"{c[4]} is {c[7]}.", cap(c[7]),
                        f"{c[4]} is {r.choice(['in Africa', 'in America', 'in Oceania'])}.", f"Where is {c[4]}"))
    for a in ANIMALS:
        A = cap(a[5])
        out.append(fact(f"What sound does {a[5]} make?", f"{A} {a[7]}.", cap(a[7]),
                        f"{A} {other(r, [x[7] for x in ANIMALS], a[7])}.", f"The sound of {a[5]}"))
        out.append(fact(f"What does {a[5]} eat?", f"{A} {a[8]}.", cap(a[8][len('eats '):]),
                        f"{A} {other(r, [x[8] for x in ANIMALS], a[8])}.", f"What {a[5]} eats"))
        if a[6] != "an amphibian":
            out.append(fact(f"What kind of animal is {a[5]}?", f"{A} is {a[6]}.", cap(a[6]),
                            f"{A} is {other(r, [x[6] for x in ANIMALS if x[6] != 'an amphibian'], a[6])}.",
                            f"What kind of animal is {a[5]}"))
    return out


def en_colours_jobs_weather(r):
    out = []
    for t in COLOURS:
        wrong = other(r, [c for c in COLOUR_EN if c != t[4]], t[4])
        out.append(fact(f"What colour is {t[3]}?", f"{cap(t[3])} is {t[4]}.", cap(t[4]),
                        f"{cap(t[3])} is {wrong}.", f"The colour of {t[3]}"))
    for j in JOBS:
        J = cap(j[3])
        out.append(fact(f"What does {j[3]} do?", f"{J} {j[4]}.", cap(j[4]),
                        f"{J} {other(r, [x[4] for x in JOBS], j[4])}.", f"The work of {j[3]}"))
        out.append(fact(f"Where does {j[3]} work?", f"{J} works {j[5]}.", cap(j[5]),
                        f"{J} works {other(r, [x[5] for x in JOBS], j[5])}.", f"Where {j[3]} works"))
    for w in WEATHER:
        n = r.choice(NAMES_EN)
        out.append(fact(f"What does {n} do when {w[2]}?", f"When {w[2]} {n} {w[3]}.", cap(w[3]),
                        f"When {w[2]} {n} {other(r, [x[3] for x in WEATHER], w[3])}.", "The weather"))
    return out


def en_science_dishes(r):
    out = [fact(s["q"], s["en"], s["a"], f"{r.choice(s['wrong'])}.", "A science question") for s in SCIENCE_EN]
    out += [fact(**d, title="A definition") for d in DEFS["en"]]
    out += [fact(**h, title="How to do it") for h in HOWTO["en"]]
    for dish in DISHES_EN:
        out.append(fact(f"What do you need to make {dish[0]}?", f"To make {dish[0]} you need {join(dish[2], 'en')}.",
                        cap(join(dish[2][:2], "en")),
                        f"To make {dish[0]} you only need {r.choice(['sand', 'soap', 'paper'])} and water.",
                        cap(dish[1])))
    return out


def facts_en(r):
    return [f for part in (en_countries_animals, en_colours_jobs_weather, en_science_dishes) for f in part(r)]


def arith_fact(r, lang):
    """A sum, difference or product with its correct result (and a wrong one)."""
    op = r.choice("+-*")
    if op == "*":
        x, y = r.randint(2, 10), r.randint(2, 10)
    else:
        x, y = sorted((r.randint(1, 60), r.randint(1, 60)), reverse=op == "-")
    res = {"+": x + y, "-": x - y, "*": x * y}[op]
    bad = res + r.choice([-3, -2, -1, 1, 2, 10])
    word = OP_WORDS[lang][op]
    if lang == "it":
        if op == "+" and res <= 20 and r.random() < 0.4:  # in words, as in the corpus
            X, Y = NUM_IT[x], NUM_IT[y]
            return fact(f"Quanto fa {X} {word} {Y}?", f"{cap(X)} {word} {Y} fa {NUM_IT[res]}.", cap(NUM_IT[res]),
                        f"{cap(X)} {word} {Y} fa {NUM_IT[max(0, bad)]}.", "Un calcolo")
        return fact(f"Quanto fa {x} {word} {y}?", f"{x} {word} {y} fa {res}.", str(res),
                    f"{x} {word} {y} fa {bad}.", "Un calcolo")
    if op == "+" and res <= 20 and r.random() < 0.4:
        X, Y = NUM_EN[x], NUM_EN[y]
        return fact(f"What is {X} {word} {Y}?", f"{cap(X)} {word} {Y} is {NUM_EN[res]}.", cap(NUM_EN[res]),
                    f"{cap(X)} {word} {Y} is {NUM_EN[max(0, bad)]}.", "A sum")
    return fact(f"What is {x} {word} {y}?", f"{x} {word} {y} is {res}.", str(res), f"{x} {word} {y} is {bad}.",
                "A calculation")


def list_topics(lang):
    """(topic words, items) for 'list N ...' questions."""
    if lang == "it":
        return [("capitali europee", [c[1] for c in COUNTRIES if c[3] == "in Europa"]),
                ("animali da fattoria", [cap(a[0]) for a in ANIMALS if a[1] == "un animale da fattoria"]),
                ("animali selvatici", [cap(a[0]) for a in ANIMALS if a[1] == "un animale selvatico"]),
                ("colori", [cap(c) for c in COLOUR_BASES]),
                ("mestieri", [cap(j[0]) for j in JOBS]),
                ("lingue parlate in Europa", sorted({cap(bare(c[2])) for c in COUNTRIES if c[3] == "in Europa"})),
                ("mesi dell'anno", [cap(m) for m in MONTHS_IT]),
                ("giorni della settimana", [cap(d) for d in DAYS_IT]),
                ("capoluoghi di regione", [g[2] for g in REGIONS]),
                ("ingredienti del minestrone", [cap(x) for x in DISHES_IT[4][2]])]
    return [("European capitals", [c[5] for c in COUNTRIES if c[7] == "in Europe"]),
            ("farm animals", [cap(a[5][4:]) for a in ANIMALS if a[6] == "a farm animal"]),
            ("wild animals", [cap(a[5][4:]) for a in ANIMALS if a[6] == "a wild animal"]),
            ("colours", [cap(c) for c in COLOUR_EN]),
            ("jobs", [cap(j[3].split(" ", 1)[1]) for j in JOBS]),
            ("languages spoken in Europe", sorted({c[6] for c in COUNTRIES if c[7] == "in Europe"})),
            ("months of the year", MONTHS_EN),
            ("days of the week", DAYS_EN),
            ("ingredients of pancakes", [cap(x) for x in DISHES_EN[1][2]])]


def list_question(r, lang, n):
    topic, items = r.choice([t for t in list_topics(lang) if len(t[1]) > n])
    pick = r.sample(items, n + 1)
    q = f"Elenca {NUM_IT[n]} {topic}." if lang == "it" else f"List {NUM_EN[n]} {topic}."
    return q, pick[:n], pick[n], topic


# ---------------------------------------------------------------- instructions (chat and preference data)

def obeys(kind, arg, text):
    """Whether ``text`` follows instruction ``kind`` (a sanity check of the generated answers)."""
    if kind == "lower":
        return text.islower()
    if kind == "upper":
        return text.isupper()
    if kind == "no_comma":
        return "," not in text
    if kind == "keyword":
        return arg.lower() in text.lower()
    if kind == "avoid":
        return not re.search(r"\b" + arg + r"\b", text, flags=re.IGNORECASE)
    if kind == "quotes":
        t = text.strip()
        return len(t) > 1 and t[0] == t[-1] == '"'
    if kind == "end":
        return text.strip().strip('"').lower().endswith(arg.lower())
    if kind == "json":
        try:
            return isinstance(json.loads(text), dict)
        except ValueError:
            return False
    if kind == "title":
        return bool(re.search(r"<<[^\n]+>>", text))
    if kind == "bullets":
        stars = re.findall(r"^\s*\*[^\*].*$", text, flags=re.MULTILINE)
        return len(stars) + len(re.findall(r"^\s*-.*$", text, flags=re.MULTILINE)) == arg
    if kind == "ps":
        return bool(re.search(r"p\.\s?s\.", text.lower()))
    if kind == "words":
        return nwords(text) < arg
    raise ValueError(kind)


# answers to fact ``f`` under each instruction kind: (obeys, does not, argument), or None when the
# fact does not suit the kind (another one is drawn)

def no_comma_answers(r, lang, f):
    a = f["a"]
    return None if "," in a else (a, a[:-1] + ", " + r.choice(COMMA_TAILS[lang]) + ".", None)


def keyword_answers(r, lang, f):
    arg, sentence = r.choice(KEYWORD_SENTENCES[lang])
    return None if arg in f["a"].lower() else (f"{f['a']} {sentence}", f["a"], arg)


def avoid_answers(r, lang, f):
    """The short answer, without a word of the long one (one of the question's when it can)."""
    q, a, short = f["q"], f["a"], f["short"]
    cands = sorted({w for w in re.findall(r"\w+", a) if len(w) >= 5 and w.lower() not in STOP[lang]
                    and not re.search(r"\b" + w + r"\b", short, flags=re.IGNORECASE)})
    in_q = [w for w in cands if re.search(r"\b" + w + r"\b", q, flags=re.IGNORECASE)]  # e.g. 'capitale'
    return (short + ".", a, r.choice(in_q or cands)) if cands else None


def end_answers(r, lang, f):
    arg = r.choice(END_PHRASES[lang])
    return f"{f['a']} {arg}", f["a"], arg


def ps_answers(r, lang, f):
    good = f"{f['a']}\n\n{r.choice(POSTSCRIPTS[lang])}"
    return None if obeys("ps", None, f["a"]) else (good, f["a"], None)


def words_answers(r, lang, f):
    good = f["a"] if nwords(f["a"]) <= 14 else f["short"] + "."
    arg = nwords(good) + r.randint(2, 6)
    bad = good
    while nwords(bad) < arg:
        bad += " " + FILLER[lang]
    return good, bad, arg


ANSWERS = {
    "lower": lambda r, lang, f: (f["a"].lower(), f["a"], None) if f["a"].lower() != f["a"] else None,
    "upper": lambda r, lang, f: (f["a"].upper(), f["a"], None) if f["a"].upper() != f["a"] else None,
    "no_comma": no_comma_answers,
    "keyword": keyword_answers,
    "avoid": avoid_answers,
    "quotes": lambda r, lang, f: (f'"{f["a"]}"', f["a"], None),
    "end": end_answers,
    "json": lambda r, lang, f: (json.dumps({"risposta" if lang == "it" else "answer": f["short"]},
                                           ensure_ascii=False), f["a"], None),
    "title": lambda r, lang, f: (f"<<{f['title']}>>\n{f['a']}", f["a"], None),
    "ps": ps_answers,
    "words": words_answers,
}
PLACEHOLDER = {"keyword": "k", "avoid": "k", "end": "p", "words": "n"}  # the argument's field in the phrasing


def bullets_instruction(r, lang, phr):
    n = r.randint(2, 5)
    q, items, extra, _ = list_question(r, lang, n)
    good = "\n".join(f"* {x}" for x in items)
    bad = good + f"\n* {extra}" if r.random() < 0.5 else "\n".join(f"* {x}" for x in items[:-1])
    return f"{q} {phr.format(n=n)}", good, bad, n


def instruct(r, lang, kind, facts):
    """(prompt, answer that obeys, answer that does not, argument) for one instruction kind."""
    phr = r.choice(INSTR[kind][lang])
    if kind == "bullets":
        return bullets_instruction(r, lang, phr)
    while True:
        f = r.choice(facts)
        answers = ANSWERS[kind](r, lang, f)
        if answers is None:
            continue
        good, bad, arg = answers
        if kind in PLACEHOLDER:
            phr = phr.format(**{PLACEHOLDER[kind]: arg})
        prompt = f"{f['q']} {phr}" if r.random() < 0.8 else f"{phr}\n{f['q']}"
        return prompt, good, bad, arg


def qa_turn(r, lang, facts, p_instr):
    """(prompt, good answer, bad answer): a plain question or one with an instruction."""
    if r.random() < p_instr:
        kind = IF_KINDS[r.randrange(len(IF_KINDS))]
        prompt, good, bad, arg = instruct(r, lang, kind, facts)
        assert obeys(kind, arg, good) and not obeys(kind, arg, bad), (kind, prompt, good, bad)
        return prompt, good, bad
    k = r.random()
    if k < 0.15:
        f = arith_fact(r, lang)
    elif k < 0.22:
        n = r.randint(2, 4)
        q, items, extra, topic = list_question(r, lang, n)
        head = f"Ecco {NUM_IT[n]} {topic}: " if lang == "it" else f"Here are {NUM_EN[n]} {topic}: "
        return q, head + join(items, lang) + ".", head + join(items + [extra], lang) + "."  # bad: one too many
    else:
        f = r.choice(facts)
    return f["q"], f["a"], f["bad"]


def chat_rows(r, lang, facts, n, p_single=0.6, p_system=0.2, p_instr=0.5):
    out, seen = [], set()
    while len(out) < n:
        msgs = []
        if r.random() < p_system:
            msgs.append({"role": "system", "content": r.choice(SYSTEMS[lang])})
        turns = 1 if r.random() < p_single else r.choice([2, 3])
        for t in range(turns):
            prompt, good, _ = qa_turn(r, lang, facts, p_instr)
            if t and r.random() < 0.4:
                head = r.choice(FOLLOW_UPS[lang])
                prompt = head + (prompt[0].lower() + prompt[1:] if head.endswith(": ") else prompt)
            msgs += [{"role": "user", "content": prompt}, {"role": "assistant", "content": good}]
        key = json.dumps(msgs, ensure_ascii=False)
        if key not in seen:
            seen.add(key)
            out.append({"messages": msgs})
    return out


def preference_rows(r, lang, facts, n):
    out, seen = [], set()
    while len(out) < n:
        prompt, good, bad = qa_turn(r, lang, facts, 0.5)
        if prompt in seen or good == bad:
            continue
        seen.add(prompt)
        out.append({"prompt": [{"role": "user", "content": prompt}],
                    "chosen": [{"role": "assistant", "content": good}],
                    "rejected": [{"role": "assistant", "content": bad}]})
    return out


def sharegpt(row):
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    return {"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in row["messages"]]}


# ---------------------------------------------------------------- function calling

_T = table("tools")
TOOL_DEFS, CITIES, CONDITIONS, EVENTS = _T["tools"], _T["cities"], _T["conditions"], _T["events"]
RATES, CURRENCY, FEMININE = _T["rates"], _T["currency"], set(_T["feminine"])
UNITS, TIMERS, WORDS = _T["units"], _T["timers"], _T["words"]
CONVERT = {"km": lambda v: v * 0.621371, "mi": lambda v: v * 1.609344, "kg": lambda v: v * 2.204623,
           "lb": lambda v: v * 0.453592, "celsius": lambda v: v * 9 / 5 + 32, "m": lambda v: v * 100,
           "l": lambda v: v * 1000, "h": lambda v: v * 60}  # by the unit converted from


def tool_schema(name, lang):
    """The OpenAI-style schema of tool ``name``, described in ``lang``."""
    t = TOOL_DEFS[name]
    props = {p: dict({"type": d["type"], "description": d[lang]}, **({"enum": d["enum"]} if "enum" in d else {}))
             for p, d in t["parameters"].items()}
    return {"type": "function", "function": {
        "name": name, "description": t["description"][lang],
        "parameters": {"type": "object", "properties": props, "required": t["required"]}}}


def quanti(noun):
    return "Quante" if noun in FEMININE else "Quanti"


# one call of each tool: (user message, arguments, tool result, final answer)

def weather_case(r, it, lang):
    city = CITIES[lang][r.randrange(len(CITIES[lang]))]
    cond = r.choice(CONDITIONS)
    t = r.randint(-5, 2) if cond[1] == "snow" else r.randint(8, 20) if cond[1] == "rain" else r.randint(4, 32)
    args, unit = {"city": city}, "celsius"
    if r.random() < 0.2:
        unit = args["unit"] = "fahrenheit"
        t = round(t * 9 / 5 + 32)
    user = r.choice([f"Che tempo fa oggi a {city}?", f"Mi dici il meteo di {city}?"] if it else
                    [f"What's the weather like in {city} today?", f"Can you check the weather in {city}?"])
    if unit == "fahrenheit":
        user = user[:-1] + (" in gradi Fahrenheit?" if it else " in Fahrenheit?")
    res = {"city": city, "condition": cond[0] if it else cond[1], "temperature": t, "unit": unit}
    deg = ("gradi" if it else "degrees") + (" Fahrenheit" if unit == "fahrenheit" else "")
    final = (f"A {city} {cond[2]} e ci sono {t} {deg}.{cond[4]}" if it else
             f"In {city} {cond[3]} and the temperature is {t} {deg}.{cond[5]}")
    return user, args, res, final


def currency_case(r, it, lang):
    a, b = r.sample(sorted(RATES), 2)
    amt = r.choice([5, 10, 20, 50, 100, 150, 200, 250, 500, 1000])
    rate = round(RATES[b] / RATES[a], 4)
    val = round(amt * rate, 2)
    na, nb = CURRENCY[a][0 if it else 1], CURRENCY[b][0 if it else 1]
    user = r.choice([f"{quanti(nb)} {nb} sono {amt} {na}?", f"Converti {amt} {na} in {nb}."] if it else
                    [f"How many {nb} is {amt} {na}?", f"Convert {amt} {na} to {nb}."])
    res = {"amount": amt, "from_currency": a, "to_currency": b, "rate": rate, "result": val}
    final = (f"{amt} {na} corrispondono a {fmt_num(val, lang)} {nb} (cambio {fmt_num(rate, lang)})." if it else
             f"{amt} {na} is {fmt_num(val, lang)} {nb} (rate {fmt_num(rate, lang)}).")
    return user, {"amount": amt, "from_currency": a, "to_currency": b}, res, final


def calendar_case(r, it, lang):
    title = r.choice(EVENTS[lang])
    m, d = r.randrange(12), r.randint(1, 28)
    tm = r.choice(["08:30", "10:00", "12:15", "15:00", "18:30", "20:00"])
    user = (f"Aggiungi al calendario «{title}» il {d} {MONTHS_IT[m]} 2026 alle {tm}." if it else
            f"Add \"{title}\" to my calendar on {MONTHS_EN[m]} {d}, 2026 at {tm}.")
    res = {"status": "created", "event_id": f"evt-{r.randint(1000, 9999)}"}
    final = (f"Fatto! Ho aggiunto «{title}» al calendario per il {d} {MONTHS_IT[m]} alle {tm}." if it else
             f"Done! I added \"{title}\" to your calendar on {MONTHS_EN[m]} {d} at {tm}.")
    return user, {"title": title, "date": f"2026-{m + 1:02d}-{d:02d}", "time": tm}, res, final


def units_case(r, it, lang):
    u = r.choice(UNITS)
    v = r.choice([1, 2, 3, 5, 10, 12, 20, 25, 30, 42, 100])
    val = round(CONVERT[u[0]](v), 2)
    nf, nt = (u[2], u[3]) if it else (u[4], u[5])
    user = r.choice([f"{quanti(nt)} {nt} sono {v} {nf}?", f"Converti {v} {nf} in {nt}."] if it else
                    [f"How many {nt} are {v} {nf}?", f"Convert {v} {nf} to {nt}."])
    res = {"value": v, "from_unit": u[0], "to_unit": u[1], "result": val}
    final = f"{v} {nf} corrispondono a {fmt_num(val, lang)} {nt}." if it else f"{v} {nf} is {fmt_num(val, lang)} {nt}."
    return user, {"value": v, "from_unit": u[0], "to_unit": u[1]}, res, final


def recipe_case(r, it, lang):
    art, dish, ing, mins = r.choice(DISHES_IT if it else DISHES_EN)
    user = r.choice([f"Cerca una ricetta per {art}.", f"Come si prepara {art}? Cerca la ricetta."] if it else
                    [f"Find me a recipe for {art}.", f"What do I need to make {art}? Look up a recipe."])
    final = (f"Per preparare {art} servono {join(ing, lang)}. Ci vogliono circa {mins} minuti." if it else
             f"To make {art} you need {join(ing, lang)}. It takes about {mins} minutes.")
    return user, {"dish": dish}, {"dish": dish, "ingredients": ing, "minutes": mins}, final


def calculate_case(r, it, lang):
    op = r.choice("+-*")
    x, y = (r.randint(2, 30), r.randint(2, 30)) if op == "*" else sorted((r.randint(10, 999), r.randint(10, 999)),
                                                                       reverse=True)
    val = {"+": x + y, "-": x - y, "*": x * y}[op]
    word = OP_WORDS[lang][op]
    user = (r.choice([f"Quanto fa {x} {word} {y}? Usa la calcolatrice.", f"Calcola {x} {word} {y}."]) if it else
            r.choice([f"What is {x} {word} {y}? Use the calculator.", f"Calculate {x} {word} {y}."]))
    expr = f"{x} {op} {y}"
    return (user, {"expression": expr}, {"expression": expr, "result": val},
            f"{x} {word} {y} fa {val}." if it else f"{x} {word} {y} is {val}.")


def timer_case(r, it, lang):
    mins = r.choice([2, 3, 5, 8, 10, 12, 15, 20, 25, 30, 45])
    art, label = r.choice(TIMERS[lang])
    user = r.choice([f"Imposta un timer di {mins} minuti per {art}.",
                     f"Avvia un timer di {mins} minuti per {art}."] if it else
                    [f"Set a timer for {mins} minutes for {art}.", f"Start a {mins}-minute timer for {art}."])
    res = {"status": "started", "minutes": mins, "label": label}
    final = f"Ho avviato un timer di {mins} minuti per {art}." if it else f"I started a {mins}-minute timer for {art}."
    return user, {"minutes": mins, "label": label}, res, final


def translate_case(r, it, lang):
    w_it, w_en = r.choice(WORDS)
    if it:
        return (f"Come si dice «{w_it}» in inglese?", {"word": w_it, "target_language": "en"},
                {"word": w_it, "translation": w_en}, f"In inglese «{w_it}» si dice «{w_en}».")
    return (f"How do you say \"{w_en}\" in Italian?", {"word": w_en, "target_language": "it"},
            {"word": w_en, "translation": w_it}, f"In Italian \"{w_en}\" is \"{w_it}\".")


TOOL_CASES = {"get_weather": weather_case, "convert_currency": currency_case, "create_calendar_event": calendar_case,
              "convert_units": units_case, "search_recipe": recipe_case, "calculate": calculate_case,
              "set_timer": timer_case, "translate_word": translate_case}


def tool_case(r, name, lang):
    """(user message, arguments, tool result, final answer) for one call of tool ``name``."""
    return TOOL_CASES[name](r, lang == "it", lang)


# structured output without tools: (keys, values, what is asked about) of one kind of JSON object

def country_object(r, it):
    c = r.choice(COUNTRIES)
    if it:
        return ["paese", "capitale", "lingua"], [bare(c[0]), c[1], bare(c[2])], c[0]
    return ["country", "capital", "language"], [c[4], c[5], c[6]], c[4]


def animal_object(r, it):
    a = r.choice(ANIMALS)
    if it:
        return ["animale", "verso", "cibo"], [bare(a[0]), a[2], a[3][len("mangia "):]], a[0]
    return ["animal", "sound", "food"], [a[5][4:], a[7], a[8][len("eats "):]], a[5]


def job_object(r, it):
    j = r.choice(JOBS)
    if it:
        return ["mestiere", "cosa_fa", "dove"], [bare(j[0]), j[1], j[2]], j[0]
    return ["job", "does", "where"], [j[3].split(" ", 1)[1], j[4], j[5]], j[3]


def sum_object(r, it):
    sym = r.choice("+-*")
    x, y = (r.randint(2, 10), r.randint(2, 10)) if sym == "*" else sorted((r.randint(1, 60), r.randint(1, 60)),
                                                                        reverse=True)
    res = {"+": x + y, "-": x - y, "*": x * y}[sym]
    keys = ["operazione", "risultato"] if it else ["operation", "result"]
    return keys, [f"{x} {sym} {y}", res], f"{x} {OP_WORDS['it' if it else 'en'][sym]} {y}"


def dish_object(r, it):
    art, dish, ing, mins = r.choice(DISHES_IT if it else DISHES_EN)
    return (["piatto", "ingredienti", "minuti"] if it else ["dish", "ingredients", "minutes"]), [dish, ing, mins], art


def colour_object(r, it):
    t = r.choice(COLOURS)
    if it:
        return ["oggetto", "colore"], [bare(t[0]), colour(t[2], t[1])], t[0]
    return ["thing", "colour"], [t[3], t[4]], t[3]


OBJECTS = [country_object, animal_object, job_object, sum_object, dish_object, colour_object]


def structured_case(r, lang):
    """(user message, JSON object) for a structured-output row without tools."""
    it = lang == "it"
    keys, vals, what = OBJECTS[r.randrange(len(OBJECTS))](r, it)
    q = ", ".join(f'"{x}"' for x in keys[:-1]) + (" e " if it else " and ") + f'"{keys[-1]}"'
    user = (r.choice([f"Restituisci solo un oggetto JSON con le chiavi {q} per {what}.",
                      f"Rispondi solo con un JSON che abbia le chiavi {q}: {what}."]) if it else
            r.choice([f"Return only a JSON object with the keys {q} for {what}.",
                      f"Reply with JSON only, with the keys {q}: {what}."]))
    return user, dict(zip(keys, vals))


def tool_rows(r, n_calls, n_structured):
    out = []
    names = sorted(TOOL_DEFS)
    for i in range(n_calls):
        lang = LANGS[i % 2]
        name = names[(i // 2) % len(names)]
        user, args, res, final = tool_case(r, name, lang)
        offered = [name] + r.sample([x for x in names if x != name], r.choice([0, 1, 1, 2]))
        r.shuffle(offered)
        out.append({"tools": [tool_schema(x, lang) for x in offered], "messages": [
            {"role": "user", "content": user},
            {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
                "name": name, "arguments": args}}]},
            {"role": "tool", "name": name, "content": json.dumps(res, ensure_ascii=False)},
            {"role": "assistant", "content": final}]})
    for i in range(n_structured):
        user, obj = structured_case(r, LANGS[i % 2])
        out.append({"tools": [], "messages": [{"role": "user", "content": user},
                                              {"role": "assistant", "content": json.dumps(obj, ensure_ascii=False)}]})
    r.shuffle(out)
    return out


# ---------------------------------------------------------------- English multiple-choice tasks

def build_pool_en():
    """(category, question, right answer, wrong candidates) about facts of the English corpus."""
    pool = []
    caps_ = sorted({c[5] for c in COUNTRIES})
    langs = sorted({c[6] for c in COUNTRIES})
    for c in COUNTRIES:
        pool.append(("capital", f"What is the capital of {c[4]}?", c[5], [x for x in caps_ if x != c[5]]))
        pool.append(("language", f"What language do people speak in {c[4]}?", c[6], [x for x in langs if x != c[6]]))
    for a in ANIMALS:
        pool.append(("sound", f"Which animal {a[7]}?", cap(a[5]), [cap(x[5]) for x in ANIMALS if x != a]))
        foods = sorted({cap(x[8][5:]) for x in ANIMALS} - {cap(a[8][5:])})
        pool.append(("food", f"What does {a[5]} eat?", cap(a[8][5:]), foods))
        if a[6] != "an amphibian":
            pool.append(("kind", f"What kind of animal is {a[5]}?", cap(a[6]),
                         sorted({cap(x[6]) for x in ANIMALS} - {cap(a[6])})))
    for t in COLOURS:
        pool.append(("colour", f"What colour is {t[3]}?", cap(t[4]), [cap(c) for c in COLOUR_EN if c != t[4]]))
    for j in JOBS:
        pool.append(("who", f"Who {j[4]}?", cap(j[3]), [cap(x[3]) for x in JOBS if x != j]))
        pool.append(("where", f"Where does {j[3]} work?", cap(j[5]), [cap(x[5]) for x in JOBS if x != j]))
    pool += [("science", s["q"], s["a"], s["wrong"]) for s in SCIENCE_EN]
    pool += [("sum", f"What is {NUM_EN[a]} plus {NUM_EN[b]}?", cap(NUM_EN[a + b]), near_numbers(NUM_EN, a + b))
             for a, b in SUMS]
    return pool


def hellaswag_items_en(r):
    """(category, context, natural ending) from the English corpus sentences."""
    cands = []
    for w in WEATHER:
        cands += [("weather", f"{n} {w[3]} because", f"{w[2]}.") for n in NAMES_EN[::4]]
        cands.append(("weather2", f"When {w[2]}, {r.choice(NAMES_EN)}", f"{w[3]}."))
    cands += [("job", f"{r.choice(NAMES_EN)} is {j[3]} and", f"{j[4]} every day.") for j in JOBS]
    cands += [("travel", f"{r.choice(NAMES_EN)} went on holiday to {c[4]} and visited", f"{c[5]}.")
              for c in COUNTRIES]
    cands += [("animal", f"{cap(a[5])} is {a[6]}. {cap(a[5])}", f"{a[7]} and {a[8]}.") for a in ANIMALS]
    cands += [("recipe", f"To make {d[0]} you need", f"{join(d[2], 'en')}.") for d in DISHES_EN[:4]]
    cands += [("sum", f"{cap(NUM_EN[x])} plus {NUM_EN[y]} is", f"{NUM_EN[x + y]}.") for x, y in SUMS[:8]]
    return balance(r, cands)


TASKS_EN = {"arc": "mini_arc_en", "hellaswag": "mini_hellaswag_en", "mmlu": "mini_mmlu_en",
            "mmlu_yaml": TASK_FILES["mmlu_en"], "query": "Question: {}\nAnswer:",
            "distractors": ("travel", "animal", "sum"), "odd": ODD_EN}


def english_tasks(out: Path) -> None:
    mc_tasks(out, random.Random(SEED + 20), build_pool_en(), hellaswag_items_en, TASKS_EN)


# ---------------------------------------------------------------- IFEval-style tasks

_F = table("ifeval")
IFEVAL_IDS = _F["ids"]
IFEVAL_IDS_IT = [x for x in IFEVAL_IDS if not x.startswith("change_case:")]  # langdetect wants English
_CONFLICTS = {frozenset(p) for p in _F["conflicts"]}
_JSON_OK = set(_F["json_ok"])
IFEVAL_BASES, IFEVAL_TEXT = _F["bases"], _F["text"]
IFEVAL_KEYWORDS, IFEVAL_FORBIDDEN, IFEVAL_ENDS = _F["keywords"], _F["forbidden"], _F["ends"]


def compatible(a, b):
    if a == b or frozenset((a, b)) in _CONFLICTS:
        return False
    if "detectable_format:json_format" in (a, b):
        return ({a, b} - {"detectable_format:json_format"}) <= _JSON_OK
    return True


def ifeval_kwargs(r, lang, iid, taken):
    if iid == "keywords:existence":
        kw = r.sample([k for k in IFEVAL_KEYWORDS[lang] if k not in taken], r.choice([1, 2]))
        taken.update(kw)
        return {"keywords": kw}
    if iid == "keywords:forbidden_words":
        fw = r.sample([k for k in IFEVAL_FORBIDDEN[lang] if k not in taken], 2)
        taken.update(fw)
        return {"forbidden_words": fw}
    if iid == "startend:end_checker":
        return {"end_phrase": r.choice(IFEVAL_ENDS[lang])}
    if iid == "length_constraints:number_words":
        if r.random() < 0.3:
            return {"num_words": r.choice([8, 10, 12, 15]), "relation": "at least"}
        return {"num_words": r.choice([25, 30, 40, 50]), "relation": "less than"}
    if iid == "detectable_content:postscript":
        return {"postscript_marker": "P.S."}
    if iid == "detectable_format:number_bullet_lists":
        return {"num_bullets": r.randint(2, 4)}
    return {}


def ifeval_text(lang, iid, kw):
    t = IFEVAL_TEXT[lang][iid]
    if lang == "it" and len(kw.get("keywords", kw.get("forbidden_words", [0, 0]))) == 1:
        t = t.replace("le parole chiave", "la parola chiave")
    args = dict(kw)
    for k in ("keywords", "forbidden_words"):
        if k in args:
            args[k] = join([f"«{w}»" for w in args[k]], lang) if lang == "it" else ", ".join(args[k])
    if "relation" in args and lang == "it":
        args["relation"] = {"less than": "meno di", "at least": "almeno"}[args["relation"]]
    return t.format(**args)


def ifeval_rows(r, lang, n=30):
    ids = IFEVAL_IDS_IT if lang == "it" else IFEVAL_IDS
    bases = list(IFEVAL_BASES[lang])
    r.shuffle(bases)
    out = []
    for i in range(n):
        chosen = [ids[i % len(ids)]]
        if i % 2 == 1:
            chosen.append(r.choice([x for x in ids if compatible(chosen[0], x)]))
            chosen.sort(key=lambda x: x == "detectable_format:number_bullet_lists")  # its example list goes last
        taken = set()
        kwargs = [ifeval_kwargs(r, lang, iid, taken) for iid in chosen]
        texts = [ifeval_text(lang, iid, kw) for iid, kw in zip(chosen, kwargs)]
        out.append({"key": (1000 if lang == "it" else 2000) + i, "prompt": " ".join([bases[i]] + texts),
                    "instruction_id_list": chosen, "kwargs": kwargs})
    return out


def ifeval_tasks(out: Path) -> None:
    r = random.Random(SEED + 30)
    for lang in LANGS:
        name = f"mini_ifeval_{lang}"
        write_task(out, name, TASK_FILES["ifeval"].replace("NAME", name), {"test": ifeval_rows(r, lang)},
                   extra={"utils.py": TASK_FILES["ifeval_utils"]})


# ---------------------------------------------------------------- main

def posttrain(out: Path) -> None:
    facts = {"it": facts_it(random.Random(SEED)), "en": facts_en(random.Random(SEED + 1))}
    sets = {
        "chat_it.jsonl": chat_rows(random.Random(SEED + 2), "it", facts["it"], 240),
        "chat_en.jsonl": chat_rows(random.Random(SEED + 3), "en", facts["en"], 240),
        "sharegpt_en.jsonl": [sharegpt(x) for x in chat_rows(random.Random(SEED + 4), "en", facts["en"], 100)],
        "tools.jsonl": tool_rows(random.Random(SEED + 5), 160, 40),
        "openitaliandata.jsonl": [{"conversation": x["messages"]} for x in
                                  chat_rows(random.Random(SEED + 6), "it", facts["it"], 200, p_single=0.5,
                                            p_system=0.1)],
        "preferences_it.jsonl": preference_rows(random.Random(SEED + 7), "it", facts["it"], 150),
        "preferences_en.jsonl": preference_rows(random.Random(SEED + 8), "en", facts["en"], 150),
    }
    total = 0
    for fname, data in sets.items():
        write_jsonl(out / fname, data)
        size = (out / fname).stat().st_size
        total += size
        print(f"{fname}: {len(data)} rows, {size} bytes")
    print(f"post-training data total: {total} bytes under {out}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-data", default="data/embedded/posttrain", help="folder for the post-training JSONL sets")
    p.add_argument("--out-tasks", default="resources/eval_tasks", help="folder for the lm-eval task folders")
    args = p.parse_args(argv)
    posttrain(Path(args.out_data))
    english_tasks(Path(args.out_tasks))
    ifeval_tasks(Path(args.out_tasks))


if __name__ == "__main__":
    main()
