"""Generate the project-written post-training sets and the English and IFEval-style eval tasks (deterministic).

Writes, under ``--out-data``, chat SFT sets in the shapes the field uses (TRL ``messages``, ShareGPT
``conversations``, the OpenItalianData ``conversation`` field), a function-calling set with
OpenAI-style tool schemas plus a few structured-output rows, and Italian/English preference pairs
for DPO; under ``--out-tasks``, the lm-eval task folders mini_arc_en, mini_hellaswag_en and
mini_mmlu_en (shaped like the Italian ones written by make_embedded_data.py, about the facts of its
English corpus) and mini_ifeval_it / mini_ifeval_en (IFEval rows scored by lm-eval's own ifeval
code). Every text comes from the templates and small fact tables below, written for this project.
The instruction-following answers obey their instruction (checked here by ``obeys``), the rejected
preference answers do not. Fixed-seed ``random.Random`` streams make the output byte-identical.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# the facts of the pretraining corpus, so that the chat data and the eval tasks speak of them
from make_embedded_data import (  # noqa: E402
    ANIMALS, COLOUR_BASES, COLOURS, COUNTRIES, JOBS, MC_YAML, NAMES_EN, NUM_EN, NUM_IT, WEATHER,
    bare, colour, golds, place,
)
from make_embedded_data import prep as _prep  # noqa: E402

SEED = 20261207
LANGS = ("it", "en")


def rows(block):
    """Parse a '|'-separated table (records on lines or split by ' / '); ';' separates list items."""
    block = re.sub(r"\n {4}", " ", block.strip())  # an indented line continues the record above
    return [tuple((f.split(";") if ";" in f else f) for f in rec.split("|"))
            for line in block.splitlines() for rec in line.split(" / ")]


# ---------------------------------------------------------------- facts (those of make_embedded_data's corpus)

# region with article | 'in' form | regional capital
REGIONS = rows("""
la Lombardia|in Lombardia|Milano / il Piemonte|in Piemonte|Torino / la Toscana|in Toscana|Firenze / il Lazio|nel
    Lazio|Roma
la Campania|in Campania|Napoli / il Veneto|in Veneto|Venezia / la Sicilia|in Sicilia|Palermo / la Puglia|in
    Puglia|Bari
la Liguria|in Liguria|Genova / la Sardegna|in Sardegna|Cagliari / l'Umbria|in Umbria|Perugia""")
COLOUR_EN = ["blue", "green", "white", "black", "red", "yellow", "orange", "purple", "brown", "pink"]
# fact | question | right answer | wrong answers
SCIENCE_IT = rows("""
L'acqua bolle a cento gradi.|A quanti gradi bolle l'acqua?|A cento gradi|A zero gradi;A dieci gradi;A cinquanta gradi
L'acqua gela a zero gradi.|A quanti gradi gela l'acqua?|A zero gradi|A cento gradi;A venti gradi;A cinquanta gradi
La Terra gira intorno al Sole.|Intorno a che cosa gira la Terra?|Intorno al Sole|Intorno alla Luna;Intorno a
    Marte;Intorno a una cometa
La Luna gira intorno alla Terra.|Intorno a che cosa gira la Luna?|Intorno alla Terra|Intorno a Marte;Intorno a
    Giove;Intorno a Venere
Il Sole è una stella.|Che cos'è il Sole?|Una stella|Un pianeta;Un satellite;Una cometa
Il ragno ha otto zampe.|Quante zampe ha il ragno?|Otto|Sei;Quattro;Due
Un insetto ha sei zampe.|Quante zampe ha un insetto?|Sei|Otto;Quattro;Dieci
Le api producono il miele.|Che cosa producono le api?|Il miele|Il latte;La lana;Il sale
Le piante producono l'ossigeno.|Che cosa producono le piante?|L'ossigeno|Il ferro;Il sale;Il carbone
Una settimana ha sette giorni.|Quanti giorni ha una settimana?|Sette|Cinque;Sei;Dieci
Un anno ha dodici mesi.|Quanti mesi ha un anno?|Dodici|Dieci;Sette;Quindici
Un triangolo ha tre lati.|Quanti lati ha un triangolo?|Tre|Quattro;Cinque;Sei
Un quadrato ha quattro lati.|Quanti lati ha un quadrato?|Quattro|Tre;Cinque;Otto
Gennaio è il primo mese dell'anno.|Qual è il primo mese dell'anno?|Gennaio|Marzo;Dicembre;Giugno
Dicembre è l'ultimo mese dell'anno.|Qual è l'ultimo mese dell'anno?|Dicembre|Gennaio;Settembre;Maggio
Dopo il lunedì viene il martedì.|Quale giorno viene dopo il lunedì?|Il martedì|La domenica;Il venerdì;Il giovedì
I pesci respirano con le branchie.|Con che cosa respirano i pesci?|Con le branchie|Con i polmoni;Con le ali;Con le
    foglie
Il Sole sorge a est e tramonta a ovest.|Dove sorge il Sole?|A est|A ovest;A nord;A sud
Le stagioni sono quattro: primavera, estate, autunno e inverno.|Quante sono le stagioni?|Quattro|Due;Tre;Sei
Il ferro è un metallo.|Che cos'è il ferro?|Un metallo|Un gas;Un animale;Una pianta""")
SCIENCE_EN = rows("""
Water boils at one hundred degrees.|At how many degrees does water boil?|At one hundred degrees|At zero degrees;At
    ten degrees;At fifty degrees
Water freezes at zero degrees.|At how many degrees does water freeze?|At zero degrees|At one hundred degrees;At
    twenty degrees;At fifty degrees
The Earth goes around the Sun.|What does the Earth go around?|The Sun|The Moon;Mars;A comet
The Moon goes around the Earth.|What does the Moon go around?|The Earth|Mars;Jupiter;Venus
The Sun is a star.|What is the Sun?|A star|A planet;A moon;A comet
A spider has eight legs.|How many legs does a spider have?|Eight|Six;Four;Two
An insect has six legs.|How many legs does an insect have?|Six|Eight;Four;Ten
Bees make honey.|What do bees make?|Honey|Milk;Wool;Salt
Plants produce oxygen.|What do plants produce?|Oxygen|Iron;Salt;Coal
A week has seven days.|How many days does a week have?|Seven|Five;Six;Ten
A year has twelve months.|How many months does a year have?|Twelve|Ten;Seven;Fifteen
A triangle has three sides.|How many sides does a triangle have?|Three|Four;Five;Six
A square has four sides.|How many sides does a square have?|Four|Three;Five;Eight
January is the first month of the year.|What is the first month of the year?|January|March;December;June
December is the last month of the year.|What is the last month of the year?|December|January;September;May
Tuesday comes after Monday.|Which day comes after Monday?|Tuesday|Sunday;Friday;Thursday
Fish breathe through their gills.|What do fish breathe through?|Their gills|Their lungs;Their wings;Their leaves
The Sun rises in the east and sets in the west.|Where does the Sun rise?|In the east|In the west;In the north;In
    the south
There are four seasons: spring, summer, autumn and winter.|How many seasons are there?|Four|Two;Three;Six
Iron is a metal.|What is iron?|A metal|A gas;An animal;A plant""")
# question | answer | short answer | wrong answer
DEFS_IT = rows("""
Che cos'è un vulcano?|Un vulcano è una montagna da cui può uscire lava molto calda.|Una montagna che erutta lava|Un
    vulcano è un grande lago di acqua dolce.
Che cos'è un'isola?|Un'isola è una terra circondata dall'acqua da tutte le parti.|Una terra circondata
    dall'acqua|Un'isola è una montagna senza alberi.
Che cos'è un fiume?|Un fiume è un corso d'acqua dolce che scorre verso il mare o verso un lago.|Un corso d'acqua
    dolce|Un fiume è una città costruita sul mare.
Che cos'è un pianeta?|Un pianeta è un grande corpo celeste che gira intorno a una stella.|Un corpo che gira intorno
    a una stella|Un pianeta è una stella molto piccola e fredda.
Che cos'è un mammifero?|Un mammifero è un animale che allatta i suoi piccoli.|Un animale che allatta i piccoli|Un
    mammifero è un pesce che vive solo nei fiumi.
Che cos'è un dizionario?|Un dizionario è un libro che spiega il significato delle parole.|Un libro che spiega le
    parole|Un dizionario è un attrezzo per cucinare la pasta.
Che cos'è una biblioteca?|Una biblioteca è un luogo dove si leggono e si prendono in prestito i libri.|Un luogo
    dove si prendono in prestito i libri|Una biblioteca è un negozio che vende scarpe.
Che cos'è un termometro?|Un termometro è uno strumento che misura la temperatura.|Uno strumento che misura la
    temperatura|Un termometro è uno strumento che misura il peso.
Che cos'è un deserto?|Un deserto è una zona molto secca dove piove pochissimo.|Una zona molto secca|Un deserto è
    una foresta dove piove ogni giorno.
Che cos'è un ponte?|Un ponte è una costruzione che permette di attraversare un fiume o una valle.|Una costruzione
    per attraversare un fiume|Un ponte è un tipo di barca a vela.
Che cos'è la fotosintesi?|La fotosintesi è il modo in cui le piante usano la luce per produrre zucchero e
    ossigeno.|Il modo in cui le piante usano la luce|La fotosintesi è il modo in cui gli uccelli costruiscono il nido.
Che cos'è un orologio?|Un orologio è uno strumento che segna le ore e i minuti.|Uno strumento che segna le ore|Un
    orologio è uno strumento che misura la pioggia.""")
