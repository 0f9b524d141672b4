"""Chunking: every chunk is an exact slice of its document, sentences are covered,
the overlap is as configured. Randomised with a fixed seed (reproducible)."""

from __future__ import annotations

import random

import pytest

from qa.chunking import _WORD, Chunker, count_words, split_sentences
from qa.config import ChunkingConfig
from qa.ingest import load_file
from qa.errors import DocumentFieldError
from qa.types import Document

from conftest import SEED_FILE

WORDS = ("alpha beta gamma delta Popov army Shoigu treason 58th Moscow Kyiv naïve café "
         "Zürich 東京 Ünïcödé – “quoted” (paren) 3.5 U.S. Gen. e.g. approx. Mr. no").split()
ENDS = [".", "!", "?", ".", ".", ".”", ".)", "?'"]
SPACES = [" ", " ", " ", "  ", "\n", "\r\n", "\n\n", "\r\n\r\n", "\t", " \u00a0"]


def random_text(rng: random.Random) -> str:
    parts = []
    if rng.random() < 0.3:
        parts.append(rng.choice(["  ", "\n", "\ufeff", "\r\n"]))
    for _ in range(rng.randint(1, 30)):
        n = rng.choice([1, 2, 5, 8, 15, 40, 130])  # some run-on sentences too
        sentence = " ".join(rng.choice(WORDS) for _ in range(n))
        parts.append(sentence[0].upper() + sentence[1:] + rng.choice(ENDS))
        parts.append(rng.choice(SPACES))
    if rng.random() < 0.5:
        parts.pop()  # no trailing white space
    return "".join(parts)


def word_count(text: str) -> int:
    return count_words(text)


CONFIGS = [ChunkingConfig(max_words=10, overlap_sentences=0), ChunkingConfig(max_words=12, overlap_sentences=1),
           ChunkingConfig(max_words=40, overlap_sentences=2), ChunkingConfig()]


def random_cases(n: int = 150):
    rng = random.Random(20240713)
    for i in range(n):
        yield Document(id=f"doc{i}", text=random_text(rng)), CONFIGS[i % len(CONFIGS)]


def test_chunks_are_exact_slices_and_cover_every_sentence():
    for doc, cfg in random_cases():
        chunks = Chunker(cfg).run(doc)
        assert chunks, doc.text
        for c in chunks:
            assert c.doc_id == doc.id
            assert 0 <= c.start < c.end <= len(doc.text)
            assert doc.text[c.start:c.end] == c.text
            assert c.text == c.text.strip(), "chunks start and end on content"
            assert word_count(c.text) <= cfg.max_words
        # Every non-space character of the document is inside some chunk.
        covered = [False] * len(doc.text)
        for c in chunks:
            covered[c.start:c.end] = [True] * (c.end - c.start)
        missing = [i for i, ch in enumerate(doc.text) if not ch.isspace() and ch != "\ufeff" and not covered[i]]
        assert not missing, (doc.text, missing[:5])
        # Each sentence lies whole inside one chunk unless it is longer than a chunk.
        for s, e in split_sentences(doc.text):
            if word_count(doc.text[s:e]) <= cfg.max_words:
                assert any(c.start <= s and e <= c.end for c in chunks), doc.text[s:e]
        # Chunks move forward.
        starts = [c.start for c in chunks]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)


def _sentence_units(doc: Document, cfg: ChunkingConfig) -> list[tuple[int, int]]:
    """Sentences as the chunker packs them (run-on ones cut into pieces)."""
    units = []
    for s, e in split_sentences(doc.text):
        words = [(m.start(), m.end()) for m in _WORD.finditer(doc.text[s:e])]
        if len(words) <= cfg.max_words:
            units.append((s, e))
        else:
            for i in range(0, len(words), cfg.max_words):
                piece = words[i:i + cfg.max_words]
                units.append((s + piece[0][0], s + piece[-1][1]))
    return units


