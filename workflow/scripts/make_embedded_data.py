"""Generate the project-written corpus and eval tasks of the embedded default (deterministic).

Writes parquet shards under ``--out-data`` in four sources shaped like the production mix
(Italian web prose, English web prose, Italian document-like texts, source code with a
``content`` column like starcoderdata) and three lm-eval task folders under ``--out-tasks``
shaped like arc_it, hellaswag_it and m_mmlu_it. Every sentence comes from the templates and
vocabularies below (written for this project); the facts the evals ask about recur across
many documents. Seeded ``random.Random`` streams make the output byte-identical on every run.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20261123
NUM_IT = ("zero uno due tre quattro cinque sei sette otto nove dieci undici dodici tredici quattordici quindici "
          "sedici diciassette diciotto diciannove venti").split()
NUM_EN = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen twenty").split()


def rows(block):
    """Parse a '|'-separated table (records on lines or split by ' / '); ';' separates list items,
    an empty field is None."""
    return [tuple((f.split(";") if ";" in f else f or None) for f in rec.split("|"))
            for line in block.strip().splitlines() for rec in line.split(" / ")]


# country with article | capital | language | where | English: country | capital | language | where
COUNTRIES = rows("""
la Francia|Parigi|il francese|in Europa|France|Paris|French|in Europe
la Spagna|Madrid|lo spagnolo|in Europa|Spain|Madrid|Spanish|in Europe
il Portogallo|Lisbona|il portoghese|in Europa|Portugal|Lisbon|Portuguese|in Europe
la Germania|Berlino|il tedesco|in Europa|Germany|Berlin|German|in Europe
l'Italia|Roma|l'italiano|in Europa|Italy|Rome|Italian|in Europe
l'Austria|Vienna|il tedesco|in Europa|Austria|Vienna|German|in Europe
la Grecia|Atene|il greco|in Europa|Greece|Athens|Greek|in Europe
la Polonia|Varsavia|il polacco|in Europa|Poland|Warsaw|Polish|in Europe
l'Inghilterra|Londra|l'inglese|in Europa|England|London|English|in Europe
la Svezia|Stoccolma|lo svedese|in Europa|Sweden|Stockholm|Swedish|in Europe
la Norvegia|Oslo|il norvegese|in Europa|Norway|Oslo|Norwegian|in Europe
la Finlandia|Helsinki|il finlandese|in Europa|Finland|Helsinki|Finnish|in Europe
la Danimarca|Copenaghen|il danese|in Europa|Denmark|Copenhagen|Danish|in Europe
l'Ungheria|Budapest|l'ungherese|in Europa|Hungary|Budapest|Hungarian|in Europe
la Russia|Mosca|il russo|tra l'Europa e l'Asia|Russia|Moscow|Russian|between Europe and Asia
il Giappone|Tokyo|il giapponese|in Asia|Japan|Tokyo|Japanese|in Asia
la Cina|Pechino|il cinese|in Asia|China|Beijing|Chinese|in Asia""")
# region with article | 'in' form | regional capital
REGIONS = rows("""
la Lombardia|in Lombardia|Milano / il Piemonte|in Piemonte|Torino / la Toscana|in Toscana|Firenze / il Lazio|nel Lazio|Roma
la Campania|in Campania|Napoli / il Veneto|in Veneto|Venezia / la Sicilia|in Sicilia|Palermo / l'Emilia-Romagna|in Emilia-Romagna|Bologna
la Puglia|in Puglia|Bari / la Liguria|in Liguria|Genova / la Sardegna|in Sardegna|Cagliari / l'Umbria|in Umbria|Perugia
la Calabria|in Calabria|Catanzaro""")
# animal | kind | sound | food | home | English: animal | kind | sound | food
ANIMALS = rows("""
il gatto|un animale domestico|miagola|mangia il pesce|vive in casa|the cat|a pet|meows|eats fish
il cane|un animale domestico|abbaia|mangia la carne|vive in casa con la famiglia|the dog|a pet|barks|eats meat
la mucca|un animale da fattoria|muggisce|mangia l'erba|vive nella stalla|the cow|a farm animal|moos|eats grass
il cavallo|un animale da fattoria|nitrisce|mangia il fieno|vive nella stalla|the horse|a farm animal|neighs|eats hay
la pecora|un animale da fattoria|bela|mangia l'erba|vive nel recinto|the sheep|a farm animal|bleats|eats grass
l'asino|un animale da fattoria|raglia|mangia il fieno|vive nella stalla|the donkey|a farm animal|brays|eats hay
il gallo|un animale da fattoria|canta all'alba|mangia i semi|vive nel pollaio|the rooster|a farm animal|crows at dawn|eats seeds
il leone|un animale selvatico|ruggisce|mangia la carne|vive nella savana|the lion|a wild animal|roars|eats meat
il lupo|un animale selvatico|ulula|mangia la carne|vive nel bosco|the wolf|a wild animal|howls|eats meat
l'elefante|un animale selvatico|barrisce|mangia le foglie|vive nella savana|the elephant|a wild animal|trumpets|eats leaves
la rana|un anfibio|gracida|mangia gli insetti|vive vicino allo stagno|the frog|an amphibian|croaks|eats insects""")
# thing | gender | colour | English: thing | colour
COLOUR_BASES = ["azzurro", "verde", "bianco", "nero", "rosso", "giallo", "arancione", "blu", "viola", "marrone"]
COLOURS = rows("""
il cielo|m|azzurro|the sky|blue / l'erba|f|verde|grass|green / la neve|f|bianco|snow|white / il carbone|m|nero|coal|black
il sangue|m|rosso|blood|red / il limone|m|giallo|a lemon|yellow / l'arancia|f|arancione|an orange|orange / il latte|m|bianco|milk|white
la fragola|f|rosso|a strawberry|red / la banana|f|giallo|a banana|yellow / la foglia|f|verde|a leaf|green""")
# job | what they do | where they work | English: job | what they do | where
JOBS = rows("""
il medico|cura i malati|in ospedale|a doctor|takes care of sick people|in a hospital
l'insegnante|insegna agli studenti|a scuola|a teacher|teaches students|at a school
il cuoco|prepara i pasti|al ristorante|a cook|prepares meals|in a restaurant
il contadino|coltiva la terra|nei campi|a farmer|grows crops|in the fields
il fornaio|fa il pane|al forno|a baker|makes bread|in a bakery
il pompiere|spegne gli incendi|in caserma|a firefighter|puts out fires|at the fire station
il postino|consegna le lettere|all'ufficio postale|a postman|delivers letters|at the post office
il meccanico|ripara le automobili|in officina|a mechanic|repairs cars|in a garage
il farmacista|vende le medicine|in farmacia|a pharmacist|sells medicines|in a pharmacy
il pilota|guida gli aerei|in aeroporto|a pilot|flies planes|at the airport
il pescatore|pesca il pesce|in mare|a fisherman|catches fish|at sea
il bibliotecario|presta i libri|in biblioteca|a librarian|lends books|in a library""")
# condition | what one does | English: condition | what one does
WARM = ("beve molta acqua", "mette gli occhiali da sole")
WEATHER = rows("""
piove|apre l'ombrello|it is raining|opens an umbrella / fa freddo|indossa il cappotto|it is cold|puts on a coat
fa caldo|beve molta acqua|it is hot|drinks a lot of water / nevica|mette i guanti|it is snowing|puts on gloves
c'è il sole|mette gli occhiali da sole|it is sunny|puts on sunglasses / tira vento|chiude le finestre|it is windy|closes the windows
c'è la nebbia|guida piano|it is foggy|drives slowly""")
# Italian fact | English fact | question | right answer | wrong answers (no question: not asked)
SCIENCE = rows("""
L'acqua bolle a cento gradi.|Water boils at one hundred degrees.|A quanti gradi bolle l'acqua?|A cento gradi|A zero gradi;A dieci gradi;A cinquanta gradi
L'acqua gela a zero gradi.|Water freezes at zero degrees.|A quanti gradi gela l'acqua?|A zero gradi|A cento gradi;A venti gradi;A cinquanta gradi
La Terra gira intorno al Sole.|The Earth goes around the Sun.|Intorno a che cosa gira la Terra?|Intorno al Sole|Intorno alla Luna;Intorno a Marte;Intorno a una cometa
La Luna gira intorno alla Terra.|The Moon goes around the Earth.|Intorno a che cosa gira la Luna?|Intorno alla Terra|Intorno a Marte;Intorno a Giove;Intorno a Venere
Il Sole è una stella.|The Sun is a star.|Che cos'è il Sole?|Una stella|Un pianeta;Un satellite;Una cometa
Il ragno ha otto zampe.|A spider has eight legs.|Quante zampe ha il ragno?|Otto|Sei;Quattro;Due
Un insetto ha sei zampe.|An insect has six legs.|Quante zampe ha un insetto?|Sei|Otto;Quattro;Dieci
Le api producono il miele.|Bees make honey.|Che cosa producono le api?|Il miele|Il latte;La lana;Il sale
Le piante producono l'ossigeno.|Plants produce oxygen.|Che cosa producono le piante?|L'ossigeno|Il ferro;Il sale;Il carbone
Una settimana ha sette giorni.|A week has seven days.|Quanti giorni ha una settimana?|Sette|Cinque;Sei;Dieci
Un anno ha dodici mesi.|A year has twelve months.|Quanti mesi ha un anno?|Dodici|Dieci;Sette;Quindici
Un triangolo ha tre lati.|A triangle has three sides.|Quanti lati ha un triangolo?|Tre|Quattro;Cinque;Sei
Un quadrato ha quattro lati.|A square has four sides.|Quanti lati ha un quadrato?|Quattro|Tre;Cinque;Otto
Gennaio è il primo mese dell'anno.|January is the first month of the year.|Qual è il primo mese dell'anno?|Gennaio|Marzo;Dicembre;Giugno
Dicembre è l'ultimo mese dell'anno.|December is the last month of the year.|Qual è l'ultimo mese dell'anno?|Dicembre|Gennaio;Settembre;Maggio
Dopo il lunedì viene il martedì.|Tuesday comes after Monday.|Quale giorno viene dopo il lunedì?|Il martedì|La domenica;Il venerdì;Il giovedì
I pesci respirano con le branchie.|Fish breathe through their gills.|Con che cosa respirano i pesci?|Con le branchie|Con i polmoni;Con le ali;Con le foglie
Il Sole sorge a est e tramonta a ovest.|The Sun rises in the east and sets in the west.|Dove sorge il Sole?|A est|A ovest;A nord;A sud
Le stagioni sono quattro: primavera, estate, autunno e inverno.|There are four seasons: spring, summer, autumn and winter.|Quante sono le stagioni?|Quattro|Due;Tre;Sei
Il ferro è un metallo.|Iron is a metal.|Che cos'è il ferro?|Un metallo|Un gas;Un animale;Una pianta
Il ghiaccio è acqua allo stato solido.|Ice is water in its solid state.|||
Le piante hanno bisogno di luce e di acqua.|Plants need light and water.|||
La mucca dà il latte.|Cows give milk.|||""")
# (context-starting clause, natural continuation) for cause/effect stories (hellaswag-like items)
EFFECTS = [("{n} mette la pentola sul fuoco e aspetta che l'acqua", "bolla a cento gradi."),
           ("{n} mette una bottiglia d'acqua nel congelatore e dopo qualche ora l'acqua", "diventa ghiaccio."),
           ("{n} lascia la pianta al buio e senz'acqua, così dopo pochi giorni la pianta", "appassisce."),
           ("La sera {n} guarda il cielo e vede il Sole che", "tramonta a ovest."),
           ("La mattina {n} apre la finestra e vede il Sole che", "sorge a est.")]