DEFS_EN = rows("""
What is a volcano?|A volcano is a mountain that can let out very hot lava.|A mountain that erupts lava|A volcano is
    a large lake of fresh water.
What is an island?|An island is a piece of land with water all around it.|Land with water all around it|An island
    is a mountain without trees.
What is a river?|A river is a stream of fresh water that flows to the sea or to a lake.|A stream of fresh water|A
    river is a town built on the sea.
What is a planet?|A planet is a large body in space that goes around a star.|A body that goes around a star|A
    planet is a very small and cold star.
What is a mammal?|A mammal is an animal that feeds its babies with milk.|An animal that feeds its babies milk|A
    mammal is a fish that lives only in rivers.
What is a dictionary?|A dictionary is a book that explains what words mean.|A book that explains words|A dictionary
    is a tool for cooking pasta.
What is a library?|A library is a place where you can read and borrow books.|A place to borrow books|A library is a
    shop that sells shoes.
What is a thermometer?|A thermometer is a tool that measures temperature.|A tool that measures temperature|A
    thermometer is a tool that measures weight.
What is a desert?|A desert is a very dry area where it hardly ever rains.|A very dry area|A desert is a forest
    where it rains every day.
What is a bridge?|A bridge is a structure that lets you cross a river or a valley.|A structure for crossing a
    river|A bridge is a kind of sailing boat.
What is photosynthesis?|Photosynthesis is the way plants use light to make sugar and oxygen.|The way plants use
    light|Photosynthesis is the way birds build their nests.
What is a clock?|A clock is a tool that shows the hours and the minutes.|A tool that shows the time|A clock is a
    tool that measures the rain.""")
HOWTO_IT = rows("""
Come si prepara un tè?|Scalda l'acqua, versala nella tazza con la bustina, aspetta tre minuti e poi togli la
    bustina.|Con acqua calda e una bustina|Metti la bustina nell'acqua fredda e bevi subito.
Come ci si lava bene le mani?|Bagna le mani, usa il sapone, strofina per almeno venti secondi e sciacqua con acqua
    pulita.|Con acqua e sapone per venti secondi|Basta soffiare sulle mani per qualche secondo.
Come si risparmia acqua in casa?|Chiudi il rubinetto mentre ti lavi i denti, fai la doccia invece del bagno e
    ripara i rubinetti che perdono.|Chiudendo il rubinetto quando non serve|Lascia sempre il rubinetto aperto.
Come si cuoce la pasta?|Porta l'acqua a bollore, aggiungi il sale, butta la pasta e scolala dopo il tempo indicato
    sulla confezione.|In acqua salata che bolle|Metti la pasta nell'acqua fredda e servila subito.
Come si pianta un seme?|Fai un piccolo buco nella terra, metti il seme, coprilo e annaffialo un poco ogni
    giorno.|Nella terra e con un po' d'acqua|Lascia il seme sul tavolo senza terra e senz'acqua.
Come si attraversa la strada?|Usa le strisce pedonali, guarda a destra e a sinistra e passa solo quando non
    arrivano auto.|Sulle strisce e guardando bene|Corri in mezzo alla strada senza guardare.
Come si scrive una lettera?|Scrivi la data e il saluto, poi il messaggio, e alla fine i saluti e la firma.|Con
    data, saluto, messaggio e firma|Scrivi solo la firma su un foglio bianco.
Come si prepara lo zaino per la scuola?|La sera prima controlla l'orario, metti i libri e i quaderni del giorno
    dopo e aggiungi l'astuccio.|Seguendo l'orario del giorno dopo|Metti nello zaino tutti i libri di casa.""")
HOWTO_EN = rows("""
How do you make a cup of tea?|Heat the water, pour it into a cup with the tea bag, wait three minutes and then take
    the bag out.|With hot water and a tea bag|Put the tea bag in cold water and drink it at once.
How do you wash your hands well?|Wet your hands, use soap, rub for at least twenty seconds and rinse with clean
    water.|With soap and water for twenty seconds|Just blow on your hands for a few seconds.
How can you save water at home?|Turn off the tap while you brush your teeth, take a shower instead of a bath and
    fix leaking taps.|By turning off the tap|Always leave the tap running.
How do you cook pasta?|Bring the water to the boil, add salt, put in the pasta and drain it after the time on the
    packet.|In boiling salted water|Put the pasta in cold water and serve it at once.
How do you plant a seed?|Make a small hole in the soil, put the seed in, cover it and water it a little every
    day.|In soil with a little water|Leave the seed on the table with no soil and no water.
How do you cross the road safely?|Use the zebra crossing, look left and right and cross only when no cars are
    coming.|At the crossing and looking carefully|Run across the middle of the road without looking.
How do you write a letter?|Write the date and a greeting, then your message, and finally a closing and your
    name.|With a date, greeting, message and name|Write only your name on a blank sheet.
How do you pack a school bag?|The evening before, check the timetable, pack the books for the next day and add your
    pencil case.|By following the next day's timetable|Put every book in the house into the bag.""")
