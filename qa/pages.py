"""A cited PDF page as an image, with the answer's region highlighted.

Offsets into a PDF document's stored text are mapped back to PDFium's
characters by replaying the loader's cleaning of each page's text with a map
(``qa.ingest.pdf.clean_page_text_map``): ligatures expanded to two or three
letters point at their one glyph, a hyphen joining a word broken across lines
points at the hyphen glyph, and a range crossing a page break is split into one
range per page (each page is a ``Locator``). The character boxes PDFium gives
(page space, origin bottom left) go through the page's own device transform,
so rotated pages come out right.

The original PDF is needed: the file named in ``meta["source"]`` when it is
still there with the same bytes, else the copy kept with the index
(``originals/<sha256>.pdf``, made for uploads, whose files are deleted once
read). Rendered pages are cached on disk within ``PagesConfig`` bounds.

    from qa.pages import render_citation_page
    page = render_citation_page(doc, start, end, index_dir)   # a RenderedPage or None
    page.png, page.boxes, page.band()
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from qa._files import atomic_write_bytes, atomic_write_json
from qa.config import PagesConfig
from qa.errors import PageRenderError
from qa.ingest.pdf import _PDFIUM_LOCK as _LOCK  # PDFium is not thread-safe: one lock for reading and drawing
from qa.types import Document

log = logging.getLogger(__name__)

#: The kept copies of uploaded PDFs, inside the index folder.
ORIGINALS = "originals"
HIGHLIGHT_FILL = (250, 204, 21, 110)  # translucent yellow, like the <mark> in the chat
HIGHLIGHT_EDGE = (234, 88, 12, 255)
#: zlib level of the PNGs: 6 is ~3x faster than PIL's optimize=True for a few % more bytes.
PNG_LEVEL = 6


@dataclass(frozen=True)
class RenderedPage:
    """One page as PNG; ``boxes`` are the highlight's rectangles in its pixels
    (left, top, right, bottom), one per line of highlighted text."""

    page: int  # 1-based
    png: bytes
    width: int
    height: int
    boxes: tuple[tuple[int, int, int, int], ...] = ()

    def band(self, share: float = PagesConfig().band) -> "RenderedPage":
        """The strip of the page around the highlight (``share`` of its height),
        or the top of the page when nothing is highlighted."""
        from PIL import Image

        h = max(1, int(self.height * share))
        if self.boxes:
            top = min(b[1] for b in self.boxes)
            bottom = max(b[3] for b in self.boxes)
            mid = (top + bottom) // 2
            h = max(h, bottom - top + 40)
            y0 = min(max(0, mid - h // 2), max(0, self.height - h))
        else:
            y0 = 0
        y1 = min(self.height, y0 + h)
        img = Image.open(io.BytesIO(self.png))
        buf = io.BytesIO()
        img.crop((0, y0, self.width, y1)).save(buf, format="PNG", compress_level=PNG_LEVEL)
        boxes = tuple((l, t - y0, r, b - y0) for l, t, r, b in self.boxes)
        return RenderedPage(self.page, buf.getvalue(), self.width, y1 - y0, boxes)


# --- where the PDF is ------------------------------------------------------------


def sha256_bytes(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def keep_original(index_dir: str | Path, raw: bytes) -> Path:
    """Keep a copy of a PDF's bytes with the index (atomically; once per content)."""
    dest = Path(index_dir) / ORIGINALS / f"{sha256_bytes(raw)}.pdf"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, raw)
    return dest


def prune_originals(index_dir: str | Path, documents) -> int:
    """Delete kept PDFs no indexed document refers to; returns how many went."""
    folder = Path(index_dir) / ORIGINALS
    if not folder.is_dir():
        return 0
    wanted = {str(d.meta.get("sha256", "")) for d in documents}
    n = 0
    for p in folder.glob("*.pdf"):
        if p.stem not in wanted:
            p.unlink(missing_ok=True)
            n += 1
    return n


def find_pdf(doc: Document, index_dir: str | Path | None) -> Path | None:
    """The PDF ``doc`` was extracted from: the kept copy, else its source file
    when that still has the same bytes (or no hash was recorded)."""
    sha = str(doc.meta.get("sha256", "") or "")
    if sha and index_dir is not None and re.fullmatch(r"[0-9a-f]{64}", sha):
        kept = Path(index_dir) / ORIGINALS / f"{sha}.pdf"
        if kept.is_file():
            return kept
    src = doc.meta.get("source")
    if src and Path(src).is_file():
        if not sha:
            return Path(src)
        try:
            if sha256_bytes(Path(src).read_bytes()) == sha:
                return Path(src)
        except OSError:
            return None
    return None


# --- offsets -> pages and characters ----------------------------------------------


def page_ranges(doc: Document, start: int, end: int) -> list[tuple[int, int, int]]:
    """The document range [start, end) split by page: (page, start, end) with
    offsets relative to the page's own text (its locator)."""
    out = []
    for loc in doc.locators:
        if loc.page is None or loc.end <= start or loc.start >= end:
            continue
        s, e = max(start, loc.start), min(end, loc.end)
        if s < e:
            out.append((loc.page, s - loc.start, e - loc.start))
    return out


