"""Ingestion speed: extraction only (no embedding), per format.

    python bench/ingest.py [--docs 1000] [--pages 8] [--seed 0] [--keep DIR | --from DIR]
    python bench/ingest.py --compare [--docs 40]     # PDF and HTML library comparison (docs/ingest.md)

Generates ``--docs`` mixed documents in a temp folder (multi-page PDFs,
HTML pages with navigation and footer, DOCX with headings and a table,
Markdown), then loads each format with ``qa.ingest.load_batch`` and prints
docs/s, MB/s and peak Python memory (tracemalloc, in a second untimed pass;
PDFium's and Lexbor's C allocations are not seen by tracemalloc, so the growth
of the process's maximum RSS during the timed pass is printed too) per format.
Generating the 1,000 files takes ~4 minutes on 2 cores (fpdf2 line breaking is
pure Python): keep them with ``--keep DIR`` and rerun with ``--from DIR``.
Needs the test extra (fpdf2); ``--compare`` also needs pypdf, pdfplumber,
trafilatura, beautifulsoup4 and lxml (the test and bench extras:
``pip install -e '.[test,bench]'``).

``--compare`` extracts the same generated PDFs with pypdfium2, pypdf and
pdfplumber, and the same generated HTML pages with trafilatura, selectolax
and BeautifulSoup, and scores text quality against the known source text.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

WORDS = (
    "the army general ministry defence report commander river bridge supply winter council budget school teacher "
    "oxygen molecule reaction energy water harbour treaty railway station engine signal pressure harvest market "
    "price contract tenant landlord clause warranty install configure server network backup restore archive "
    "efficient office affluent flight official shuffle waffle ﬁeld café naïve résumé Zürich coöperate "
    "measure sample result method analysis figure table section chapter appendix northern southern eastern western "
    "policy voter election senate committee hearing witness evidence verdict appeal museum gallery painting sculpture"
).split()
WORDS = [w for w in WORDS if "ﬁ" not in w]  # no presentation-form ligatures in the source text


def sentence(rng: random.Random, n: int | None = None) -> str:
    n = n or rng.randint(8, 20)
    words = [rng.choice(WORDS) for _ in range(n)]
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice([".", ".", ".", "?", ";"]).replace(";", ".")


def paragraph(rng: random.Random, sentences: int | None = None) -> str:
    return " ".join(sentence(rng) for _ in range(sentences or rng.randint(3, 6)))


def _font_path(name: str = "DejaVuSans.ttf") -> Path:
    import matplotlib

    return Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / name


# --- generators -------------------------------------------------------------------------------


def make_pdf(pages: list[list[str]], title: str = "Generated report", header: str | None = None,
             two_column_every: int = 0) -> bytes:
    """A PDF with the given paragraphs on each page (Unicode font, justified text,
    a running header and a "Page n" footer; every ``two_column_every``-th page is
    set in two columns). Returns the bytes."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_font("DejaVu", "", str(_font_path()))
    pdf.set_title(title)
    for n, paras in enumerate(pages, 1):
        pdf.add_page()
        pdf.set_font("DejaVu", size=9)
        if header:
            pdf.cell(0, 6, header, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", size=11)
        if two_column_every and n % two_column_every == 0:
            with pdf.text_columns(ncols=2, text_align="J", gutter=8) as cols:
                for para in paras:
                    cols.write(text=para + "\n\n")
        else:
            for para in paras:
                pdf.multi_cell(0, 5.5, para, align="J", new_x="LMARGIN", new_y="NEXT")
                pdf.ln(3)
        pdf.set_y(-15)
        pdf.set_font("DejaVu", size=9)
        pdf.cell(0, 6, f"Page {n}", align="C")
    return bytes(pdf.output())


def pdf_pages(rng: random.Random, n_pages: int) -> list[list[str]]:
    return [[paragraph(rng) for _ in range(rng.randint(3, 5))] for _ in range(n_pages)]


NAV = ["Home", "Products", "Pricing", "Careers", "Contact us", "Sign in"]
FOOTER = "Copyright 2026 Example Media Ltd. All rights reserved. Privacy policy | Terms of use | Cookie settings"


def make_html(title: str, sections: list[tuple[str, list[str]]], semantic: bool | None = True) -> str:
    """A saved web page: navigation menu, sidebar, article with h2 sections, footer.
    ``semantic`` True uses <nav>/<article>/<footer>; False div soup with telling
    class names (menu, sidebar, footer); None div soup with meaningless class names."""
    nav_items = "".join(f'<li><a href="/{w.lower().replace(" ", "-")}">{w}</a></li>' for w in NAV)
    body = "".join(
        f"<h2>{h}</h2>" + "".join(f"<p>{p}</p>" for p in paras) for h, paras in sections
    )
    related = "".join(f'<li><a href="/r{i}">Related story number {i} about markets</a></li>' for i in range(5))
    if semantic:
        page = (f"<header><nav><ul>{nav_items}</ul></nav></header>"
                f"<main><article><h1>{title}</h1>{body}</article></main>"
                f"<aside><h3>Most read</h3><ul>{related}</ul></aside>"
                f"<footer><p>{FOOTER}</p></footer>")
    elif semantic is None:
        page = (f'<div class="c1"><ul>{nav_items}</ul></div>'
                f'<div class="c2"><h1>{title}</h1>{body}</div>'
                f'<div class="c3"><b>Most read</b><ul>{related}</ul></div>'
                f'<div class="c4"><p>{FOOTER}</p></div>')
    else:
        page = (f'<div id="top-menu" class="menu"><ul>{nav_items}</ul></div>'
                f'<div id="content" class="post-content"><h1>{title}</h1>{body}</div>'
                f'<div class="sidebar widget"><h3>Most read</h3><ul>{related}</ul></div>'
                f'<div id="footer" class="site-footer"><p>{FOOTER}</p></div>')
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} | Example</title>"
            f"<script>var tracking = {{id: 42}};</script><style>body {{font-family: sans-serif}}</style>"
            f"</head><body>{page}<script>console.log('x')</script></body></html>")


