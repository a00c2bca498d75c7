"""The whole report of the embedded default: every table from the eval JSONs, report.md in the
configured order with its provenance, and the HTML report (`snakemake --report`) rendered by a
real headless Chromium."""

from __future__ import annotations

import csv
import json
import math
import re
import time
from pathlib import Path

import pytest

from conftest import load_config, snakemake
from zflow import evals, tables

REPORTS = Path("results/reports")


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def record(wd: Path, model: str, task: str) -> dict:
    return evals.read(wd / f"results/evals/{model}/{task}.json")


def close(cell: str, value: float) -> bool:
    return math.isclose(float(cell), value, abs_tol=1e-6)


def test_group_breakdown_keeps_each_subtask_metric(demo_run):
    wd, _ = demo_run
    t = load_config(wd)["tables"]["evalita_base"]
    rec = record(wd, t["model"], t["task"])
    rows = read_csv(wd / REPORTS / "ita/tables/evalita_base.csv")
    assert rows[0] == ["Task", "Metric", "Value"]
    assert rows[1][:2] == ["Evalita-LLM (overall)", "acc"] and close(rows[1][2], rec["metrics"]["acc"])
    subs = {}
    for e in rec["subtasks"]:
        subs.setdefault(e["name"], (e["metric"], e["value"]))
    assert len(rows) - 2 == len(subs) == 6
    for row in rows[2:]:
        name = next(k for k, v in t["labels"].items() if v == row[0])
        metric, value = subs[name]
        assert row[1] == metric and close(row[2], value)
    # tokens generated per item: only by the summarization subtask (8 items)
    gen = rec["generated_tokens"]
    assert list(gen["tasks"]) == ["mini_evalita_summarization"] and gen["n"] == 8
    assert 0 <= gen["mean"] <= 24  # max_gen_toks of the task
    # the subtasks' own metrics: accuracy, binary F1 and the ROUGE-1 of a generated summary
    assert {r[1] for r in rows[2:]} == {"acc", "f1", "rouge1"}
    # the overall acc is lm-eval's mean over the subtasks that report acc
    accs = [v for m, v in subs.values() if m == "acc"]
    assert math.isclose(rec["metrics"]["acc"], sum(accs) / len(accs), abs_tol=1e-9)


