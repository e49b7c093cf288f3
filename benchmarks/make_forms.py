"""Synthetic form pages with ground truth: letter pages with printed labels and comb fields,
filled with given digit frames, some boxes left empty, then skewed, noised and JPEG-compressed
the way an office scanner delivers them.

    python -m benchmarks.make_forms OUT --pages 4 --seed 0      # OUT/form_000.png ... + OUT/truth.json
    python -m benchmarks.make_forms OUT --machine --dpi 150     # half the boxes machine-made

``make_form`` is what tests and benchmarks/forms.py call. Each field is a row of boxes, or a
grid of rows sharing their rules; box sizes, line widths (1-4 px), fill and capture are drawn
per page from the numpy Generator. The truth of each box: page-pixel ``box`` [left, top, right,
bottom] (exclusive; the printed box with its lines, the skew applied), ``field``, ``index``,
and for a filled box the ``source`` label and the ``frame`` number it was drawn from.
"""

from __future__ import annotations

import argparse
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

LETTER_IN = (8.5, 11.0)
MARGIN_IN = 0.75
LABELS = ("Wages, salaries, tips", "Taxable interest", "Ordinary dividends", "IRA distributions",
          "Pensions and annuities", "Social security benefits", "Capital gain or loss", "Other income",
          "Adjustments to income", "Standard deduction", "Qualified business income", "Total tax",
          "Federal income tax withheld", "Earned income credit", "Amount you owe", "Routing number")


@dataclass(frozen=True)
class Capture:
    dpi: int = 200
    skew: float = 0.0  # degrees, counter-clockwise
    noise: float = 4.0  # grey-level sigma
    blur: float = 0.0  # px
    jpeg: int | None = None  # quality, or None for a lossless page

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "Capture":
        return cls(dpi=int(rng.choice([150, 200, 300])), skew=float(rng.uniform(-2, 2)),
                   noise=float(rng.uniform(1, 8)), blur=float(rng.choice([0.0, 0.0, 0.6, 1.0])),
                   jpeg=int(rng.integers(60, 96)) if rng.random() < 0.6 else None)


