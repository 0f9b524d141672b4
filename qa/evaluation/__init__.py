"""Evaluation: gold questions (``gold``), scores (``metrics``), passes over the
pipeline (``runs``), reports (``report``) and the command line (``cli``,
``python -m qa.evaluate``; not imported here: the package is a library the CLI
uses, never the other way round). SQuAD data and official scoring live in ``squad``."""

from qa.evaluation.gold import GoldFormatError, GoldQuestion, load_gold, parse_gold_line, squad_gold
from qa.evaluation.metrics import (
    answer_metrics,
    at_threshold,
    contains_answer,
    gold_rank,
    percentile,
    retrieval_metrics,
    threshold_sweep,
)
from qa.evaluation.runs import Run, run_pipeline, run_reader, run_retrieval, summarise

__all__ = ["GoldFormatError", "GoldQuestion", "Run", "answer_metrics", "at_threshold", "contains_answer",
           "gold_rank", "load_gold", "parse_gold_line", "percentile", "retrieval_metrics",
           "run_pipeline", "run_reader", "run_retrieval", "squad_gold", "summarise", "threshold_sweep"]