def test_versus_leaderboard_and_models_tables(demo_run):
    wd, _ = demo_run
    cfg = load_config(wd)
    # Table 9: base vs SFT on the group, signed differences
    t9 = cfg["tables"]["evalita_sft"]
    base, sft = record(wd, t9["base"], t9["task"]), record(wd, t9["model"], t9["task"])
    rows = read_csv(wd / REPORTS / "ita/tables/evalita_sft.csv")
    assert rows[0] == ["Task", "Metric", t9["base"], t9["model"], "Δ (SFT – Base)"]
    assert rows[1][0] == "Overall" and close(rows[1][2], base["metrics"]["acc"])
    assert close(rows[1][3], sft["metrics"]["acc"])
    assert rows[1][4] == tables.signed(sft["metrics"]["acc"] - base["metrics"]["acc"])
    for row in rows[2:]:
        name = next(k for k, v in t9["labels"].items() if v == row[0])
        b, s = evals.value(base, row[1], name), evals.value(sft, row[1], name)
        assert close(row[2], b) and close(row[3], s) and row[4] == tables.signed(s - b)

    # Table 6: ranked by the mean over the suite's columns, medals for the first three
    t6 = cfg["tables"]["pt_leaderboard"]
    rows = read_csv(wd / REPORTS / "ita/tables/pt_leaderboard.csv")
    assert rows[0][:2] == ["Rank", "Model / Checkpoint"] and rows[0][-1] == "Media"
    means = {}
    for m in t6["models"]:
        rec = record(wd, m, "pt")
        vals = [evals.value(rec, "acc", c.split("/", 1)[1]) for c in t6["columns"]]
        means[m] = sum(vals) / len(vals)
    assert [r[1] for r in rows[1:]] == sorted(t6["models"], key=lambda m: -means[m])
    assert [r[0] for r in rows[1:]] == ["🥇 1", "🥈 2", "🥉 3"]
    for r in rows[1:]:
        assert close(r[-1], means[r[1]])
    md = (wd / REPORTS / "ita/tables/pt_leaderboard.md").read_text()
    assert "| Rank | Model / Checkpoint | RTE | ENEM | HateBR | TweetSent | Media |" in md

    # Table 8: one language's columns for the chosen models
    rows = read_csv(wd / REPORTS / "ita/tables/open_zagreus_it.csv")
    assert rows[0] == ["Model", "mmlu_it", "arc_it", "hellaswag_it", "Media"]
    vals = [record(wd, "open-zagreus", t)["metrics"][cfg["tasks"][t]["metric"]]
            for t in ("m_mmlu_it", "arc_it", "hellaswag_it")]
    assert all(close(c, v) for c, v in zip(rows[1][1:4], vals))
    assert close(rows[1][4], sum(vals) / 3)
    # Domyn-Small's Table 6: benchmarks x the stages of the chain SFT -> GRPO -> DPO -> GRPO
    st = cfg["tables"]["chain_stages"]
    rows = read_csv(wd / REPORTS / "ita/tables/chain_stages.csv")
    assert rows[0] == ["Benchmark", "SFT", "+ GRPO", "+ DPO", "+ multi-env GRPO"]
    scores = [r for r in rows[1:] if not r[0].endswith(" (tokens)")]
    assert len(scores) == len(st["columns"])
    for row, task in zip(scores, st["columns"]):
        for cell, m in zip(row[1:], st["models"]):
            assert close(cell, record(wd, m, task)["metrics"][cfg["tasks"][task]["metric"]])
    # generation tasks: the mean tokens generated per item beside the score (the eval JSON's)
    toks = {r[0][: -len(" (tokens)")]: r[1:] for r in rows[1:] if r[0].endswith(" (tokens)")}
    assert set(toks) == {"IFEval_EN", "IFEval_IT"}
    for label, task in (("IFEval_EN", "ifeval_en"), ("IFEval_IT", "ifeval_it")):
        for cell, m in zip(toks[label], st["models"]):
            gen = record(wd, m, task)["generated_tokens"]
            assert gen["n"] == 30 and float(cell) == pytest.approx(gen["mean"], abs=0.051)
    for name in cfg["tables"]:
        assert (wd / REPORTS / f"ita/tables/{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_report_md_in_the_configured_order_with_provenance(demo_run):
    wd, _ = demo_run
    cfg = load_config(wd)
    md = (wd / REPORTS / "report.md").read_text()
    order = re.findall(r"<!-- (\S+): ", md)
    assert order == cfg["report"]["order"]
    heads = re.findall(r"^## Table (\d+)\. (.*)$", md, flags=re.M)
    assert [int(n) for n, _ in heads] == list(range(1, len(order) + 1))
    assert heads[0][1] == "Checkpoint progression — ita"
    assert heads[1][1] == cfg["tables"]["evalita_base"]["title"]
    sections = dict(zip(order, re.split(r"^## Table \d+\.", md, flags=re.M)[1:]))
    for name, s in sections.items():  # each table with the commands and versions behind it
        if name == "qualitative":  # answers, not lm-eval: its decoding settings and versions
            assert "Decoding: max_new_tokens=" in s and "transformers" in s
            continue
        assert "lm_eval --model hf --model_args pretrained=<model>" in s and "Versions: lm_eval" in s
    assert "--tasks mini_evalita" in md and '--include_path "$T"' in md
    # the job's copy of the task folder, data paths made absolute (tests/test_eval_command.py)
    assert 'python -m zflow.evals localize resources/eval_tasks "$T" && lm_eval' in md

    with open(wd / REPORTS / "evals.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    on_disk = sorted(wd.glob("results/evals/*/*.json"))
    assert {(r["model"], r["task"]) for r in rows} == {(p.parent.name, p.stem) for p in on_disk}
    for r in rows:
        rec = json.loads((wd / f"results/evals/{r['model']}/{r['task']}.json").read_text())
        assert r["command"] == tables.command(rec)
        if rec["value"] is not None:
            assert close(r["value"], rec["value"])


def md_cells(md: str) -> list[str]:
    """Every cell of the Markdown table(s) in ``md`` (header and body)."""
    return [c.strip() for line in md.splitlines() if line.startswith("| ") and "---" not in line
            for c in line.strip("|").split("|")]


def test_html_report_renders_in_headless_chromium(demo_run, tmp_path):
    """`snakemake --report` gives one file; a real Chromium renders it, and each table and figure
    opened from its menu shows what the workflow wrote (checked in the rendered DOM, iframes
    included); a screenshot is taken of one table."""
    import browser

    wd, _ = demo_run
    html = tmp_path / "report.html"
    snakemake(wd, "--report", str(html), timeout=600)
    assert html.stat().st_size > 100_000
    why = browser.install()
    if why:
        pytest.skip(f"Chromium is not available ({why}): the HTML report was written, not rendered")
    cfg = load_config(wd)
    with browser.Browser() as b:
        b.open(html.as_uri())
        b.wait("document.querySelector('#app') && document.querySelector('#app').innerText.length > 20")
        # the menu lists the categories: the language and the evals' provenance
        b.wait("document.querySelector('#app').innerText.includes('Provenance')")
        assert b.click_text("ita")
        for sub in ("Pretraining", "Post-training", "Tables"):
            b.wait(f"document.querySelector('#app').innerText.includes({sub!r})")
        assert b.click_text("Tables")
        b.wait("document.querySelectorAll('#app tr').length > 1")
        # one row per table; its eye button shows the table's HTML in an iframe ("kind" is a
        # table/figure toggle of the report)
        open_row = ("(n => { const r = Array.from(document.querySelectorAll('#app tr')).find("
                    "r => r.innerText.trim() === n); if (!r) return false;"
                    " r.querySelector('a').click(); return true; })")
        toggle = "(v => { const i = document.querySelector(`input[type=radio][value='${v}']`);" \
                 " if (!i) return false; i.click(); return true; })"
        assert b.js(f"{toggle}('table')")  # the report's kind toggle: tables first
        for name, t in cfg["tables"].items():
            assert b.js(f"{open_row}({json.dumps(name)})"), name
            b.wait(f"document.querySelector('iframe') && document.querySelector('iframe').src"
                   f".includes({json.dumps(name + '.html')})")
            time.sleep(0.5)
            text = b.text()
            assert t["title"] in text, name
            md = (wd / REPORTS / f"ita/tables/{name}.md").read_text()
            missing = [c for c in md_cells(md) if c not in text]
            assert not missing, (name, missing)
            if name == "evalita_sft":
                shot = tmp_path / "report.png"
                b.screenshot(shot)
                assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
        # the leaderboard's figure (Figure 5): the toggle switches the view to its PNG
        assert b.js(f"{open_row}('pt_leaderboard')")
        assert b.js(f"{toggle}('figure')")
        b.wait("Array.from(document.images).some(i => i.src.startsWith('data:image/png') && "
               "i.naturalWidth > 300)")
