"""The passages shown with a low-confidence guess: one rule for the chat and the CLI."""

from qa.formatting import guess_first
from qa.types import Citation


def cite(doc: str, start: int, end: int) -> Citation:
    return Citation(doc_id=doc, title=doc, start=start, end=end, text="x" * (end - start), score=0.0)


def test_the_guess_comes_first_and_passages_holding_it_again_are_dropped():
    lead = cite("a.txt", 10, 20)
    others = [cite("a.txt", 0, 30), cite("a.txt", 15, 40), cite("b.txt", 10, 20), lead]
    got = guess_first(lead, others)
    assert got[0] is lead
    # a.txt 0-30 and the lead itself hold the guess; 15-40 only overlaps; b.txt is another document
    assert [(c.doc_id, c.start, c.end) for c in got[1:]] == [("a.txt", 15, 40), ("b.txt", 10, 20)]