NAMES_M = "Marco Luca Matteo Andrea Paolo Giorgio Davide Simone Stefano Pietro".split()
NAMES_F = "Giulia Sofia Chiara Elena Anna Sara Laura Francesca Martina Marta".split()
NAMES = NAMES_M + NAMES_F
NAMES_EN = "John Mary Peter Emma David Alice James Lucy Tom Sarah Jack Olivia".split()
CITIES = "Milano Napoli Torino Bologna Firenze Venezia Genova Bari Palermo Verona Trieste Padova Perugia".split()
# invented places and rivers, for invented local history
TOWNS = "Valdoro Borgoluce Roccaserena Fontalba Miraselva Castelvento Pratofiorito Colleverde Poggiorame".split()
RIVERS = ["Lisaro", "Verdana", "Tornello", "Sarvo"]
BUILDINGS = ("un ponte di pietra;una nuova scuola;la torre dell'orologio;un mulino sul fiume;la biblioteca comunale;"
             "un piccolo teatro;il mercato coperto;una fontana in piazza").split(";")
DAYS = "lunedì martedì mercoledì giovedì venerdì sabato domenica".split()
MONTHS = "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre".split()
SEASONS = [("in primavera", "i fiori sbocciano"), ("in estate", "fa caldo"), ("in autunno", "cadono le foglie"),
           ("in inverno", "fa freddo")]
