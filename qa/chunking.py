"""Sentence-aware chunking that never loses track of character offsets.

Every chunk is a slice of its document (``doc.text[chunk.start:chunk.end] ==
chunk.text``): the splitter only ever records positions, it never rewrites
text, so citations map back to the file exactly.
"""

from __future__ import annotations

import re

from qa.config import ChunkingConfig
from qa.types import Chunk, Document

# A sentence ends at . ! ? (plus closing quotes/brackets) followed by white space,
# at a full-width 。！？ (Chinese and Japanese put no space after them), or at a
# blank line. Abbreviations and initials are not sentence ends.
_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s)|[。！？][」』”’）\]]*|\n\s*\n")
_ABBREV = frozenset(
    "mr mrs ms dr prof gen col lt sgt capt maj adm gov sen rep st jr sr inc ltd co corp vs etc "
    "e.g i.e u.s u.k jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
# Abbreviations only when a number follows ("No. 5", "Fig. 3"); "the answer is no." ends a sentence.
_NUMBER_ABBREV = frozenset("no nos fig figs vol pp".split())
# What a chunk's size counts: a word, each Chinese/Japanese character (scripts
# written without spaces; the tokenizers read one token per character), and a
# run of over LONG_WORD characters (a URL, a base64 blob) as one per LONG_WORD.
# Counting only white-space separated words made a CJK document, or any text
# without spaces, one chunk however long: the embedder saw its first ~250
# characters and the reader read it all for every question.
LONG_WORD = 50
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]{{1,{LONG_WORD}}}")


def count_words(text: str) -> int:
    """A text's size as chunks count it (see ``_WORD``)."""
    return len(_WORD.findall(text))


#: Initials written together ("R.J" of "R.J. Palacio", "J.R.R"), as one letter is.
_INITIALS = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the '.' at ``dot`` closes an abbreviation or an initial."""
    if text[dot] != ".":
        return False
    j = dot
    while j > 0 and not text[j - 1].isspace():
        j -= 1
    word = text[j:dot].lower().lstrip("(\"'“‘")
    if word in _ABBREV or (len(word) == 1 and word.isalpha()) or _INITIALS.fullmatch(word):
        return True
    k = dot + 1
    while k < len(text) and text[k].isspace():
        k += 1
    if word in _NUMBER_ABBREV:
        return k < len(text) and text[k].isdigit()
    # Next non-space character in lower case: "approx. three" is one sentence.
    return k < len(text) and text[k].islower()


def split_sentences(text: str) -> list[tuple[int, int]]:
    """[start, end) spans of sentences, white space trimmed, covering all content."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _END.finditer(text):
        if m.group().startswith(".") and _is_abbreviation(text, m.start()):
            continue
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out


def _split_long(text: str, span: tuple[int, int], max_words: int) -> list[tuple[int, int]]:
    """Cut a run-on sentence into pieces of at most ``max_words`` words."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text, span[0], span[1])]
    return [
        (words[i][0], words[min(i + max_words, len(words)) - 1][1])
        for i in range(0, len(words), max_words)
    ]


class Chunker:
    """Packs whole sentences into chunks of at most ``max_words`` words, each
    chunk repeating the last ``overlap_sentences`` sentences of the one before
    (fewer when those and the next new sentence would not fit in one chunk)."""

    def __init__(self, config: ChunkingConfig | None = None) -> None:
        self.config = config or ChunkingConfig()

    def run(self, doc: Document) -> list[Chunk]:
        text = doc.text
        max_words = self.config.max_words
        sents: list[tuple[int, int, int]] = []  # start, end, words
        for span in split_sentences(text):
            n = len(_WORD.findall(text, span[0], span[1]))
            if n > max_words:
                sents.extend((s, e, len(_WORD.findall(text, s, e))) for s, e in _split_long(text, span, max_words))
            else:
                sents.append((span[0], span[1], n))
        chunks: list[Chunk] = []
        i = 0
        while i < len(sents):
            j, words = i, 0
            while j < len(sents) and (j == i or words + sents[j][2] <= max_words):
                words += sents[j][2]
                j += 1
            start, end = sents[i][0], sents[j - 1][1]
            chunks.append(Chunk(doc_id=doc.id, start=start, end=end, text=text[start:end]))
            if j >= len(sents):
                break
            # Step back for overlap, but always move forward by at least one sentence,
            # and only as far as still lets the next chunk reach a new sentence
            # (otherwise it would just repeat the tail of this one).
            overlap = min(self.config.overlap_sentences, j - i - 1)
            while overlap > 0 and sum(n for _, _, n in sents[j - overlap : j + 1]) > max_words:
                overlap -= 1
            i = j - overlap
        return chunks

    def run_many(self, docs: list[Document]) -> list[Chunk]:
        return [c for d in docs for c in self.run(d)]