DISHES_IT = [("la torta di mele", "torta di mele", ["farina", "uova", "zucchero", "burro", "mele"], 50),
             ("il risotto", "risotto", ["riso", "brodo", "burro", "cipolla", "parmigiano"], 30),
             ("la pizza margherita", "pizza margherita", ["farina", "acqua", "lievito", "pomodoro", "mozzarella",
                                                          "basilico"], 40),
             ("la frittata", "frittata", ["uova", "sale", "olio", "formaggio"], 15),
             ("il minestrone", "minestrone", ["carote", "patate", "zucchine", "fagioli", "sedano"], 60),
             ("la pasta al pomodoro", "pasta al pomodoro", ["pasta", "pomodoro", "olio", "basilico", "sale"], 20),
             ("il tiramisù", "tiramisù", ["savoiardi", "caffè", "mascarpone", "uova", "zucchero", "cacao"], 30)]
DISHES_EN = [("apple pie", "apple pie", ["flour", "eggs", "sugar", "butter", "apples"], 50),
             ("pancakes", "pancakes", ["flour", "milk", "eggs", "butter"], 20),
             ("tomato soup", "tomato soup", ["tomatoes", "onions", "salt", "olive oil"], 30),
             ("a salad", "salad", ["lettuce", "tomatoes", "oil", "salt"], 10),
             ("an omelette", "omelette", ["eggs", "salt", "butter", "cheese"], 10),
             ("vegetable soup", "vegetable soup", ["carrots", "potatoes", "beans", "celery"], 45)]
MONTHS_IT = "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre".split()
MONTHS_EN = ("January February March April May June July August September October November "
             "December").split()
DAYS_IT = "lunedì martedì mercoledì giovedì venerdì sabato domenica".split()
DAYS_EN = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
NAMES_IT = "Marco Luca Matteo Andrea Paolo Giulia Sofia Chiara Elena Anna Sara Laura".split()


def cap(s):
    return s[0].upper() + s[1:]




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


def facts_it(r):
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
    for s in SCIENCE_IT:
        out.append(fact(s[1], s[0], s[2], f"{r.choice(s[3])}.", "Una domanda di scienze"))
    for d in DEFS_IT:
        out.append(fact(d[0], d[1], d[2], d[3], "Una definizione"))
    for h in HOWTO_IT:
        out.append(fact(h[0], h[1], h[2], h[3], "Come fare"))
    for dish in DISHES_IT:
        out.append(fact(f"Che cosa serve per preparare {dish[0]}?",
                        f"Per preparare {dish[0]} servono {join(dish[2], 'it')}.", cap(join(dish[2][:2], "it")),
                        f"Per preparare {dish[0]} servono solo {r.choice(['sabbia', 'sapone', 'carta'])} e acqua.",
                        cap(dish[1])))
    return out


def facts_en(r):
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
    for s in SCIENCE_EN:
        out.append(fact(s[1], s[0], s[2], f"{r.choice(s[3])}.", "A science question"))
    for d in DEFS_EN:
        out.append(fact(d[0], d[1], d[2], d[3], "A definition"))
    for h in HOWTO_EN:
        out.append(fact(h[0], h[1], h[2], h[3], "How to do it"))
    for dish in DISHES_EN:
        out.append(fact(f"What do you need to make {dish[0]}?", f"To make {dish[0]} you need {join(dish[2], 'en')}.",
                        cap(join(dish[2][:2], "en")),
                        f"To make {dish[0]} you only need {r.choice(['sand', 'soap', 'paper'])} and water.",
                        cap(dish[1])))
    return out


def arith_fact(r, lang):
    """A sum, difference or product with its correct result (and a wrong one)."""
    op = r.choice("+-*")
    if op == "*":
        x, y = r.randint(2, 10), r.randint(2, 10)
    else:
        x, y = sorted((r.randint(1, 60), r.randint(1, 60)), reverse=op == "-")
    res = {"+": x + y, "-": x - y, "*": x * y}[op]
    bad = res + r.choice([-3, -2, -1, 1, 2, 10])
    word = {"it": {"+": "più", "-": "meno", "*": "per"}, "en": {"+": "plus", "-": "minus", "*": "times"}}[lang][op]
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

KEYWORD_SENTENCES = {
    "it": [("importante", "È un'informazione importante da ricordare."), ("scuola", "Lo si impara anche a scuola."),
           ("facile", "È facile da ricordare."), ("curiosità", "È una curiosità che piace a molti."),
           ("esempio", "Per esempio lo trovi in molti libri."), ("ricordare", "È utile ricordare questo fatto.")],
    "en": [("important", "This is an important fact to remember."), ("school", "You can learn it at school."),
           ("easy", "It is easy to remember."), ("fun", "It is a fun fact."),
           ("example", "For example you can find it in many books."),
           ("remember", "It is good to remember this fact.")],
}
END_PHRASES = {"it": ["C'è altro che posso fare per te?", "Spero di esserti stato utile.", "Buono studio!",
                      "Alla prossima domanda."],
               "en": ["Is there anything else I can help with?", "I hope this helps.", "Happy learning!",
                      "That is all for now."]}
POSTSCRIPTS = {"it": ["P.S. Se vuoi posso spiegarti anche altro.", "P.S. Ripassare ogni tanto aiuta a ricordare.",
                      "P.S. Fammi sapere se hai altre domande."],
               "en": ["P.S. I can explain more if you like.", "P.S. Reviewing now and then helps you remember.",
                      "P.S. Let me know if you have more questions."]}
FILLER = {"it": "Questa è una domanda interessante e la risposta si trova in molti libri di scuola che spiegano "
                "bene le cose a tutti.",
          "en": "This is an interesting question and the answer can be found in many school books that explain "
                "things well to everyone."}
STOP = {"it": set("della delle dello degli sono dove quando anche molto questa questo".split()),
        "en": set("their there where which about these those every".split())}