SUBJECTS = "la matematica;la storia;la geografia;la musica;le scienze;l'italiano;l'inglese;l'arte".split(";")
DISHES = [("la torta di mele", "farina, uova, zucchero, burro e mele"),
          ("il risotto", "riso, brodo, burro, cipolla e parmigiano"),
          ("la pizza margherita", "farina, acqua, lievito, pomodoro, mozzarella e basilico"),
          ("la frittata", "uova, sale, olio e formaggio"),
          ("il minestrone", "carote, patate, zucchine, fagioli e sedano"),
          ("la pasta al pomodoro", "pasta, pomodoro, olio, basilico e sale"),
          ("il tiramisù", "savoiardi, caffè, mascarpone, uova, zucchero e cacao")]
DISHES_EN = [("apple pie", "flour, eggs, sugar, butter and apples"), ("pancakes", "flour, milk, eggs and butter"),
             ("tomato soup", "tomatoes, onions, salt and olive oil"), ("a salad", "lettuce, tomatoes, oil and salt")]
COUNTABLE = [("mele", "altre"), ("libri", "altri"), ("matite", "altre"), ("biscotti", "altri"),
             ("caramelle", "altre"), ("quaderni", "altri")]
ODD_ENDINGS = ("mangia tre biciclette.|il tavolo canta sotto la pioggia.|diventa una montagna di zucchero.|"
               "vola fino alla Luna con una sedia.|la finestra nuota nel latte.|legge il fieno con la forchetta.|"
               "il lunedì dorme dentro una scarpa.|la sedia beve il cappotto.|costruisce un ponte di formaggio.|"
               "parla con le nuvole di cartone.").split("|")


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
        r.choice(SCIENCE)[0], r.choice(SCIENCE)[0], r.choice(SCIENCE)[0], r.choice(SCIENCE)[0]])


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


