"""Scan -> MNIST frame: real MNIST digits survive being printed, scanned and preprocessed.

Run with FORENSICS_DATA pointing at a folder holding MNIST/raw (the round-trip tests skip
without it; the format tests draw their own digit and always run).
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from forensics.imageload import load_scan
from forensics.preprocess import CENTRE, preprocess_file, preprocess_image, to_tensor, to_uint8_batch

DIGITS = [0, 1, 2, 3, 4]  # MNIST test images 0-4: a 7, 2, 1, 0 and 4
FACTORS = [2, 3, 4, 5]
FORMATS = ["PNG", "JPEG"]

# Thresholds, on the 0-255 scale, from what a mismatch costs: shifting an MNIST digit by
# one pixel gives a mean absolute error of about 13 against itself, a different digit
# about 42. Resampling twice (up to scan size, back down to 20 px) softens edges, and the
# whole-pixel centring can land one pixel off when the centre of mass is near a half
# pixel. Measured: 1.4-14.3 per scan here, 7.0 on average (1-19 over 250 scans of 50
# digits in a wider trial). Under 20 is the same digit, at most a pixel off in place or
# size; the average must stay under 10, below a uniform one-pixel shift.
MAX_MAE_PER_IMAGE = 20.0
MAX_MAE_MEAN = 10.0


def load_mnist_test_digits() -> tuple[np.ndarray | None, str]:
    """The chosen MNIST test digits as uint8 (N, 28, 28), or None and why not."""
    root = os.environ.get("FORENSICS_DATA")
    if not root:
        return None, "FORENSICS_DATA is not set: point it at a folder that holds MNIST/raw"
    from torchvision.datasets import MNIST

    return MNIST(root=root, train=False, download=False).data[DIGITS].numpy(), ""


MNIST_DIGITS, NO_MNIST = load_mnist_test_digits()
needs_mnist = pytest.mark.skipif(MNIST_DIGITS is None, reason=NO_MNIST)


def render_scan(digit: np.ndarray, factor: int, seed: int) -> Image.Image:
    """An MNIST digit as a scanner would see it printed: bigger, dark on paper, noisy."""
    rng = np.random.default_rng(seed)
    size = (28 * factor, 28 * factor)
    ink = np.asarray(Image.fromarray(digit).resize(size, Image.Resampling.BICUBIC), np.float32) / 255
    paper = rng.uniform(200, 235)
    scan = paper - ink * (paper - 20) + rng.normal(0, 6, size)
    return Image.fromarray(np.clip(np.round(scan), 0, 255).astype(np.uint8))


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def centre_of_mass(frame: np.ndarray) -> tuple[float, float]:
    f = frame.astype(np.float64)
    rows = f.sum(axis=1) @ np.arange(f.shape[0]) / f.sum()
    cols = f.sum(axis=0) @ np.arange(f.shape[1]) / f.sum()
    return float(rows), float(cols)


def measure_round_trips() -> list:
    """Every (digit, factor, format) scan, written to disk and preprocessed from the file.

    Measured once, at collection, so that each test id shows its error."""
    if MNIST_DIGITS is None:
        return []
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, digit in zip(DIGITS, MNIST_DIGITS):
            for factor in FACTORS:
                scan = render_scan(digit, factor, seed=index * 10 + factor)
                for fmt in FORMATS:
                    path = Path(tmp) / f"digit{index}-x{factor}.{fmt.lower()}"
                    path.write_bytes(encode(scan, fmt, **({"quality": 85} if fmt == "JPEG" else {})))
                    error = mae(preprocess_file(path), digit)
                    cases.append(pytest.param(error, id=f"digit{index}-x{factor}-{fmt}-mae{error:.1f}"))
    return cases


ROUND_TRIPS = measure_round_trips()


@needs_mnist
@pytest.mark.parametrize("error", ROUND_TRIPS)
def test_scanned_mnist_digit_comes_back_close_to_the_original(error):
    assert error < MAX_MAE_PER_IMAGE, f"mean absolute error {error:.2f} (0-255 scale), limit {MAX_MAE_PER_IMAGE}"


@needs_mnist
def test_round_trip_error_on_average_is_below_a_one_pixel_shift():
    errors = [case.values[0] for case in ROUND_TRIPS]
    mean = float(np.mean(errors))
    print(f"round-trip MAE over {len(errors)} scans: mean {mean:.2f}, worst {max(errors):.2f}")
    assert mean < MAX_MAE_MEAN, f"mean MAE {mean:.2f} over {len(errors)} scans, limit {MAX_MAE_MEAN}"


@needs_mnist
def test_an_mnist_image_itself_passes_through_almost_unchanged():
    errors = [mae(preprocess_image(Image.fromarray(d)), d) for d in MNIST_DIGITS]
    assert max(errors) < 2.0, f"MAE per digit: {[round(e, 2) for e in errors]}"


# --------------------------------------------------------------------------- a drawn digit


def drawn_digit(width: int = 90, height: int = 120, paper: int = 225, ink: int = 30) -> Image.Image:
    """A '7' drawn dark on light paper, off centre, with grain: needs no data set.

    Its centre of mass in the 20 px box sits 0.2 and 0.1 px past a whole pixel. MNIST
    centring rounds a shift, so a digit whose centre sat at a half pixel could move by
    one pixel between two encodings of the same scan, and the comparisons would be noise.
    """
    img = Image.new("L", (width, height), paper)
    draw = ImageDraw.Draw(img)
    draw.line([(22, 22), (68, 25), (36, 98)], fill=ink, width=9, joint="curve")
    noise = np.random.default_rng(7).normal(0, 4, (height, width))
    return Image.fromarray(np.clip(np.asarray(img) + noise, 0, 255).astype(np.uint8))


def assert_sensible(frame: np.ndarray, reference: np.ndarray | None = None, limit: float = 12.0) -> None:
    assert frame.shape == (28, 28) and frame.dtype == np.uint8
    assert frame.max() >= 200, f"no solid ink: max {frame.max()}"
    assert 0.05 < (frame > 64).mean() < 0.5, f"ink covers {(frame > 64).mean():.0%} of the frame"
    row, col = centre_of_mass(frame)
    assert abs(row - CENTRE) <= 1 and abs(col - CENTRE) <= 1, f"centre of mass at ({row:.2f}, {col:.2f})"
    if reference is not None:
        error = mae(frame, reference)
        assert error < limit, f"MAE {error:.2f} against the plain grey scan, limit {limit}"


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return preprocess_image(drawn_digit())


def test_white_ink_on_black_gives_the_same_frame_as_black_on_white():
    scan = drawn_digit()
    negative = Image.fromarray(255 - np.asarray(scan))
    assert np.array_equal(preprocess_image(scan), preprocess_image(negative))


@needs_mnist
def test_white_on_black_mnist_style_scan_matches_dark_on_light():
    scan = render_scan(MNIST_DIGITS[0], 3, seed=1)
    negative = Image.fromarray(255 - np.asarray(scan))
    assert np.array_equal(preprocess_image(scan), preprocess_image(negative))


@pytest.mark.parametrize("degrees", [-3, -2, 2, 3])
def test_slightly_rotated_scan_is_still_centred(degrees):
    rotated = drawn_digit().rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=225)
    frame = preprocess_image(rotated)
    assert_sensible(frame)  # includes: centre of mass within 1 px of the centre


def test_specks_do_not_stretch_the_bounding_box(reference):
    scan = np.asarray(drawn_digit()).copy()
    scan[2:4, 2:4] = 0  # dust in the corners
    scan[-4:-2, -4:-2] = 0
    frame = preprocess_image(Image.fromarray(scan))
    assert mae(frame, reference) < 1.0


def test_tensor_helpers(reference):
    tensor = to_tensor(reference)
    assert tensor.shape == (1, 28, 28) and tensor.dtype == torch.float32
    assert 0.0 <= float(tensor.min()) and float(tensor.max()) <= 1.0
    batch = to_uint8_batch([reference, reference])
    assert batch.shape == (2, 1, 28, 28) and batch.dtype == torch.uint8


# --------------------------------------------------------------------------- file formats


def write(path: Path, img: Image.Image, fmt: str, **options) -> Path:
    path.write_bytes(encode(img, fmt, **options))
    return path


def test_rgb_scan(tmp_path, reference):
    grey = np.asarray(drawn_digit(), np.float32) / 255
    # blue ballpoint on cream paper
    rgb = np.stack([grey * 250, grey * 240, 80 + grey * 130], axis=-1)
    path = write(tmp_path / "rgb.png", Image.fromarray(rgb.round().astype(np.uint8)), "PNG")
    assert_sensible(preprocess_file(path), reference)


@pytest.mark.parametrize("ink_colour", [(0, 0, 0), (255, 255, 255)], ids=["black-ink", "white-ink"])
def test_rgba_ink_only_in_alpha_on_transparent_background(tmp_path, reference, ink_colour):
    # Opacity is the drawing; the colour is flat. White ink over white paper would vanish
    # if we only composited: it must come out dark all the same.
    alpha = 255 - np.asarray(drawn_digit(paper=255, ink=0))
    rgba = np.dstack([np.full(alpha.shape + (3,), ink_colour, np.uint8), alpha])
    path = write(tmp_path / "alpha.png", Image.fromarray(rgba), "PNG")
    assert load_scan(path).getpixel((45, 25)) < 60, "the stroke must be dark on the loaded page"
    assert_sensible(preprocess_file(path), reference)


def test_rgba_opaque_scan_with_transparent_margin(tmp_path, reference):
    rgba = drawn_digit().convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 255))
    ImageDraw.Draw(rgba).rectangle([0, 0, 89, 5], fill=(0, 0, 0, 0))  # a transparent strip
    path = write(tmp_path / "margin.png", rgba, "PNG")
    assert_sensible(preprocess_file(path), reference)


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path, reference):
    wide = np.asarray(drawn_digit(), np.uint16) * 257  # 0..65535
    img = Image.fromarray(wide)
    assert img.mode.startswith("I;16")
    path = write(tmp_path / "deep.png", img, "PNG")
    assert Image.open(path).mode.startswith("I"), "the test must really write 16-bit data"
    loaded = load_scan(path)
    assert np.array_equal(np.asarray(loaded), np.asarray(drawn_digit()))
    assert_sensible(preprocess_file(path), reference, limit=0.5)


def test_cmyk_jpeg(tmp_path, reference):
    path = write(tmp_path / "cmyk.jpg", drawn_digit().convert("CMYK"), "JPEG", quality=95)
    assert Image.open(path).mode == "CMYK"
    assert_sensible(preprocess_file(path), reference)


def test_palette_with_transparency(tmp_path, reference):
    scan = drawn_digit()
    palette = scan.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    index = palette.getpixel((2, 2))  # the paper's palette entry becomes see-through
    path = write(tmp_path / "palette.png", palette, "PNG", transparency=index)
    assert "transparency" in Image.open(path).info
    assert_sensible(preprocess_file(path), reference)


def test_animated_gif_uses_the_first_frame(tmp_path, reference):
    first = drawn_digit()
    other = Image.new("L", first.size, 225)
    ImageDraw.Draw(other).ellipse([10, 10, 80, 110], outline=30, width=9)  # a '0'
    path = tmp_path / "animated.gif"
    first.save(path, save_all=True, append_images=[other], duration=100, loop=0)
    assert Image.open(path).n_frames == 2
    assert_sensible(preprocess_file(path), reference)
    assert mae(preprocess_file(path), preprocess_image(other)) > 20, "must not be the second frame"


def test_exif_rotated_jpeg_comes_out_upright(tmp_path, reference):
    upright = drawn_digit()  # 90 wide, 120 high
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a phone held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = write(tmp_path / "phone.jpg", stored, "JPEG", quality=95, exif=exif.tobytes())
    assert load_scan(path).size == upright.size
    assert_sensible(preprocess_file(path), reference)


def test_one_bit_scan(tmp_path, reference):
    path = write(tmp_path / "fax.png", drawn_digit().convert("1", dither=Image.Dither.NONE), "PNG")
    assert Image.open(path).mode == "1"
    assert_sensible(preprocess_file(path), reference, limit=20.0)


def _paper_scan(digit: np.ndarray, light_falloff: float = 0.0, box: int = 0) -> Image.Image:
    """render_scan's scan, lit unevenly from left to right and/or inside a printed box."""
    scan = np.asarray(render_scan(digit, 3, seed=1), dtype=np.float64)
    scan = scan * (1 - light_falloff * np.linspace(0, 1, scan.shape[1]))[None, :]
    if box:
        pad = 12
        page = np.full((scan.shape[0] + 2 * pad, scan.shape[1] + 2 * pad), np.median(scan))
        page[pad:-pad, pad:-pad] = scan
        page[:box], page[-box:], page[:, :box], page[:, -box:] = 60, 60, 60, 60  # the box's lines
        scan = page
    return Image.fromarray(np.clip(np.round(scan), 0, 255).astype(np.uint8))