def page_text(doc: Document, page: int) -> str | None:
    for loc in doc.locators:
        if loc.page == page:
            return doc.text[loc.start:loc.end]
    return None


def char_indexes(raw: str, stored: str, start: int, end: int) -> list[int]:
    """PDFium character indexes behind ``stored[start:end]`` (``stored`` is the
    page text as indexed, ``raw`` PDFium's text of the page). When the cleaning
    replayed on ``raw`` does not give ``stored`` back (another PDFium version),
    the nearest occurrence of the highlighted text is used."""
    from qa.ingest.pdf import clean_page_text_map

    cleaned, src, _ = clean_page_text_map(raw)
    if cleaned != stored:
        needle = stored[start:end]
        hits = [m.start() for m in re.finditer(re.escape(needle), cleaned)] if needle else []
        if not hits:
            return []
        shift = min(hits, key=lambda h: abs(h - start)) - start
        start, end = start + shift, end + shift
    seen, out = set(), []
    for i in src[start:end]:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def _line_boxes(boxes: list[tuple[float, float, float, float]]) -> list[tuple[int, int, int, int]]:
    """Character rectangles (device pixels, left/top/right/bottom, in text order)
    merged into one per run of adjacent characters, i.e. one per line, whatever
    way the text runs on the rotated page."""

    def gap(a, b) -> float:
        dx = max(0.0, b[0] - a[2], a[0] - b[2])
        dy = max(0.0, b[1] - a[3], a[1] - b[3])
        return max(dx, dy)

    runs: list[list[float]] = []
    last = None  # the last glyph (not space) box
    for box in boxes:
        l, t, r, b = box
        w, h = r - l, b - t
        if w <= 0.5 and h <= 0.5:
            continue  # generated characters (line ends) have no area
        size = max(w, h)
        flat = min(w, h) <= 1.5  # spaces: a hairline at the baseline
        if runs and last is not None and gap(last, box) <= 0.8 * max(size, last[4]):
            cur = runs[-1]
            cur[0], cur[1], cur[2], cur[3] = min(cur[0], l), min(cur[1], t), max(cur[2], r), max(cur[3], b)
            if not flat:
                last = (l, t, r, b, size)
            continue
        if flat:
            continue  # a space that starts a line adds nothing
        runs.append([l, t, r, b])
        last = (l, t, r, b, size)
    return [(int(l) - 2, int(t) - 2, int(r + 0.999) + 2, int(b + 0.999) + 2) for l, t, r, b in runs]


# --- rendering -----------------------------------------------------------------------


def _device_rect(pdfium_c, page_raw, width: int, height: int, box) -> tuple[float, float, float, float]:
    import ctypes

    left, bottom, right, top = box
    xs, ys = [], []
    for px, py in ((left, bottom), (right, top), (left, top), (right, bottom)):
        dx, dy = ctypes.c_int(), ctypes.c_int()
        pdfium_c.FPDF_PageToDevice(page_raw, 0, 0, width, height, 0, px, py, ctypes.byref(dx), ctypes.byref(dy))
        xs.append(dx.value)
        ys.append(dy.value)
    return min(xs), min(ys), max(xs), max(ys)


