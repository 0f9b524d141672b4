"""The reader stage: model (``model``), span decoding (``decoding``) and
confidence calibration and answer choice (``calibration``)."""

from qa.reader.calibration import (
    CALIBRATION_FILE,
    Calibration,
    Candidate,
    ChoiceModel,
    candidate_features,
    choose,
    choose_best,
    rank_candidates,
)
from qa.reader.decoding import ReadResult, Span, best_spans, decode_window, dedupe_spans
from qa.reader.model import SpanReader

__all__ = ["CALIBRATION_FILE", "Calibration", "Candidate", "ChoiceModel", "ReadResult", "Span", "SpanReader",
           "best_spans", "candidate_features", "choose", "choose_best", "decode_window", "dedupe_spans",
           "rank_candidates"]