# instruction texts, by kind and language: a few phrasings each ({k} keyword, {n} number, {p} phrase)
INSTR = {
    "lower": {
        "it": ["Rispondi tutto in minuscolo.",
               "Scrivi la risposta solo con lettere minuscole.",
               "La risposta deve essere tutta in lettere minuscole, senza maiuscole."],
        "en": ["Answer in all lowercase letters.",
               ("Your entire response should be in English, and in all lowercase letters. "
                "No capital letters are allowed."),
               "Write the answer using only lowercase letters."]},
    "upper": {
        "it": ["Rispondi tutto in MAIUSCOLO.",
               "Scrivi tutta la risposta in lettere maiuscole.",
               "La risposta deve essere tutta in lettere maiuscole."],
        "en": ["Answer in all capital letters.",
               "Your entire response should be in English, and in all capital letters.",
               "Write the whole answer in CAPITALS."]},
    "no_comma": {
        "it": ["Non usare nessuna virgola nella risposta.",
               "Rispondi senza usare virgole.",
               "Nella risposta non ci devono essere virgole."],
        "en": ["Do not use any commas in your response.",
               "Answer without using any commas.",
               "In your entire response, refrain from the use of any commas."]},
    "keyword": {
        "it": ["Includi la parola «{k}» nella risposta.",
               "Nella risposta usa la parola chiave «{k}».",
               "Includi le parole chiave {k} nella risposta."],
        "en": ["Include the word \"{k}\" in your answer.",
               "Use the keyword \"{k}\" in the response.",
               "Include keywords {k} in the response."]},
    "avoid": {
        "it": ["Non usare la parola «{k}».",
               "Rispondi senza usare la parola «{k}».",
               "Non includere le parole chiave {k} nella risposta."],
        "en": ["Do not use the word \"{k}\".",
               "Answer without the word \"{k}\".",
               "Do not include keywords {k} in the response."]},
    "quotes": {
        "it": ["Racchiudi tutta la risposta tra virgolette doppie.",
               "Metti tutta la risposta tra virgolette doppie."],
        "en": ["Wrap your entire response with double quotation marks.",
               "Put the whole answer inside double quotes."]},
    "end": {
        "it": ["Termina la risposta con la frase esatta «{p}».",
               "Concludi con la frase esatta «{p}». Nessuna altra parola deve seguire questa frase."],
        "en": ["End your response with the exact phrase \"{p}\".",
               "Finish your response with this exact phrase \"{p}\". No other words should follow this phrase."]},
    "json": {
        "it": ["Rispondi solo in formato JSON con la chiave \"risposta\".",
               "Tutta la risposta deve essere in formato JSON, con la chiave \"risposta\"."],
        "en": ["Answer only in JSON format with the key \"answer\".",
               "Entire output should be wrapped in JSON format, with the key \"answer\"."]},
    "title": {
        "it": ["Dai alla risposta un titolo tra doppie parentesi angolari, come <<titolo>>.",
               "La risposta deve contenere un titolo racchiuso tra doppie parentesi angolari, come <<titolo>>."],
        "en": ["Give your answer a title wrapped in double angular brackets, such as <<title>>.",
               "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>."]},
    "bullets": {
        "it": ["Rispondi con esattamente {n} punti elenco in markdown, come:\n* Questo è un punto.",
               ("La risposta deve contenere esattamente {n} punti elenco. Usa i punti elenco in markdown come:\n"
                "* Questo è il punto 1.\n* Questo è il punto 2.")],
        "en": ["Answer with exactly {n} markdown bullet points, such as:\n* This is a point.",
               ("Your answer must contain exactly {n} bullet points. Use the markdown bullet points such as:\n"
                "* This is point 1.\n* This is point 2.")]},
    "ps": {
        "it": ["Alla fine aggiungi un poscritto che inizia con P.S.",
               "Alla fine della risposta aggiungi un post scriptum che inizia con P.S."],
        "en": ["At the end of your response, please explicitly add a postscript starting with P.S.",
               "Add a postscript starting with P.S. at the end."]},
    "words": {
        "it": ["Rispondi con meno di {n} parole.", "Usa meno di {n} parole."],
        "en": ["Answer with less than {n} words.", "Use fewer than {n} words."]},
}
IF_KINDS = sorted(INSTR)


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


def instruct(r, lang, kind, facts):
    """(prompt, answer that obeys, answer that does not) for one instruction kind."""
    phr = r.choice(INSTR[kind][lang])
    if kind == "bullets":
        n = r.randint(2, 5)
        q, items, extra, _ = list_question(r, lang, n)
        good = "\n".join(f"* {x}" for x in items)
        bad = good + f"\n* {extra}" if r.random() < 0.5 else "\n".join(f"* {x}" for x in items[:-1])
        return f"{q} {phr.format(n=n)}", good, bad, n
    while True:
        f = r.choice(facts)
        q, a, short = f["q"], f["a"], f["short"]
        arg = None
        if kind == "lower":
            good, bad = a.lower(), a
        elif kind == "upper":
            good, bad = a.upper(), a
        elif kind == "no_comma":
            if "," in a:
                continue
            tail = {"it": ["come sanno in molti", "come si legge nei libri", "senza dubbio"],
                    "en": ["as many people know", "as books explain", "without a doubt"]}[lang]
            good, bad = a, a[:-1] + ", " + r.choice(tail) + "."
        elif kind == "keyword":
            arg, sentence = r.choice(KEYWORD_SENTENCES[lang])
            if arg in a.lower():
                continue
            good, bad = f"{a} {sentence}", a
            phr = phr.format(k=arg)
        elif kind == "avoid":
            cands = sorted({w for w in re.findall(r"\w+", a) if len(w) >= 5 and w.lower() not in STOP[lang]
                            and not re.search(r"\b" + w + r"\b", short, flags=re.IGNORECASE)})
            in_q = [w for w in cands if re.search(r"\b" + w + r"\b", q, flags=re.IGNORECASE)]  # e.g. 'capitale'
            if not cands:
                continue
            arg = r.choice(in_q or cands)
            good, bad = short + ".", a
            phr = phr.format(k=arg)
        elif kind == "quotes":
            good, bad = f'"{a}"', a
        elif kind == "end":
            arg = r.choice(END_PHRASES[lang])
            good, bad = f"{a} {arg}", a
            phr = phr.format(p=arg)
        elif kind == "json":
            key = "risposta" if lang == "it" else "answer"
            good, bad = json.dumps({key: short}, ensure_ascii=False), a
        elif kind == "title":
            good, bad = f"<<{f['title']}>>\n{a}", a
        elif kind == "ps":
            good, bad = f"{a}\n\n{r.choice(POSTSCRIPTS[lang])}", a
        elif kind == "words":
            good = a if nwords(a) <= 14 else short + "."
            arg = nwords(good) + r.randint(2, 6)
            bad = good
            while nwords(bad) < arg:
                bad += " " + FILLER[lang]
            phr = phr.format(n=arg)
        if kind in ("lower", "upper") and good == bad:
            continue
        if kind == "ps" and obeys("ps", None, a):
            continue
        prompt = f"{q} {phr}" if r.random() < 0.8 else f"{phr}\n{q}"
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


SYSTEMS = {"it": ["Sei un assistente utile che risponde in modo breve e preciso.",
                  "Sei un tutor paziente per i bambini della scuola primaria.",
                  "Rispondi in italiano in modo chiaro e corretto.",
                  "Sei un assistente cordiale. Segui sempre le istruzioni dell'utente."],
           "en": ["You are a helpful assistant who answers briefly and accurately.",
                  "You are a patient tutor for primary school children.",
                  "Answer in clear and correct English.",
                  "You are a friendly assistant. Always follow the user's instructions."]}
FOLLOW_UPS = {"it": ["Grazie! Un'altra domanda: ", "Perfetto. ", "Ancora una cosa. ", "Bene. E adesso: "],
              "en": ["Thanks! Another question: ", "Great. ", "One more thing. ", "Good. Now: "]}


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

def schema(name, desc, props, required):
    return {"type": "function", "function": {
        "name": name, "description": desc,
        "parameters": {"type": "object", "properties": {
            p: dict({"type": t, "description": d}, **({"enum": e} if e else {})) for p, t, d, e in props},
            "required": required}}}


