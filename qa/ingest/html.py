"""HTML: the main content of a saved web page, without navigation and boilerplate.

Parsed with selectolax (the Lexbor HTML5 engine); chosen by measurement over
trafilatura and BeautifulSoup (``python bench/ingest.py --compare``,
docs/ingest.md): on generated pages with menus, sidebars and footers it keeps
the headings (which become section locators) that trafilatura drops on
non-semantic markup, removes as much boilerplate, and is ~50x faster.

Rules, in order: drop scripts, styles, forms and the like; take the one
<article>, else <main> / [role=main], else <body>; inside it drop <nav>,
<aside>, <footer>, site <header>s (those without the page's heading), ARIA
navigation/banner/contentinfo/complementary regions, elements whose class or
id says menu/nav/sidebar/footer/cookie/share/..., link lists (more than half
of the text in links) and copyright lines. Then every block (paragraph,
heading, list item, table row, ...) becomes one paragraph of the text, blocks
joined by a blank line, a ``<br>`` in one a single line break; each heading
opens a section locator.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from qa.ingest.base import Extracted, Loader, TextBuilder, detect_binary, drop_invisible

_DROP_EVERYWHERE = ["script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "embed", "form",
                    "button", "select", "input", "textarea", "dialog", "head"]
_DROP_IN_CONTENT = "nav, aside, footer, menu, [role=navigation], [role=banner], [role=contentinfo], " \
                   "[role=complementary], [role=search], [aria-hidden=true], [hidden]"
_HINT = re.compile(
    r"(?:^|[-_])(nav|navbar|navigation|menu|header|menubar|breadcrumbs?|footer|sidebar|widget|cookies?|consent|banner|"
    r"share|sharing|social|related|comments?|subscribe|newsletter|advert|ads|promo|popup|modal|masthead|skip|"
    r"toolbar|pagination|pager|tags)(?:$|[-_])", re.I)
_COPYRIGHT = re.compile(r"©|\(c\)\s*\d{4}|\bcopyright\b|all rights reserved", re.I)
_BLOCK = {"p", "div", "section", "article", "main", "header", "li", "ul", "ol", "dl", "dt", "dd", "blockquote",
          "figure", "figcaption", "address", "details", "summary", "hr", "center", "caption", "body", "html",
          "fieldset", "legend", "td", "th", "tr", "tbody", "thead", "tfoot"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([-\w.:]+)""", re.I)


def _norm(s: str | None) -> str:
    """White space collapsed as a browser does, soft hyphens (``&shy;``, shown
    only where a line breaks) and zero width spaces, word joiners, ...
    (``drop_invisible``) dropped: kept, they hid inside words of the
    extracted text ("Donau\xaddampf"), so the word matched no search."""
    return " ".join(drop_invisible(s).split()) if s else ""


# Where the HTML standard (WHATWG Encoding) reads a <meta> charset label as
# another encoding than Python's codec of that name: Latin-1 and ASCII pages
# are decoded as Windows-1252 (their "smart quotes", dashes and euro signs are
# Windows-1252 bytes; Latin-1 makes them C1 control characters), the Asian
# legacy encodings as their Windows supersets, and a <meta> saying UTF-16
# (which the ASCII-readable <meta> itself disproves) as UTF-8.
_WHATWG_CODEC = {"latin-1": "cp1252", "iso8859-1": "cp1252", "ascii": "cp1252", "iso8859-9": "cp1254",
                 "iso8859-11": "cp874", "tis-620": "cp874", "gb2312": "gbk", "euc_kr": "cp949",
                 "shift_jis": "cp932", "big5": "big5hkscs", "utf-16": "utf-8", "utf-16-le": "utf-8",
                 "utf-16-be": "utf-8"}
_WHATWG_LABEL = {"x-user-defined": "cp1252", "windows-874": "cp874", "x-sjis": "cp932", "ms932": "cp932"}


def _meta_codec(label: str) -> str | None:
    """The Python codec a <meta> charset label names, read as browsers read it."""
    label = label.strip().lower()
    if label in _WHATWG_LABEL:
        return _WHATWG_LABEL[label]
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return _WHATWG_CODEC.get(name, name)


