"""Generate the two lm-eval group tasks of the embedded default (deterministic).

Writes, under ``--out-tasks``, ``mini_evalita/`` (a group shaped like FBK's Evalita-LLM: six
Italian subtasks with their own metrics, accuracy, binary F1 and the ROUGE-1 of a generated
summary, and an overall ``acc`` over the subtasks that report it) and ``mini_pt/`` (shaped like the
Portuguese leaderboard of lm-evaluation-harness-pt: four subtasks, no aggregate). The items are in
``tools/tables/group_tasks.yaml``, written for this project. ``--out-data`` is accepted (the
generators share one command line) and unused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

TABLES = Path(__file__).resolve().parent / "tables" / "group_tasks.yaml"

MC = """output_type: multiple_choice
doc_to_text: "{{query}}"
doc_to_target: "{{gold}}"
doc_to_choice: "{{choices}}"
"""
HEAD = """task: NAME
dataset_path: json
dataset_kwargs:
  data_files:
    test: FILE
test_split: test
should_decontaminate: false
"""
ACC = """metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
F1 = """metric_list:
  - metric: f1
    aggregation: f1
    higher_is_better: true
"""
ROUGE = """output_type: generate_until
doc_to_text: "{{query}}"
doc_to_target: "{{summary}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 24
  do_sample: false
process_results: !function utils.rouge1
metric_list:
  - metric: rouge1
    aggregation: mean
    higher_is_better: true
"""
META = "metadata:\n  version: 1.0\n"

UTILS = '''"""ROUGE-1 F of a generated summary against the reference (the rouge_score package)."""

from rouge_score import rouge_scorer

_SCORER = rouge_scorer.RougeScorer(["rouge1"])


def rouge1(doc, results):
    return {"rouge1": _SCORER.score(doc["summary"], results[0].strip())["rouge1"].fmeasure}
'''

YES_NO = {"it": ["no", "sì"], "pt": ["não", "sim"]}
PROMPTS = {
    ("it", "admission"): "Domanda: {0}\nRisposta:",
    ("it", "faq"): "Domanda: {0}\nRisposta:",
    ("it", "hate"): "Frase: {0}\nLa frase è offensiva?",
    ("it", "sentiment"): "Recensione: {0}\nLa recensione è positiva?",
    ("it", "entailment"): "{0}\nDomanda: ne segue che \"{1}\"?",
    ("it", "summarization"): "Articolo: {0}\nRiassunto:",
    ("pt", "rte"): "{0}\nPergunta: isso implica que \"{1}\"?",
    ("pt", "enem"): "Pergunta: {0}\nResposta:",
    ("pt", "hatebr"): "Frase: {0}\nA frase é ofensiva?",
    ("pt", "tweetsent"): "Tweet: {0}\nO tweet é positivo?",
}
# subtask -> metric block; the rest are multiple choice with acc
METRICS = {"hate": F1, "sentiment": F1, "hatebr": F1}


def rows(lang: str, sub: str, items: list[str]) -> list[dict]:
    """lm-eval rows of one subtask from its table strings ("field | field | ... | label")."""
    prompt = PROMPTS[(lang, sub)]
    out = []
    for i, item in enumerate(items):
        fields = [f.strip() for f in item.split(" | ")]
        row = {"id": f"{sub}-{i:03d}"}
        if sub == "summarization":  # article | reference summary
            row.update(query=prompt.format(fields[0]), summary=fields[1])
        elif ";" in fields[1]:  # question | choice; choice; ... | gold index
            row.update(query=prompt.format(fields[0]), choices=[c.strip() for c in fields[1].split(";")],
                       gold=int(fields[2]))
        else:  # one or two texts | 0/1 label: a no/yes choice
            row.update(query=prompt.format(*fields[:-1]), choices=YES_NO[lang],
                       gold=int(fields[-1]))
        out.append(row)
    return out


def task_yaml(name: str, sub: str) -> str:
    body = ROUGE if sub == "summarization" else MC + METRICS.get(sub, ACC)
    return HEAD.replace("NAME", name).replace("FILE", f"{sub}.jsonl") + body + META


def group_yaml(group: str, alias: str, tasks: list[str], aggregate: bool) -> str:
    text = f"group: {group}\ngroup_alias: {alias}\ntask:\n" + "".join(f"  - {t}\n" for t in tasks)
    if aggregate:
        text += "aggregate_metric_list:\n  - metric: acc\n    aggregation: mean\n    weight_by_size: false\n"
    return text + META


def write_group(out: Path, group: str, alias: str, lang: str, items: dict, aggregate: bool) -> None:
    folder = out / group
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for sub, data in items.items():
        name = f"{group}_{sub}"
        names.append(name)
        (folder / f"{name}.yaml").write_text(task_yaml(name, sub))
        (folder / f"{sub}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows(lang, sub, data)))
    if "summarization" in items:
        (folder / "utils.py").write_text(UTILS)
    (folder / f"_{group}.yaml").write_text(group_yaml(group, alias, names, aggregate))
    print(f"{group}: {len(names)} subtasks, {sum(len(v) for v in items.values())} items")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-data", default=None, help="unused (the generators share one command line)")
    p.add_argument("--out-tasks", default="resources/eval_tasks", help="folder for the lm-eval task folders")
    args = p.parse_args(argv)
    tables = yaml.safe_load(TABLES.read_text())
    out = Path(args.out_tasks)
    write_group(out, "mini_evalita", "Evalita-LLM (mini)", "it", tables["evalita"], aggregate=True)
    write_group(out, "mini_pt", "Portuguese leaderboard (mini)", "pt", tables["pt"], aggregate=False)


if __name__ == "__main__":
    main()