def it_web(r):
    """One Italian web page: a genre opening plus paragraphs of facts and stories."""
    g = r.randrange(7)
    n = r.choice(NAMES)
    if g == 0:  # travel blog
        c = r.choice([x for x in COUNTRIES if x[1] != "Roma"])
        head = (f"Quest'anno siamo partiti da {r.choice(CITIES)} per un viaggio in {bare(c[0])}. "
                f"La capitale {prep('di', c[0])} è {c[1]} e l'abbiamo visitata in {NUM_IT[r.randint(2, 6)]} giorni. "
                f"In {bare(c[0])} si parla {c[2]}, quindi abbiamo imparato qualche parola nuova. "
                f"{cap(c[0])} si trova {c[3]}. {n} va in vacanza in {bare(c[0])} e visita la capitale, {c[1]}.")
    elif g == 1:  # recipe blog
        d = r.choice(DISHES)
        head = (f"Oggi vi spiego come preparare {d[0]}. Per preparare {d[0]} servono {d[1]}. "
                f"Per prima cosa si mette l'acqua sul fuoco. L'acqua bolle a cento gradi. "
                f"In tutto servono circa {r.choice([20, 30, 40, 50, 60])} minuti. {n} mette la pentola sul fuoco e aspetta che l'acqua "
                f"bolla a cento gradi. Buon appetito!")
    elif g == 2:  # animals page
        a = r.choice(ANIMALS)
        head = (f"Oggi parliamo di un animale: {a[0]}. {cap(a[0])} è {a[1]}. {cap(a[0])} {a[2]}. "
                f"{cap(a[0])} {a[3]} e {a[4]}. {cap(a[0])} è {a[1]} e {a[2]}.")
    elif g == 3:  # school diary
        head = (f"Caro diario, oggi è {r.choice(DAYS)} e a scuola abbiamo studiato {r.choice(SUBJECTS)}. "
                f"La maestra ci ha spiegato che {low(r.choice(SCIENCE)[0])} Poi ci ha detto che "
                f"{low(r.choice(SCIENCE)[0])} Domani ripasseremo tutto insieme.")
    elif g == 4:  # invented local history / news
        t, y = r.choice(TOWNS), r.randint(1450, 1950)
        head = (f"Secondo le cronache locali, nel {y} gli abitanti di {t} costruirono {r.choice(BUILDINGS)}. "
                f"Nel {y + r.randint(5, 60)} una grande piena del fiume {r.choice(RIVERS)} allagò le campagne. "
                f"Ogni anno, a {r.choice(MONTHS)}, a {t} si tiene la festa {prep('di', r.choice(DISHES)[0])}. "
                f"Il paese ha {r.randint(3, 90)} mila abitanti e si trova vicino a {r.choice(CITIES)}.")
    elif g == 5:  # weather page
        w, c = r.choice(WEATHER), r.choice(CITIES)
        head = (f"Previsioni del tempo per {r.choice(DAYS)}: a {c} {w[0]} per tutta la giornata. "
                f"Chi esce di casa {w[1]}. {n} {w[1]} perché {w[0]}. La temperatura sarà di "
                f"{r.randint(24, 34) if w[1] in WARM else r.randint(-3, 12)} gradi.")
    else:  # quiz page in the eval formats
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
        head = "\n".join(lines)
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
        r.choice(SCIENCE)[1], r.choice(SCIENCE)[1], r.choice(SCIENCE)[1]])