def test_overlap_is_as_configured():
    checked = 0
    for doc, cfg in random_cases():
        units = _sentence_units(doc, cfg)
        chunks = Chunker(cfg).run(doc)
        index = {u: n for n, u in enumerate(units)}
        spans = []
        for c in chunks:
            inside = [n for (s, e), n in index.items() if c.start <= s and e <= c.end]
            assert inside, c
            assert units[min(inside)][0] == c.start and units[max(inside)][1] == c.end
            spans.append((min(inside), max(inside)))
        for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
            shared = a1 - b0 + 1 if b0 <= a1 else 0
            assert b1 > a1, "each chunk brings at least one new sentence"
            assert shared <= cfg.overlap_sentences
            # Full overlap whenever it fits (and does not swallow the whole previous chunk).
            want = min(cfg.overlap_sentences, a1 - a0)
            fits = sum(word_count(doc.text[units[n][0]:units[n][1]]) for n in range(a1 - want + 1, a1 + 2))
            if fits <= cfg.max_words:
                assert shared == want, (doc.text, cfg, (a0, a1), (b0, b1))
                checked += 1
    assert checked > 50  # the property was actually exercised


def test_overlap_repeats_the_last_sentence():
    text = " ".join(f"Sentence number {w} has five words." for w in "one two three four five six".split())
    chunks = Chunker(ChunkingConfig(max_words=12, overlap_sentences=1)).run(Document("d", text))
    assert [c.text for c in chunks[:3]] == [
        "Sentence number one has five words. Sentence number two has five words.",
        "Sentence number two has five words. Sentence number three has five words.",
        "Sentence number three has five words. Sentence number four has five words.",
    ]
    no_overlap = Chunker(ChunkingConfig(max_words=12, overlap_sentences=0)).run(Document("d", text))
    assert len(no_overlap) == 3
    assert all(a.end < b.start for a, b in zip(no_overlap, no_overlap[1:]))


def test_no_chunk_only_repeats_the_previous_one():
    # Sentence 2 + sentence 3 do not fit together: the chunk after [1, 2] must
    # not be sentence 2 alone (a pure repeat), it must start a new sentence.
    text = "Short one here. " + "Medium sized sentence with exactly eight words. " + "Long " + " ".join(["long"] * 8) + "."
    chunks = Chunker(ChunkingConfig(max_words=12, overlap_sentences=1)).run(Document("d", text))
    assert len(split_sentences(text)) == 3
    for a, b in zip(chunks, chunks[1:]):
        assert not (a.start <= b.start and b.end <= a.end), (a.text, b.text)
    assert chunks[-1].text.endswith("long.")


@pytest.mark.parametrize("text, expected", [
    ("Gen. Popov was sacked. He spoke out.", ["Gen. Popov was sacked.", "He spoke out."]),
    ("Troops from the U.S. Army arrived. Others left.", ["Troops from the U.S. Army arrived.", "Others left."]),
    ("Mr. Smith met Dr. Jones. They talked.", ["Mr. Smith met Dr. Jones.", "They talked."]),
    ("It was approx. three km away. Then rain.", ["It was approx. three km away.", "Then rain."]),
    ("See No. 5 and Fig. 3 here. Done.", ["See No. 5 and Fig. 3 here.", "Done."]),
    ("The answer was no. He left.", ["The answer was no.", "He left."]),
    ("Pi is 3.14 roughly! Really? Yes.", ["Pi is 3.14 roughly!", "Really?", "Yes."]),
    ("“I had no right to lie.” He said so.", ["“I had no right to lie.”", "He said so."]),
    ("A heading\n\nA paragraph without a full stop\n\nAnother", ["A heading", "A paragraph without a full stop",
                                                                "Another"]),
    ("J. R. R. Tolkien wrote it. Fine.", ["J. R. R. Tolkien wrote it.", "Fine."]),
    # initials written together: "R.J. Palacio" was cut after "R.J.", so the reader, which keeps
    # an answer inside one sentence, could not answer "the 2012 novel by R.J. Palacio"
    ("It is based on the novel by R.J. Palacio. It sold.", ["It is based on the novel by R.J. Palacio.",
                                                              "It sold."]),
    ("H.G. Wells and J.R.R. Tolkien wrote. Fine.", ["H.G. Wells and J.R.R. Tolkien wrote.", "Fine."]),
])
def test_sentence_splitting(text, expected):
    assert [text[s:e] for s, e in split_sentences(text)] == expected


