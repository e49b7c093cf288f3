"""The HTML report: one self-contained file a reviewer opens in any browser, offline.

- Images are inlined as data-URI PNGs: the original scan's thumbnail (re-opened with
  ``forensics.imageload.load_scan``; a placeholder when it cannot be), the 28x28 frame the
  models saw (nearest-neighbour upscaled) and, when the records carry one (`--all-signals`),
  the PixelCNN surprise heatmap over it.
- The heatmap is red with alpha proportional to the per-pixel NLL, on one scale for the
  whole report: each overlay PNG is normalised to its own 99th-percentile NLL (``--h``),
  and CSS sets its opacity to ``--h / --hmax`` where ``--hmax`` is the largest such value
  in the report, so equal red means equal surprise in every row.
- Nothing loads from the network: a Content-Security-Policy meta tag forbids every fetch
  (``default-src 'none'``), images may only be ``data:`` URIs, and the one inline script
  is allowed by its SHA-256 hash, so an injected script could not run even if one got in.
- Every string from the inputs (file names, error reasons, the command line) is
  HTML-escaped; data for the script sits in data attributes and in a
  ``<script type="application/json">`` block with ``<``, ``>`` and ``&`` written as
  ``\\u003c``, ``\\u003e``, ``\\u0026``.
- The script sorts (click a column header) and filters by verdict, and honours the URL
  fragment: ``report.html#filter=machine&sort=p_machine-asc``. Sort keys: ``p_machine``,
  ``spread``, ``verdict``, ``digit``, ``file``, ``document``, ``input``; filters: ``all``,
  ``machine``, ``uncertain``, ``human``. Filtered-out rows get the ``hidden`` attribute
  and ``data-shown="0"``; ``<body data-ready="1">`` says the script has run.
- A print stylesheet drops the controls and keeps each row on one page.

Streaming: each record is rendered to HTML as it arrives and spooled to a temporary file;
only (sort key, offset) pairs stay in memory, and the page is assembled in suspicion order
at the end. Use ``write_html`` (atomic) or ``render_html`` (a string), or
``reports.write_reports`` to write the HTML, CSV and JSON from one pass over the records.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import os
import tempfile
from typing import IO, Any, Iterable, Optional

import numpy as np
from PIL import Image

from forensics.checkpoint import atomic_open
from forensics.pagefile import page_number
from forensics.record import character_name

from .page_view import PageCache, PageEntry, box_crop, page_svg
from .records import SCHEMA_VERSION, SEVERITY, DocumentStats, Tally, outcome, report_meta, scope_text, suspicion_key
from .writers import clean_text, json_safe

THUMB_PX = 64  # the original scan's thumbnail fits in THUMB_PX x THUMB_PX
THUMB_LEVELS = 16
FRAME_SCALE = 3  # 28x28 frames are drawn at 84x84 (nearest neighbour)
HEAT_RGB = (230, 20, 20)
HEAT_PERCENTILE = 99  # each overlay is normalised to this percentile of its own NLL
HEAT_LEVELS = 16
_HEAT_ALPHA = bytes(round(i * 255 / (HEAT_LEVELS - 1)) for i in range(HEAT_LEVELS))
SIGNAL_LABELS = {
    "dcgan_logit": "DCGAN critic",
    "fcgan_logit": "FC-GAN critic",
    "cnn_logit": "ScanCNN",
    "font_logit": "FontCNN",
    "either_cnn_logit": "ScanCNN or FontCNN",
    "pixelcnn_bpd": "PixelCNN NLL",
    "pixelcnn_best_class_bpd": "NLL, best digit",
    "complexity_bpd": "NLL - compressed",
    "compressed_bpd": "compressed size",
    "class_entropy_bits": "digit ambiguity",
    "peak_surprise_nats": "peak surprise",
}


def esc(value: Any) -> str:
    """Text for HTML content or a double-quoted attribute value."""
    return html.escape(clean_text(value), quote=True)


def json_for_script(value: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&``."""
    text = json.dumps(json_safe(value), allow_nan=False, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# --------------------------------------------------------------------------- images


def png_data_uri(img: Image.Image, **options: Any) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6, **options)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _frame_image(frame: Any) -> Optional[Image.Image]:
    if frame is None:
        return None
    try:
        arr = np.asarray(frame, dtype=np.float64)
        if arr.shape != (28, 28):
            arr = arr.reshape(28, 28)
        arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    except (ValueError, TypeError):
        return None
    return Image.fromarray(arr, mode="L")


def frame_data_uri(frame: Any) -> Optional[str]:
    """The 28x28 frame the models saw, upscaled FRAME_SCALE times with nearest neighbour."""
    img = _frame_image(frame)
    if img is None:
        return None
    return png_data_uri(img.resize((28 * FRAME_SCALE,) * 2, Image.NEAREST))


def heat_data_uri(heatmap: Any) -> tuple[Optional[str], float]:
    """A red overlay whose alpha is the per-pixel NLL over its own 99th percentile, and that
    percentile (nats), which CSS turns into the overlay's opacity relative to the report."""
    if heatmap is None:
        return None, 0.0
    try:
        nll = np.nan_to_num(np.asarray(heatmap, dtype=np.float64).reshape(28, 28), nan=0.0, posinf=0.0, neginf=0.0)
    except (ValueError, TypeError):
        return None, 0.0
    nll = np.clip(nll, 0.0, None)
    ref = float(np.percentile(nll, HEAT_PERCENTILE))
    if not ref > 0:
        ref = float(nll.max())
    if not ref > 0:
        return None, 0.0
    # A 4-bit palette PNG: 16 shades of the same red, from transparent to opaque. Ten
    # times faster to encode and half the size of RGBA, and 16 levels is all an eye reads.
    level = np.round(np.clip(nll / ref, 0.0, 1.0) * (HEAT_LEVELS - 1)).astype(np.uint8)
    img = Image.fromarray(np.kron(level, np.ones((FRAME_SCALE, FRAME_SCALE), dtype=np.uint8)), mode="P")
    img.putpalette(list(HEAT_RGB) * HEAT_LEVELS)
    return png_data_uri(img, bits=4, transparency=_HEAT_ALPHA), ref


