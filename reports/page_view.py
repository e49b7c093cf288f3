"""Form pages in the HTML report: a page's thumbnail with every scored box outlined in its
verdict's colour, and the crop of one box as a character's scan preview.

Records of one page arrive one after another, so the page image behind them is kept (one
page at a time) instead of being decoded again for each of its tens of boxes. A page that
cannot be opened again (moved, damaged) gets a placeholder, never a failed report.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from PIL import Image

from forensics.page_lr import PageEvidence, PageModel, page_verdict, usable_log_lr

PAGE_THUMB_PX = 420  # a page thumbnail is this wide
VERDICT_RGB = {"machine": "#b3261e", "uncertain": "#c98a00", "human": "#1e6b34", "failed": "#57606a"}


class PageCache:
    """The last page image opened, by (file, page number)."""

    def __init__(self):
        self.key: Optional[tuple[str, int]] = None
        self.image: Optional[Image.Image] = None
        self.why: Optional[str] = None

    def get(self, record: dict) -> tuple[Optional[Image.Image], Optional[str]]:
        from forensics.errors import InputError
        from forensics.pagefile import load_page, page_of

        key = page_of(str(record.get("page")), str(record.get("file")))
        if key != self.key:
            self.key, self.image, self.why = key, None, None
            try:
                self.image = load_page(*key)
            except InputError as exc:
                self.why = exc.reason
            except Exception as exc:  # noqa: BLE001 - a preview must never cost the report
                self.why = f"{type(exc).__name__}: {exc}"
        return self.image, self.why


def box_crop(page: Image.Image, box) -> Image.Image:
    """The printed box with a margin of a tenth of its size, so the reviewer sees the lines too."""
    left, top, right, bottom = box
    pad = max(2, (bottom - top) // 10)
    return page.crop((max(0, left - pad), max(0, top - pad), min(page.width, right + pad),
                      min(page.height, bottom + pad)))


@dataclass
class PageEntry:
    """One page of the report: its boxes as they were scored, and its thumbnail."""

    page: str
    size: Optional[tuple[int, int]] = None
    thumb: Optional[str] = None  # data URI
    why: Optional[str] = None
    boxes: list = field(default_factory=list)  # (box, outcome, p_machine, label)
    counts: dict = field(default_factory=lambda: {"machine": 0, "uncertain": 0, "human": 0, "failed": 0})
    boxes_on_page: Optional[int] = None
    empty_on_page: Optional[int] = None
    log_lrs: list = field(default_factory=list)  # the boxes the page model uses
    page_model: Optional[PageModel] = None  # set with the prior before the verdict is read
    prior: float = 0.5

    def add(self, record: dict, outcome: str) -> None:
        self.counts[outcome] += 1
        ln = usable_log_lr(record)
        if ln is not None:
            self.log_lrs.append(ln)
        if record.get("boxes_on_page") is not None:
            self.boxes_on_page, self.empty_on_page = record["boxes_on_page"], record.get("empty_on_page")
        if record.get("box"):
            p = record.get("p_machine")
            label = f"field {record.get('field')} box {record.get('index')}"
            self.boxes.append((list(record["box"]), outcome, p if isinstance(p, (int, float)) else None, label))

    def judged(self) -> tuple[str, Optional[str], Optional[PageEvidence]]:
        c = self.counts
        return page_verdict(self.page_model, self.log_lrs, self.prior, c["machine"], c["uncertain"], c["failed"])

    @property
    def verdict(self) -> str:
        return self.judged()[0]

    @property
    def max_p(self) -> float:
        ps = [b[2] for b in self.boxes if b[2] is not None]
        return max(ps) if ps else -1.0

    def set_image(self, image: Optional[Image.Image], why: Optional[str]) -> None:
        if image is None:
            self.why = why
            return
        self.size = image.size
        thumb = image.copy()
        thumb.thumbnail((PAGE_THUMB_PX, PAGE_THUMB_PX * 2), Image.LANCZOS)
        # 16 grey levels: a page is paper and ink, and the outlines carry the colour.
        level = (np.asarray(thumb, dtype=np.uint16) * 15 + 127) // 255
        img = Image.fromarray(level.astype(np.uint8), mode="P")
        img.putpalette([round(i * 255 / 15) for i in range(16) for _ in range(3)])
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True, bits=4)
        self.thumb = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def page_svg(entry: PageEntry, esc) -> str:
    """The page thumbnail with its boxes outlined, as inline SVG in the page's own pixel units."""
    if entry.thumb is None or entry.size is None:
        return f'<div class="pagethumb missing" title="{esc(entry.why or "")}">no preview</div>'
    w, h = entry.size
    parts = [f'<svg class="pagethumb" viewBox="0 0 {w} {h}" width="{PAGE_THUMB_PX}" '
             f'height="{round(PAGE_THUMB_PX * h / w)}" role="img" aria-label="page with its boxes outlined">'
             f'<image href="{entry.thumb}" x="0" y="0" width="{w}" height="{h}"/>']
    for (left, top, right, bottom), outcome, p, label in entry.boxes:
        colour = VERDICT_RGB.get(outcome, VERDICT_RGB["failed"])
        title = f"{label}: {outcome}" + (f", p_machine {p:.3f}" if p is not None else "")
        parts.append(f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="{colour}" '
                     f'fill-opacity="0.12" stroke="{colour}" stroke-width="{max(2, w // 400)}">'
                     f'<title>{esc(title)}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)