def html_sections(rng: random.Random, n: int) -> list[tuple[str, list[str]]]:
    return [(f"Section {i + 1}: {sentence(rng, 3)[:-1]}", [paragraph(rng) for _ in range(rng.randint(2, 4))])
            for i in range(n)]


def make_docx(title: str, sections: list[tuple[str, list[str]]], table: list[list[str]] | None = None) -> bytes:
    import io

    import docx

    d = docx.Document()
    d.core_properties.title = title
    d.add_heading(title, level=0)
    for i, (h, paras) in enumerate(sections):
        d.add_heading(h, level=1)
        for p in paras:
            d.add_paragraph(p)
        if table and i == 0:
            t = d.add_table(rows=len(table), cols=len(table[0]))
            for r, row in enumerate(table):
                for c, cell in enumerate(row):
                    t.cell(r, c).text = cell
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def make_markdown(title: str, sections: list[tuple[str, list[str]]]) -> str:
    out = [f"# {title}\n"]
    for h, paras in sections:
        out.append(f"\n## {h}\n")
        out.extend(f"\n{p}\n" for p in paras)
    return "".join(out)


def generate(folder: Path, n_docs: int, n_pages: int, seed: int) -> dict[str, list[Path]]:
    """Write n_docs documents, a quarter of each format, into folder."""
    rng = random.Random(seed)
    out: dict[str, list[Path]] = {"pdf": [], "html": [], "docx": [], "md": []}
    kinds = list(out)
    for i in range(n_docs):
        kind = kinds[i % 4]
        title = f"Document {i}: {sentence(rng, 4)[:-1]}"
        path = folder / kind / f"doc{i:05d}.{kind}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "pdf":
            path.write_bytes(make_pdf(pdf_pages(rng, n_pages), title=title, header=title))
        elif kind == "html":
            path.write_text(make_html(title, html_sections(rng, 5), semantic=i % 8 < 4), encoding="utf-8")
        elif kind == "docx":
            table = [["Item", "Price", "Quantity"]] + [[rng.choice(WORDS), str(rng.randint(1, 99)), str(i)]
                                                       for _ in range(4)]
            path.write_bytes(make_docx(title, html_sections(rng, 5), table))
        else:
            path.write_text(make_markdown(title, html_sections(rng, 5)), encoding="utf-8")
        out[kind].append(path)
    return out


# --- throughput -------------------------------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Row:
    fmt: str
    docs: int
    failed: int
    mb: float
    seconds: float
    cpu_seconds: float
    peak_py_mb: float
    rss_growth_mb: float
    chars: int


def measure(fmt: str, paths: list[Path]) -> Row:
    """Two passes over the same files: one timed (nothing else running), one
    under tracemalloc for the peak of Python allocations (it slows Python-heavy
    extraction down several times, so it is not timed)."""
    from qa.ingest import load_batch

    gc.collect()
    rss0 = _rss_mb()
    t, c = time.perf_counter(), time.process_time()
    result = load_batch(paths)
    seconds, cpu = time.perf_counter() - t, time.process_time() - c
    rss_growth = _rss_mb() - rss0
    del result
    gc.collect()
    tracemalloc.start()
    result = load_batch(paths)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = sum(p.stat().st_size for p in paths)
    return Row(fmt, len(result.documents), len(result.problems), size / 1e6, seconds, cpu, peak / 1e6,
               rss_growth, sum(len(d.text) for d in result.documents))


