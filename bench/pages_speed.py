"""How long a cited PDF page takes to appear: rendered with its highlight, then from the cache.

    python bench/pages_speed.py [--runs 5]

A generated four-page letter-size report, the highlight on page 3, at the
default scale (``PagesConfig.scale``). Prints a table: first render (PDFium
render + character boxes + PNG encoding) and a cache hit, median of the runs,
with the CPU and the load, and the PNG sizes (whole page and the chat's band).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from screenshots import report_pdf

    from qa.config import PagesConfig
    from qa.engine import cpu_info
    from qa.ingest.loading import load_file
    from qa.pages import PageCache, render_document_page

    with tempfile.TemporaryDirectory() as tmp:
        pdf = report_pdf(Path(tmp) / "report.pdf")
        doc = load_file(pdf)
        a0 = doc.text.index("Margarethe Olsson")
        hl = (a0, a0 + len("Margarethe Olsson"))
        cold, warm = [], []
        for i in range(args.runs):
            cfg = PagesConfig(cache_dir=Path(tmp) / f"cache{i}")
            cache = PageCache(cfg)
            t0 = time.perf_counter()
            page = render_document_page(doc, None, hl, None, cfg, cache)
            cold.append(1000 * (time.perf_counter() - t0))
            t0 = time.perf_counter()
            render_document_page(doc, None, hl, None, cfg, cache)
            warm.append(1000 * (time.perf_counter() - t0))
        band = page.band(PagesConfig().band)
    cpu = cpu_info()
    print(f"CPU: {cpu['model']}, {cpu['cores']} cores, flags: {', '.join(cpu['flags']) or 'none of note'}, "
          f"load {os.getloadavg()[0]:.1f}; {args.runs} runs, page {page.page}, {page.width}x{page.height} px")
    print("| step | median ms | min ms |\n|---|---:|---:|")
    print(f"| first render (highlighted, PNG) | {statistics.median(cold):.1f} | {min(cold):.1f} |")
    print(f"| from the disk cache | {statistics.median(warm):.2f} | {min(warm):.2f} |")
    print(f"PNG: whole page {len(page.png) / 1024:.0f} KB, band {len(band.png) / 1024:.0f} KB ({band.height} px high)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