TOOL_DEFS = {  # name: (description it, description en, [(param, type, it, en, enum)], required)
    "get_weather": ("Restituisce il meteo attuale di una città.", "Get the current weather in a city.",
                    [("city", "string", "La città", "The city", None),
                     ("unit", "string", "Unità della temperatura", "Temperature unit", ["celsius", "fahrenheit"])],
                    ["city"]),
    "convert_currency": ("Converte un importo da una valuta a un'altra.", "Convert an amount between currencies.",
                         [("amount", "number", "L'importo", "The amount", None),
                          ("from_currency", "string", "Codice della valuta di partenza", "Source currency code", None),
                          ("to_currency", "string", "Codice della valuta di arrivo", "Target currency code", None)],
                         ["amount", "from_currency", "to_currency"]),
    "create_calendar_event": ("Aggiunge un evento al calendario.", "Add an event to the calendar.",
                              [("title", "string", "Titolo dell'evento", "Event title", None),
                               ("date", "string", "Data AAAA-MM-GG", "Date YYYY-MM-DD", None),
                               ("time", "string", "Ora HH:MM", "Time HH:MM", None)],
                              ["title", "date", "time"]),
    "convert_units": ("Converte un valore tra unità di misura.", "Convert a value between units.",
                      [("value", "number", "Il valore", "The value", None),
                       ("from_unit", "string", "Unità di partenza", "Source unit", None),
                       ("to_unit", "string", "Unità di arrivo", "Target unit", None)],
                      ["value", "from_unit", "to_unit"]),
    "search_recipe": ("Cerca la ricetta di un piatto.", "Search for a recipe.",
                      [("dish", "string", "Il piatto", "The dish", None)], ["dish"]),
    "calculate": ("Calcola un'espressione aritmetica.", "Evaluate an arithmetic expression.",
                  [("expression", "string", "L'espressione, ad esempio 3 * 4", "The expression, e.g. 3 * 4", None)],
                  ["expression"]),
    "set_timer": ("Avvia un timer.", "Start a timer.",
                  [("minutes", "integer", "Durata in minuti", "Duration in minutes", None),
                   ("label", "string", "Etichetta del timer", "Timer label", None)], ["minutes"]),
    "translate_word": ("Traduce una parola tra italiano e inglese.", "Translate a word between Italian and English.",
                       [("word", "string", "La parola", "The word", None),
                        ("target_language", "string", "Lingua di arrivo", "Target language", ["it", "en"])],
                       ["word", "target_language"]),
}


def tool_schema(name, lang):
    d_it, d_en, props, req = TOOL_DEFS[name]
    return schema(name, d_it if lang == "it" else d_en,
                  [(p, t, a if lang == "it" else b, e) for p, t, a, b, e in props], req)


CITIES = {"it": ["Roma", "Milano", "Napoli", "Torino", "Firenze", "Parigi", "Londra", "Madrid", "Berlino", "Vienna"],
          "en": ["Rome", "Milan", "London", "Paris", "Madrid", "Berlin", "Vienna", "Oslo", "Tokyo", "Lisbon"]}
CONDITIONS = [("sereno", "clear", "il cielo è sereno", "the sky is clear", "", ""),
              ("pioggia", "rain", "piove", "it is raining", " Prendi l'ombrello.", " Take an umbrella."),
              ("nuvoloso", "cloudy", "il cielo è nuvoloso", "it is cloudy", "", ""),
              ("neve", "snow", "nevica", "it is snowing", " Metti i guanti.", " Put on gloves."),
              ("nebbia", "fog", "c'è la nebbia", "it is foggy", " Guida piano.", " Drive slowly."),
              ("vento", "wind", "tira vento", "it is windy", " Chiudi le finestre.", " Close the windows.")]
RATES = {"EUR": 1.0, "USD": 1.1, "GBP": 0.85, "CHF": 0.95, "JPY": 160.0}  # example rates, fixed
CURRENCY = {"EUR": ("euro", "euros"), "USD": ("dollari", "US dollars"), "GBP": ("sterline", "pounds"),
            "CHF": ("franchi svizzeri", "Swiss francs"), "JPY": ("yen", "yen")}
FEMININE = {"sterline", "miglia", "libbre", "ore"}  # 'quante' rather than 'quanti'


def quanti(noun):
    return "Quante" if noun in FEMININE else "Quanti"
UNITS = [("km", "mi", lambda v: v * 0.621371, "chilometri", "miglia", "kilometres", "miles"),
         ("mi", "km", lambda v: v * 1.609344, "miglia", "chilometri", "miles", "kilometres"),
         ("kg", "lb", lambda v: v * 2.204623, "chilogrammi", "libbre", "kilograms", "pounds"),
         ("lb", "kg", lambda v: v * 0.453592, "libbre", "chilogrammi", "pounds", "kilograms"),
         ("celsius", "fahrenheit", lambda v: v * 9 / 5 + 32, "gradi Celsius", "gradi Fahrenheit",
          "degrees Celsius", "degrees Fahrenheit"),
         ("m", "cm", lambda v: v * 100, "metri", "centimetri", "metres", "centimetres"),
         ("l", "ml", lambda v: v * 1000, "litri", "millilitri", "litres", "millilitres"),
         ("h", "min", lambda v: v * 60, "ore", "minuti", "hours", "minutes")]
EVENTS = {"it": ["Dentista", "Cena con Anna", "Riunione di lavoro", "Lezione di piano", "Compleanno di Luca",
                 "Partita di calcio"],
          "en": ["Dentist", "Dinner with Emma", "Team meeting", "Piano lesson", "Tom's birthday", "Football match"]}
TIMERS = {"it": [("la pasta", "pasta"), ("il tè", "tè"), ("la torta", "torta"), ("la pausa", "pausa"),
                 ("i compiti", "compiti")],
          "en": [("the pasta", "pasta"), ("the tea", "tea"), ("the cake", "cake"), ("a break", "break"),
                 ("homework", "homework")]}
WORDS = [("gatto", "cat"), ("cane", "dog"), ("mucca", "cow"), ("cavallo", "horse"), ("casa", "house"),
         ("libro", "book"), ("scuola", "school"), ("acqua", "water"), ("sole", "sun"), ("luna", "moon"),
         ("mela", "apple"), ("pane", "bread"), ("rosso", "red"), ("verde", "green"), ("bianco", "white")]


