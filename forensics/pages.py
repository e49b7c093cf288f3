"""One input file -> the characters to score in it: the file itself as one character, or the
written boxes of every page of a form (forensics.boxes finds them).

A file is a form page when ``pages`` is True, or, left to decide (None), when it is a PDF, a
multi-page TIFF, or an image at least PAGE_MIN_SIDE px on both sides (a character crop is a
few hundred at most; a letter page at 150 dpi is 1275 x 1650). Each character of a page knows
where it came from: ``page`` (the file, with ``#page=N`` for multi-page files, as PDF viewers
address a page), ``box`` in the page's pixels, ``field`` and ``index``, and the page's count of
boxes and of empty boxes (skipped, not scored). A page with no boxes, or only empty ones, is
one error character saying so, so no page vanishes from a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from .boxes import find_boxes
from .errors import InputError
from .imageload import header, load_scan
from .pagefile import is_pdf, load_pages
from .preprocess import preprocess_image
from .record import LOCATION_KEYS

PAGE_MIN_SIDE = 1000  # px on both sides: a page, not a character


@dataclass
class Character:
    file: str
    frame: np.ndarray | InputError  # the 28x28 frame, or why there is none
    location: dict = field(default_factory=lambda: dict.fromkeys(LOCATION_KEYS))


def looks_like_page(path: Path) -> bool:
    """What characters_of would treat as a page when left to decide, from the file's header."""
    if is_pdf(path):
        return True
    frames, size = header(path)
    return frames > 1 or min(size) >= PAGE_MIN_SIDE


def characters_of(path: Path, pages: Optional[bool] = None) -> list[Character]:
    """The characters of one input file, in reading order (never raises)."""
    file = str(path)
    try:
        if pages is False:
            if is_pdf(path):
                raise InputError(file, "a PDF holds pages, not one character: score it without --no-pages")
            return [Character(file, preprocess_image(load_scan(path), source=file))]
        if pages or is_pdf(path) or header(path)[0] > 1:
            return _page_characters(path)
        first = load_scan(path)
        if min(first.size) >= PAGE_MIN_SIDE:
            return _characters_on_page(file, file, first)
        return [Character(file, preprocess_image(first, source=file))]
    except InputError as exc:
        return [Character(file, exc, _location(exc.path if exc.path != file else None))]
    except Exception as exc:  # a bug on one odd file must not end a batch of thousands
        return [Character(file, InputError(file, f"internal error ({type(exc).__name__}: {exc})"))]


def _page_characters(path: Path) -> list[Character]:
    file, out = str(path), []
    numbered = is_pdf(path) or header(path)[0] > 1
    pages = load_pages(path)
    while True:
        page = file
        try:
            number, image = next(pages)
        except StopIteration:
            return out
        except InputError as exc:  # this page cannot be read: say so, and stop (the file is damaged)
            out.append(Character(file, exc, _location(exc.path)))
            return out
        if numbered:
            page = f"{file}#page={number}"
        out += _characters_on_page(file, page, image)


def _characters_on_page(file: str, page: str, image: Image.Image) -> list[Character]:
    layout = find_boxes(np.asarray(image))
    found = len(layout.boxes)
    empty = sum(not b.filled for b in layout.boxes)
    if found == 0:
        return [Character(file, InputError(page, "no character boxes found on the page (to score the file as "
                                                 "one character, use --no-pages)"), _location(page, 0, 0))]
    if found == empty:
        return [Character(file, InputError(page, f"all {found} character boxes on the page are empty"),
                          _location(page, found, empty))]
    out = []
    for box in layout.boxes:
        if not box.filled:
            continue
        where = f"{page} field {box.field} box {box.index}"
        try:
            frame: np.ndarray | InputError = preprocess_image(Image.fromarray(box.crop), source=where)
        except InputError as exc:
            frame = exc
        out.append(Character(file, frame, {"page": page, "box": list(box.bbox), "field": box.field,
                                           "index": box.index, "boxes_on_page": found, "empty_on_page": empty}))
    return out


def _location(page: Optional[str], found: Optional[int] = None, empty: Optional[int] = None) -> dict:
    loc = dict.fromkeys(LOCATION_KEYS)
    loc.update(page=page, boxes_on_page=found, empty_on_page=empty)
    return loc