def en_web(r):
    g = r.randrange(4)
    n = r.choice(NAMES_EN)
    if g == 0:
        c = r.choice(COUNTRIES)
        head = (f"Travel notes: this spring we visited {c[4]}. The capital of {c[4]} is {c[5]}. "
                f"People in {c[4]} speak {c[6]}, and {c[4]} is {c[7]}. We stayed in {c[5]} for "
                f"{NUM_EN[r.randint(2, 9)]} days.")
    elif g == 1:
        d = r.choice(DISHES_EN)
        head = (f"Today I will show you how to make {d[0]}. To make {d[0]} you need {d[1]}. "
                f"First, put a pot of water on the stove. Water boils at one hundred degrees. "
                f"Cook for {r.choice([10, 15, 20, 30])} minutes and enjoy your meal.")
    elif g == 2:
        a = r.choice(ANIMALS)
        head = (f"Animal facts: {a[5]}. {cap(a[5])} is {a[6]}. {cap(a[5])} {a[7]} and {a[8]}. "
                f"{n} likes to watch {a[5]} at the {r.choice(['farm', 'zoo', 'park'])}.")
    else:
        head = (f"Dear diary, today at school we studied {r.choice(['maths', 'history', 'geography', 'science'])}. "
                f"The teacher said that {low(r.choice(SCIENCE)[1])} {n} asked many questions.")
    return "\n\n".join([head] + [para(r, [en_sentence], 3, 7) for _ in range(r.randint(1, 3))])


# ---------------------------------------------------------------- Italian document-like texts

# document kind: title template -> sentence templates ("|"-separated)
PDF_KINDS = {
    "Regolamento della biblioteca comunale di {t}": (
        "La biblioteca è aperta dal lunedì al venerdì, dalle {h1} alle {h2}.|Ogni utente può prendere in "
        "prestito al massimo {k} libri per volta.|Il prestito dura {d} giorni e può essere rinnovato una "
        "sola volta.|È vietato mangiare e bere nelle sale di lettura.|I libri danneggiati devono essere "
        "sostituiti a cura dell'utente.|Per iscriversi è necessario presentare un documento d'identità.|Il "
        "bibliotecario presta i libri e aiuta gli utenti nelle ricerche.").split("|"),
    "Manuale d'uso del forno elettrico modello {m}": (
        "Prima dell'uso, leggere attentamente le istruzioni.|Collegare l'apparecchio a una presa con messa "
        "a terra.|Non immergere mai l'apparecchio nell'acqua.|Impostare la temperatura con la manopola di "
        "destra.|La spia {c} indica che il forno è acceso.|Il forno raggiunge la temperatura di {g} gradi "
        "in circa {d} minuti.|Pulire le superfici con un panno morbido e asciutto.|In caso di guasto, "
        "rivolgersi al centro di assistenza.").split("|"),
    "Linee guida per la raccolta differenziata nel comune di {t}": (
        "La carta va conferita nel contenitore {cm}.|Il vetro va conferito nella campana verde.|La plastica "
        "viene raccolta ogni {day}.|I rifiuti organici vengono raccolti due volte alla settimana.|I rifiuti "
        "ingombranti si ritirano su prenotazione.|Le pile esauste vanno portate nei contenitori presenti "
        "nei negozi.|Il comune ringrazia i cittadini per la collaborazione.").split("|"),
    "Relazione annuale della scuola primaria di {t}": (
        "Nel corso dell'anno gli alunni iscritti sono stati {n}.|Le classi hanno studiato {s} con grande "
        "impegno.|Durante la lezione di scienze gli alunni hanno verificato che {f}|La classe quarta ha "
        "visitato il museo di storia naturale a {city}.|L'insegnante insegna agli studenti a scuola anche "
        "nei laboratori pomeridiani.|Il consiglio di istituto si è riunito {k} volte.").split("|"),
    "Scheda didattica di scienze e geografia n. {k}": (
        "{F}|{F}|{F}|Ricorda: {f}|Esercizio: scrivi sul quaderno che {f}").split("|"),
}
PDF_SECTIONS = ["Premessa", "Oggetto", "Disposizioni generali", "Modalità", "Obblighi degli utenti",
                "Avvertenze", "Risultati", "Conclusioni", "Note finali"]