def scan_thumbnail(path: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """(data URI, None) for the original scan, or (None, why not). Never raises for a bad file."""
    if not path:
        return None, "no file"
    from forensics.errors import InputError
    from forensics.imageload import load_scan

    try:
        return thumbnail_uri(load_scan(path)), None
    except InputError as exc:
        return None, exc.reason
    except Exception as exc:  # noqa: BLE001 - a preview must never cost the report
        return None, f"{type(exc).__name__}: {exc}"


def thumbnail_uri(img: Image.Image) -> str:
    img = img.copy()
    img.thumbnail((THUMB_PX, THUMB_PX), Image.LANCZOS)
    # 16 grey levels (a 4-bit PNG): paper noise stops costing bytes, and a 64 px preview
    # looks the same; the thumbnail is 2.5x smaller than 8-bit grey.
    level = (np.asarray(img.convert("L"), dtype=np.uint16) * (THUMB_LEVELS - 1) + 127) // 255
    thumb = Image.fromarray(level.astype(np.uint8), mode="P")
    thumb.putpalette([round(i * 255 / (THUMB_LEVELS - 1)) for i in range(THUMB_LEVELS) for _ in range(3)])
    return png_data_uri(thumb, bits=4)


# --------------------------------------------------------------------------- rows


def _num(value: Any, fmt: str = "{:.3f}") -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return fmt.format(value)
    return "–"


def _p_text(p: Any) -> str:
    """p_machine for people: 3 decimals, with '<0.001' / '>0.999' instead of a bare 0 or 1."""
    if isinstance(p, (int, float)) and not isinstance(p, bool) and math.isfinite(p):
        if 0 < p < 0.0005:
            return "&lt;0.001"
        if 0.9995 <= p < 1:
            return "&gt;0.999"
    return _num(p)


def _signal_value(v: Any) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v != 0 and abs(v) < 0.01:
        return f"{v:.1e}"
    return _num(v, "{:.3g}")


def _attr_num(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return repr(float(value))
    return ""


def _thumb_html(file: Optional[str], image: Optional[Image.Image] = None, why: Optional[str] = None) -> str:
    """The scan's preview: the file re-opened, or ``image`` (a box cut from its form page)."""
    uri, why = (scan_thumbnail(file) if image is None and why is None else
                (None, why) if image is None else (thumbnail_uri(image), None))
    if uri is None:
        return f'<div class="thumb missing" title="{esc(why)}">no preview</div>'
    return f'<img class="thumb" src="{uri}" alt="scan">'


def _signals_html(record: dict) -> str:
    signals = record.get("signals") or {}
    top = set(record.get("top_signals") or [])
    names = list(signals)  # the order scoring gave them
    parts = []
    for name in names:
        s = signals.get(name) or {}
        pct = s.get("human_percentile")
        pos = min(max(float(pct), 0.0), 100.0) if isinstance(pct, (int, float)) and math.isfinite(pct) else None
        odd = pos is not None and (pos <= 2.5 or pos >= 97.5)
        cls = "sig" + (" top" if name in top else "") + (" odd" if odd else "")
        label = SIGNAL_LABELS.get(name, name)
        bar = (f'<span class="pbar"><span class="dot" style="left:{pos:.1f}%"></span></span>'
               if pos is not None else '<span class="pbar"></span>')
        pct_text = "–" if pos is None else f"{pos:.0f}"
        parts.append(f'<div class="{cls}" title="{esc(name)}"><span class="sn">{esc(label)}</span>'
                     f'<span class="sv">{_signal_value(s.get("value"))}</span>{bar}'
                     f'<span class="sp">{pct_text}</span></div>')
    return "".join(parts) or '<span class="muted">no signals</span>'


def _p_html(record: dict) -> str:
    p, lo, hi = record.get("p_machine"), record.get("p_machine_min"), record.get("p_machine_max")
    out = [f'<div class="p">{_p_text(p)}</div>']
    if isinstance(record.get("log10_lr"), (int, float)):
        out.append(f'<div class="small lr" title="likelihood ratio, machine over human (ENFSI verbal scale)">'
                   f'LR 10^{record["log10_lr"]:.1f}: {esc(record.get("lr_verbal") or "")}</div>')
    if all(isinstance(v, (int, float)) and math.isfinite(v) for v in (p, lo, hi)):
        lo_c, hi_c, p_c = (min(max(float(v), 0.0), 1.0) * 100 for v in (lo, hi, p))
        out.append(f'<div class="range" title="p_machine over the image and its simulated re-scans">'
                   f'<span class="span" style="left:{lo_c:.1f}%;width:{max(hi_c - lo_c, 0.6):.1f}%"></span>'
                   f'<span class="tick" style="left:{p_c:.1f}%"></span></div>')
        out.append(f'<div class="muted small nowrap">re-scans {_num(lo, "{:.2f}")}–{_num(hi, "{:.2f}")}</div>')
    stable = record.get("stable")
    if stable is False:
        out.append('<div class="flip small">verdict flips under re-scan</div>')
    elif stable is None and record.get("rescanned") is False:
        why = ("uncertain whatever a re-scan says" if record.get("verdict") == "uncertain"
               else "too far from the threshold for a re-scan to change the verdict")
        out.append(f'<div class="muted small">not re-scanned: {why}</div>')
    elif stable is None:
        out.append('<div class="muted small">stability not checked</div>')
    return "".join(out)


def render_row(record: dict, document: Optional[str], index: int, rank: int = 0,
               thumb: Optional[str] = None) -> tuple[str, float]:
    """One scored character as a ``<tr>``; returns (html, heat reference in nats). ``thumb``:
    the scan preview's HTML when the caller made it (a box of a form page)."""
    file = record.get("file")
    verdict = record.get("verdict") if record.get("verdict") in ("machine", "uncertain", "human") else "uncertain"
    frame = frame_data_uri(record.get("preprocessed"))
    heat, ref = heat_data_uri(record.get("heatmap"))
    frame_img = (f'<img class="px" src="{frame}" alt="preprocessed 28x28" width="84" height="84">'
                 if frame else '<div class="px missing">–</div>')
    heat_img = (f'<div class="heat">{frame_img}<img class="px ov" src="{heat}" alt="surprise heatmap" '
                f'width="84" height="84" style="--h:{ref:.6g}"></div>' if heat and frame else frame_img)
    lo, hi = record.get("p_machine_min"), record.get("p_machine_max")
    spread = (hi - lo) if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) else None
    digit = record.get("digit")
    folder, name = os.path.split(clean_text(file))
    if record.get("page") and record.get("field") is not None:
        name += f" · field {record['field']} box {record['index']}"
        page_no = page_number(str(record["page"]), str(file))
        name += f" · page {page_no}" if page_no is not None else ""
    where = f'<div class="doc"><bdi>{esc(folder)}</bdi></div>' if folder else ""
    doc_html = (f'<div class="doc">document <bdi>{esc(document)}</bdi></div>'
                if document is not None and document != (folder or ".") else "")
    top = record.get("top_signals") or []
    top_html = (f'<div class="muted small why">driven by {esc(", ".join(SIGNAL_LABELS.get(t, t) for t in top))}</div>'
                if top else "")
    if record.get("unfamiliar") is True:  # novelty, not machine-likeness, made it uncertain
        top_html = ('<div class="small why unfamiliar" title="unlike every human and machine source the bundle '
                    'knows: never called machine on novelty alone">unfamiliar: unlike anything the bundle knows</div>'
                    + top_html.replace("driven by", "its signals lean on", 1))
    row = (
        f'<tr class="rec" data-i="{index}" data-p="{_attr_num(record.get("p_machine"))}" '
        f'data-spread="{_attr_num(spread)}" data-verdict="{verdict}" '
        f'data-digit="{digit if isinstance(digit, int) and not isinstance(digit, bool) else ""}" '
        f'data-file="{esc(file)}" data-doc="{esc(document) if document is not None else ""}" data-shown="1">'
        f'<td class="rank num">{rank}</td>'
        f'<td>{thumb or _thumb_html(file)}</td>'
        f'<td>{frame_img}</td>'
        f'<td class="heatcell">{heat_img}</td>'
        f'<td class="file" title="{esc(file)}"><bdi class="name">{esc(name)}</bdi>{where}{doc_html}</td>'
        f'<td><span class="badge {verdict}">{verdict}</span>{top_html}</td>'
        f'<td>{_p_html(record)}</td>'
        f'<td class="num digit">{esc(digit) if isinstance(digit, int) else "–"}</td>'
        f'<td class="signals">{_signals_html(record)}</td>'
        "</tr>\n"
    )
    return row, ref


def render_failed_row(record: dict, document: Optional[str], index: int, thumb: Optional[str] = None) -> str:
    file = record.get("file")
    doc = f'<bdi>{esc(document)}</bdi>' if document is not None else '<span class="muted">–</span>'
    return (f'<tr class="failed-row" data-i="{index}" data-file="{esc(file)}">'
            f'<td>{thumb or _thumb_html(file)}</td><td class="file"><bdi>{esc(character_name(record))}</bdi></td><td>{doc}</td>'
            f'<td class="reason">{esc(record.get("error") or "unknown error")}</td></tr>\n')


# --------------------------------------------------------------------------- the page


CSS = """
:root{--machine:#b3261e;--machine-bg:#fdecea;--uncertain:#8a5a00;--uncertain-bg:#fff4d6;--human:#1e6b34;
--human-bg:#e6f4ea;--failed:#57606a;--failed-bg:#eef0f2;--line:#d0d7de;--soft:#eaeef2;--ink:#1f2328;--muted:#59636e}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:#f6f8fa;color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1440px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:22px;margin:0 0 2px}
h2{font-size:17px;margin:28px 0 10px}
.sub{color:var(--muted);margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 16px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:8px 16px;min-width:112px}
.pagegrid{display:flex;flex-wrap:wrap;gap:14px}
.pagecard{margin:0;background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px;width:444px}
.pagecard[data-verdict=machine]{border-color:var(--machine)}
.pagecard figcaption{margin:0 0 6px;overflow-wrap:anywhere}
svg.pagethumb{display:block;max-width:100%;height:auto;border:1px solid var(--soft)}
.card .n{font-size:26px;font-weight:650;font-variant-numeric:tabular-nums;line-height:1.2}
.card .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card.machine .n{color:var(--machine)}.card.uncertain .n{color:var(--uncertain)}
.card.human .n{color:var(--human)}.card.failed .n{color:var(--failed)}
dl.meta{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:3px 16px;margin:0;background:#fff;
border:1px solid var(--line);border-radius:8px;padding:10px 16px}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;min-width:0;overflow-wrap:anywhere}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px;overflow-wrap:anywhere}
.controls{position:sticky;top:0;z-index:3;display:flex;flex-wrap:wrap;align-items:center;gap:8px;
padding:10px 0;background:#f6f8fa;border-bottom:1px solid var(--line)}
.controls .label{color:var(--muted);margin-right:2px}
.controls button{font:inherit;border:1px solid var(--line);background:#fff;color:var(--ink);border-radius:999px;padding:3px 12px;cursor:pointer}
.controls button:hover{border-color:#8c959f}
.controls button[aria-pressed="true"]{background:var(--ink);border-color:var(--ink);color:#fff}
.controls .count{margin-left:auto;color:var(--muted)}
.legend{display:inline-flex;align-items:center;gap:6px;color:var(--muted);margin-left:12px}
.legend .ramp{display:inline-block;width:90px;height:10px;border-radius:2px;border:1px solid var(--line);
background:linear-gradient(to right,#000,rgb(230,20,20))}
.tablewrap{overflow-x:auto;background:#fff;border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%}
th,td{padding:8px 10px;text-align:left;vertical-align:top;border-top:1px solid var(--soft)}
thead th{border-top:0;background:#f6f8fa;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);white-space:nowrap}
thead th.wrap{white-space:normal;min-width:5em}
th button{all:unset;cursor:pointer}
th button:focus-visible{outline:2px solid #0969da;outline-offset:2px}
th[aria-sort="ascending"] button::after{content:" \\25B2"}
th[aria-sort="descending"] button::after{content:" \\25BC"}
th[aria-sort] {color:var(--ink)}
.num{text-align:right;font-variant-numeric:tabular-nums}
td.rank{color:var(--muted)}
td.file{min-width:180px;max-width:340px;overflow-wrap:anywhere}
.name{font-weight:600}
.doc{color:var(--muted);font-size:12px;margin-top:2px}
.thumb{display:block;max-width:64px;max-height:64px;background:#fff;border:1px solid var(--line)}
.thumb.missing{width:64px;height:64px;display:flex;align-items:center;justify-content:center;text-align:center;
font-size:11px;color:var(--muted);background:repeating-linear-gradient(45deg,#f6f8fa,#f6f8fa 6px,#eef0f2 6px,#eef0f2 12px)}
.px{display:block;width:84px;height:84px;image-rendering:pixelated;image-rendering:crisp-edges;background:#000}
.px.missing{display:flex;align-items:center;justify-content:center;color:#fff}
.heat{position:relative;width:84px;height:84px}
.heat .px{position:absolute;top:0;left:0}
.heat .ov{background:transparent;opacity:calc(var(--h) / var(--hmax))}
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:650;text-transform:uppercase;letter-spacing:.03em;border:1px solid}
.badge.machine{color:var(--machine);background:var(--machine-bg);border-color:#f5c2bd}
.badge.uncertain{color:var(--uncertain);background:var(--uncertain-bg);border-color:#f0d890}
.badge.human{color:var(--human);background:var(--human-bg);border-color:#b5dcc0}
.badge.failed{color:var(--failed);background:var(--failed-bg);border-color:var(--line)}
.p{font-size:18px;font-weight:650;font-variant-numeric:tabular-nums}
.range{position:relative;width:120px;height:8px;margin:4px 0 2px;border-radius:4px;
background:linear-gradient(to right,var(--human-bg) 0,var(--human-bg) calc(var(--th) * 100%),var(--soft) calc(var(--th) * 100%),var(--soft) calc(var(--tm) * 100%),var(--machine-bg) calc(var(--tm) * 100%))}
.range .span{position:absolute;top:1px;bottom:1px;background:#8c959f;border-radius:3px}
.range .tick{position:absolute;top:-3px;width:2px;height:14px;margin-left:-1px;background:var(--ink)}
.small{font-size:12px}.nowrap{white-space:nowrap}.muted{color:var(--muted)}.flip,.unfamiliar{color:var(--uncertain);font-weight:600}
td.signals{min-width:300px}
.sig{display:grid;grid-template-columns:128px 58px 80px 24px;white-space:nowrap;align-items:center;column-gap:6px;font-size:12px;line-height:16px;color:var(--muted)}
.sig .sv,.sig .sp{text-align:right;font-variant-numeric:tabular-nums}
.sig.top{color:var(--ink);font-weight:650}
.sig.top .sn::before{content:"\\25B8 "}
.sig.odd .sp{color:var(--machine)}
.pbar{position:relative;height:6px;border-radius:3px;background:linear-gradient(to right,#f5c2bd 0,#f5c2bd 5%,var(--soft) 5%,var(--soft) 95%,#f5c2bd 95%)}
.pbar .dot{position:absolute;top:-2px;width:10px;height:10px;margin-left:-5px;border-radius:50%;background:#57606a;border:1px solid #fff}
.sig.top .pbar .dot{background:var(--ink)}
td.reason{color:var(--machine)}
#documents-table td:first-child{min-width:220px;max-width:360px}
#documents-table td:last-child{min-width:0;max-width:300px}
.empty{padding:14px 16px;color:var(--muted);background:#fff;border:1px solid var(--line);border-radius:8px}
footer{margin-top:28px;color:var(--muted);font-size:13px}
footer li{margin:2px 0}
tr[hidden]{display:none}
@media (max-width:1100px){td.signals{min-width:260px}.sig{grid-template-columns:104px 46px 60px 22px}}
@media print{
  @page{size:A4 landscape;margin:10mm}
  *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
  body{background:#fff;font-size:11px}
  main{max-width:none;padding:0}
  .controls,.noprint{display:none !important}
  .tablewrap{overflow:visible;border:0}
  thead{display:table-header-group}
  tr{break-inside:avoid;page-break-inside:avoid}
  th button::after{content:"" !important}
  h2{break-after:avoid;page-break-after:avoid}
  .card{padding:4px 10px}
  th,td{padding:4px 6px}
  .px,.heat{width:60px;height:60px}
  .thumb{max-width:52px;max-height:52px}
  td.file{min-width:0;max-width:200px}
  .why{display:none}
  td.signals{min-width:0}
  .sig{grid-template-columns:104px 50px 56px 20px;font-size:10px;line-height:13px}
  .range{width:90px}
  .p{font-size:15px}
  #documents-table td:first-child{min-width:0}
}
"""

SCRIPT = r"""(function () {
  "use strict";
  var table = document.getElementById("records");
  var tbody = table ? table.tBodies[0] : null;
  var SEVERITY = {machine: 0, uncertain: 1, human: 2};
  function num(name) {
    return function (r) { var v = parseFloat(r.getAttribute(name)); return isNaN(v) ? -Infinity : v; };
  }
  function text(name) { return function (r) { return r.getAttribute(name) || ""; }; }
  var KEYS = {
    p_machine: num("data-p"), spread: num("data-spread"), digit: num("data-digit"), input: num("data-i"),
    file: text("data-file"), document: text("data-doc"),
    verdict: function (r) { var s = SEVERITY[r.getAttribute("data-verdict")]; return s === undefined ? 3 : s; }
  };
  var FIRST_DIR = {p_machine: "desc", spread: "desc", digit: "asc", input: "asc", file: "asc", document: "asc", verdict: "asc"};
  var FILTERS = ["all", "machine", "uncertain", "human"];
  var state = {filter: "all", sort: "p_machine", dir: "desc"};

  function readHash() {
    var parts = window.location.hash.replace(/^#/, "").split("&");
    for (var i = 0; i < parts.length; i++) {
      var kv = parts[i].split("=");
      if (kv.length !== 2) { continue; }
      var key = kv[0], value = "";
      try { value = decodeURIComponent(kv[1]); } catch (e) { continue; }
      if (key === "filter" && FILTERS.indexOf(value) >= 0) { state.filter = value; }
      if (key === "sort") {
        var m = /^([a-z_]+)-(asc|desc)$/.exec(value);
        if (m && Object.prototype.hasOwnProperty.call(KEYS, m[1])) { state.sort = m[1]; state.dir = m[2]; }
      }
    }
  }

  function writeHash() {
    var h = "#filter=" + state.filter + "&sort=" + state.sort + "-" + state.dir;
    if (window.location.hash !== h && window.history && window.history.replaceState) {
      try { window.history.replaceState(null, "", h); } catch (e) { /* some file:// setups refuse */ }
    }
  }

  function apply() {
    if (!tbody) { document.body.setAttribute("data-ready", "1"); return; }
    var rows = Array.prototype.slice.call(tbody.rows);
    var key = KEYS[state.sort], sign = state.dir === "asc" ? 1 : -1;
    var decorated = rows.map(function (r) { return [key(r), +r.getAttribute("data-i"), r]; });
    decorated.sort(function (a, b) {
      var c;
      if (typeof a[0] === "string") { c = a[0].localeCompare(b[0]); } else { c = a[0] < b[0] ? -1 : (a[0] > b[0] ? 1 : 0); }
      return c !== 0 ? c * sign : a[1] - b[1];
    });
    var shown = 0, frag = document.createDocumentFragment();
    decorated.forEach(function (d) {
      var r = d[2], ok = state.filter === "all" || r.getAttribute("data-verdict") === state.filter;
      r.hidden = !ok;
      r.setAttribute("data-shown", ok ? "1" : "0");
      if (ok) { shown++; }
      frag.appendChild(r);
    });
    tbody.appendChild(frag);
    var heads = table.tHead ? table.tHead.querySelectorAll("th[data-key]") : [];
    Array.prototype.forEach.call(heads, function (th) {
      if (th.getAttribute("data-key") === state.sort) {
        th.setAttribute("aria-sort", state.dir === "asc" ? "ascending" : "descending");
      } else { th.removeAttribute("aria-sort"); }
    });
    Array.prototype.forEach.call(document.querySelectorAll("button[data-filter]"), function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-filter") === state.filter ? "true" : "false");
    });
    var count = document.getElementById("shown-count");
    if (count) { count.textContent = "showing " + shown + " of " + rows.length; }
    document.body.setAttribute("data-filter", state.filter);
    document.body.setAttribute("data-sort", state.sort + "-" + state.dir);
    document.body.setAttribute("data-shown", String(shown));
    document.body.setAttribute("data-ready", "1");
  }

  document.addEventListener("click", function (ev) {
    var el = ev.target;
    while (el && el !== document && !(el.getAttribute && (el.getAttribute("data-filter") !== null || el.getAttribute("data-sortby") !== null))) { el = el.parentNode; }
    if (!el || el === document) { return; }
    if (el.getAttribute("data-filter") !== null) {
      state.filter = el.getAttribute("data-filter");
    } else {
      var k = el.getAttribute("data-sortby");
      if (state.sort === k) { state.dir = state.dir === "asc" ? "desc" : "asc"; } else { state.sort = k; state.dir = FIRST_DIR[k] || "asc"; }
    }
    apply();
    writeHash();
  });
  window.addEventListener("hashchange", function () { readHash(); apply(); });
  readHash();
  apply();
})();"""

SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
CSP = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src '{SCRIPT_HASH}'; "
       "base-uri 'none'; form-action 'none'; object-src 'none'")