def test_run_on_sentence_is_split():
    words = [f"w{i}" for i in range(250)]
    text = "Intro sentence. " + " ".join(words) + ". Outro."
    cfg = ChunkingConfig(max_words=100, overlap_sentences=1)
    chunks = Chunker(cfg).run(Document("d", text))
    assert len(chunks) >= 3
    for c in chunks:
        assert word_count(c.text) <= 100
        assert text[c.start:c.end] == c.text
    joined = " ".join(c.text for c in chunks)
    for w in words:
        assert f"{w} " in joined + " " or f"{w}." in joined


def test_text_without_spaces_is_chunked_to_size():
    """Chinese and Japanese put no space between words nor after 。: a whole
    document (or a text with no spaces at all, a base64 blob) was one chunk
    however long, of which the embedder saw the first ~250 characters."""
    sentence = "港口的灯塔看守人是玛吉特·哈尔沃森。她自1994年以来一直看守着灯塔！"
    text = sentence * 100
    doc = Document("zh", text)
    chunks = Chunker().run(doc)
    assert len(chunks) > 20
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert len(c.text) <= 200  # ~100 characters, one token each
        assert c.text.endswith(("。", "！"))  # cut at sentence ends
    blob = "Inline image: " + "QUJD" * 5000 + ". The keeper is Margit Halvorsen."
    chunks = Chunker().run(Document("b64", blob))
    assert max(len(c.text) for c in chunks) <= 100 * 50
    assert any("The keeper is Margit Halvorsen." in c.text for c in chunks)
    assert split_sentences("一。二！三？") == [(0, 2), (2, 4), (4, 6)]


def test_crlf_and_unicode_offsets_are_exact():
    text = ("\ufeffZürich – naïve café.\r\nGen. Popov said “no”.\r\n\r\n"
            "東京 is big! Emoji 🎉 here.\r\nLast line without end")
    doc = Document("u", text)
    for cfg in CONFIGS[:2]:
        chunks = Chunker(cfg).run(doc)
        for c in chunks:
            assert text[c.start:c.end] == c.text
            assert "\r" not in c.text[-1:] and "\n" not in c.text[:1]
    sents = [text[s:e] for s, e in split_sentences(text)]
    assert sents == ["\ufeffZürich – naïve café.", "Gen. Popov said “no”.", "東京 is big!", "Emoji 🎉 here.",
                     "Last line without end"]
    assert text.index("🎉") == text.find("Emoji 🎉") + len("Emoji ")  # str offsets are code points


def test_seed_document_chunks():
    doc = load_file(SEED_FILE)
    chunks = Chunker().run(doc)
    assert len(chunks) >= 3
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text
        assert word_count(c.text) <= 100
    holding = [c for c in chunks if "58th Combined Arms Army" in c.text]
    assert holding, "the 58th Combined Arms Army sentence lies whole in a chunk"
    assert any("General Popov, who served as the commander of the 58th Combined Arms Army" in c.text for c in holding)


def test_empty_and_blank_documents_never_reach_the_chunker():
    # Refused where they are made (issue 18): an empty document has nothing to chunk or cite.
    for text in ("", " \r\n\t\n "):
        with pytest.raises(DocumentFieldError, match="Document.text"):
            Document("e", text)


def test_invalid_config_is_refused():
    with pytest.raises(ValueError):
        ChunkingConfig(max_words=5)
    with pytest.raises(ValueError):
        ChunkingConfig(overlap_sentences=-1)