def pdf_doc(r):
    title_t, pool = r.choice(sorted(PDF_KINDS.items()))
    fill = lambda s: s.format(  # noqa: E731
        t=r.choice(TOWNS), m=f"{r.choice('ABCFKT')}-{r.randint(100, 999)}", h1=r.choice([8, 9]),
        h2=r.choice([18, 19]), k=r.randint(2, 6), d=r.choice([10, 15, 20, 30]),
        c=r.choice(["verde", "rossa", "blu", "gialla"]), cm=r.choice(["blu", "giallo", "bianco"]), g=r.choice([180, 200, 220, 250]),
        day=r.choice(DAYS), n=r.randint(80, 400), s=r.choice(SUBJECTS), city=r.choice(CITIES),
        f=low(r.choice(SCIENCE)[0]), F=it_fact(r))
    lines = [fill(title_t), f"Anno {r.randint(2005, 2025)} – documento n. {r.randint(1, 120)}"]
    for i, sec in enumerate(sorted(r.sample(PDF_SECTIONS, r.randint(3, 5)), key=PDF_SECTIONS.index)):
        lines.append(f"Art. {i + 1} – {sec}")
        body = [fill(x) for x in r.sample(pool, r.randint(2, 4))]
        body += [it_fact(r) for _ in range(r.randint(1, 3))]
        lines.append(" ".join(body))
    return "\n\n".join(lines)


# ---------------------------------------------------------------- source code

PY_NOUNS = ["valori", "numeri", "prezzi", "voti", "values", "items", "scores", "prices"]


def py_snippet(r, k):
    v, n = r.choice(PY_NOUNS), r.randint(2, 9)
    if k == 0:
        op, word = r.choice([("+", "add"), ("-", "sub"), ("*", "mul")])
        return f'def {word}_{v}(a, b):\n    """Return a {op} b."""\n    return a {op} b\n'
    if k == 1:
        cmp_ = r.choice([">", "<", ">=", "!="])
        return f"def filtra_{v}({v}, soglia={n}):\n    \"\"\"Restituisce gli elementi {cmp_} soglia.\"\"\"\n" \
               f"    return [x for x in {v} if x {cmp_} soglia]\n"
    if k == 2:
        return (f"def somma_{v}({v}):\n    \"\"\"Somma gli elementi di una lista.\"\"\"\n    totale = 0\n"
                f"    for x in {v}:\n        totale += x\n    return totale\n")
    if k == 3:
        cls = r.choice(["Contatore", "Counter", "Accumulatore", "Tally"])
        return (f"class {cls}{n}:\n    \"\"\"A small counter with step {n}.\"\"\"\n\n    def __init__(self):\n"
                f"        self.valore = 0\n\n    def incrementa(self, passo={n}):\n        self.valore += passo\n"
                f"        return self.valore\n\n    def azzera(self):\n        self.valore = 0\n")
    if k == 4:
        return ("def conta_parole(testo):\n    \"\"\"Conta quante volte compare ogni parola.\"\"\"\n"
                "    conteggio = {}\n    for parola in testo.lower().split():\n"
                "        conteggio[parola] = conteggio.get(parola, 0) + 1\n    return conteggio\n")
    if k == 5:
        cs = r.sample(COUNTRIES, r.randint(3, 6))
        body = "".join(f'    "{bare(c[0])}": "{c[1]}",\n' for c in cs)
        return (f"CAPITALI = {{\n{body}}}\n\n\ndef capitale(paese):\n    \"\"\"Restituisce la capitale del paese.\"\"\"\n"
                "    return CAPITALI.get(paese, \"sconosciuta\")\n")
    if k == 6:
        return ("def celsius_to_fahrenheit(c):\n    \"\"\"Water boils at 100 C, which is 212 F.\"\"\"\n"
                "    return c * 9 / 5 + 32\n")
    if k == 7:
        f = r.choice(["fattoriale", "factorial"])
        return (f"def {f}(n):\n    risultato = 1\n    for i in range(2, n + 1):\n        risultato *= i\n"
                f"    return risultato\n\n\nprint({f}({n}))\n")
    if k == 10:
        a = r.choice(ANIMALS)
        return (f"class Animale:\n    def __init__(self, nome, verso):\n        self.nome = nome\n"
                f"        self.verso = verso\n\n    def parla(self):\n        return self.nome + \" \" + self.verso\n\n\n"
                f"print(Animale(\"{a[0]}\", \"{a[2]}\").parla())\n")
    if k == 11:
        return ("def to_int(testo, default=0):\n    \"\"\"Convert text to int, with a default on error.\"\"\"\n"
                "    try:\n        return int(testo)\n    except ValueError:\n        return default\n")
    if k == 8:
        return ("def leggi_righe(percorso):\n    \"\"\"Read the non-empty lines of a text file.\"\"\"\n"
                "    with open(percorso, encoding=\"utf-8\") as f:\n"
                "        return [riga.strip() for riga in f if riga.strip()]\n")
    return (f"def media_{v}({v}):\n    if not {v}:\n        return 0.0\n    return sum({v}) / len({v})\n\n\n"
            f"print(media_{v}([{', '.join(str(r.randint(0, 30)) for _ in range(n))}]))\n")


