"""Generate the project-written GRPO prompt sets (deterministic).

Writes, under ``--out-data``/grpo/, five sets in the ``prompt`` format of chat_data (a ``prompt``
plus the columns the rewards of zflow.rewards read), Italian and English, half each:

- math.jsonl (60): arithmetic word problems (``answer``), the answer asked in ``\\boxed{}``;
- code.jsonl (20): tiny functions to write, with their unit tests (``tests``);
- choice.jsonl (20): multiple-choice items, arithmetic and simple facts (``choice_answer``);
- ifeval.jsonl (20): instruction prompts with IFEval-checkable constraints
  (``instruction_id_list``, ``instruction_kwargs``: the instructions of ifeval.yaml, new bases);
- tools.jsonl (20): requests for one of the tools of tools.yaml, offered with another one
  (``tools``, ``expected_call``).

The texts come from tools/tables/grpo.yaml (and tools.yaml, ifeval.yaml through
make_posttrain_data.py), written for this project. Every function's reference solution passes its
tests (checked here). ``--out-tasks`` is accepted like the other generators' and unused: no eval
task comes from here. Fixed-seed ``random.Random`` streams make the output byte-identical.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from make_embedded_data import table, write_jsonl
from make_posttrain_data import (IFEVAL_IDS, IFEVAL_IDS_IT, TOOL_CASES, compatible, ifeval_kwargs,
                                 ifeval_text, tool_case, tool_schema)

SEED = 20261215
LANGS = ("it", "en")
G = table("grpo")
LETTERS = "ABCD"


# ---------------------------------------------------------------- math

def numbers(r, kind):
    """(a, b, c2) and the answer of a problem of ``kind``."""
    if kind == "add":
        a, b = r.randint(3, 40), r.randint(2, 30)
        return (a, b, 0), a + b
    if kind == "sub":
        a = r.randint(10, 50)
        b = r.randint(1, a - 1)
        return (a, b, 0), a - b
    if kind == "mul":
        a, b = r.randint(2, 12), r.randint(2, 9)
        return (a, b, 0), a * b
    if kind == "div":
        b, k = r.randint(2, 6), r.randint(2, 9)
        return (b * k, b, 0), k
    a, b = r.randint(3, 10), r.randint(2, 6)  # two_step
    c2 = r.randint(1, a * b - 1)
    return (a, b, c2), a * b - c2


def math_rows(r, n=60):
    out = []
    for i in range(n):
        lang, problem = LANGS[i % 2], G["problems"][(i // 2) % len(G["problems"])]
        item = r.choice(G["items"])
        (a, b, c2), answer = numbers(r, problem["kind"])
        it = lang == "it"
        fields = {"n": r.choice(G["names"][lang]), "a": a, "b": b, "c2": c2,
                  "i": item[0] if it else item[3], "c": item[2] if it else item[4],
                  "Q": "Quanti" if item[1] == "m" else "Quante", "o": "altri" if item[1] == "m" else "altre"}
        text = problem[lang].format(**fields)
        out.append({"id": f"math-{i:03d}", "prompt": f"{text} {G['box'][lang]}", "answer": str(answer)})
    return out


# ---------------------------------------------------------------- code

def check_solution(fn):
    scope = {}
    exec(fn["solution"], scope)  # noqa: S102 - the project's own reference solutions
    for test in fn["tests"]:
        exec(test, scope)  # noqa: S102
    name = fn["sig"].split("(")[0]
    assert callable(scope.get(name)), f"the solution of {fn['sig']} defines no {name}"


def code_rows():
    out = []
    for i, fn in enumerate(G["functions"]):
        check_solution(fn)
        lang = LANGS[i % 2]
        out.append({"id": f"code-{i:03d}", "prompt": G["code_ask"][lang].format(sig=fn["sig"], desc=fn[lang]),
                    "tests": fn["tests"]})
    return out


# ---------------------------------------------------------------- multiple choice

def options_text(question, options, lang):
    lines = [f"{LETTERS[k]}) {o}" for k, o in enumerate(options)]
    return "\n".join([question, *lines, G["choice_ask"][lang]])


def arith_item(r, lang):
    op = r.choice("+-*")
    x, y = (r.randint(2, 12), r.randint(2, 9)) if op == "*" else sorted((r.randint(5, 60), r.randint(2, 40)),
                                                                       reverse=True)
    value = {"+": x + y, "-": x - y, "*": x * y}[op]
    near = sorted({value + d for d in (-10, -2, -1, 1, 2, 10)} - {value})
    wrong = r.sample([v for v in near if v >= 0], 3)
    return G["arith_ask"][lang].format(x=x, op=G["ops"][lang][op], y=y), str(value), [str(w) for w in wrong]


def choice_rows(r):
    items = [(LANGS[i % 2], *arith_item(r, LANGS[i % 2])) for i in range(10)]
    items += [(LANGS[i % 2], *fact[LANGS[i % 2]]) for i, fact in enumerate(G["facts"])]
    out = []
    for i, (lang, question, right, wrong) in enumerate(items):
        options = [right, *wrong]
        r.shuffle(options)
        out.append({"id": f"choice-{i:03d}", "prompt": options_text(question, options, lang),
                    "choice_answer": LETTERS[options.index(right)]})
    return out


# ---------------------------------------------------------------- instruction following

def ifeval_rows(r):
    out = []
    for i in range(20):
        lang = LANGS[i % 2]
        ids = IFEVAL_IDS_IT if lang == "it" else IFEVAL_IDS
        chosen = [ids[(i // 2 * 3 + i % 2) % len(ids)]]
        if i % 3 == 1:
            chosen.append(r.choice([x for x in ids if compatible(chosen[0], x)]))
            chosen.sort(key=lambda x: x == "detectable_format:number_bullet_lists")  # its example goes last
        taken = set()
        kwargs = [ifeval_kwargs(r, lang, iid, taken) for iid in chosen]
        texts = [ifeval_text(lang, iid, kw) for iid, kw in zip(chosen, kwargs)]
        base = G["if_bases"][lang][i // 2]
        out.append({"id": f"ifeval-{i:03d}", "prompt": " ".join([base, *[t for t in texts if t]]),
                    "instruction_id_list": chosen, "instruction_kwargs": kwargs})
    return out


# ---------------------------------------------------------------- tool calls

def tool_rows(r):
    names = sorted(TOOL_CASES)
    out = []
    for i in range(20):
        lang, name = LANGS[i % 2], names[(i // 2 + i % 2 * 3) % len(names)]
        user, args, _, _ = tool_case(r, name, lang)
        offered = [name, r.choice([n for n in names if n != name])]
        r.shuffle(offered)
        out.append({"id": f"tools-{i:03d}", "prompt": user, "tools": [tool_schema(n, lang) for n in offered],
                    "expected_call": {"name": name, "arguments": args}})
    return out


# ---------------------------------------------------------------- main

def grpo_sets(out: Path) -> None:
    sets = {"math": math_rows(random.Random(SEED)), "code": code_rows(),
            "choice": choice_rows(random.Random(SEED + 1)), "ifeval": ifeval_rows(random.Random(SEED + 2)),
            "tools": tool_rows(random.Random(SEED + 3))}
    for name, rows in sets.items():
        write_jsonl(out / "grpo" / f"{name}.jsonl", rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-data", default="data/embedded/posttrain", help="folder of the post-training sets")
    p.add_argument("--out-tasks", default="resources/eval_tasks", help="unused (no eval tasks from here)")
    args = p.parse_args(argv)
    grpo_sets(Path(args.out_data))


if __name__ == "__main__":
    main()