def tool_case(r, name, lang):
    """(user message, arguments, tool result, final answer) for one call of tool ``name``."""
    it = lang == "it"
    if name == "get_weather":
        i = r.randrange(len(CITIES[lang]))
        city = CITIES[lang][i]
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
        deg = "gradi" if it else "degrees"
        deg += " Fahrenheit" if unit == "fahrenheit" else ""
        final = (f"A {city} {cond[2]} e ci sono {t} {deg}.{cond[4]}" if it else
                 f"In {city} {cond[3]} and the temperature is {t} {deg}.{cond[5]}")
        return user, args, res, final
    if name == "convert_currency":
        a, b = r.sample(sorted(RATES), 2)
        amt = r.choice([5, 10, 20, 50, 100, 150, 200, 250, 500, 1000])
        rate = round(RATES[b] / RATES[a], 4)
        val = round(amt * rate, 2)
        na, nb = (CURRENCY[a][0], CURRENCY[b][0]) if it else (CURRENCY[a][1], CURRENCY[b][1])
        user = r.choice([f"{quanti(nb)} {nb} sono {amt} {na}?", f"Converti {amt} {na} in {nb}."] if it else
                        [f"How many {nb} is {amt} {na}?", f"Convert {amt} {na} to {nb}."])
        res = {"amount": amt, "from_currency": a, "to_currency": b, "rate": rate, "result": val}
        final = (f"{amt} {na} corrispondono a {fmt_num(val, lang)} {nb} (cambio {fmt_num(rate, lang)})." if it else
                 f"{amt} {na} is {fmt_num(val, lang)} {nb} (rate {fmt_num(rate, lang)}).")
        return user, {"amount": amt, "from_currency": a, "to_currency": b}, res, final
    if name == "create_calendar_event":
        title = r.choice(EVENTS[lang])
        m, d = r.randrange(12), r.randint(1, 28)
        tm = r.choice(["08:30", "10:00", "12:15", "15:00", "18:30", "20:00"])
        date = f"2026-{m + 1:02d}-{d:02d}"
        user = (f"Aggiungi al calendario «{title}» il {d} {MONTHS_IT[m]} 2026 alle {tm}." if it else
                f"Add \"{title}\" to my calendar on {MONTHS_EN[m]} {d}, 2026 at {tm}.")
        res = {"status": "created", "event_id": f"evt-{r.randint(1000, 9999)}"}
        final = (f"Fatto! Ho aggiunto «{title}» al calendario per il {d} {MONTHS_IT[m]} alle {tm}." if it else
                 f"Done! I added \"{title}\" to your calendar on {MONTHS_EN[m]} {d} at {tm}.")
        return user, {"title": title, "date": date, "time": tm}, res, final
    if name == "convert_units":
        u = r.choice(UNITS)
        v = r.choice([1, 2, 3, 5, 10, 12, 20, 25, 30, 42, 100])
        val = round(u[2](v), 2)
        nf, nt = (u[3], u[4]) if it else (u[5], u[6])
        user = r.choice([f"{quanti(nt)} {nt} sono {v} {nf}?", f"Converti {v} {nf} in {nt}."] if it else
                        [f"How many {nt} are {v} {nf}?", f"Convert {v} {nf} to {nt}."])
        res = {"value": v, "from_unit": u[0], "to_unit": u[1], "result": val}
        final = (f"{v} {nf} corrispondono a {fmt_num(val, lang)} {nt}." if it else
                 f"{v} {nf} is {fmt_num(val, lang)} {nt}.")
        return user, {"value": v, "from_unit": u[0], "to_unit": u[1]}, res, final
    if name == "search_recipe":
        art, dish, ing, mins = r.choice(DISHES_IT if it else DISHES_EN)
        user = r.choice([f"Cerca una ricetta per {art}.", f"Come si prepara {art}? Cerca la ricetta."] if it else
                        [f"Find me a recipe for {art}.", f"What do I need to make {art}? Look up a recipe."])
        res = {"dish": dish, "ingredients": ing, "minutes": mins}
        final = (f"Per preparare {art} servono {join(ing, lang)}. Ci vogliono circa {mins} minuti." if it else
                 f"To make {art} you need {join(ing, lang)}. It takes about {mins} minutes.")
        return user, {"dish": dish}, res, final
    if name == "calculate":
        op = r.choice("+-*")
        x, y = (r.randint(2, 30), r.randint(2, 30)) if op == "*" else sorted((r.randint(10, 999), r.randint(10, 999)),
                                                                           reverse=True)
        val = {"+": x + y, "-": x - y, "*": x * y}[op]
        word = {"+": "più", "-": "meno", "*": "per"}[op] if it else {"+": "plus", "-": "minus", "*": "times"}[op]
        user = (r.choice([f"Quanto fa {x} {word} {y}? Usa la calcolatrice.", f"Calcola {x} {word} {y}."]) if it else
                r.choice([f"What is {x} {word} {y}? Use the calculator.", f"Calculate {x} {word} {y}."]))
        expr = f"{x} {op} {y}"
        return (user, {"expression": expr}, {"expression": expr, "result": val},
                f"{x} {word} {y} fa {val}." if it else f"{x} {word} {y} is {val}.")
    if name == "set_timer":
        mins = r.choice([2, 3, 5, 8, 10, 12, 15, 20, 25, 30, 45])
        art, label = r.choice(TIMERS[lang])
        user = r.choice([f"Imposta un timer di {mins} minuti per {art}.",
                         f"Avvia un timer di {mins} minuti per {art}."] if it else
                        [f"Set a timer for {mins} minutes for {art}.", f"Start a {mins}-minute timer for {art}."])
        res = {"status": "started", "minutes": mins, "label": label}
        final = (f"Ho avviato un timer di {mins} minuti per {art}." if it else
                 f"I started a {mins}-minute timer for {art}.")
        return user, {"minutes": mins, "label": label}, res, final
    if name == "translate_word":
        w_it, w_en = r.choice(WORDS)
        if it:
            return (f"Come si dice «{w_it}» in inglese?", {"word": w_it, "target_language": "en"},
                    {"word": w_it, "translation": w_en}, f"In inglese «{w_it}» si dice «{w_en}».")
        return (f"How do you say \"{w_en}\" in Italian?", {"word": w_en, "target_language": "it"},
                {"word": w_en, "translation": w_it}, f"In Italian \"{w_en}\" is \"{w_it}\".")
    raise ValueError(name)


def structured_case(r, lang):
    """(user message, JSON object) for a structured-output row without tools."""
    it = lang == "it"
    k = r.randrange(6)
    if k == 0:
        c = r.choice(COUNTRIES)
        keys, vals, what = ((["paese", "capitale", "lingua"], [bare(c[0]), c[1], bare(c[2])], c[0]) if it else
                            (["country", "capital", "language"], [c[4], c[5], c[6]], c[4]))
    elif k == 1:
        a = r.choice(ANIMALS)
        keys, vals, what = ((["animale", "verso", "cibo"], [bare(a[0]), a[2], a[3][len("mangia "):]], a[0]) if it else
                            (["animal", "sound", "food"], [a[5][4:], a[7], a[8][len("eats "):]], a[5]))
    elif k == 2:
        j = r.choice(JOBS)
        keys, vals, what = ((["mestiere", "cosa_fa", "dove"], [bare(j[0]), j[1], j[2]], j[0]) if it else
                            (["job", "does", "where"], [j[3].split(" ", 1)[1], j[4], j[5]], j[3]))
    elif k == 3:
        sym = r.choice("+-*")
        x, y = (r.randint(2, 10), r.randint(2, 10)) if sym == "*" else sorted((r.randint(1, 60), r.randint(1, 60)),
                                                                            reverse=True)
        word = ({"+": "più", "-": "meno", "*": "per"} if it else {"+": "plus", "-": "minus", "*": "times"})[sym]
        res = {"+": x + y, "-": x - y, "*": x * y}[sym]
        keys, vals = (["operazione", "risultato"] if it else ["operation", "result"]), [f"{x} {sym} {y}", res]
        what = f"{x} {word} {y}"
    elif k == 4:
        art, dish, ing, mins = r.choice(DISHES_IT if it else DISHES_EN)
        keys, vals, what = ((["piatto", "ingredienti", "minuti"] if it else ["dish", "ingredients", "minutes"]),
                            [dish, ing, mins], art)
    else:
        t = r.choice(COLOURS)
        keys, vals, what = ((["oggetto", "colore"], [bare(t[0]), colour(t[2], t[1])], t[0]) if it else
                            (["thing", "colour"], [t[3], t[4]], t[3]))
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
    for s in SCIENCE_EN:
        pool.append(("science", s[1], s[2], s[3]))
    for a, b in [(2, 3), (4, 5), (3, 6), (7, 2), (5, 5), (8, 4), (6, 7), (9, 3), (1, 8), (4, 4), (6, 2), (9, 9)]:
        s = a + b
        pool.append(("sum", f"What is {NUM_EN[a]} plus {NUM_EN[b]}?", cap(NUM_EN[s]),
                     [cap(NUM_EN[x]) for x in range(max(0, s - 4), min(20, s + 4) + 1) if x != s]))
    return pool