def _sort_th(label: str, key: str, extra: str = "") -> str:
    return f'<th data-key="{key}"{extra}><button type="button" data-sortby="{key}" title="sort by {label}">{label}</button></th>'


def _meta_html(meta: dict) -> str:
    b = meta.get("bundle") or {}
    th = meta.get("thresholds") or {}
    rows = []
    if b:
        version = " · ".join(x for x in (f"created {b['created']}" if b.get("created") else "",
                                          f"id {b['id']}" if b.get("id") else "",
                                          f"manifest v{b['manifest_version']}" if b.get("manifest_version") else "") if x)
        rows.append(("Model bundle", f"<code>{esc(b.get('path'))}</code>"))
        rows.append(("Bundle version", esc(version or "unknown")))
        if b.get("heldout_auroc") is not None:
            rows.append(("Held-out AUROC", esc(_num(b.get("heldout_auroc"), "{:.4f}"))))
        scope = scope_text(b)
        if scope:
            rows.append(("What it can show", esc(scope)))
    else:
        rows.append(("Model bundle", '<span class="muted">not recorded</span>'))
    if th:
        rows.append(("Thresholds", f"machine if p_machine &ge; {esc(_num(th.get('t_machine'), '{:.2f}'))}, "
                                   f"human if &le; {esc(_num(th.get('t_human'), '{:.2f}'))}, uncertain between"
                                   + ("; a verdict that flips under simulated re-scans is uncertain"
                                      if meta.get("stability") not in (None, False, "off") else "")))
    prior = meta.get("prior")
    if prior is not None:
        rows.append(("Prior", esc(f"{prior:g} of characters assumed forged: p_machine is the posterior at this prior "
                                  f"from each character's likelihood ratio"
                                  + (" (the calibration's own 50/50 mix)" if prior == 0.5 else ""))))
    grouping = meta.get("grouping") or {}
    if grouping:
        rows.append(("Documents", esc(grouping.get("description") or grouping.get("mode"))))
    rows.append(("Generated", esc(meta.get("generated") or "")))
    rows.append(("Tool", esc(meta.get("tool") or "")))
    rows.append(("Command", f"<code>{esc(meta.get('command') or '')}</code>"))
    return '<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _cards_html(summary: dict, show_documents: bool) -> str:
    cards = [("inputs", "Inputs", summary["inputs"]), ("machine", "Machine", summary["machine"]),
             ("uncertain", "Uncertain", summary["uncertain"]), ("human", "Human", summary["human"]),
             ("failed", "Failed", summary["failed"])]
    if show_documents:
        cards.append(("docs", "Documents", summary["documents"]))
        cards.append(("machine", "Documents flagged", summary["documents_machine"]))
    return '<div class="cards">' + "".join(
        f'<div class="card {cls}" data-count="{key_name(label)}"><div class="n">{n}</div><div class="l">{label}</div></div>'
        for cls, label, n in cards) + "</div>"