def code_doc(r):
    k = r.random()
    if k < 0.1:
        d, ext = r.choice(["data", "logs", "dati", "report"]), r.choice(["txt", "csv", "log"])
        return ("content", "shell", f"#!/usr/bin/env bash\nset -euo pipefail\n# Conta le righe dei file {ext}\n"
                f"for f in {d}/*.{ext}; do\n    echo \"Elaboro $f\"\n    wc -l \"$f\"\ndone\n"
                f"mkdir -p backup\ntar -czf backup/{d}.tar.gz {d}\necho \"Fatto\"\n")
    if k < 0.2:
        cs = r.sample(COUNTRIES, r.randint(3, 6))
        vals = ",\n    ".join(f"('{bare(c[0]).replace(chr(39), chr(39) * 2)}', '{c[1]}')" for c in cs)
        return ("content", "sql", "CREATE TABLE capitali (\n    id INTEGER PRIMARY KEY,\n    paese TEXT NOT NULL,\n"
                f"    capitale TEXT NOT NULL\n);\n\nINSERT INTO capitali (paese, capitale) VALUES\n    {vals};\n\n"
                "SELECT paese, capitale FROM capitali ORDER BY paese;\n")
    head = r.choice(["import math\n", "import os\n", "import json\n", "from collections import Counter\n", ""])
    src = head + ("\n\n" if head else "") + "\n\n".join(py_snippet(r, k) for k in r.sample(range(12), r.randint(2, 5)))
    ast.parse(src)  # every Python document must be valid syntax
    return ("content", "python", src)


# ---------------------------------------------------------------- question pool (corpus quizzes + evals)

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
    for s in SCIENCE:
        if s[2]:
            pool.append(("scienze", s[2], s[3], s[4]))
    for a, b in [(2, 3), (4, 5), (3, 6), (7, 2), (5, 5), (8, 4), (6, 7), (9, 3), (1, 8), (4, 4), (6, 2), (9, 9)]:
        s = a + b
        pool.append(("conti", f"Quanto fa {NUM_IT[a]} più {NUM_IT[b]}?", cap(NUM_IT[s]),
                     [cap(NUM_IT[x]) for x in range(max(0, s - 4), min(20, s + 4) + 1) if x != s]))
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
        table = pa.table({k: pa.array([doc[k] for doc in part], pa.string()) for k in part[0]})
        path = d / f"{s:03d}_00000.parquet"
        pq.write_table(table, path, compression="snappy")
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


def corpus(out: Path) -> None:
    """The four sources: (name, shards, documents, maker, word range, row builder)."""
    web = ["blog", "notizie", "portale", "forum"]
    plan = [
        ("fineweb2_ita", 3, 1500, it_web, (40, 400), lambda i, r, t: {
            "text": t, "id": f"ita-web-{i:05d}", "url": f"https://{r.choice(web)}.example.org/it/{i:05d}",
            "language": "ita"}),
        ("fineweb_eng", 2, 1500, en_web, (40, 400), lambda i, r, t: {
            "text": t, "id": f"eng-web-{i:05d}", "url": f"https://www.example.org/{r.choice(web)}/{i:05d}",
            "language": "eng"}),
        ("finepdfs_ita", 1, 490, pdf_doc, (120, 400), lambda i, r, t: {
            "text": t, "id": f"ita-pdf-{i:05d}", "language": "ita"}),
        ("starcoder", 1, 1580, code_doc, (20, 400), lambda i, r, t: {
            "content": t[2], "id": f"code-{i:05d}", "lang": t[1]}),
    ]
    total = 0
    for off, (name, shards, n, maker, (lo, hi), row) in enumerate(plan):
        r = random.Random(SEED + off)
        docs = [row(i, r, t) for i, t in enumerate(make_docs(r, maker, n, lo, hi))]
        size, paths = write_source(out, name, docs, shards)
        total += size
        print(f"{name}: {len(docs)} documents, {shards} shard(s), {size} bytes "
              f"({', '.join(p.name for p in paths)})")
    print(f"corpus total: {total} bytes under {out}")