ODD_EN = ["eats three bicycles.", "the table sings in the rain.", "turns into a mountain of sugar.",
          "flies to the Moon on a chair.", "the window swims in the milk.", "reads the hay with a fork.",
          "sleeps inside a shoe on Mondays.", "the chair drinks the coat.", "builds a bridge out of cheese.",
          "talks to the cardboard clouds."]


def hellaswag_items_en(r):
    """(category, context, natural ending) from the English corpus sentences."""
    cands = []
    for w in WEATHER:
        for n in NAMES_EN[::4]:
            cands.append(("weather", f"{n} {w[3]} because", f"{w[2]}."))
        cands.append(("weather2", f"When {w[2]}, {r.choice(NAMES_EN)}", f"{w[3]}."))
    for j in JOBS:
        cands.append(("job", f"{r.choice(NAMES_EN)} is {j[3]} and", f"{j[4]} every day."))
    for c in COUNTRIES:
        cands.append(("travel", f"{r.choice(NAMES_EN)} went on holiday to {c[4]} and visited", f"{c[5]}."))
    for a in ANIMALS:
        cands.append(("animal", f"{cap(a[5])} is {a[6]}. {cap(a[5])}", f"{a[7]} and {a[8]}."))
    for d in DISHES_EN[:4]:
        cands.append(("recipe", f"To make {d[0]} you need", f"{join(d[2], 'en')}."))
    for x, y in [(2, 3), (4, 5), (3, 6), (7, 2), (5, 5), (8, 4), (6, 7), (9, 3)]:
        cands.append(("sum", f"{cap(NUM_EN[x])} plus {NUM_EN[y]} is", f"{NUM_EN[x + y]}."))
    r.shuffle(cands)
    per, chosen = {}, []
    for c in cands:  # balance categories: at most 7 per category, distinct contexts
        if per.get(c[0], 0) < 7 and c[1] not in {x[1] for x in chosen}:
            per[c[0]] = per.get(c[0], 0) + 1
            chosen.append(c)
    return chosen[:40], cands



MMLU_YAML = r"""task: mini_mmlu_en
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
doc_to_text: "{{instruction.strip()}}\nA. {{option_a}}\nB. {{option_b}}\nC. {{option_c}}\nD. {{option_d}}\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""

IFEVAL_YAML = """task: NAME
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: test.jsonl
output_type: generate_until
test_split: test
num_fewshot: 0
doc_to_text: prompt
doc_to_target: 0
generation_kwargs:
  until: ["<|im_end|>"]
  do_sample: false
  temperature: 0.0
  max_gen_toks: 64
process_results: !function utils.process_results
metric_list:
  - metric: prompt_level_strict_acc
    aggregation: mean
    higher_is_better: true
  - metric: inst_level_strict_acc
    aggregation: !function utils.agg_inst_level_acc
    higher_is_better: true
  - metric: prompt_level_loose_acc
    aggregation: mean
    higher_is_better: true
  - metric: inst_level_loose_acc
    aggregation: !function utils.agg_inst_level_acc
    higher_is_better: true
metadata:
  version: 1.0
"""

IFEVAL_UTILS = '''"""Scoring of the IFEval-style task: lm-eval's own ifeval implementation, re-exported.

