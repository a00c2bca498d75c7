"""Tiny lm-eval task folders under the production task names (smoke run).

:func:`write_tasks` writes, for each name config/zagreus.yaml evaluates, a folder ``dest/<name>``
whose YAMLs define a task or group with exactly that lm-eval name, the production output type,
metric names, filters and group structure (subgroups, subtasks and aggregates under lm-eval
0.4.13's names, or lm-evaluation-harness-pt's for the Portuguese leaderboard), on a few items
adapted from the project's embedded mini tasks (resources/eval_tasks, written for this project).
Scoring is lm-eval's own where it runs offline (IFEval's checks, Evalita-LLM's functions);
``SUPPORTED`` lists each name with its output type and metrics.

Deliberate differences from production, none of which changes the shape of the results:
generations are capped at a few tokens (``GEN_TOKS``), few-shot counts of the Portuguese tasks are
small, and the Spanish, French and Portuguese m_mmlu / hellaswag / arc stand-ins ask the Italian
items (the embedded default has no items in those languages).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Callable

import yaml

from zflow.evals import Tagged, TaskDumper, TaskLoader

__all__ = ["SUPPORTED", "write_tasks", "data_files"]

REPO = Path(__file__).resolve().parents[4]
RESOURCES = REPO / "resources" / "eval_tasks"
GEN_TOKS = 32  # max_gen_toks of the generative stand-ins (production: lm-eval's 256 or more)
LANGS = ("it", "es", "pt", "fr")


def data_files(yaml_dir: Path, files: dict[str, Path]) -> dict[str, str]:
    """A task YAML's ``dataset_kwargs.data_files``: each split's file as resources/eval_tasks
    writes it (relative to the YAML's folder; zflow.evals.localize_tasks makes it absolute)."""
    return {split: Path(os.path.relpath(f, yaml_dir)).as_posix() for split, f in files.items()}


# ------------------------------------------------------------------------------------------------
# Writing helpers


def _fn(name: str) -> Tagged:
    """``!function <name>`` in the YAML (a helper module in the task folder)."""
    return Tagged(name)


def _dump(path: Path, cfg: dict) -> None:
    path.write_text(yaml.dump(cfg, Dumper=TaskDumper, sort_keys=False, allow_unicode=True,
                              width=100), encoding="utf-8")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")


def _src(rel: str) -> list[dict]:
    path = RESOURCES / rel
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _take(rows: list[dict], n: int, start: int = 0) -> list[dict]:
    """``n`` rows from ``start``, cycling; repeated rows get a distinct ``id``."""
    out = []
    for i in range(start, start + n):
        row = dict(rows[i % len(rows)])
        if i >= len(rows):
            row["id"] = f"{row.get('id', 'row')}-{i // len(rows)}"
        out.append(row)
    return out


def _metrics(*names: str, aggregation="mean") -> list[dict]:
    return [{"metric": m, "aggregation": aggregation, "higher_is_better": True} for m in names]


def _leaf(folder: Path, name: str, splits: dict[str, list[dict]], cfg: dict,
          tag: str | None = None) -> None:
    """One task YAML (``<name>.yaml``) with its data, a JSON-lines file per split."""
    files = {}
    for split, rows in splits.items():
        files[split] = folder / f"{name}.{split}.jsonl"
        _write_jsonl(files[split], rows)
    head: dict = {"task": name}
    if tag:
        head["tag"] = tag
    head["dataset_path"] = "json"
    head["dataset_kwargs"] = {"data_files": data_files(folder, files)}
    _dump(folder / f"{name}.yaml", {**head, **cfg, "metadata": {"version": 1.0}})


def _group(folder: Path, name: str, children: list[str], aggregate: str | None,
           alias: str | None = None, weight_by_size: bool = True, file: str | None = None) -> None:
    cfg: dict = {"group": name}
    if alias:
        cfg["group_alias"] = alias
    cfg["task"] = children
    if aggregate:
        cfg["aggregate_metric_list"] = [{"metric": aggregate, "weight_by_size": weight_by_size}]
    cfg["metadata"] = {"version": 1}
    _dump(folder / (file or f"_{name}.yaml"), cfg)


MC = {"output_type": "multiple_choice", "doc_to_text": "{{query}}", "doc_to_target": "{{gold}}",
      "doc_to_choice": "{{choices}}", "should_decontaminate": False}


# ------------------------------------------------------------------------------------------------
# m_mmlu_*, mmlu, hellaswag(_*), arc_*


def _m_mmlu(folder: Path, name: str, items: int) -> None:
    # es / pt / fr: the Italian items (no embedded items in those languages)
    test = _take(_src("mini_m_mmlu_it/test.jsonl"), items)
    dev = _src("mini_m_mmlu_it/dev.jsonl")
    _leaf(folder, name, {"test": test, "train": dev}, {
        "test_split": "test", "fewshot_split": "train", "fewshot_config": {"sampler": "first_n"},
        "output_type": "multiple_choice",
        "doc_to_text": "{{instruction.strip()}}\nA. {{option_a}}\nB. {{option_b}}\n"
                       "C. {{option_c}}\nD. {{option_d}}\nAnswer:",
        "doc_to_choice": ["A", "B", "C", "D"], "doc_to_target": "answer",
        "metric_list": _metrics("acc")})


MMLU = {"stem": ("mmlu_astronomy", "astronomy"), "other": ("mmlu_nutrition", "nutrition"),
        "social_sciences": ("mmlu_high_school_geography", "high school geography"),
        "humanities": ("mmlu_world_religions", "world religions")}


def _mmlu_row(r: dict) -> dict:
    return {"question": r["instruction"],
            "choices": [r["option_a"], r["option_b"], r["option_c"], r["option_d"]],
            "answer": "ABCD".index(r["answer"])}


def _mmlu(folder: Path, name: str, items: int) -> None:
    """lm-eval's mmlu: a group of four category groups, each over its subjects' tasks (tagged
    mmlu_<category>_tasks); here one subject per category."""
    rows = [_mmlu_row(r) for r in _src("mini_mmlu_en/test.jsonl")]
    dev = [_mmlu_row(r) for r in _src("mini_mmlu_en/dev.jsonl")]
    _group(folder, "mmlu", [f"mmlu_{c}" for c in MMLU], "acc")
    for i, (cat, (task, subject)) in enumerate(MMLU.items()):
        _group(folder, f"mmlu_{cat}", [f"mmlu_{cat}_tasks"], "acc",
               alias=cat.replace("_", " "))
        _leaf(folder, task, {"test": _take(rows, items, i * items), "dev": dev}, {
            "task_alias": subject,
            "description": f"The following are multiple choice questions (with answers) about "
                           f"{subject}.\n\n",
            "test_split": "test", "fewshot_split": "dev", "fewshot_config": {"sampler": "first_n"},
            "output_type": "multiple_choice",
            "doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\n"
                           "C. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:",
            "doc_to_choice": ["A", "B", "C", "D"], "doc_to_target": "answer",
            "metric_list": _metrics("acc")}, tag=f"mmlu_{cat}_tasks")


def _hellaswag(folder: Path, name: str, items: int) -> None:
    src = "mini_hellaswag_en" if name == "hellaswag" else "mini_hellaswag_it"
    rows = [{"query": r["query"], "choices": r["choices"], "label": str(r["gold"])}
            for r in _take(_src(f"{src}/test.jsonl"), items)]
    # lm-eval evaluates hellaswag on its validation split (no test labels)
    _leaf(folder, name, {"validation": rows}, {
        "output_type": "multiple_choice", "validation_split": "validation",
        "doc_to_text": "{{query}}", "doc_to_target": "{{label}}", "doc_to_choice": "choices",
        "metric_list": _metrics("acc", "acc_norm")})


def _arc(folder: Path, name: str, items: int) -> None:
    _leaf(folder, name, {"test": _take(_src("mini_arc_it/test.jsonl"), items)},
          {**MC, "test_split": "test", "metric_list": _metrics("acc", "acc_norm")})


def _arc_challenge(folder: Path, name: str, items: int) -> None:
    rows = []
    for r in _take(_src("mini_arc_en/test.jsonl"), items):
        question = re.sub(r"^Question: |\nAnswer:$", "", r["query"])
        labels = list("ABCDE"[: len(r["choices"])])
        rows.append({"id": r["id"], "question": question,
                     "choices": {"text": r["choices"], "label": labels},
                     "answerKey": labels[r["gold"]]})
    _leaf(folder, name, {"test": rows}, {
        "output_type": "multiple_choice", "test_split": "test",
        "doc_to_text": "Question: {{question}}\nAnswer:",
        "doc_to_target": "{{choices.label.index(answerKey)}}", "doc_to_choice": "{{choices.text}}",
        "should_decontaminate": False, "metric_list": _metrics("acc", "acc_norm")})


# ------------------------------------------------------------------------------------------------
# IFEval


IFEVAL_UTILS = '''"""IFEval scoring: lm-eval's own ifeval checks, re-exported (as
resources/eval_tasks/mini_ifeval_*). langdetect is seeded so that the change_case checks are
repeatable."""

from langdetect import DetectorFactory
from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results

DetectorFactory.seed = 0

__all__ = ["agg_inst_level_acc", "process_results"]
'''

IFEVAL_METRICS = [
    {"metric": "prompt_level_strict_acc", "aggregation": "mean", "higher_is_better": True},
    {"metric": "inst_level_strict_acc", "aggregation": _fn("utils.agg_inst_level_acc"),
     "higher_is_better": True},
    {"metric": "prompt_level_loose_acc", "aggregation": "mean", "higher_is_better": True},
    {"metric": "inst_level_loose_acc", "aggregation": _fn("utils.agg_inst_level_acc"),
     "higher_is_better": True},
]


def _ifeval(folder: Path, name: str, items: int) -> None:
    """lm-eval's ifeval (test split ``train``, as google/IFEval) and the seed's Italian
    ifeval-ita, both scored by lm-eval's IFEval checks."""
    src, split = ("mini_ifeval_en", "train") if name == "ifeval" else ("mini_ifeval_it", "test")
    (folder / "utils.py").write_text(IFEVAL_UTILS, encoding="utf-8")
    _leaf(folder, name, {split: _take(_src(f"{src}/test.jsonl"), items)}, {
        "output_type": "generate_until", "test_split": split, "num_fewshot": 0,
        "doc_to_text": "prompt", "doc_to_target": 0,
        "generation_kwargs": {"until": [], "do_sample": False, "temperature": 0.0,
                              "max_gen_toks": GEN_TOKS},
        "process_results": _fn("utils.process_results"), "metric_list": IFEVAL_METRICS})


def _mini_ifeval_it(folder: Path, name: str, items: int) -> None:
    """The project's own task (config/zagreus.yaml's ifeval_it): its YAML and helper as they are,
    on its first ``items`` rows."""
    src = RESOURCES / name
    text = (src / f"{name}.yaml").read_text(encoding="utf-8")
    cfg = yaml.load(text, Loader=TaskLoader)  # noqa: S506 - a SafeLoader subclass
    shutil.copy(src / "utils.py", folder / "utils.py")
    (split, _), = cfg["dataset_kwargs"]["data_files"].items()
    data = folder / f"{name}.{split}.jsonl"
    _write_jsonl(data, _take(_src(f"{name}/test.jsonl"), items))
    cfg["dataset_kwargs"]["data_files"] = data_files(folder, {split: data})
    _dump(folder / f"{name}.yaml", cfg)


# ------------------------------------------------------------------------------------------------
# Evalita-LLM (lm-eval's evalita-mp)


EVALITA_UTILS = '''"""Evalita-LLM scoring: lm-eval's own evalita_llm functions, re-exported."""

from lm_eval.tasks.evalita_llm.utils import (  # noqa: F401
    faq_doc_to_target, ls_doc_to_target, ls_process_results, ner_doc_to_target,
    ner_process_results, re_doc_to_target, rel_process_results_v3, sa_doc_to_choice,
    sa_doc_to_target)
'''
EVALITA_METRICS = '''"""Evalita-LLM corpus-level aggregations: lm-eval's own, re-exported."""

from lm_eval.tasks.evalita_llm.metrics import (  # noqa: F401
    _aggreg_ls, _aggreg_ner, _aggreg_rel, _aggreg_sa)
'''
EVALITA_SUM = '''"""ROUGE-1 of a generated summary, as lm-eval's evalita_llm
sum_utils.process_results_sum (which loads the metric from the hub at import): the rouge_score
package, offline."""

from rouge_score import rouge_scorer

_SCORER = rouge_scorer.RougeScorer(["rouge1"])


def process_results_sum(doc, results):
    ref = doc.get("summary", doc.get("target"))
    return {"rouge1": _SCORER.score(ref, results[0])["rouge1"].fmeasure}
'''

# Word-in-context, lexical-substitution, NER and relation-extraction items: the embedded mini
# tasks have none, so these few are written here (project-written sentences).
WIC = [
    ("calcio", "Marco gioca a calcio ogni sabato.", "Il latte contiene molto calcio.", 0),
    ("casa", "La casa di Anna ha un giardino.", "Dopo il lavoro Luca torna a casa.", 1),
    ("banco", "Lo studente siede al primo banco.", "Il pescatore vede un banco di pesci.", 0),
    ("porta", "Chiudi la porta della cucina.", "La porta di casa è di legno.", 1),
    ("riso", "Il riso cuoce in venti minuti.", "Il suo riso riempie la stanza.", 0),
    ("sole", "Il sole sorge a est.", "Oggi il sole scalda la spiaggia.", 1),
    ("lettera", "Ho scritto una lettera alla nonna.", "La parola inizia con la lettera B.", 0),
    ("treno", "Il treno per Napoli parte alle otto.", "Prendiamo il treno delle nove.", 1),
]
LS = [
    ("Oggi il cielo è molto <head>bello</head> e sereno.", "bello",
     [("splendido", 2), ("magnifico", 1), ("stupendo", 1)]),
    ("Il cane corre <head>veloce</head> nel prato.", "veloce", [("rapido", 3), ("svelto", 1)]),
    ("Marta è <head>felice</head> per il regalo.", "felice", [("contento", 3), ("lieto", 1)]),
    ("La <head>casa</head> di Luca è vicino al parco.", "casa",
     [("abitazione", 2), ("dimora", 1)]),
    ("Il libro è molto <head>difficile</head> da leggere.", "difficile",
     [("complicato", 2), ("arduo", 1)]),
    ("Domani <head>iniziamo</head> il corso di nuoto.", "iniziare",
     [("cominciare", 3), ("avviare", 1)]),
]
PEOPLE = ("Chiara", "Marco", "Giulia", "Luca", "Sofia", "Andrea")
RE = [("emoglobina", "13,5 g/dL"), ("glicemia", "95 mg/dL"), ("colesterolo totale", "180 mg/dL"),
      ("pressione arteriosa", "120/80 mmHg"), ("frequenza cardiaca", "72 bpm"),
      ("temperatura corporea", "36,8 °C"), ("sodio", "140 mEq/L"), ("potassio", "4,2 mEq/L")]


def _parse(rows: list[dict], pattern: str) -> list[tuple]:
    out = []
    for r in rows:
        m = re.fullmatch(pattern, r["query"], re.S)
        if not m:
            raise ValueError(f"resources/eval_tasks row {r.get('id')}: not of the form {pattern!r}")
        out.append((r, *m.groups()))
    return out


def _capitals() -> list[tuple[str, str, str]]:
    """(article, country, capital) from the Italian ARC items about capitals."""
    out = []
    for r in _src("mini_arc_it/test.jsonl"):
        m = re.match(r"Domanda: Qual è la capitale (della |del |dell'|dei |degli )(.+)\?",
                     r["query"])
        if m:
            out.append((m.group(1), m.group(2), r["choices"][r["gold"]]))
    return out


def _ner_rows(n: int, start: int) -> list[dict]:
    caps = _capitals()
    rows = []
    for i in range(start, start + n):
        art, country, city = caps[i % len(caps)]
        person = PEOPLE[i % len(PEOPLE)]
        if i % 4 == 3:
            rows.append({"id": f"ner-{i:03d}", "text": "Oggi il tempo è bello e fa caldo.",
                         "entities": []})
        elif i % 2:
            rows.append({"id": f"ner-{i:03d}", "text": f"{person} ha visitato {city}, la capitale "
                         f"{art}{country}.", "entities": [
                             {"entity_text": person, "type": "PER"},
                             {"entity_text": city, "type": "LOC"},
                             {"entity_text": country, "type": "LOC"}]})
        else:
            rows.append({"id": f"ner-{i:03d}", "text": f"{city} è la capitale {art}{country}.",
                         "entities": [{"entity_text": city, "type": "LOC"},
                                      {"entity_text": country, "type": "LOC"}]})
    return rows


def _re_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        a, b = RE[i % len(RE)], RE[(i + 3) % len(RE)]
        if i % 5 == 4:
            rows.append({"id": f"re-{i:03d}", "text": "Il paziente riferisce un buono stato di "
                         "salute e non porta esami.", "relations": []})
        elif i % 2:
            rows.append({"id": f"re-{i:03d}", "text": f"Paziente di {40 + i} anni. Agli esami: "
                         f"{a[0]} {a[1]}, {b[0]} {b[1]}.",
                         "relations": [[a[1], a[0]], [b[1], b[0]]]})
        else:
            rows.append({"id": f"re-{i:03d}",
                         "text": f"Controllo di routine: {a[0]} pari a {a[1]}.",
                         "relations": [[a[1], a[0]]]})
    return rows


def _evalita(folder: Path, name: str, items: int) -> None:
    """lm-eval's evalita-mp: ten subgroups (each over its prompt tasks, tagged
    evalita-mp_<x>_tasks; one prompt here, two for text entailment), evalita-mp_ner_group
    holding NER groups of its own, and the overall size-weighted ``acc`` (over the subtasks that
    report it: admission test, FAQ and text entailment)."""
    for file, text in (("utils.py", EVALITA_UTILS), ("metrics.py", EVALITA_METRICS),
                       ("sum_utils.py", EVALITA_SUM)):
        (folder / file).write_text(text, encoding="utf-8")
    n = items
    subgroups = {  # subgroup -> (alias, aggregate metric)
        "te": ("text-entailment", "acc"), "sa": ("sentiment-analysis", "f1"),
        "wic": ("word-in-context", "f1"), "hs": ("hate-speech-detection", "f1"),
        "at": ("admission-test", "acc"), "faq": ("faq", "acc"),
        "sum_fp": ("summarization-fanpage", "rouge1"), "ls": ("lexical-substitution", "f1"),
        "re": ("relation-extraction", "f1")}
    order = ["te", "sa", "wic", "hs", "at", "faq", "sum_fp", "ls", "ner_group", "re"]
    _group(folder, "evalita-mp", [f"evalita-mp_{s}" for s in order], "acc", alias="Evalita-LLM")
    for s, (alias, metric) in subgroups.items():
        _group(folder, f"evalita-mp_{s}", [f"evalita-mp_{s}_tasks"], metric, alias=alias,
               file=f"_evalita-mp_{s}_tasks.yaml")

    # text entailment (multiple choice, acc): two prompts
    te = [{"id": r["id"], "text1": t1, "text2": t2, "entailment": "SI" if r["gold"] else "NO"}
          for r, t1, t2 in _parse(_take(_src("mini_evalita/entailment.jsonl"), n),
                                  r'(.*)\nDomanda: ne segue che "(.*)"\?')]
    te_cfg = {"output_type": "multiple_choice", "test_split": "test",
              "doc_to_target": "{{ 0 if entailment == 'SI' else 1 }}",
              "doc_to_choice": ["Sì", "No"],
              "metric_list": _metrics("acc")}
    _leaf(folder, "evalita-mp_te_prompt-1", {"test": te}, {
        "task_alias": "prompt-1", **te_cfg,
        "doc_to_text": "La frase: '{{text1}}' implica logicamente che la frase: '{{text2}}' sia "
                       "vera?"}, tag="evalita-mp_te_tasks")
    _leaf(folder, "evalita-mp_te_prompt-2", {"test": te}, {
        "task_alias": "prompt-2", **te_cfg,
        "doc_to_text": "Devi risolvere un compito di inferenza semantica. La frase: '{{text1}}' "
                       "implica logicamente che la frase: '{{text2}}' sia vera?"},
          tag="evalita-mp_te_tasks")

    # sentiment analysis (multiple choice over four classes, f1 by Evalita's aggregation)
    sa = [{"id": r["id"], "text": t, "opos": "1" if r["gold"] else "0",
           "oneg": "0" if r["gold"] else "1"}
          for r, t in _parse(_take(_src("mini_evalita/sentiment.jsonl"), n),
                             r"Recensione: (.*)\nLa recensione è positiva\?")]
    _leaf(folder, "evalita-mp_sa_prompt-1", {"test": sa}, {
        "task_alias": "prompt-1", "output_type": "multiple_choice", "test_split": "test",
        "doc_to_text": "Qual è il sentiment espresso nel seguente tweet: '{{text}}'?",
        "doc_to_target": _fn("utils.sa_doc_to_target"),
        "doc_to_choice": _fn("utils.sa_doc_to_choice"),
        "metric_list": _metrics("f1", aggregation=_fn("metrics._aggreg_sa"))},
        tag="evalita-mp_sa_tasks")

    # word in context (multiple choice, f1)
    wic = []
    for i in range(n):
        word, s1, s2, label = WIC[i % len(WIC)]
        a, b = s1.index(word), s2.index(word)
        wic.append({"id": f"wic-{i:03d}", "sentence1": s1, "sentence2": s2, "start1": a,
                    "end1": a + len(word), "start2": b, "end2": b + len(word), "label": label})
    _leaf(folder, "evalita-mp_wic_prompt-1", {"test": wic}, {
        "task_alias": "prompt-1", "output_type": "multiple_choice", "test_split": "test",
        "doc_to_text": "La parola: '{{sentence1[start1:end1]}}' nella frase: '{{sentence1}}' ha "
                       "lo stesso significato della parola: '{{sentence2[start2:end2]}}' nella "
                       "frase: '{{sentence2}}'?",
        "doc_to_target": "label", "doc_to_choice": ["No", "Sì"],
        "metric_list": _metrics("f1", aggregation="f1")}, tag="evalita-mp_wic_tasks")

    # hate speech (multiple choice, f1)
    hs = [{"id": r["id"], "full_text": t, "hs": r["gold"]}
          for r, t in _parse(_take(_src("mini_evalita/hate.jsonl"), n),
                             r"Frase: (.*)\nLa frase è offensiva\?")]
    _leaf(folder, "evalita-mp_hs_prompt-1", {"test": hs}, {
        "task_alias": "prompt-1", "output_type": "multiple_choice", "test_split": "test",
        "doc_to_text": "C'è incitamento all'odio nel seguente tweet: '{{full_text}}'?",
        "doc_to_target": "hs", "doc_to_choice": ["Falso", "Vero"],
        "metric_list": [{"metric": "f1", "higher_is_better": True, "average": "macro",
                         "aggregation": "f1"}]}, tag="evalita-mp_hs_tasks")

    # admission test (multiple choice over five options, acc and acc_norm)
    adm = _take(_src("mini_evalita/admission.jsonl"), n)
    at = []
    for i, (r, q) in enumerate(_parse(adm, r"Domanda: (.*)\nRisposta:")):
        other = adm[(i + 1) % len(adm)]["choices"]
        extra = next((c for c in other if c not in r["choices"]), "nessuna delle precedenti")
        opts = dict(zip("ABCDE", [*r["choices"], extra]))
        at.append({"id": r["id"], "Question": q, **opts, "Correct": "ABCDE"[r["gold"]]})
    _leaf(folder, "evalita-mp_at_prompt-1", {"test": at}, {
        "task_alias": "prompt-1", "output_type": "multiple_choice", "test_split": "test",
        "doc_to_text": "Dato il seguente quesito di medicina: '{{Question}}' qual è la risposta "
                       "corretta?",
        "doc_to_choice": "{{[A,B,C,D,E]}}",
        "doc_to_target": "{{ A if Correct == 'A' else B if Correct == 'B' else C if Correct == "
                         "'C' else D if Correct == 'D' else E}}",
        "metric_list": _metrics("acc", "acc_norm")}, tag="evalita-mp_at_tasks")

    # FAQ (multiple choice, acc)
    faq = [{"id": r["id"], "question": q, **dict(zip("ABCD", r["choices"])),
            "correct_answer": "ABCD"[r["gold"]]}
           for r, q in _parse(_take(_src("mini_evalita/faq.jsonl"), n),
                              r"Domanda: (.*)\nRisposta:")]
    _leaf(folder, "evalita-mp_faq_prompt-1", {"test": faq}, {
        "task_alias": "prompt-1", "output_type": "multiple_choice", "test_split": "test",
        "doc_to_text": "Rispondi alla seguente domanda: '{{question}}'",
        "doc_to_choice": "{{[A,B,C,D]}}",
        "doc_to_target": "{{ A if correct_answer == 'A' else B if correct_answer == 'B' else C if "
                         "correct_answer == 'C' else D}}",
        "metric_list": _metrics("acc")}, tag="evalita-mp_faq_tasks")

    gen = {"output_type": "generate_until", "test_split": "test"}
    def until(*stop: str) -> dict:
        return {"until": list(stop), "max_gen_toks": GEN_TOKS, "do_sample": False}

    # summarization (fanpage; generated, rouge1); lm-eval's task name is evalita-sp_sum_task_fp_p1
    fp = [{"id": r["id"], "source": a, "target": r["summary"]}
          for r, a in _parse(_take(_src("mini_evalita/summarization.jsonl"), n),
                             r"Articolo: (.*)\nRiassunto:")]
    _leaf(folder, "evalita-sp_sum_task_fp_p1", {"test": fp}, {
        "task_alias": "prompt-1", **gen, "generation_kwargs": until("</s>"),
        "doc_to_text": "Riassumi il seguente articolo di giornale: '{{source}}'\nRiassunto:",
        "doc_to_target": "{{target}}", "process_results": _fn("sum_utils.process_results_sum"),
        "metric_list": _metrics("rouge1")}, tag="evalita-mp_sum_fp_tasks")

    # lexical substitution (generated, f1 by Evalita's aggregation)
    ls = [{"id": f"ls-{i:03d}", "context": c, "head": h,
           "answers": [{"word": w, "count": k} for w, k in ans]}
          for i, (c, h, ans) in enumerate(LS[i % len(LS)] for i in range(n))]
    _leaf(folder, "evalita-mp_ls_prompt-1", {"test": ls}, {
        "task_alias": "prompt-1", **gen, "generation_kwargs": until("</s>"),
        "doc_to_text": "Trova 10 parole che possono sostituire la parola racchiusa tra i marcatori "
                       "<head> nella seguente frase: '{{context}}', mantenendo lo stesso "
                       "significato. Elenca i lemmi (forme base) di queste parole, separandoli con "
                       "una virgola. Risposta:",
        "doc_to_target": _fn("utils.ls_doc_to_target"),
        "process_results": _fn("utils.ls_process_results"),
        "metric_list": _metrics("f1", aggregation=_fn("metrics._aggreg_ls"))},
        tag="evalita-mp_ls_tasks")

    # NER: evalita-mp_ner_group over NER groups per corpus (here FIC and ADG, one prompt each)
    _group(folder, "evalita-mp_ner_group", ["evalita-mp_ner_tasks_fic", "evalita-mp_ner_tasks_adg"],
           "f1", alias="evalita NER")
    for k, corpus in enumerate(("fic", "adg")):
        _leaf(folder, f"evalita-mp_ner_{corpus}_p1", {"test": _ner_rows(n, k * n)}, {
            "task_alias": f"{corpus.upper()} prompt-1", **gen,
            "generation_kwargs": until("</s>", "\n"),
            "doc_to_text": "Estrai tutte le entità di tipo PER (persona), LOC (luogo) e ORG "
                           "(organizzazione) dal testo seguente. Riporta ogni entità con il "
                           "formato: Entità$Tipo, separando ciascuna coppia con ','. Se non ci "
                           "sono entità da estrarre, rispondi con '&&NOENT&&'.\nTesto: '{{text}}'"
                           "\nEntità:",
            "doc_to_target": _fn("utils.ner_doc_to_target"),
            "process_results": _fn("utils.ner_process_results"),
            "metric_list": _metrics("f1", aggregation=_fn("metrics._aggreg_ner"))},
            tag=f"evalita-mp_ner_tasks_{corpus}")

    # relation extraction (generated, f1 by Evalita's aggregation)
    _leaf(folder, "evalita-mp_re_prompt-1", {"test": _re_rows(n)}, {
        "task_alias": "prompt-1", **gen, "generation_kwargs": until("</s>"),
        "doc_to_text": "Dato un documento medico devi estrarre tutte le misurazioni degli esami "
                       "medici presenti. Riporta ogni relazione nel formato: misurazione$esame, "
                       "separando ciascuna coppia con '%'. Se non ci sono relazioni da estrarre, "
                       "rispondi con '&&NOREL&&'.\nTesto: '{{text}}'\nRelazioni:",
        "doc_to_target": _fn("utils.re_doc_to_target"),
        "process_results": _fn("utils.rel_process_results_v3"),
        "metric_list": _metrics("f1", aggregation=_fn("metrics._aggreg_rel"))},
        tag="evalita-mp_re_tasks")


# ------------------------------------------------------------------------------------------------
# Portuguese leaderboard (lm-evaluation-harness-pt): generated answers, one filter named "all"


PT_UTILS = r'''"""Scoring of the Portuguese leaderboard stand-ins, shaped like the tasks of
lm-evaluation-harness-pt (generated answers, one filter pipeline named "all", metrics f1_macro /
acc / pearson / mse). The fork's filters (find_similar_label, number_filter, find_choices) and
aggregations are not in lm-eval 0.4.13: these are small equivalents written for the smoke run.
A Pearson correlation with a constant side is undefined: 0.0 here, so a smoke table always gets a
number."""

import math
import re
import unicodedata

from sklearn.metrics import f1_score

YES_NO = ("Sim", "Não")
SENTIMENT = ("Positivo", "Neutro", "Negativo")


def _fold(text):
    text = unicodedata.normalize("NFKD", str(text))
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def _label(text, labels):
    """The label the answer names first (accents and case ignored), else the first label."""
    folded = _fold(text)
    hits = [(folded.find(_fold(lab)), i) for i, lab in enumerate(labels) if _fold(lab) in folded]
    return labels[min(hits)[1]] if hits else labels[0]


def _apply(resps, fn):
    return [[fn(r) for r in doc_resps] for doc_resps in resps]


def similar_yes_no(resps, docs):
    return _apply(resps, lambda r: _label(r, YES_NO))


def similar_sentiment(resps, docs):
    return _apply(resps, lambda r: _label(r, SENTIMENT))


def _letter(text, letters):
    m = re.search(r"\b([%s])\b" % letters, unicodedata.normalize("NFKD", str(text)))
    return m.group(1) if m else ""


def choice_abcde(resps, docs):
    return _apply(resps, lambda r: _letter(r, "ABCDE"))


def choice_abcd(resps, docs):
    return _apply(resps, lambda r: _letter(r, "ABCD"))


def number_1_5(resps, docs):
    def num(text):
        m = re.search(r"\d+(?:[.,]\d+)?", str(text))
        value = float(m.group(0).replace(",", ".")) if m else 5.0
        return min(5.0, max(1.0, value))
    return _apply(resps, num)


def assin2_float_to_pt_str(doc):
    return f"{doc['relatedness_score']:.1f}".replace(".", ",")


def _labels(gold, pred):
    return {"f1_macro": (gold, pred), "acc": (gold, pred)}


def process_assin2_rte(doc, results):
    return _labels(YES_NO[1 - doc["entailment_judgment"]], results[0])


def process_faquad_nli(doc, results):
    return _labels(YES_NO[1 - doc["label"]], results[0])


def process_offensive(doc, results):
    return _labels("Sim" if doc["label"] == 1 else "Não", results[0])


def process_tweetsentbr(doc, results):
    gold = {"Positive": "Positivo", "Negative": "Negativo"}.get(doc["label"], "Neutro")
    return _labels(gold, results[0])


def process_choice(doc, results):
    return {"acc": (doc["answerKey"], results[0])}


def process_assin2_sts(doc, results):
    pair = (float(doc["relatedness_score"]), float(results[0]))
    return {"pearson": pair, "mse": pair}


def f1_macro(items):
    golds, preds = zip(*items)
    return f1_score(golds, preds, average="macro")


def acc(items):
    return sum(g == p for g, p in items) / len(items)


def pearsonr(items):
    golds, preds = zip(*items)
    n = len(golds)
    mg, mp = sum(golds) / n, sum(preds) / n
    cov = sum((g - mg) * (p - mp) for g, p in items)
    sg = math.sqrt(sum((g - mg) ** 2 for g in golds))
    sp = math.sqrt(sum((p - mp) ** 2 for p in preds))
    return cov / (sg * sp) if sg and sp else 0.0


def mean_squared_error(items):
    return sum((g - p) ** 2 for g, p in items) / len(items)
'''

PT_DESCRIPTIONS = {
    "assin2_rte": "Abaixo estão pares de premissa e hipótese. Para cada par, indique se a hipótese "
                  "pode ser inferida a partir da premissa, responda apenas com \"Sim\" ou \"Não\".",
    "assin2_sts": "Abaixo estão pares de frases que você deve avaliar o grau de similaridade. Dê "
                  "uma pontuação entre 1,0 e 5,0.",
    "bluex": "As perguntas a seguir são questões de múltipla escolha de vestibular; responda "
             "apenas com as letras \"A\", \"B\", \"C\", \"D\" ou \"E\".",
    "enem_challenge": "As perguntas a seguir são questões de múltipla escolha do ENEM; responda "
                      "apenas com as letras \"A\", \"B\", \"C\", \"D\" ou \"E\".",
    "oab_exams": "As perguntas a seguir são questões de múltipla escolha do Exame de Ordem; "
                 "responda apenas com as letras \"A\", \"B\", \"C\" ou \"D\".",
    "faquad_nli": "Abaixo estão pares de pergunta e resposta. Julgue se a resposta responde à "
                  "pergunta; escreva apenas \"Sim\" ou \"Não\".",
    "hatebr_offensive": "Classifique se o texto é ofensivo ou não. Responda apenas com \"Sim\" ou "
                        "\"Não\".",
    "portuguese_hate_speech": "Classifique se o texto contém discurso de ódio ou não. Responda "
                              "apenas com \"Sim\" ou \"Não\".",
    "tweetsentbr": "Classifique se o sentimento do texto é Positivo, Neutro ou Negativo. Responda "
                   "apenas com uma das opções.",
}
CHOICES_TEXT = ("{{question}}\n{% for a in alternatives %}{{ 'ABCDE'[loop.index0] }}. {{a}}\n"
                "{% endfor %}Resposta:")


def _pt_rows(name: str, items: int) -> list[dict]:
    if name in ("assin2_rte", "assin2_sts"):
        pairs = _parse(_take(_src("mini_pt/rte.jsonl"), items),
                       r'(.*)\nPergunta: isso implica que "(.*)"\?')
        return [{"sentence_pair_id": i + 1, "premise": p, "hypothesis": h,
                 "entailment_judgment": r["gold"],
                 "relatedness_score": round((4.2 if r["gold"] else 2.1) + (i % 3) * 0.3, 1)}
                for i, (r, p, h) in enumerate(pairs)]
    if name in ("bluex", "enem_challenge", "oab_exams", "faquad_nli"):
        src = _src("mini_pt/enem.jsonl")
        out = []
        for i, (r, q) in enumerate(_parse(_take(src, items), r"Pergunta: (.*)\nResposta:")):
            alts = list(r["choices"])
            if name == "faquad_nli":
                k = r["gold"] if i % 2 == 0 else (r["gold"] + 1) % len(alts)
                out.append({"id": r["id"], "question": q, "answer": alts[k],
                            "label": int(k == r["gold"])})
                continue
            if name != "oab_exams":  # five alternatives: one more from the next item
                nxt = src[(i + 1) % len(src)]["choices"]
                alts.append(next((c for c in nxt if c not in alts), "nenhuma das anteriores"))
            out.append({"id": r["id"], "exam_id": f"standin_{i // 5}", "question": q,
                        "alternatives": alts, "answerKey": "ABCDE"[r["gold"]]})
        return out
    if name in ("hatebr_offensive", "portuguese_hate_speech"):
        return [{"idx": i, "sentence": s, "label": r["gold"]}
                for i, (r, s) in enumerate(_parse(_take(_src("mini_pt/hatebr.jsonl"), items),
                                                  r"Frase: (.*)\nA frase é ofensiva\?"))]
    if name == "tweetsentbr":
        return [{"id": r["id"], "sentence": s, "label": "Positive" if r["gold"] else "Negative"}
                for r, s in _parse(_take(_src("mini_pt/tweetsent.jsonl"), items),
                                   r"Tweet: (.*)\nO tweet é positivo\?")]
    raise ValueError(name)


def _pt(folder: Path, name: str, items: int) -> None:
    """A task of lm-evaluation-harness-pt: generated answer, filter ``all`` (a label or letter
    picked from the answer, then take_first), the fork's metrics."""
    (folder / "utils.py").write_text(PT_UTILS, encoding="utf-8")
    rows = _pt_rows(name, items + 2)
    test, train = rows[2:], rows[:2]
    yes_no = {"filter": "utils.similar_yes_no", "metrics": ("f1_macro", "acc")}
    spec = {
        "assin2_rte": {**yes_no, "process": "utils.process_assin2_rte",
                       "text": "Premissa: {{premise}}\nHipótese: {{hypothesis}}\nPergunta: A "
                               "hipótese pode ser inferida pela premissa? Sim ou Não?\nResposta:",
                       "target": "{{['Não', 'Sim'][entailment_judgment]}}"},
        "assin2_sts": {"filter": "utils.number_1_5", "metrics": ("pearson", "mse"),
                       "process": "utils.process_assin2_sts",
                       "text": "Frase 1: {{premise}}\nFrase 2: {{hypothesis}}\nPergunta: Quão "
                               "similares são as duas frases? Dê uma pontuação entre 1,0 a 5,0."
                               "\nResposta:",
                       "target": _fn("utils.assin2_float_to_pt_str")},
        "bluex": {"filter": "utils.choice_abcde", "metrics": ("acc",),
                  "process": "utils.process_choice", "text": CHOICES_TEXT,
                  "target": "{{answerKey}}"},
        "faquad_nli": {**yes_no, "process": "utils.process_faquad_nli",
                       "text": "Pergunta: {{question}}\nResposta: {{answer}}\nA resposta dada "
                               "satisfaz à pergunta? Sim ou Não?",
                       "target": "{{['Não', 'Sim'][label]}}"},
        "hatebr_offensive": {**yes_no, "process": "utils.process_offensive",
                             "text": "Texto: {{sentence}}\nPergunta: O texto é ofensivo?\n"
                                     "Resposta:",
                             "target": "{{'Sim' if label == 1 else 'Não'}}"},
        "portuguese_hate_speech": {**yes_no, "process": "utils.process_offensive",
                                   "text": "Texto: {{sentence}}\nPergunta: O texto contém "
                                           "discurso de ódio?\nResposta:",
                                   "target": "{{'Sim' if label == 1 else 'Não'}}"},
        "tweetsentbr": {"filter": "utils.similar_sentiment", "metrics": ("f1_macro", "acc"),
                        "process": "utils.process_tweetsentbr",
                        "text": "Texto: {{sentence}}\nPergunta: O sentimento do texto é "
                                "Positivo, Neutro ou Negativo?\nResposta:",
                        "target": "{{'Positivo' if label == 'Positive' else ('Negativo' if "
                                  "label == 'Negative' else 'Neutro')}}"},
    }
    spec["enem_challenge"] = {**spec["bluex"]}
    spec["oab_exams"] = {**spec["bluex"], "filter": "utils.choice_abcd"}
    s = spec[name]
    aggregation = {"f1_macro": "utils.f1_macro", "acc": "utils.acc", "pearson": "utils.pearsonr",
                   "mse": "utils.mean_squared_error"}
    cfg = {
        "output_type": "generate_until", "test_split": "test", "fewshot_split": "train",
        "fewshot_config": {"sampler": "first_n"}, "num_fewshot": 2,
        "description": PT_DESCRIPTIONS[name] + "\n\n",
        "doc_to_text": s["text"], "doc_to_target": s["target"],
        "generation_kwargs": {"max_gen_toks": 16, "do_sample": False, "temperature": 0.0},
        "filter_list": [{"name": "all", "filter": [
            {"function": "custom", "filter_fn": _fn(s["filter"])},
            {"function": "take_first"}]}],
        "process_results": _fn(s["process"]),
        "metric_list": [{"metric": m, "aggregation": _fn(aggregation[m]),
                         "higher_is_better": m != "mse"} for m in s["metrics"]],
    }
    if name == "enem_challenge":
        cfg = {"task_alias": "enem", **cfg}
    _leaf(folder, name, {"test": test, "train": train}, cfg)


# ------------------------------------------------------------------------------------------------
# Registry


_BUILDERS: dict[str, Callable[[Path, str, int], None]] = {
    **{f"m_mmlu_{lang}": _m_mmlu for lang in LANGS},
    **{f"hellaswag_{lang}": _hellaswag for lang in LANGS},
    **{f"arc_{lang}": _arc for lang in LANGS},
    "mmlu": _mmlu, "hellaswag": _hellaswag, "arc_challenge": _arc_challenge,
    "ifeval": _ifeval, "ifeval-ita": _ifeval, "mini_ifeval_it": _mini_ifeval_it,
    "evalita-mp": _evalita,
    **{name: _pt for name in PT_DESCRIPTIONS},
}

_IFEVAL = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc",
           "inst_level_loose_acc")
