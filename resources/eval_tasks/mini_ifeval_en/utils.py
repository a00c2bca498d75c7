"""Scoring of the IFEval-style task: lm-eval's own ifeval implementation, re-exported.

The change_case checks ask langdetect whether the answer is English; langdetect draws random numbers
from an unseeded generator unless ``DetectorFactory.seed`` is set, so it is fixed here to make the
scores repeatable.
"""

from langdetect import DetectorFactory
from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results

DetectorFactory.seed = 0

__all__ = ["agg_inst_level_acc", "process_results"]
