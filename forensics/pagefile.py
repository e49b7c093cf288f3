"""Open a form page file as grey page images: a raster scan, each page of a multi-page TIFF,
or each page of a PDF rendered with PDFium (pypdfium2: the renderer Chrome uses, as a wheel
with no system dependency).

A PDF from an office scanner is one scanned image per page; it is rendered at PDF_DPI, or
lower where that would exceed the pixel limit. PDFium runs no scripts when it only renders,
and every failure (damaged, encrypted, not a PDF) becomes an ``InputError`` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from PIL import Image

from .errors import InputError
from .imageload import DEFAULT_MAX_PIXELS, header, load_scan

PDF_DPI = 200  # forms are scanned at 150-300 dpi; 200 keeps 1-px rules of a 300-dpi scan
PDF_MAGIC = b"%PDF-"
MAX_PAGES = 500  # a PDF claiming more pages than any form has is refused, not rendered


def is_pdf(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(PDF_MAGIC)) == PDF_MAGIC
    except OSError:
        return False  # load_scan says why the file cannot be read


def page_count(path: str | os.PathLike) -> int:
    """Pages in a PDF or a multi-page TIFF; 1 for any other image (or an unreadable file)."""
    if is_pdf(path):
        with _pdf(Path(path)) as pdf:
            return len(pdf)
    return header(path)[0]


def load_pages(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[tuple[int, Image.Image]]:
    """(page number from 1, mode "L" page) for every page of the file, one at a time."""
    path = Path(path)
    if is_pdf(path):
        yield from _pdf_pages(path, max_pixels)
        return
    for frame in range(header(path)[0]):
        yield frame + 1, load_scan(path, max_pixels, frame=frame)


def load_page(path: str | os.PathLike, number: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Page ``number`` (from 1) of the file, as load_pages gives it."""
    path = Path(path)
    if not is_pdf(path):
        return load_scan(path, max_pixels, frame=number - 1)
    with _pdf(path) as pdf:
        if not 1 <= number <= len(pdf):
            raise InputError(str(path), f"no page {number} (the PDF has {len(pdf)})")
        return _render(pdf, path, number - 1, max_pixels)


def page_number(record_page: str, file: str) -> int | None:
    """N from a record's ``page`` FILE#page=N; None for a single-page file (``page`` = FILE)."""
    suffix = record_page[len(file):] if record_page.startswith(file) else ""
    return int(suffix[6:]) if suffix.startswith("#page=") and suffix[6:].isdigit() else None


def page_of(record_page: str, file: str) -> tuple[str, int]:
    """(file, page number) from a record's ``page`` (FILE or FILE#page=N) and ``file``."""
    return file, page_number(record_page, file) or 1


class _pdf:
    """pypdfium2.PdfDocument as a context manager whose errors name the file."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        import pypdfium2

        try:
            self.doc = pypdfium2.PdfDocument(str(self.path))
        except Exception as exc:  # PdfiumError for damaged or password-protected files
            raise InputError(str(self.path), f"cannot open the PDF ({_first_line(exc)})") from None
        pages = len(self.doc)
        if pages > MAX_PAGES:
            self.doc.close()
            raise InputError(str(self.path), f"PDF with {pages} pages: more than {MAX_PAGES}, refused")
        return self.doc

    def __exit__(self, *exc) -> None:
        self.doc.close()


def _pdf_pages(path: Path, max_pixels: int) -> Iterator[tuple[int, Image.Image]]:
    with _pdf(path) as pdf:
        if len(pdf) == 0:
            raise InputError(str(path), "PDF without pages")
        for index in range(len(pdf)):
            yield index + 1, _render(pdf, path, index, max_pixels)


def _render(pdf, path: Path, index: int, max_pixels: int) -> Image.Image:
    try:
        page = pdf[index]
        width_pt, height_pt = page.get_size()
        scale = PDF_DPI / 72.0
        if width_pt * height_pt * scale * scale > max_pixels:
            scale = (max_pixels / max(width_pt * height_pt, 1.0)) ** 0.5
        return page.render(scale=scale, grayscale=True).to_pil().convert("L")
    except Exception as exc:
        raise InputError(f"{path}#page={index + 1}", f"cannot render the page ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