# name -> (kind, output type, metrics): what each stand-in reports (a group: its aggregate; the
# Portuguese tasks report each metric under the filter "all", e.g. "f1_macro,all")
SUPPORTED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    **{f"m_mmlu_{lang}": ("task", "multiple_choice", ("acc",)) for lang in LANGS},
    **{f"hellaswag_{lang}": ("task", "multiple_choice", ("acc", "acc_norm")) for lang in LANGS},
    **{f"arc_{lang}": ("task", "multiple_choice", ("acc", "acc_norm")) for lang in LANGS},
    "mmlu": ("group", "multiple_choice", ("acc",)),
    "hellaswag": ("task", "multiple_choice", ("acc", "acc_norm")),
    "arc_challenge": ("task", "multiple_choice", ("acc", "acc_norm")),
    "ifeval": ("task", "generate_until", _IFEVAL),
    "ifeval-ita": ("task", "generate_until", _IFEVAL),
    "mini_ifeval_it": ("task", "generate_until", _IFEVAL),
    "evalita-mp": ("group", "multiple_choice+generate_until", ("acc",)),
    "assin2_rte": ("task", "generate_until", ("f1_macro", "acc")),
    "assin2_sts": ("task", "generate_until", ("pearson", "mse")),
    "bluex": ("task", "generate_until", ("acc",)),
    "enem_challenge": ("task", "generate_until", ("acc",)),
    "faquad_nli": ("task", "generate_until", ("f1_macro", "acc")),
    "hatebr_offensive": ("task", "generate_until", ("f1_macro", "acc")),
    "oab_exams": ("task", "generate_until", ("acc",)),
    "portuguese_hate_speech": ("task", "generate_until", ("f1_macro", "acc")),
    "tweetsentbr": ("task", "generate_until", ("f1_macro", "acc")),
}
# Evalita-LLM's subgroups and the metric each reports (lm-eval 0.4.13's evalita_llm YAMLs)
EVALITA_SUBTASKS = {"evalita-mp_te": "acc", "evalita-mp_sa": "f1", "evalita-mp_wic": "f1",
                    "evalita-mp_hs": "f1", "evalita-mp_at": "acc", "evalita-mp_faq": "acc",
                    "evalita-mp_sum_fp": "rouge1", "evalita-mp_ls": "f1",
                    "evalita-mp_ner_group": "f1", "evalita-mp_re": "f1"}


def write_tasks(dest: Path, names: list[str], items: int = 12) -> dict[str, str]:
    """Write a task folder ``dest/<name>`` for each lm-eval task or group name (``items`` test
    items per task); returns name -> folder. An unsupported name raises ValueError."""
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in _BUILDERS]
    if unknown:
        raise ValueError(f"no smoke stand-in for lm-eval task(s) {', '.join(unknown)}: add a "
                         f"builder to _BUILDERS in workflow/scripts/zflow/smoke/tasks.py "
                         f"(supported: {', '.join(sorted(_BUILDERS))})")
    if items < 1:
        raise ValueError(f"items must be at least 1, not {items}")
    dest = Path(dest)
    out = {}
    for name in names:
        folder = dest / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        _BUILDERS[name](folder, name, items)
        out[name] = str(folder)
    return out
