"""``qa.QA``: the pipeline with every collaborator wired in, calibration included.

``qa.pipeline.QA`` assembles the stages and never imports evaluation (a lower
layer must not reach up); this class, above both, injects
``qa.evaluation.calibrate.calibrate`` so ``QA(...).calibrate(gold)`` works.
"""

from __future__ import annotations

from typing import Any

from qa.evaluation.calibrate import calibrate
from qa.pipeline import QA as _PipelineQA

__all__ = ["QA"]


class QA(_PipelineQA):
    __doc__ = _PipelineQA.__doc__

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("calibrator", calibrate)
        super().__init__(*args, **kwargs)