MC_YAML = """task: NAME
dataset_path: json
dataset_kwargs:
  data_files:
    test: test.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: "{{query}}"
doc_to_target: "{{gold}}"
doc_to_choice: "{{choices}}"
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

MMLU_YAML = r"""task: mini_m_mmlu_it
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
doc_to_text: "{{instruction.strip()}}\nA. {{option_a}}\nB. {{option_b}}\nC. {{option_c}}\nD. {{option_d}}\nRisposta:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def write_task(out: Path, name: str, yaml_text: str, splits: dict) -> None:
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.yaml").write_text(yaml_text, encoding="utf-8")
    for split, rows in splits.items():
        (d / f"{split}.jsonl").write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    print(f"{name}: " + ", ".join(f"{k}.jsonl={len(v)} items" for k, v in splits.items()))


def golds(r, n):
    g = [i % 4 for i in range(n)]
    r.shuffle(g)
    return g


def place(r, right, wrong, gold):
    choices = r.sample(wrong, 3)
    choices.insert(gold, right)
    return choices


def hellaswag_items(r):
    """(category, context, natural ending) built from the same templates as the corpus stories."""
    cands = []
    for w in WEATHER:
        for n in NAMES[::3]:
            cands.append(("meteo", f"{n} {w[1]} perché", f"{w[0]}."))
    for j in JOBS:
        cands.append(("lavoro", f"{r.choice(NAMES_M)} fa {j[0]} e ogni giorno", f"{j[1]} {j[2]}."))
    for c in COUNTRIES:
        cands.append(("viaggio", f"{r.choice(NAMES)} va in vacanza in {bare(c[0])} e visita la capitale,", f"{c[1]}."))
    for a in ANIMALS:
        cands.append(("animale", f"{cap(a[0])} è {a[1]} e", f"{a[2]}."))
    for e in EFFECTS:
        for n in r.sample(NAMES, 2):
            cands.append(("effetto", e[0].format(n=n), e[1]))
    for thing, other in COUNTABLE:
        a, b = r.randint(2, 9), r.randint(2, 9)
        cands.append(("conti", f"{r.choice(NAMES)} ha {NUM_IT[a]} {thing} e ne compra {other} {NUM_IT[b]}, "
                      "quindi ora ne ha", f"{NUM_IT[a + b]}."))
    r.shuffle(cands)
    per = {}
    chosen = []
    for c in cands:  # balance categories: at most 7 per category, distinct contexts
        if per.get(c[0], 0) < 7 and c[1] not in {x[1] for x in chosen}:
            per[c[0]] = per.get(c[0], 0) + 1
            chosen.append(c)
    return chosen[:40], cands


def tasks(out: Path) -> None:
    r = random.Random(SEED + 10)
    pool = list(QA_POOL)
    r.shuffle(pool)
    arc_items, mmlu_items = pool[:40], pool[40:85]
    arc = [{"id": f"mini_arc_it-{i:03d}", "query": f"Domanda: {q}\nRisposta:",
            "choices": place(r, right, wrong, g), "gold": g}
           for i, ((_, q, right, wrong), g) in enumerate(zip(arc_items, golds(r, 40)))]
    write_task(out, "mini_arc_it", MC_YAML.replace("NAME", "mini_arc_it"), {"test": arc})

    items, cands = hellaswag_items(r)
    hs = []
    for i, ((cat_, ctx, right), g) in enumerate(zip(items, golds(r, 40))):
        # distractors: endings that cannot follow this context (capitals, animal sounds, numbers, nonsense)
        others = sorted({c[2] for c in cands if c[0] in ("viaggio", "animale", "conti") and c[0] != cat_})
        others += ODD_ENDINGS
        hs.append({"id": f"mini_hellaswag_it-{i:03d}", "query": ctx, "choices": place(r, right, others, g), "gold": g})
    write_task(out, "mini_hellaswag_it", MC_YAML.replace("NAME", "mini_hellaswag_it"), {"test": hs})

    mm = []
    for i, ((_, q, right, wrong), g) in enumerate(zip(mmlu_items, golds(r, 45))):
        ch = place(r, right, wrong, g)
        mm.append({"id": f"mini_m_mmlu_it-{i:03d}", "instruction": q, "option_a": ch[0], "option_b": ch[1],
                   "option_c": ch[2], "option_d": ch[3], "answer": "ABCD"[g]})
    write_task(out, "mini_m_mmlu_it", MMLU_YAML, {"test": mm[5:], "dev": mm[:5]})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-data", default="data/embedded", help="folder for the parquet sources")
    p.add_argument("--out-tasks", default="resources/eval_tasks", help="folder for the lm-eval task folders")
    args = p.parse_args(argv)
    corpus(Path(args.out_data))
    tasks(Path(args.out_tasks))


if __name__ == "__main__":
    main()