The change_case checks ask langdetect whether the answer is English; langdetect draws random numbers
from an unseeded generator unless ``DetectorFactory.seed`` is set, so it is fixed here to make the
scores repeatable.
"""

from langdetect import DetectorFactory
from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results

DetectorFactory.seed = 0

__all__ = ["agg_inst_level_acc", "process_results"]
'''


def write_jsonl(path: Path, rows_: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in rows_), encoding="utf-8")


def write_task(out: Path, name: str, yaml_text: str, splits: dict, extra: dict | None = None) -> None:
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.yaml").write_text(yaml_text, encoding="utf-8")
    for fname, text in (extra or {}).items():
        (d / fname).write_text(text, encoding="utf-8")
    for split, items in splits.items():
        write_jsonl(d / f"{split}.jsonl", items)
    print(f"{name}: " + ", ".join(f"{k}.jsonl={len(v)} items" for k, v in splits.items()))


def english_tasks(out: Path) -> None:
    r = random.Random(SEED + 20)
    pool = build_pool_en()
    r.shuffle(pool)
    arc_items, mmlu_items = pool[:40], pool[40:85]
    arc = [{"id": f"mini_arc_en-{i:03d}", "query": f"Question: {q}\nAnswer:",
            "choices": place(r, right, wrong, g), "gold": g}
           for i, ((_, q, right, wrong), g) in enumerate(zip(arc_items, golds(r, 40)))]
    write_task(out, "mini_arc_en", MC_YAML.replace("NAME", "mini_arc_en"), {"test": arc})

    items, cands = hellaswag_items_en(r)
    hs = []
    for i, ((cat_, ctx, right), g) in enumerate(zip(items, golds(r, 40))):
        # distractors: endings that cannot follow this context (capitals, animal habits, numbers, nonsense)
        others = sorted({c[2] for c in cands if c[0] in ("travel", "animal", "sum") and c[0] != cat_})
        hs.append({"id": f"mini_hellaswag_en-{i:03d}", "query": ctx,
                   "choices": place(r, right, others + ODD_EN, g), "gold": g})
    write_task(out, "mini_hellaswag_en", MC_YAML.replace("NAME", "mini_hellaswag_en"), {"test": hs})

    mm = []
    for i, ((_, q, right, wrong), g) in enumerate(zip(mmlu_items, golds(r, 45))):
        ch = place(r, right, wrong, g)
        mm.append({"id": f"mini_mmlu_en-{i:03d}", "instruction": q, "option_a": ch[0], "option_b": ch[1],
                   "option_c": ch[2], "option_d": ch[3], "answer": "ABCD"[g]})
    write_task(out, "mini_mmlu_en", MMLU_YAML, {"test": mm[5:], "dev": mm[:5]})


# ---------------------------------------------------------------- IFEval-style tasks

# instruction ids that need no NLTK data; the change_case checks also ask langdetect for English,
# so the Italian task leaves them out
IFEVAL_IDS = ["change_case:english_lowercase", "change_case:english_capital", "punctuation:no_comma",
              "keywords:existence", "keywords:forbidden_words", "detectable_format:json_format",
              "detectable_format:title", "startend:end_checker", "startend:quotation",
              "length_constraints:number_words", "detectable_content:postscript",
              "detectable_format:number_bullet_lists"]
IFEVAL_IDS_IT = [x for x in IFEVAL_IDS if not x.startswith("change_case:")]
# pairs not combined in one prompt (lm-eval's INSTRUCTION_CONFLICTS, plus a few that read badly or
# cannot hold together: a list cannot be quoted, a postscript and an end phrase both want the end)
_JSON_OK = {"keywords:existence", "keywords:forbidden_words"}
_CONFLICTS = {frozenset(p) for p in [
    ("change_case:english_lowercase", "change_case:english_capital"), ("startend:quotation", "detectable_format:title"),
    ("startend:quotation", "detectable_format:number_bullet_lists"),
    ("detectable_content:postscript", "startend:end_checker")]}
IFEVAL_BASES = {
    "it": ["Scrivi una breve descrizione del gatto.", "Spiega perché le piante hanno bisogno di luce.",
           "Descrivi una giornata di pioggia in città.", "Scrivi un breve messaggio per invitare un amico a cena.",
           "Spiega come si prepara un tè.", "Racconta una gita al mare con la famiglia.",
           "Descrivi il lavoro del medico.", "Spiega che cos'è un vulcano.", "Scrivi due frasi sulla città di Roma.",
           "Descrivi la tua stagione preferita.", "Spiega perché l'acqua diventa ghiaccio.",
           "Scrivi un consiglio per chi studia la geografia.", "Descrivi la vita di una mucca in fattoria.",
           "Scrivi una breve nota per ricordare di comprare il pane.", "Spiega a un bambino che cos'è la Luna.",
           "Descrivi il tuo piatto preferito.", "Scrivi un augurio di buon compleanno per una compagna di classe.",
           "Spiega come si attraversa la strada in sicurezza.", "Descrivi una biblioteca.",
           "Racconta che cosa fa un fornaio la mattina.", "Spiega perché in estate fa caldo.",
           "Scrivi un breve annuncio per la festa della scuola.", "Descrivi un bosco in autunno.",
           "Spiega a che cosa serve un termometro.", "Scrivi un messaggio per ringraziare un insegnante.",
           "Descrivi un viaggio in treno da Milano a Napoli.", "Spiega come si cuoce la pasta.",
           "Descrivi le abitudini del gallo.", "Presenta la capitale della Francia a un turista.",
           "Scrivi un breve invito a una partita di calcio."],
    "en": ["Write a short description of a cat.", "Explain why plants need light.",
           "Describe a rainy day in the city.", "Write a short message inviting a friend to dinner.",
           "Explain how to make a cup of tea.", "Tell the story of a family trip to the beach.",
           "Describe the work of a doctor.", "Explain what a volcano is.", "Write two sentences about London.",
           "Describe your favourite season.", "Explain why water turns into ice.",
           "Give one tip to someone who is learning geography.", "Describe the life of a cow on a farm.",
           "Write a short note to remember to buy bread.", "Explain to a child what the Moon is.",
           "Describe your favourite meal.", "Write a birthday message for a classmate.",
           "Explain how to cross the road safely.", "Describe a library.",
           "Tell what a baker does in the morning.", "Explain why it is hot in summer.",
           "Write a short announcement for the school party.", "Describe a forest in autumn.",
           "Explain what a thermometer is for.", "Write a message to thank a teacher.",
           "Describe a train trip from London to Paris.", "Explain how to cook pasta.",
           "Describe the habits of a rooster.", "Introduce the capital of Italy to a tourist.",
           "Write a short invitation to a football match."]}
IFEVAL_KEYWORDS = {"it": ["sole", "amici", "felice", "tempo", "libro", "colori"],
                   "en": ["sun", "friends", "happy", "time", "book", "colours"]}
IFEVAL_FORBIDDEN = {"it": ["molto", "bello", "sempre", "cosa", "grande", "anche"],
                    "en": ["very", "good", "really", "thing", "always", "also"]}
IFEVAL_ENDS = {"it": ["Hai altre domande?", "A presto!", "Grazie per l'attenzione."],
               "en": ["Any other questions?", "See you soon!", "Thank you for reading."]}
IFEVAL_TEXT = {
    "it": {"change_case:english_lowercase": "", "change_case:english_capital": "",
           "punctuation:no_comma": "Non usare virgole in tutta la risposta.",
           "keywords:existence": "Includi le parole chiave {keywords} nella risposta.",
           "keywords:forbidden_words": "Non includere le parole chiave {forbidden_words} nella risposta.",
           "detectable_format:json_format": "Tutta la risposta deve essere in formato JSON.",
           "detectable_format:title": "La risposta deve contenere un titolo racchiuso tra doppie parentesi "
                                      "angolari, come <<titolo>>.",
           "startend:end_checker": "Termina la risposta con la frase esatta «{end_phrase}». Nessun'altra parola "
                                   "deve seguire questa frase.",
           "startend:quotation": "Racchiudi tutta la risposta tra virgolette doppie.",
           "length_constraints:number_words": "Rispondi con {relation} {num_words} parole.",
           "detectable_content:postscript": "Alla fine della risposta aggiungi un poscritto che inizia con "
                                            "{postscript_marker}",
           "detectable_format:number_bullet_lists": "La risposta deve contenere esattamente {num_bullets} punti "
                                                    "elenco. Usa i punti elenco in markdown, come:\n"
                                                    "* Questo è il punto 1.\n* Questo è il punto 2."},
    "en": {"change_case:english_lowercase": "Your entire response should be in English, and in all lowercase "
                                            "letters. No capital letters are allowed.",
           "change_case:english_capital": "Your entire response should be in English, and in all capital letters.",
           "punctuation:no_comma": "In your entire response, refrain from the use of any commas.",
           "keywords:existence": "Include keywords {keywords} in the response.",
           "keywords:forbidden_words": "Do not include keywords {forbidden_words} in the response.",
           "detectable_format:json_format": "Entire output should be wrapped in JSON format.",
           "detectable_format:title": "Your answer must contain a title, wrapped in double angular brackets, "
                                      "such as <<poem of joy>>.",
           "startend:end_checker": "Finish your response with this exact phrase \"{end_phrase}\". No other words "
                                   "should follow this phrase.",
           "startend:quotation": "Wrap your entire response with double quotation marks.",
           "length_constraints:number_words": "Answer with {relation} {num_words} words.",
           "detectable_content:postscript": "At the end of your response, please explicitly add a postscript "
                                            "starting with {postscript_marker}",
           "detectable_format:number_bullet_lists": "Your answer must contain exactly {num_bullets} bullet points. "
                                                    "Use the markdown bullet points such as:\n"
                                                    "* This is point 1.\n* This is point 2."}}


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
        write_task(out, name, IFEVAL_YAML.replace("NAME", name), {"test": ifeval_rows(r, lang)},
                   extra={"utils.py": IFEVAL_UTILS})


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