def cpu_line() -> str:
    from qa.engine import cpu_info

    cpu = cpu_info()
    return (f"CPU: {cpu['model']} ({cpu['cores']} cores), flags: {', '.join(cpu['flags']) or 'none of note'}; "
            f"load average {os.getloadavg()[0]:.1f}")


def run_throughput(args) -> None:
    print(cpu_line())
    with tempfile.TemporaryDirectory() as tmp:
        if args.from_dir:
            folder = Path(args.from_dir)
            files = {k: sorted((folder / k).glob(f"*.{k}")) for k in ("pdf", "html", "docx", "md")}
            print(f"reusing {sum(map(len, files.values()))} documents from {folder}", file=sys.stderr)
        else:
            folder = Path(args.keep) if args.keep else Path(tmp)
            t = time.perf_counter()
            files = generate(folder, args.docs, args.pages, args.seed)
            print(f"generated {args.docs} documents ({args.pages}-page PDFs) in {time.perf_counter() - t:.1f} s",
                  file=sys.stderr)
        # Import the loaders' libraries once, outside the timings.
        import qa.ingest.docx, qa.ingest.html, qa.ingest.pdf  # noqa: E401,F401

        rows = [measure(fmt, paths) for fmt, paths in files.items() if paths]
        allp = [p for ps in files.values() for p in ps]
        rows.append(measure("all (mixed folder)", allp))
    print("| format | docs | failed | MB | wall s | docs/s | MB/s | CPU s | docs per CPU-s | MB per CPU-s "
          "| chars/doc | peak Python MB (tracemalloc) | max-RSS growth MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.fmt} | {r.docs} | {r.failed} | {r.mb:.1f} | {r.seconds:.2f} | {r.docs / r.seconds:.1f} "
              f"| {r.mb / r.seconds:.2f} | {r.cpu_seconds:.2f} | {r.docs / r.cpu_seconds:.1f} "
              f"| {r.mb / r.cpu_seconds:.2f} | {r.chars // max(r.docs, 1)} | {r.peak_py_mb:.1f} "
              f"| {r.rss_growth_mb:.0f} |")


# --- library comparison -----------------------------------------------------------------------

_WORD = re.compile(r"\w+")


def _scores(extracted: str, truth: str) -> tuple[float, float, float]:
    """(recall, precision, order) on words: recall/precision of the word
    multiset; order = share of the truth's word bigrams found in the output
    (catches glued words, lost spaces and scrambled reading order)."""
    e, t = _WORD.findall(extracted.lower()), _WORD.findall(truth.lower())
    ce, ct = Counter(e), Counter(t)
    common = sum((ce & ct).values())
    bt = Counter(zip(t, t[1:]))
    be = Counter(zip(e, e[1:]))
    order = sum((bt & be).values()) / max(sum(bt.values()), 1)
    return common / max(len(t), 1), common / max(len(e), 1), order


def _pdf_pypdfium2(raw: bytes) -> list[str]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(raw)
    try:
        out = []
        for page in doc:
            tp = page.get_textpage()
            out.append(tp.get_text_bounded())
            tp.close()
            page.close()
        return out
    finally:
        doc.close()


def _pdf_pypdf(raw: bytes) -> list[str]:
    import io

    import pypdf

    return [p.extract_text() or "" for p in pypdf.PdfReader(io.BytesIO(raw)).pages]


def _pdf_pdfplumber(raw: bytes) -> list[str]:
    import io

    import pdfplumber

    with pdfplumber.open(io.BytesIO(raw)) as pdf:
        return [p.extract_text() or "" for p in pdf.pages]


def _html_trafilatura(html: str) -> str:
    import trafilatura

    return trafilatura.extract(html, include_comments=False, include_tables=True) or ""


_BOILER = ("nav", "header", "footer", "aside", "script", "style", "noscript", "form", "iframe", "svg")
_BOILER_HINT = re.compile(r"nav|menu|footer|sidebar|widget|header|cookie|banner|related|share|social|comment",
                          re.I)


def _html_selectolax(html: str) -> str:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    tree.strip_tags(list(_BOILER))
    for node in tree.css("[class], [id]"):
        hint = f"{node.attributes.get('class') or ''} {node.attributes.get('id') or ''}"
        if _BOILER_HINT.search(hint) and node.parent is not None:
            node.decompose()
    root = tree.css_first("article") or tree.css_first("main") or tree.body
    return root.text(separator="\n", strip=True) if root else ""