def key_name(label: str) -> str:
    return label.lower().replace(" ", "_")


def _documents_html(documents: list[DocumentStats], tally: Tally) -> str:
    rows = []
    for d in documents:
        p = _num(d.p_machine_max)
        verdict, reason, ev = d.judged()
        page_lr = f"10^{ev.log10_lr:.2f}" if ev is not None and ev.log10_lr is not None else "–"
        rows.append(
            f'<tr class="docrow" data-verdict="{verdict}"><td class="file"><bdi>{esc(d.label)}</bdi></td>'
            f'<td><span class="badge {verdict}">{verdict}</span><div class="small why">{esc(reason or "")}</div></td>'
            f'<td class="num">{d.characters}</td><td class="num">{d.machine}</td><td class="num">{d.uncertain}</td>'
            f'<td class="num">{d.human}</td><td class="num">{d.failed}</td><td class="num">{page_lr}</td>'
            f'<td class="num">{p}</td>'
            f'<td class="file small"><bdi>{esc(d.most_suspicious_file) if d.most_suspicious_file else "–"}</bdi></td></tr>')
    rule = ("Verdict: <b>machine</b> if the characters together reach the page threshold (page p_machine &ge; "
            f"{tally.page_model.t_page:.3f}, from the page LR: the mean of their log LRs and their number); otherwise "
            "<b>uncertain</b> if any character is machine, uncertain or could not be read; otherwise <b>human</b>."
            if tally.page_model is not None else
            "Verdict: <b>machine</b> if any character is machine; otherwise <b>uncertain</b> if any character is "
            "uncertain or could not be read; otherwise <b>human</b> (no page model: an older bundle, or records scored without one).")
    return ('<section id="documents"><h2>Documents</h2>'
            f'<p class="sub">One row per form. {rule}</p>'
            '<div class="tablewrap"><table id="documents-table"><thead><tr><th>Document</th><th>Verdict</th>'
            '<th class="num">Chars</th><th class="num">Machine</th><th class="num">Uncertain</th>'
            '<th class="num">Human</th><th class="num">Failed</th><th class="num">Page LR</th>'
            '<th class="num">Max p_machine</th>'
            '<th>Most suspicious</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table></div></section>")


def _page_evidence_html(reason: Optional[str], ev) -> str:
    parts = []
    if ev is not None and ev.log10_lr is not None:
        parts.append(f"page LR 10^{ev.log10_lr:.2f} from {ev.characters} boxes, page p_machine {_num(ev.p_machine)}")
    if reason:
        parts.append(reason)
    return f'<div class="small why">{esc("; ".join(parts))}</div>' if parts else ""


def _pages_html(pages: dict[str, PageEntry], tally: Tally) -> str:
    for e in pages.values():
        e.page_model, e.prior = tally.page_model, tally.prior
    ranked = sorted(pages.values(), key=lambda e: (SEVERITY.get(e.verdict, 1), -e.max_p))
    cards = []
    for rank, e in enumerate(ranked, start=1):
        c = e.counts
        verdict, reason, ev = e.judged()
        boxes = (f"{e.boxes_on_page} boxes found, {e.empty_on_page} empty (not scored)"
                 if e.boxes_on_page is not None else "")
        cards.append(
            f'<figure class="pagecard" data-verdict="{verdict}"><figcaption><span class="num">{rank}.</span> '
            f'<span class="badge {verdict}">{verdict}</span> <bdi class="file">{esc(e.page)}</bdi>'
            f'<div class="muted small">{c["machine"]} machine, {c["uncertain"]} uncertain, {c["human"]} human, '
            f'{c["failed"]} failed; {esc(boxes)}; max p_machine {_num(e.max_p if e.max_p >= 0 else None)}</div>'
            f'{_page_evidence_html(reason, ev)}</figcaption>{page_svg(e, esc)}</figure>')
    rule = ("A page is machine when its boxes together reach the page threshold "
            f"(page p_machine &ge; {tally.page_model.t_page:.3f}); a machine box alone makes it uncertain."
            if tally.page_model is not None else "A page's verdict follows the document rule: any machine box makes "
            "the page machine (no page model: an older bundle, or records scored without one).")
    return ('<section id="pages"><h2>Form pages, most suspicious first</h2>'
            '<p class="sub">Each scored box is outlined in its verdict\'s colour (hover for its p_machine). '
            + rule + '</p><div class="pagegrid">' + "".join(cards) + "</div></section>")


class HtmlSink:
    """Renders records as they come, spooling rows to a temporary file (see module docstring)."""

    def __init__(self):
        self.spool = tempfile.TemporaryFile(mode="w+b")
        self.rows: list[tuple[tuple, int, int]] = []  # (suspicion key, offset, length)
        self.failed: list[tuple[int, int]] = []
        self.hmax = 0.0
        self.pages: dict[str, PageEntry] = {}  # form pages, in input order
        self.page_cache = PageCache()

    def _put(self, text: str) -> tuple[int, int]:
        data = text.encode("utf-8")
        offset = self.spool.seek(0, os.SEEK_END)
        self.spool.write(data)
        return offset, len(data)

    def add(self, record: dict, document: Optional[str], index: int) -> None:
        thumb = self._page_record(record)
        if record.get("status") == "ok":
            row, ref = render_row(record, document, index, thumb=thumb)
            self.hmax = max(self.hmax, ref)
            self.rows.append((suspicion_key(record, index), *self._put(row)))
        else:
            self.failed.append(self._put(render_failed_row(record, document, index, thumb=thumb)))

    def _page_record(self, record: dict) -> Optional[str]:
        """Note a form page's record on its page; the box's preview HTML (None for a character scan)."""
        page = record.get("page")
        if not page or record.get("boxes_on_page") is None:
            return None
        entry = self.pages.get(page)
        image, why = self.page_cache.get(record)
        if entry is None:
            entry = self.pages[page] = PageEntry(page)
            entry.set_image(image, why)
        entry.add(record, outcome(record))
        if record.get("box") and image is not None:
            return _thumb_html(None, box_crop(image, record["box"]))
        return _thumb_html(None, None, why or "the whole page: no box")

    def _copy(self, stream: IO[str], offset: int, length: int, rank: Optional[int] = None) -> None:
        self.spool.seek(offset)
        text = self.spool.read(length).decode("utf-8")
        if rank is not None:
            text = text.replace('<td class="rank num">0</td>', f'<td class="rank num">{rank}</td>', 1)
        stream.write(text)

    def finish(self, stream: IO[str], meta: dict, tally: Tally) -> None:
        summary = tally.summary()
        show_docs = tally.show_documents
        th = meta.get("thresholds") or {}
        t_human, t_machine = th.get("t_human", 0.2), th.get("t_machine", 0.8)
        heat = self.hmax > 0  # records scored without the PixelCNN's signals carry no heatmap: no column
        hmax = self.hmax if heat else 1.0
        title = (f"Handwriting forensics report: {summary['machine']} machine, {summary['uncertain']} uncertain, "
                 f"{summary['human']} human, {summary['failed']} failed")
        w = stream.write
        w("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        w(f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n')
        w('<meta name="referrer" content="no-referrer">\n')
        w('<meta name="viewport" content="width=device-width, initial-scale=1">\n')
        w(f"<title>{esc(title)}</title>\n<style>{CSS}\n:root{{--hmax:{hmax:.6g};--th:{float(t_human):.4f};"
          f"--tm:{float(t_machine):.4f}}}\n{'' if heat else 'td.heatcell{display:none}'}</style>\n</head>\n")
        w('<body data-ready="0">\n<main>\n<header>\n<h1>Handwriting forensics report</h1>\n')
        w(f'<p class="sub">Which scanned characters were written by a person, and which were made by a machine. '
          f'Generated {esc(meta.get("generated") or "")}.</p>\n')
        w(_cards_html(summary, show_docs) + "\n" + _meta_html(meta) + "\n</header>\n")
        if show_docs:
            w(_documents_html(tally.sorted_documents(), tally) + "\n")
        if self.pages:
            w(_pages_html(self.pages, tally) + "\n")
        n = len(self.rows)
        w('<section id="characters"><h2>Characters, most suspicious first</h2>\n')
        w('<div class="controls noprint" role="toolbar" aria-label="filter"><span class="label">Show</span>')
        for key, label in (("all", "All"), ("machine", "Machine"), ("uncertain", "Uncertain"), ("human", "Human")):
            count = n if key == "all" else summary[key]
            w(f'<button type="button" data-filter="{key}" aria-pressed="{"true" if key == "all" else "false"}">'
              f'{label} <span class="muted">{count}</span></button>')
        if heat:
            w(f'<span class="legend" title="per-pixel negative log-likelihood under the PixelCNN">surprise '
              f'<span class="ramp"></span> 0 to {hmax:.2f} nats</span>')
        w(f'<span class="count" id="shown-count">showing {n} of {n}</span></div>\n')
        if n:
            w('<div class="tablewrap"><table id="records"><thead><tr>')
            w(_sort_th("#", "input", ' class="num"') + "<th>Scan</th><th>Model view</th>"
              + ("<th>Surprise</th>" if heat else ""))
            w(_sort_th("File", "file") + _sort_th("Verdict", "verdict")
              + _sort_th("p_machine", "p_machine", ' aria-sort="descending"') + _sort_th("digit", "digit", ' class="num wrap"'))
            w("<th>Signals <span class=\"muted\">(value, human percentile)</span></th></tr></thead>\n<tbody>\n")
            for rank, (_, offset, length) in enumerate(sorted(self.rows), start=1):
                self._copy(stream, offset, length, rank)
            w("</tbody></table></div>\n")
        else:
            w('<p class="empty">No input could be scored.</p>\n')
        w("</section>\n")
        w(f'<section id="failed"><h2>Inputs that failed ({len(self.failed)})</h2>\n')
        if self.failed:
            w('<div class="tablewrap"><table id="failed-table"><thead><tr><th>Scan</th><th>File</th><th>Document</th>'
              '<th>Reason</th></tr></thead><tbody>\n')
            for offset, length in self.failed:
                self._copy(stream, offset, length)
            w("</tbody></table></div>\n")
        else:
            w('<p class="empty">Every input was scored.</p>\n')
        w("</section>\n")
        w(_FOOTER)
        data = {"schema_version": SCHEMA_VERSION, "summary": summary, "meta": meta}
        w(f'</main>\n<script type="application/json" id="report-data">{json_for_script(data)}</script>\n')
        w(f"<script>{SCRIPT}</script>\n</body>\n</html>\n")

    def close(self) -> None:
        self.spool.close()


_FOOTER = """<footer><h2>How to read this report</h2><ul>
<li><b>p_machine</b> is the calibrated probability (50/50 prior) that a machine made the character. The bar shows the
human zone (green, up to the human threshold), the machine zone (red) and, in grey, the range of p_machine over the
image and its simulated print-and-scan copies; a verdict that changes under a re-scan is reported as uncertain.</li>
<li><b>Model view</b> is the 28x28 frame the models saw (ink bright). <b>Surprise</b> overlays, in red, how
unlikely the PixelCNN found each pixel (negative log-likelihood, one scale for the whole report).</li>
<li><b>Signals</b>: each value, and where it falls among human calibration images (percentile 0 to 100; the red ends
of the bar are the outer 5%). The signals that pushed hardest towards the verdict are in bold.</li>
<li>Sort by clicking a column header; the view is kept in the address (<code>#filter=machine&amp;sort=p_machine-desc</code>).</li>
</ul></footer>
"""


# --------------------------------------------------------------------------- entry points


def render_html(records: Iterable[dict], meta: Optional[dict] = None, grouping=None) -> str:
    """The whole report as one string (for small batches and tests; ``write_html`` streams)."""
    buf = io.StringIO()
    _render_to(buf, records, meta, grouping)
    return buf.getvalue()


def write_html(records: Iterable[dict], meta: Optional[dict], path: str | os.PathLike, grouping=None) -> dict:
    """Write the report to ``path`` atomically; returns the summary counts."""
    with atomic_open(path) as f:
        return _render_to(f, records, meta, grouping)


def _render_to(stream: IO[str], records: Iterable[dict], meta: Optional[dict], grouping) -> dict:
    from .records import Grouping

    meta = meta if meta is not None else report_meta()
    if grouping is None:
        g = meta.get("grouping") or {}
        grouping = Grouping(g.get("mode", "auto"), g.get("pattern"))
    tally = Tally.of(grouping, meta)
    sink = HtmlSink()
    try:
        for i, rec in enumerate(records):
            sink.add(rec, tally.add(rec), i)
        sink.finish(stream, meta, tally)
    finally:
        sink.close()
    return tally.summary()