@needs_mnist
@pytest.mark.parametrize("box", [1, 3])
def test_printed_box_lines_at_the_edges_are_cut_off(box):
    digit = MNIST_DIGITS[0]
    assert mae(preprocess_image(_paper_scan(digit, box=box)), digit) < MAX_MAE_PER_IMAGE
    assert mae(preprocess_image(_paper_scan(digit)), digit) < MAX_MAE_PER_IMAGE


@needs_mnist
def test_a_bar_inside_the_scan_is_not_taken_for_a_box_line():
    digit = MNIST_DIGITS[0]  # a 7: its top bar is ink across much of a row, but not the scan's edge
    plain = preprocess_image(_paper_scan(digit))
    assert np.array_equal(plain, preprocess_image(render_scan(digit, 3, seed=1)))


@needs_mnist
def test_light_falling_off_across_a_phone_photo_still_finds_the_ink():
    digit = MNIST_DIGITS[1]
    frame = preprocess_image(_paper_scan(digit, light_falloff=0.35))
    assert mae(frame, digit) < MAX_MAE_PER_IMAGE


def test_a_zero_cropped_so_tight_its_ring_touches_every_edge_is_still_found():
    # As a form reader stores a character: ink on much of the border, whose spread alone would
    # read as paper noise louder than the ink.
    yy, xx = np.mgrid[0:48, 0:48]
    ring = np.exp(-(((np.hypot(yy - 23.5, xx - 23.5) / 26 - 0.8) / 0.16) ** 2))
    frame = preprocess_image(Image.fromarray(np.clip(255 - 235 * ring, 0, 255).astype(np.uint8)))
    assert frame[12:16, 12:16].max() < 60  # the hole stays paper
    quadrants = [frame[:14, :14], frame[:14, 14:], frame[14:, :14], frame[14:, 14:]]
    assert all(q.max() > 200 for q in quadrants)  # and the ring is ink all round