def decode_html(raw: bytes) -> str:
    """BOM, else <meta charset> (as browsers read its label), else UTF-8, else
    Windows-1252 (what browsers assume)."""
    for bom, enc in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if raw.startswith(bom):
            return raw[len(bom):].decode(enc, errors="replace")
    m = _META_CHARSET.search(raw[:4096])
    if m:
        codec = _meta_codec(m.group(1).decode("ascii", "replace"))
        if codec is not None:
            return raw.decode(codec, errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _ancestors(node):
    p = node.parent
    while p is not None:
        yield p
        p = p.parent


def _remove_all(nodes, keep_ids: set[int]) -> None:
    """Decompose the outermost of ``nodes`` (never one holding a kept node, and
    never a child after its parent: that would touch freed memory)."""
    chosen = {n.mem_id: n for n in nodes if n.mem_id not in keep_ids}
    for mid, n in list(chosen.items()):
        if any(a.mem_id in chosen for a in _ancestors(n)):
            del chosen[mid]
    for n in chosen.values():
        n.decompose()


def _content_root(tree):
    articles = tree.css("article")
    if len(articles) == 1:
        return articles[0]
    return tree.css_first("main") or tree.css_first("[role=main]") or tree.body or tree.root


def _strip_boilerplate(root, heuristics: bool = True) -> None:
    heading = root.css_first("h1") or root.css_first("h2")
    keep = {heading.mem_id, *(a.mem_id for a in _ancestors(heading))} if heading is not None else set()
    keep.add(root.mem_id)
    doomed = list(root.css(_DROP_IN_CONTENT))
    doomed += [h for h in root.css("header") if h.mem_id not in keep]
    if not heuristics:
        _remove_all(doomed, keep)
        return
    for node in root.css("[class], [id]"):
        hint = f"{node.attributes.get('class') or ''} {node.attributes.get('id') or ''}".split()
        if any(_HINT.search(h) for h in hint):
            doomed.append(node)
    _remove_all(doomed, keep)
    doomed = []
    for node in root.css("ul, ol, menu, dl, div, section, p, table, span, small"):
        links = node.css("a")
        short = node.tag in ("p", "div", "span", "small")
        if not links and not short:
            continue
        raw = node.text(deep=True) or ""
        if short and len(raw) < 1000 and _COPYRIGHT.search(raw) and len(_norm(raw)) < 400:
            doomed.append(node)
        elif links and sum(len(_norm(a.text(deep=True))) for a in links) > 0.5 * len(_norm(raw)):
            doomed.append(node)
    _remove_all(doomed, keep)


def _layout_table(table) -> bool:
    """A table used for layout (it holds another table or a heading), not data:
    read as one row per line, its nested tables' text came out two or three
    times and its headings and paragraphs were flattened into one line."""
    if table.css_first("h1, h2, h3, h4, h5, h6") is not None:
        return True
    return any(t.mem_id != table.mem_id for t in table.css("table"))


class _Walker:
    def __init__(self) -> None:
        self.out = TextBuilder("\n\n")
        self.section: str | None = None
        self.buf: list[str] = []  # the current line of the current block
        self.lines: list[list[str]] = []  # the block's lines before it, ended by <br>

    def line_break(self) -> None:
        self.lines.append(self.buf)
        self.buf = []

    def flush(self) -> None:
        """End the current block: its lines (``<br>``-separated) each have their
        white space collapsed and are joined by one newline, so a paragraph
        with line breaks (an address, a poem) stays one paragraph for the
        chunker, which ends a sentence only at a blank line. An empty line
        between two (``<br><br>``, the old way to space paragraphs) is kept as
        one blank line; empty lines at either end go."""
        out: list[str] = []
        for line in (_norm("".join(parts)) for parts in [*self.lines, self.buf]):
            if line or (out and out[-1]):
                out.append(line)
        while out and not out[-1]:
            out.pop()
        self.buf, self.lines = [], []
        if out:
            self.out.add("\n".join(out), section=self.section)

    def walk(self, node, depth: int = 0) -> None:
        for child in node.iter(include_text=True):
            tag = child.tag
            if tag == "-text":
                self.buf.append(child.text_content or "")
            elif tag.startswith("-"):  # comments, doctype
                continue
            elif depth > 200:  # pathological nesting: take its text flat
                self.buf.append(" " + child.text(deep=True, separator=" ") + " ")
            elif tag == "br":
                self.line_break()
            elif tag in _HEADINGS:
                self.flush()
                title = _norm(child.text(deep=True, separator=" "))
                if title:
                    self.section = title
                    self.out.add(title, section=title)
            elif tag == "pre":
                self.flush()
                text = drop_invisible(child.text(deep=True) or "").strip("\n")
                if text.strip():
                    self.out.add(text, section=self.section)
            elif tag == "table" and _layout_table(child):
                self.flush()  # a page laid out in a table: its cells are read as blocks
                self.walk(child, depth + 1)
                self.flush()
            elif tag == "table":
                self.flush()
                for row in child.css("tr"):
                    cells = [_norm(c.text(deep=True, separator=" ")) for c in row.css("td, th")]
                    line = " | ".join(c for c in cells if c)
                    if line:
                        self.out.add(line, section=self.section)
            elif tag in _BLOCK:
                self.flush()
                self.walk(child, depth + 1)
                self.flush()
            else:
                self.buf.append(" " if tag == "img" else "")
                self.walk(child, depth + 1)


class HtmlLoader(Loader):
    suffixes = (".html", ".htm", ".xhtml")
    name = "HTML"

    def sniff(self, raw: bytes) -> bool:
        return detect_binary(raw) is None

    def extract(self, raw: bytes, path: Path) -> Extracted:
        html = decode_html(raw)
        main = self._extract(html, strip=True)
        if len(main.text) >= 200:
            return main
        # The rules can misfire on odd markup (a page-wide wrapper called
        # "has-sidebar"): when they leave almost nothing, fall back to removing
        # only the <nav>/<aside>/<footer>/<header> elements and ARIA regions.
        full = self._extract(html, strip=False)
        if len(main.text) < 0.1 * len(full.text):
            return Extracted(full.text, full.title, {"boilerplate": "kept"}, full.locators)
        return main

    def _extract(self, html: str, strip: bool) -> Extracted:
        from selectolax.lexbor import LexborHTMLParser

        tree = LexborHTMLParser(html)
        page_title = None
        t = tree.css_first("title")
        if t is not None:
            page_title = _norm(t.text(deep=True)) or None
        og = tree.css_first('meta[property="og:title"]')
        if og is not None and (og.attributes.get("content") or "").strip():
            page_title = _norm(og.attributes["content"])
        tree.strip_tags(_DROP_EVERYWHERE)
        root = _content_root(tree) if strip else (tree.body or tree.root)
        if root is None:
            return Extracted(text="", title=page_title)
        _strip_boilerplate(root, heuristics=strip)
        h1 = root.css_first("h1")
        title = (_norm(h1.text(deep=True, separator=" ")) if h1 is not None else "") or page_title
        w = _Walker()
        w.walk(root)
        w.flush()
        text, locators = w.out.build()
        return Extracted(text=text, title=title, meta={}, locators=locators)