def make_form(frames: np.ndarray, labels: list[str], rng: np.random.Generator, capture: Capture | None = None,
              empty_share: float = 0.2, fields: int | None = None) -> tuple[Image.Image, dict]:
    """One page (mode "L") and its truth; frames (uint8 [N, 28, 28], bright ink on black) are
    used in order, one per filled box, until they run out (the remaining boxes stay empty)."""
    capture = capture or Capture.draw(rng)
    dpi = capture.dpi
    width, height = int(LETTER_IN[0] * dpi), int(LETTER_IN[1] * dpi)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    font = _font(int(0.14 * dpi))
    margin = int(MARGIN_IN * dpi)
    draw.text((margin, margin // 2), "Form 1040-S  Synthetic return for testing", fill=0, font=_font(int(0.22 * dpi)))

    boxes, used = [], 0
    y = margin + int(0.3 * dpi)
    n_fields = fields or int(rng.integers(6, 13))
    field = 0
    for _ in range(n_fields):
        side = int(rng.uniform(0.26, 0.42) * dpi)
        box_w = int(side * rng.uniform(0.85, 1.2))
        line = int(rng.integers(1, 5 if dpi >= 200 else 3))
        rows = int(rng.choice([1, 1, 1, 2, 3]))
        n = int(rng.integers(3, 11))
        label_h = int(0.2 * dpi)
        if y + label_h + rows * side + line > height - margin:
            break
        draw.text((margin, y), str(rng.choice(LABELS)), fill=0, font=font)
        y += label_h
        x0 = margin + int(rng.uniform(0, 2.5) * dpi)
        x0 = min(x0, width - margin - n * box_w - line)
        for r in range(rows):
            field += 1
            top = y + r * side
            for i in range(n):
                left = x0 + i * box_w
                outer = (left, top, left + box_w + line, top + side + line)
                filled = rng.random() >= empty_share and used < len(frames)
                truth = {"field": field, "index": i + 1, "box_drawn": list(outer), "filled": bool(filled)}
                if filled:
                    size, strength = _write_digit(page, frames[used], outer, line, rng)
                    truth.update(source=labels[used], frame=used, digit_size=size, strength=strength)
                    used += 1
                boxes.append(truth)
        _draw_grid(draw, x0, y, n, rows, box_w, side, line)
        y += rows * side + line + int(rng.uniform(0.25, 0.6) * dpi)

    page = _capture(page, capture, rng)
    for b in boxes:
        b["box"] = list(_turned_bbox(b.pop("box_drawn"), capture.skew, (height, width)))
    return page, {"size": [width, height], "capture": capture.__dict__, "boxes": boxes, "frames_used": used}


def _font(size: int) -> ImageFont.ImageFont:
    try:
        from detectors.fonts import font_paths

        return ImageFont.truetype(str(font_paths()[0]), size)
    except Exception:  # no matplotlib fonts: Pillow's own bitmap font still prints a label
        return ImageFont.load_default()


def _draw_grid(draw: ImageDraw.ImageDraw, x0: int, y0: int, n: int, rows: int, box_w: int, side: int, line: int) -> None:
    x1 = x0 + n * box_w + line - 1
    for r in range(rows + 1):
        y = y0 + r * side
        draw.rectangle([x0, y, x1, y + line - 1], fill=0)
    for i in range(n + 1):
        x = x0 + i * box_w
        draw.rectangle([x, y0, x + line - 1, y0 + rows * side + line - 1], fill=0)


def _write_digit(page: Image.Image, frame: np.ndarray, outer: tuple[int, int, int, int], line: int,
                 rng: np.random.Generator) -> tuple[int, float]:
    """Write a frame into a box, in dark ink; returns (its size in px, its ink strength)."""
    left, top, right, bottom = outer
    inner_w, inner_h = right - left - 2 * line, bottom - top - 2 * line
    size = int(min(inner_w, inner_h) * rng.uniform(0.95, 1.2))  # the 28-px frame's 20-px digit ~ 70-85% of the box
    strength = float(rng.uniform(0.75, 1.0))
    cx = left + (right - left) / 2 + rng.uniform(-0.06, 0.06) * inner_w
    cy = top + (bottom - top) / 2 + rng.uniform(-0.06, 0.06) * inner_h
    _paste_ink(page, frame, size, strength, (int(round(cx - size / 2)), int(round(cy - size / 2))))
    return size, strength


def _paste_ink(page: Image.Image, frame: np.ndarray, size: int, strength: float, at: tuple[int, int]) -> None:
    ink = Image.fromarray(np.asarray(frame, dtype=np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
    dark = Image.fromarray((255 - np.asarray(ink, dtype=np.float64) * strength).clip(0, 255).astype(np.uint8))
    region = page.crop((at[0], at[1], at[0] + size, at[1] + size))
    page.paste(Image.fromarray(np.minimum(np.asarray(region), np.asarray(dark))), at)


def lone_scan(frame: np.ndarray, box: dict, capture: dict, rng: np.random.Generator) -> Image.Image:
    """The same character as a scan of its own: the box's size, ink and capture (noise, blur,
    JPEG), without the printed lines or the skew: what `forensics score` gets when a user cuts
    the box out by hand."""
    left, top, right, bottom = box["box_drawn"] if "box_drawn" in box else box["box"]
    size = box["digit_size"]
    side = max(right - left, bottom - top, size + 4)
    canvas = Image.new("L", (side, side), 255)
    _paste_ink(canvas, frame, size, box["strength"], ((side - size) // 2, (side - size) // 2))
    return _capture(canvas, Capture(**{**capture, "skew": 0.0}), rng)


def _capture(page: Image.Image, capture: Capture, rng: np.random.Generator) -> Image.Image:
    if capture.skew:
        page = page.rotate(capture.skew, resample=Image.Resampling.BILINEAR, fillcolor=255)
    if capture.blur:
        page = page.filter(ImageFilter.GaussianBlur(capture.blur))
    pixels = np.asarray(page, dtype=np.float64) + rng.normal(0, capture.noise, (page.height, page.width))
    page = Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))
    if capture.jpeg:
        buf = io.BytesIO()
        page.save(buf, format="JPEG", quality=capture.jpeg)
        page = Image.open(io.BytesIO(buf.getvalue())).convert("L")
    return page


def _turned_bbox(outer, degrees: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where a drawn box lands after Pillow turns the page counter-clockwise about its centre."""
    left, top, right, bottom = outer
    if not degrees:
        return tuple(int(v) for v in outer)
    height, width = shape
    cx, cy, a = width / 2, height / 2, math.radians(degrees)
    pts = [(x - cx, y - cy) for x, y in ((left, top), (right, top), (left, bottom), (right, bottom))]
    xs = [cx + dx * math.cos(a) + dy * math.sin(a) for dx, dy in pts]
    ys = [cy - dx * math.sin(a) + dy * math.cos(a) for dx, dy in pts]
    return (max(0, math.floor(min(xs))), max(0, math.floor(min(ys))), min(width, math.ceil(max(xs))),
            min(height, math.ceil(max(ys))))


def held_out_digits(n: int, seed: int, data_dir: str | None = None) -> np.ndarray:
    """n MNIST test digits from test[5000:], which no part of the detector was fitted on."""
    from forensics.data import load_dataset

    test = load_dataset("mnist", train=False, data_dir=data_dir, download=False).images[5000:, 0].numpy()
    return test[np.random.default_rng(seed).choice(len(test), n, replace=False)]


def mixed_digits(n: int, bundle, rng: np.random.Generator, data_dir: str | None = None) -> tuple[np.ndarray, list[str]]:
    """n frames in random order, half held-out human digits, half machine digits (the bundle's
    DCGAN and FC-GAN, and distorted font digits), with their source labels."""
    import torch

    from detectors.calibrate import sample_generator
    from detectors.fonts import font_forgeries

    half = n // 2
    third = half // 3
    machine = [sample_generator(bundle.models, name, third, torch.Generator().manual_seed(int(rng.integers(1 << 30))), 256)
               for name in ("dcgan", "fcgan")]
    machine.append(font_forgeries(half - 2 * third, rng))
    frames = np.concatenate([held_out_digits(n - half, int(rng.integers(1 << 30)), data_dir), *machine])
    labels = ["human"] * (n - half) + ["dcgan"] * third + ["fcgan"] * third + ["font"] * (half - 2 * third)
    order = rng.permutation(n)
    return frames[order], [labels[i] for i in order]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--machine", action="store_true",
                        help="fill half the boxes with machine digits (the shipped bundle's GANs, font forgeries)")
    parser.add_argument("--dpi", type=int, help="scan resolution (default: drawn per page from 150, 200, 300)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    if args.machine:
        from detectors.bundle import DEFAULT_BUNDLE, load_bundle

        frames, labels = mixed_digits(120 * args.pages, load_bundle(DEFAULT_BUNDLE), rng)
    else:
        frames = held_out_digits(120 * args.pages, args.seed)
        labels = ["human"] * len(frames)
    truth, used = {}, 0
    for p in range(args.pages):
        capture = Capture.draw(rng)
        if args.dpi:
            capture = Capture(**{**capture.__dict__, "dpi": args.dpi})
        page, t = make_form(frames[used:], labels[used:], rng, capture)
        used += t["frames_used"]
        # A JPEG capture is kept as the JPEG an office scanner would write (10x smaller than PNG).
        name = f"form_{p:03d}.{'jpg' if capture.jpeg else 'png'}"
        page.save(args.out / name, **({"quality": capture.jpeg} if capture.jpeg else {}))
        truth[name] = t
    (args.out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(f"{args.pages} pages and truth.json in {args.out}")


if __name__ == "__main__":
    main()