def _html_bs4(html: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for t in soup(list(_BOILER)):
        t.decompose()
    for t in soup.find_all(lambda t: _BOILER_HINT.search(" ".join(t.get("class") or []) + " " + (t.get("id") or ""))):
        if not t.decomposed:
            t.decompose()
    root = soup.find("article") or soup.find("main") or soup.body
    return root.get_text("\n", strip=True) if root else ""


def _html_qa(html: str) -> str:
    from qa.ingest.html import HtmlLoader

    return HtmlLoader().extract(html.encode("utf-8"), Path("x.html")).text


def run_compare(args) -> None:
    import importlib.util

    missing = [m for m in ("pypdf", "pdfplumber", "trafilatura", "bs4", "lxml") if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(f"--compare needs {', '.join(missing)}: pip install -e '.[test,bench]'")
    print(cpu_line() + "\n")
    rng = random.Random(args.seed)
    n = args.docs
    pdfs = []
    for i in range(n):
        pages = pdf_pages(rng, args.pages)
        pdfs.append((make_pdf(pages, title=f"Doc {i}", header=f"Doc {i} running header", two_column_every=3),
                     pages))
    print(f"## PDF: {n} generated PDFs x {args.pages} pages, every third page in two columns ({sum(len(r) for r, _ in pdfs) / 1e6:.1f} MB)\n")
    print("| library | pages/s | word recall | word precision | bigram order | page text on right page |")
    print("|---|---|---|---|---|---|")
    for name, fn in (("pypdfium2", _pdf_pypdfium2), ("pypdf", _pdf_pypdf), ("pdfplumber", _pdf_pdfplumber)):
        fn(pdfs[0][0])  # warm-up (imports)
        t = time.perf_counter()
        outs = [fn(raw) for raw, _ in pdfs]
        dt = time.perf_counter() - t
        rs, ps, os_, right = [], [], [], 0
        pages_total = 0
        for out, (_, pages) in zip(outs, pdfs):
            for k, (got, paras) in enumerate(zip(out, pages)):
                truth = "\n".join(paras)
                r, p, o = _scores(got, truth)
                rs.append(r), ps.append(p), os_.append(o)
                right += paras[0].split()[0] in got and paras[-1].split()[-1].rstrip(".?") in got
                pages_total += 1
        m = lambda xs: sum(xs) / len(xs)  # noqa: E731
        print(f"| {name} | {pages_total / dt:.0f} | {m(rs):.4f} | {m(ps):.4f} | {m(os_):.4f} "
              f"| {right}/{pages_total} |")

    htmls = []
    for i in range(n):
        title = f"Article {i}: {sentence(rng, 4)[:-1]}"
        secs = html_sections(rng, 5)
        truth = title + "\n" + "\n".join(h + "\n" + "\n".join(ps) for h, ps in secs)
        htmls.append((make_html(title, secs, semantic=(True, False, None)[i % 3]), truth))
    boiler_words = set(_WORD.findall((" ".join(NAV) + " " + FOOTER + " Most read Related story number").lower()))
    print(f"\n## HTML: {n} generated pages (a third each: semantic <nav>/<article>/<footer>, div soup with class names like menu/sidebar/footer, div soup with meaningless class names)\n")
    print("| library | pages/s | word recall | word precision | bigram order | pages with nav/footer text |")
    print("|---|---|---|---|---|---|")
    for name, fn in (("trafilatura", _html_trafilatura), ("selectolax (lexbor) + rules", _html_selectolax),
                     ("BeautifulSoup (lxml) + rules", _html_bs4),
                     ("qa.ingest.html (selectolax + full rules, shipped)", _html_qa)):
        fn(htmls[0][0])
        t = time.perf_counter()
        outs = [fn(h) for h, _ in htmls]
        dt = time.perf_counter() - t
        rs, ps, os_, leaky = [], [], [], 0
        for got, (_, truth) in zip(outs, htmls):
            r, p, o = _scores(got, truth)
            rs.append(r), ps.append(p), os_.append(o)
            leaky += any(s in got for s in ("Careers", "All rights reserved", "Related story", "Sign in"))
        m = lambda xs: sum(xs) / len(xs)  # noqa: E731
        print(f"| {name} | {n / dt:.0f} | {m(rs):.4f} | {m(ps):.4f} | {m(os_):.4f} | {leaky}/{n} |")
    del boiler_words


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=None, help="documents to generate (default 1000; 40 with --compare)")
    p.add_argument("--pages", type=int, default=8, help="pages per PDF")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", help="write the documents here instead of a temp folder")
    p.add_argument("--from", dest="from_dir", help="reuse documents written earlier with --keep")
    p.add_argument("--compare", action="store_true", help="compare PDF and HTML extraction libraries")
    args = p.parse_args()
    if args.compare:
        args.docs = args.docs or 40
        run_compare(args)
    else:
        args.docs = args.docs or 1000
        run_throughput(args)


if __name__ == "__main__":
    main()
