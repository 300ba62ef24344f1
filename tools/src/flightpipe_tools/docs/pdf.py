"""``docs/es/documentacion.md`` -> HTML with a print stylesheet -> A4 PDF (headless Chromium).

Markdown is parsed with markdown-it-py (already installed: rich depends on it). The
diagrams are embedded as SVG, so the PDF keeps them as vectors that stay sharp when zoomed.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from markdown_it import MarkdownIt

CHROMIUM_NAMES: Final = ("chromium", "chromium-browser", "google-chrome")

# A4 with narrow margins and a small type size: the course asks for at most two pages.
PRINT_CSS: Final = """
@page { size: A4; margin: 9mm 11mm 9mm 11mm; }
html { font-family: "DejaVu Sans", "Liberation Sans", sans-serif; font-size: 7.6pt;
       line-height: 1.28; color: #111; }
body { margin: 0; }
h1 { font-size: 12.5pt; margin: 0 0 1.2mm 0; color: #1f3557; }
h2 { font-size: 9.2pt; margin: 2mm 0 0.8mm 0; color: #1f3557;
     border-bottom: 0.3pt solid #9fb0c8; }
h3 { font-size: 8pt; margin: 1.4mm 0 0.5mm 0; }
p { margin: 0 0 1mm 0; text-align: justify; hyphens: auto; }
ul, ol { margin: 0 0 1mm 0; padding-left: 4.2mm; }
li { margin: 0 0 0.3mm 0; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 0.92em;
       background: #f1f3f6; padding: 0 0.4mm; border-radius: 0.5mm; }
table { border-collapse: collapse; margin: 0.5mm 0 1.2mm 0; width: 100%; }
th, td { border: 0.3pt solid #b8c2d0; padding: 0.3mm 1mm; vertical-align: top;
         text-align: left; }
th { background: #e9eef5; }
figure { margin: 0.5mm 0 1.2mm 0; }
figure img { display: block; width: 100%; height: auto; }
figure.full img { max-height: 90mm; width: auto; max-width: 100%; margin: 0 auto; }
figure.right { float: right; margin: 0.5mm 0 1mm 3mm; }
figcaption { text-align: center; color: #444; font-size: 0.9em; margin-top: 0.4mm; }
h2 { clear: both; }
.cols { column-count: 2; column-gap: 5mm; }
.cols > *:first-child { margin-top: 0; }
.page-break { break-before: page; }
"""


def markdown_to_html(markdown: str, title: str) -> str:
    """A standalone HTML page; raw HTML in the Markdown (column wrappers) is kept."""
    parser = MarkdownIt("commonmark", {"html": True, "typographer": True}).enable(
        ["table", "replacements", "smartquotes"]
    )
    body = parser.render(markdown)
    return (
        '<!DOCTYPE html>\n<html lang="es">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{PRINT_CSS}</style>\n</head>\n"
        f"<body>\n{body}</body>\n</html>\n"
    )


def find_chromium() -> str:
    for name in CHROMIUM_NAMES:
        exe = shutil.which(name)
        if exe:
            return exe
    raise RuntimeError("Chromium was not found: `make docs` installs it (apt chromium)")


def print_pdf(html_file: Path, pdf_file: Path, timeout: float = 120) -> None:
    """Print ``html_file`` to ``pdf_file`` with headless Chromium (no network, no profile)."""
    exe = find_chromium()
    with tempfile.TemporaryDirectory(prefix="flightpipe-chromium-") as profile:
        result = subprocess.run(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                f"--print-to-pdf={pdf_file}",
                "--no-pdf-header-footer",
                html_file.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if result.returncode != 0 or not pdf_file.exists():
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
        raise RuntimeError(f"Chromium could not print {html_file.name}:\n{tail}")


def page_count(pdf_file: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(str(pdf_file)).pages)


def build_pdf(markdown_file: Path, pdf_file: Path) -> Path:
    """Render ``markdown_file`` (images relative to it) into ``pdf_file``."""
    markdown = markdown_file.read_text(encoding="utf-8")
    # The first heading becomes the PDF's title (shown by viewers instead of a file name).
    title = next(
        (line[2:].strip() for line in markdown.splitlines() if line.startswith("# ")),
        pdf_file.stem,
    )
    html_text = markdown_to_html(markdown, html.escape(title))
    # The page is written next to the Markdown so its relative image paths resolve; it is
    # removed afterwards (the PDF is the deliverable).
    with tempfile.NamedTemporaryFile(
        "w", suffix=".html", dir=markdown_file.parent, encoding="utf-8", delete=False
    ) as fh:
        fh.write(html_text)
        html_file = Path(fh.name)
    try:
        tmp_pdf = pdf_file.with_suffix(".pdf.tmp")
        tmp_pdf.unlink(missing_ok=True)
        print_pdf(html_file, tmp_pdf)
        tmp_pdf.replace(pdf_file)
    finally:
        html_file.unlink(missing_ok=True)
    return pdf_file