def render_page(pdf: str | Path | bytes, doc: Document, page: int, highlight: tuple[int, int] | None = None,
                scale: float = PagesConfig().scale) -> RenderedPage:
    """Page ``page`` (1-based) of ``pdf`` as PNG, with the document range
    ``highlight`` (offsets into ``doc.text``) marked where it falls on that page."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c
    from PIL import Image, ImageDraw

    with _LOCK:
        try:
            pdoc = pdfium.PdfDocument(pdf if isinstance(pdf, bytes) else str(pdf))
        except pdfium.PdfiumError as e:
            raise PageRenderError(f"{doc.id}: the PDF cannot be opened ({e})") from e
        try:
            if not 1 <= page <= len(pdoc):
                raise PageRenderError(f"{doc.id} has {len(pdoc)} pages; there is no page {page}")
            pg = pdoc[page - 1]
            bitmap = pg.render(scale=scale)
            img = bitmap.to_pil().convert("RGB")
            width, height = img.size
            pixel_boxes: list[tuple[int, int, int, int]] = []
            stored = page_text(doc, page)
            if highlight is not None and stored is not None:
                ranges = [(s, e) for p, s, e in page_ranges(doc, *highlight) if p == page]
                tp = pg.get_textpage()
                try:
                    n = tp.count_chars()
                    raw = tp.get_text_bounded()
                    if len(raw) != n:
                        raw = tp.get_text_range(0, n).replace("\ufffe", "\x02")
                    rects = []
                    for s, e in ranges:
                        for ci in char_indexes(raw, stored, s, e):
                            rects.append(_device_rect(pdfium_c, pg.raw, width, height, tp.get_charbox(ci)))
                    pixel_boxes = _line_boxes(rects)
                finally:
                    tp.close()
            pg.close()
        finally:
            pdoc.close()
    if pixel_boxes:
        overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        for box in pixel_boxes:
            draw.rectangle(box, fill=HIGHLIGHT_FILL, outline=HIGHLIGHT_EDGE, width=2)
        img = Image.alpha_composite(img.convert("RGBA"), overlay).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_LEVEL)
    return RenderedPage(page, buf.getvalue(), width, height, tuple(pixel_boxes))


class PageCache:
    """Rendered pages on disk, keyed by the PDF's bytes, page, scale and
    highlight; bounded in bytes and files (least recently used out first)."""

    def __init__(self, config: PagesConfig | None = None) -> None:
        self.config = config or PagesConfig()
        self.folder = Path(self.config.cache_dir)

    def key(self, sha: str, page: int, highlight: tuple[int, int] | None) -> str:
        raw = json.dumps([sha, page, self.config.scale, highlight, 1])
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def get(self, key: str) -> RenderedPage | None:
        meta_p, png_p = self.folder / f"{key}.json", self.folder / f"{key}.png"
        try:
            meta = json.loads(meta_p.read_text())
            png = png_p.read_bytes()
            os.utime(png_p)  # recently used
        except (OSError, ValueError):
            return None
        return RenderedPage(meta["page"], png, meta["width"], meta["height"], tuple(map(tuple, meta["boxes"])))

    def put(self, key: str, page: RenderedPage) -> None:
        if self.config.max_cache_bytes == 0 or self.config.max_cache_files == 0:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.folder / f"{key}.png", page.png)
            atomic_write_json(self.folder / f"{key}.json", {"page": page.page, "width": page.width,
                                                            "height": page.height,
                                                            "boxes": [list(b) for b in page.boxes]}, indent=None)
            self.trim()
        except OSError as e:  # a full or read-only disk only costs speed
            log.warning("could not cache a rendered page in %s: %s", self.folder, e)

    def trim(self) -> int:
        """Drop the least recently used pages until both bounds hold; returns how many went."""
        entries = []
        for png in self.folder.glob("*.png"):
            try:
                st = png.stat()
            except OSError:
                continue
            entries.append((st.st_mtime, st.st_size, png))
        entries.sort()
        total = sum(s for _, s, _ in entries)
        n = 0
        while entries and (total > self.config.max_cache_bytes or len(entries) > self.config.max_cache_files):
            _, size, png = entries.pop(0)
            png.unlink(missing_ok=True)
            png.with_suffix(".json").unlink(missing_ok=True)
            total -= size
            n += 1
        return n

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def render_document_page(doc: Document, page: int | None, highlight: tuple[int, int] | None,
                         index_dir: str | Path | None, config: PagesConfig | None = None,
                         cache: PageCache | None = None) -> RenderedPage:
    """Page ``page`` of the PDF behind ``doc`` (default: the page the highlight
    starts on, else page 1), highlighted, through the cache."""
    config = config or PagesConfig()
    if str(doc.meta.get("format", "")).lower() != "pdf":
        raise PageRenderError(f"{doc.id} is not a PDF: only PDF pages can be shown")
    if highlight is not None:
        s, e = highlight
        if s >= e:  # a reversed range is not "outside" the document (it said so of 10:5)
            raise PageRenderError(f"the highlight {s}:{e} is empty: START must be below END")
        if not 0 <= s < e <= len(doc.text):
            raise PageRenderError(f"the highlight {s}:{e} is outside {doc.id} (0:{len(doc.text)})")
    if page is None:
        ranges = page_ranges(doc, *highlight) if highlight else []
        page = ranges[0][0] if ranges else 1
    pdf = find_pdf(doc, index_dir)
    if pdf is None:
        raise PageRenderError(f"the PDF of {doc.id} is no longer available (its file {doc.meta.get('source', '?')} "
                              "moved or changed): index it again to see its pages")
    cache = cache or PageCache(config)
    sha = str(doc.meta.get("sha256") or sha256_bytes(Path(pdf).read_bytes()))
    key = cache.key(sha, page, highlight)
    hit = cache.get(key)
    if hit is not None:
        return hit
    out = render_page(pdf, doc, page, highlight, scale=config.scale)
    cache.put(key, out)
    return out


def render_citation_page(doc: Document | None, start: int, end: int, index_dir: str | Path | None,
                         config: PagesConfig | None = None) -> RenderedPage | None:
    """The page holding the answer range [start, end), or None when it cannot
    be shown (not a PDF, file gone): the chat then shows the text alone."""
    if doc is None or str(doc.meta.get("format", "")).lower() != "pdf" or start < 0 or end <= start:
        return None
    try:
        return render_document_page(doc, None, (start, end), index_dir, config)
    except PageRenderError as e:
        log.info("no page image: %s", e)
        return None
