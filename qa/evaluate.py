"""``python -m qa.evaluate``: the evaluator's command line (``qa.evaluation.cli``)."""

from qa.evaluation.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
