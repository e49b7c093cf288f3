"""The terminal report: the summary, the documents and the N most suspicious characters (rich)."""

from __future__ import annotations

import heapq
import os
import re
from typing import Iterable, Optional

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .records import Grouping, Tally, scope_text, suspicion_key
from .writers import clean_text

COLOURS = {"machine": "red", "uncertain": "yellow", "human": "green", "failed": "bright_black"}
MAX_FAILED_LISTED = 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(value) -> str:
    """Text safe to print on a terminal: control characters (an ANSI escape in a file name,
    say) and bidi overrides are shown as escapes, and rich markup is escaped."""
    text = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), clean_text(value))
    return escape(text)


class TerminalSink:
    """Keeps the top-N rows and the first failures while records stream past."""

    def __init__(self, top: int = 20):
        self.top = max(int(top), 0)
        self.heap: list = []  # (negated suspicion key, row) min-heap of the top N
        self.failed: list[tuple[str, str]] = []

    def add(self, record: dict, document: Optional[str], index: int) -> None:
        if record.get("status") != "ok":
            if len(self.failed) < MAX_FAILED_LISTED:
                self.failed.append((record.get("file") or "", record.get("error") or "unknown error"))
            return
        if not self.top:
            return
        key = suspicion_key(record, index)
        row = (record.get("file"), document, record.get("verdict"), record.get("p_machine"),
               record.get("p_machine_min"), record.get("p_machine_max"), record.get("stable"),
               record.get("digit"), list(record.get("top_signals") or []), record.get("unfamiliar") is True)
        item = (tuple(-x for x in key), row)  # the heap root is the least suspicious kept
        if len(self.heap) < self.top:
            heapq.heappush(self.heap, item)
        elif item[0] > self.heap[0][0]:
            heapq.heapreplace(self.heap, item)

    def finish(self, console: Console, meta: Optional[dict], tally: Tally) -> None:
        print_summary(console, meta, tally)
        rows = [row for _, row in sorted(self.heap, reverse=True)]
        if rows:
            table = Table(title=f"{len(rows)} most suspicious of {tally.counts['inputs'] - tally.counts['failed']} scored",
                          title_justify="left")
            for col, kw in (("#", {"justify": "right"}), ("file", {"overflow": "fold"}), ("verdict", {}),
                            ("p_machine", {"justify": "right"}), ("re-scans", {}), ("digit", {"justify": "right"}),
                            ("top signals", {"overflow": "fold"})):
                table.add_column(col, **kw)
            for i, (file, doc, verdict, p, lo, hi, stable, digit, top, unfamiliar) in enumerate(rows, start=1):
                colour = COLOURS.get(verdict, "yellow")
                spread = f"{lo:.2f}-{hi:.2f}" if _is_num(lo) and _is_num(hi) else ""
                if stable is False:
                    spread += " [yellow]flips[/]"
                in_folder = doc == (os.path.dirname(str(file)) or ".")  # already in the path
                name = printable(file) + (f"\n[dim]document {printable(doc)}[/]"
                                          if doc is not None and tally.show_documents and not in_folder else "")
                table.add_row(str(i), name, f"[{colour}]{printable(verdict)}[/]" + (" (unfamiliar)" if unfamiliar else ""),
                              f"{p:.3f}" if _is_num(p) else "", spread,
                              "" if digit is None else str(digit), printable(", ".join(top)))
            console.print(table)
        if self.failed:
            console.print(f"[red]{tally.counts['failed']} failed[/]"
                          + (f" (first {len(self.failed)})" if tally.counts["failed"] > len(self.failed) else "") + ":")
            for file, reason in self.failed:
                console.print(f"  [red]error:[/] {printable(file)}: {printable(reason)}", soft_wrap=True, highlight=False)


def print_summary(console: Console, meta: Optional[dict], tally: Tally) -> None:
    c = tally.counts
    console.print(f"[bold]{c['inputs']} inputs[/]: [red]{c['machine']} machine[/], [yellow]{c['uncertain']} uncertain[/], "
                  f"[green]{c['human']} human[/], [bright_black]{c['failed']} failed[/]"
                  + (f" ({c['unfamiliar']} of the uncertain unfamiliar: unlike anything the bundle knows)"
                     if c.get("unfamiliar") else ""), highlight=False)
    if meta:
        b = meta.get("bundle") or {}
        th = meta.get("thresholds") or {}
        if b:
            console.print(f"[dim]bundle {printable(b.get('path'))} ({printable(b.get('version') or 'unknown version')})[/]",
                          highlight=False)
            scope = scope_text(b)
            if scope:
                console.print(f"[dim]{printable(scope)}[/]", highlight=False)
        if th:
            console.print(f"[dim]thresholds: machine >= {th.get('t_machine')}, human <= {th.get('t_human')}; "
                          f"{printable(meta.get('generated') or '')}[/]", highlight=False)
    if tally.show_documents:
        docs = tally.sorted_documents()
        s = tally.summary()
        table = Table(title=f"{len(docs)} documents: {s['documents_machine']} machine, {s['documents_uncertain']} uncertain, "
                            f"{s['documents_human']} human", title_justify="left")
        for col, kw in (("document", {"overflow": "fold"}), ("verdict", {}), ("chars", {"justify": "right"}),
                        ("machine", {"justify": "right"}), ("uncertain", {"justify": "right"}),
                        ("failed", {"justify": "right"}), ("page LR", {"justify": "right"}),
                        ("max p", {"justify": "right"})):
            table.add_column(col, **kw)
        for d in docs[:MAX_FAILED_LISTED]:
            v, _, ev = d.judged()
            page_lr = "" if ev is None or ev.log10_lr is None else f"10^{ev.log10_lr:.2f}"
            table.add_row(printable(d.label), f"[{COLOURS[v]}]{v}[/]", str(d.characters), str(d.machine),
                          str(d.uncertain), str(d.failed), page_lr,
                          "" if d.p_machine_max is None else f"{d.p_machine_max:.3f}")
        if len(docs) > MAX_FAILED_LISTED:
            table.caption = f"first {MAX_FAILED_LISTED} of {len(docs)} documents; all are in the report files"
        console.print(table)


def print_report(records: Iterable[dict], console: Optional[Console] = None, top: int = 20,
                 meta: Optional[dict] = None, grouping: Optional[Grouping] = None) -> dict:
    """Consume ``records`` and print the summary and the ``top`` most suspicious rows; returns the counts."""
    console = console or Console()
    if grouping is None:
        g = (meta or {}).get("grouping") or {}
        grouping = Grouping(g.get("mode", "auto"), g.get("pattern"))
    tally, sink = Tally.of(grouping, meta), TerminalSink(top)
    for i, rec in enumerate(records):
        sink.add(rec, tally.add(rec), i)
    sink.finish(console, meta, tally)
    return tally.summary()


__all__ = ["print_report", "print_summary", "printable", "TerminalSink"]


def _is_num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
