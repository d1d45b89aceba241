"""Reports: tables and figures once, shown twice (Rich in the terminal, one self-contained HTML file).

Nothing here knows about corpora or models. A caller builds :class:`Section` objects holding
:class:`Table` rows and PNG paths; :func:`write_html_report` embeds everything (images as base64) so the
file can be mailed, attached to an MLflow run or opened offline, and :func:`rich_table` prints the same
tables in a console.
"""

from __future__ import annotations

import base64
import html
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from callqa.data.files import atomic_open

log = logging.getLogger(__name__)

MISSING = "—"


@dataclass
class Table:
    """A titled grid of cells; cells may be numbers, strings or None (shown as a dash)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""


@dataclass
class Section:
    """One heading of a report: paragraphs of text, tables and figures, in that order."""

    title: str
    text: str | list[str] = ""
    tables: list[Table] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)


def format_cell(value: Any) -> str:
    """Numbers to four significant digits, missing or undefined values to a dash, so NaN never leaks."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return MISSING if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def rich_table(table: Table) -> RichTable:
    """The same table for a terminal; numeric-looking columns are right-aligned by their first value."""
    out = RichTable(title=table.title, title_justify="left")
    first = table.rows[0] if table.rows else []
    for i, name in enumerate(table.columns):
        numeric = i < len(first) and isinstance(first[i], int | float) and not isinstance(first[i], bool)
        out.add_column(name, justify="right" if numeric else "left")
    for row in table.rows:
        out.add_row(*(format_cell(v) for v in row))
    return out


def print_table(console: Console, table: Table) -> None:
    """A table and its note below it (a Rich caption would wrap the note to the table's width)."""
    console.print(rich_table(table))
    if table.note:
        console.print(f"[dim]{escape(table.note)}[/dim]")


def _paragraphs(text: str | list[str]) -> list[str]:
    items = [text] if isinstance(text, str) else list(text)
    return [f"<p>{html.escape(t)}</p>" for t in items if t]


def table_html(table: Table) -> str:
    """An escaped HTML table; every cell and header goes through html.escape."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_cell(v))}</td>" for v in row) + "</tr>"
        for row in table.rows
    )
    caption = f"<caption>{html.escape(table.title)}</caption>" if table.title else ""
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def image_html(path: str | os.PathLike[str]) -> str:
    """A PNG embedded as a data URI, so the report is one file; its name doubles as the caption."""
    path = Path(path)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    alt = html.escape(path.stem.replace("_", " "))
    return (
        f'<figure><img alt="{alt}" src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>'
    )


def section_html(section: Section) -> str:
    parts = [f"<section><h2>{html.escape(section.title)}</h2>"]
    parts += _paragraphs(section.text)
    parts += [table_html(t) for t in section.tables]
    parts += [image_html(p) for p in section.images]
    parts.append("</section>")
    return "\n".join(parts)


_STYLE = """
body { font-family: system-ui, "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif;
       margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } img { max-width: 100%; }
figcaption, .note, .meta { color: #666; font-size: 0.85em; }
"""


def render_html(
    title: str, sections: Sequence[Section], images: Sequence[str | os.PathLike[str]] = ()
) -> str:
    """The whole document as a string; ``images`` not attached to a section go under a final "Figures"."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [section_html(s) for s in sections]
    if images:
        body.append(section_html(Section(title="Figures", images=[Path(p) for p in images])))
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="meta">generated {stamp}</p>\n'
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_html_report(
    title: str,
    sections: Sequence[Section],
    images: Sequence[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
) -> Path:
    """Write one self-contained HTML report atomically and return its path."""
    out_path = Path(out_path)
    document = render_html(title, sections, images)
    with atomic_open(out_path) as fh:
        fh.write(document)
    log.info("wrote report %s (%d sections)", out_path, len(sections))
    return out_path
