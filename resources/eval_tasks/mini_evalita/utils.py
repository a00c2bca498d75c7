"""ROUGE-1 F of a generated summary against the reference (the rouge_score package)."""

from rouge_score import rouge_scorer

_SCORER = rouge_scorer.RougeScorer(["rouge1"])


def rouge1(doc, results):
    return {"rouge1": _SCORER.score(doc["summary"], results[0].strip())["rouge1"].fmeasure}
