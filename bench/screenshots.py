"""Screenshots of the app's three tabs for the README, taken in headless Chromium.

    python bench/screenshots.py [--out docs/screenshots] [--gold tests/gold/seeds.jsonl --questions 12]

Builds a temporary index of seeds/ plus a generated four-page PDF report (the
answer on page 3) with the real models, serves the app, and in Chromium: asks
about the report (Chat: the answer, its excerpt and its page), opens the
report in the Documents tab, and runs an evaluation of the first gold
questions in the Check and tune tab. Each PNG is reduced to 256 colours
(they must stay small enough to commit); sizes are printed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

CHROMIUM = "/usr/bin/chromium"
QUESTION = "Who chairs the audit committee?"
BOILERPLATE = ("The committee reviewed routine matters of procedure, approved the minutes of the previous "
               "meeting and noted the correspondence received since then. ")


def report_pdf(path: Path) -> Path:
    """A four-page report: committee boilerplate, the chair's name on page 3."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Annual report of the Lindby harbour board")
    for i in range(1, 5):
        pdf.add_page()
        pdf.set_font("helvetica", "B", 15)
        pdf.cell(0, 10, f"{i}. " + ["Overview", "Finances", "Governance", "Outlook"][i - 1],
                 new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=11)
        body = BOILERPLATE * 5
        if i == 3:
            body += ("Following the spring elections, the audit committee is chaired by Margarethe Olsson, "
                     "who succeeds Per Lindqvist after six years. ")
        pdf.multi_cell(0, 6, body + BOILERPLATE * 3)
    pdf.output(str(path))
    return path


def shrink(png: bytes) -> bytes:
    """256 colours: a screenshot of a page of text loses nothing visible."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    p.add_argument("--gold", default=str(ROOT / "tests" / "gold" / "seeds.jsonl"))
    p.add_argument("--questions", type=int, default=12, help="gold questions evaluated in the tune tab")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=900)
    args = p.parse_args(argv)

    from playwright.sync_api import expect, sync_playwright

    import app
    from qa.cli import quiet_model_loading
    from qa.pipeline import QA

    quiet_model_loading()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="qa-shots-") as tmp:
        tmp = Path(tmp)
        os.environ["QA_CACHE_DIR"] = str(tmp / "cache")
        t0 = time.perf_counter()
        qa = QA(index_dir=tmp / "index", corpus_dir=ROOT / "seeds")
        qa.warm_up()
        pdf = report_pdf(tmp / "harbour-board-report.pdf")
        gold = tmp / "my-questions.jsonl"
        lines = Path(args.gold).read_text(encoding="utf-8").splitlines()[: args.questions]
        gold.write_text("\n".join(lines) + "\n", encoding="utf-8")
        demo = app.build_app(qa)
        from tests._app_server import free_port  # noqa: E402  (the test helper picks a free port)

        port = free_port()
        app.launch(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
        print(f"index and models ready in {time.perf_counter() - t0:.0f} s; serving on {port}", flush=True)
        shots: dict[str, bytes] = {}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": args.width, "height": args.height}, device_scale_factor=1)
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            page.locator("#qa-question textarea").wait_for(timeout=120_000)
            page.locator("#qa-upload input[type=file]").set_input_files(str(pdf))
            page.wait_for_timeout(1500)
            page.locator("#qa-add").click()
            expect(page.locator("#qa-status")).to_contain_text("Indexed", timeout=300_000)
            page.locator("#qa-question textarea").fill(QUESTION)
            page.locator("#qa-send").click()
            expect(page.locator("#qa-chat .qa-reply:not(.qa-thinking)")).to_have_count(1, timeout=300_000)
            page.wait_for_timeout(1500)
            shots["chat"] = page.screenshot()

            page.get_by_role("tab", name="Documents").click()
            page.locator("#qa-doc-table").get_by_text(pdf.name, exact=True).filter(visible=True).first.click()
            expect(page.locator("#qa-doc-info")).to_contain_text("PDF", timeout=60_000)
            page.wait_for_timeout(2000)
            shots["documents"] = page.screenshot()

            page.get_by_role("tab", name="Check and tune").click()
            page.locator("#qa-gold input[type=file]").set_input_files(str(gold))
            page.wait_for_timeout(1500)
            page.locator("#qa-tune-run").click()
            expect(page.locator("#qa-tune-summary")).to_contain_text("Suggested threshold", timeout=600_000)
            page.wait_for_timeout(2000)
            shots["tune"] = page.screenshot(full_page=True)
            browser.close()
        demo.close()
    for name, png in shots.items():
        small = shrink(png)
        (out / f"{name}.png").write_bytes(small)
        print(f"{out / f'{name}.png'}: {len(small) / 1024:.0f} KB (from {len(png) / 1024:.0f} KB)")
    print(json.dumps({"question": QUESTION, "gold_questions": args.questions}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
