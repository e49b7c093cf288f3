"""Open one scan file as an 8-bit grey image, or say in one line why it cannot be used.

Every problem with a file (missing, a folder, unreadable, empty, not an image, truncated,
absurdly large) becomes an ``InputError(path, reason)``; no traceback reaches the user.
"""

from __future__ import annotations

import contextlib
import os
import stat
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import InputError
from .inputs import describe_os_error

# Far above any scan of a form (an A4 page at 600 dpi is 35 MP) and far below what
# exhausts memory once decoded (a 40 MP RGBA image is 160 MB).
DEFAULT_MAX_PIXELS = 40_000_000

# Raster formats scanners and phones write (JPEG includes phones' MPO). Others are refused
# on purpose: Pillow hands EPS to Ghostscript, an external program we should not run on
# untrusted files.
SCAN_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "DIB", "GIF", "WEBP", "PPM", "TGA", "PCX", "JPEG2000")

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# Visible pixels whose grey levels span less than this are "one flat colour" (see _alpha_is_the_ink).
_FLAT_COLOUR_SPAN = 32


def load_scan(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS, frame: int = 0) -> Image.Image:
    """Open a scan as a mode "L" image: 0 black, 255 white, upright, over white paper.

    - EXIF orientation is applied, so phone photos come out upright.
    - Colour (RGB, CMYK, palette) becomes luma; 16-bit grey is scaled to 8 bits, not clipped.
    - Transparency is composited over white paper; if the colour channels are one flat
      colour the shape lives in alpha alone, and opaque becomes dark ink.
    - An animated image (GIF, APNG, multi-page TIFF) gives its first frame: that is the
      frame viewers show as the image, and one file is one character; ``frame`` picks
      another (a page of a multi-page TIFF, see forensics.pagefile).
    - The pixel count is checked from the header, before any decoding; larger than
      ``max_pixels`` is refused as a possible decompression bomb. Pillow's own limit
      (``Image.MAX_IMAGE_PIXELS``) still applies on top of ``max_pixels``.
    - The whole image is decoded here, so truncated data fails now, even if some other
      code set ``ImageFile.LOAD_TRUNCATED_IMAGES``.
    """
    path = Path(path)
    _check_regular_nonempty_file(path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise InputError(str(path), describe_os_error(path, exc)) from None
    with f:
        return _decode(f, path, max_pixels, frame)


def _check_regular_nonempty_file(path: Path) -> None:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(str(path), describe_os_error(path, exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(str(path), "is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(str(path), "not a regular file (a pipe, socket or device)")
    if st.st_size == 0:
        raise InputError(str(path), "empty file (0 bytes)")


def header(path: str | os.PathLike) -> tuple[int, tuple[int, int]]:
    """(pages, (width, height)) from an image file's header, nothing decoded: the frames of a
    TIFF are its pages, an animation's frames are one picture; (1, (0, 0)) when it cannot tell
    (load_scan will say what is wrong with the file)."""
    try:
        with Image.open(path, formats=_available_formats()) as img:
            pages = int(getattr(img, "n_frames", 1)) if img.format == "TIFF" else 1
            return pages, img.size
    except Exception:
        return 1, (0, 0)


def _decode(f, path: Path, max_pixels: int, frame: int = 0) -> Image.Image:
    try:
        with _strict_decoding():
            img = Image.open(f, formats=_available_formats())
            _check_size(img, path, max_pixels)
            img.seek(frame)  # the first frame of an animation, unless a page is asked for
            _check_size(img, path, max_pixels)
            img.load()
            img = _upright(img)
            return to_grey(img)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(str(path), "not an image (or not a supported image format)") from None
    except Image.DecompressionBombError:
        raise InputError(str(path), _bomb_reason(2 * (Image.MAX_IMAGE_PIXELS or 0))) from None
    except Image.DecompressionBombWarning:
        raise InputError(str(path), _bomb_reason(Image.MAX_IMAGE_PIXELS or 0)) from None
    except Exception as exc:  # Pillow plugins raise many types for damaged data
        raise InputError(str(path), _damage_reason(exc)) from None


def _available_formats() -> tuple[str, ...]:
    # Image.open fails with KeyError on a format this Pillow build lacks (WEBP, JPEG2000).
    Image.init()
    return tuple(name for name in SCAN_FORMATS if name in Image.OPEN)


@contextlib.contextmanager
def _strict_decoding() -> Iterator[None]:
    # LOAD_TRUNCATED_IMAGES is a process-wide switch in Pillow; force it off while we
    # decode so a truncated scan fails instead of coming back half grey. Setting a global
    # is not thread-safe: decode scans in one thread, or in worker processes.
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _check_size(img: Image.Image, path: Path, max_pixels: int) -> None:
    width, height = img.size
    if width <= 0 or height <= 0:
        raise InputError(str(path), f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise InputError(str(path), _bomb_reason(max_pixels, f"{width}x{height} pixels"))


def _bomb_reason(limit: int, claimed: str = "") -> str:
    size = f"{claimed}, " if claimed else ""
    return f"image too large ({size}over {limit / 1e6:.0f} megapixels): refused as a possible decompression bomb"


def _damage_reason(exc: Exception) -> str:
    detail = (str(exc).splitlines() or [type(exc).__name__])[0]
    if "truncated" in detail.lower():
        return f"truncated image ({detail})"
    return f"damaged or unreadable image data ({detail})"


def _upright(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # a malformed EXIF block should not cost an otherwise good scan
        return img


def to_grey(img: Image.Image) -> Image.Image:
    """Any Pillow image as mode "L", dark ink on light paper kept as it is."""
    if img.mode in _SIXTEEN_BIT_MODES:
        return _integer_to_grey(img)
    if img.mode == "F":
        return _float_to_grey(img)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        return _flatten_over_white(img.convert("RGBA"))
    if img.mode == "L":
        return img
    if img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    return img.convert("L")  # RGB, P, 1


def _integer_to_grey(img: Image.Image) -> Image.Image:
    # 16-bit data spans 0..65535; dividing by 257 maps that onto 0..255 exactly, where
    # Pillow's convert("L") would clip everything above 255 to white.
    values = np.asarray(img).astype(np.float64)
    grey = np.clip(values, 0, 65535) / 257.0
    return Image.fromarray(np.round(grey).astype(np.uint8))


def _float_to_grey(img: Image.Image) -> Image.Image:
    values = np.nan_to_num(np.asarray(img, dtype=np.float64))
    scale = 255.0 if values.max() <= 1.0 else 1.0  # float images come as 0..1 or 0..255
    return Image.fromarray(np.round(np.clip(values * scale, 0, 255)).astype(np.uint8))


def _flatten_over_white(rgba: Image.Image) -> Image.Image:
    pixels = np.asarray(rgba, dtype=np.float64)
    grey = pixels[..., :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma, as convert("L")
    alpha = pixels[..., 3] / 255.0
    if _alpha_is_the_ink(grey, alpha):
        flat = 255.0 * (1.0 - alpha)  # opaque = ink = dark
    else:
        flat = grey * alpha + 255.0 * (1.0 - alpha)
    return Image.fromarray(np.round(flat).astype(np.uint8))


def _alpha_is_the_ink(grey: np.ndarray, alpha: np.ndarray) -> bool:
    """True when every visible pixel is the same colour, so the picture is the alpha mask.

    White ink on a transparent background composited over white paper would vanish;
    such an image means 'ink where opaque', whatever colour the ink was stored in.
    """
    if alpha.min() == alpha.max():
        return False  # no shape in alpha: fully opaque (or fully transparent)
    visible = grey[alpha >= 0.5]
    if visible.size == 0:
        return False
    low, high = np.percentile(visible, [1, 99])
    return high - low < _FLAT_COLOUR_SPAN
