"""Tables that never split an identifier, whatever the width (a CI log, a pipe, a
small terminal).

A table's columns are of two kinds: identifiers (a name, an entry-point target, a
version), which are never wrapped, and one free-text column (an error), which wraps
at word boundaries. When the identifiers and the free text's longest word do not fit
side by side, the table turns vertical: one block per row, one field per line, the
free text wrapped under it. Only an identifier longer than the whole width may then
run past it, still whole on its line.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

# Box-drawing overhead of a rich table: a border before each column and after the
# last, and one space of padding on each side of every cell.
_PER_COLUMN = 3
_EDGE = 1
# A word of free text longer than this is not an identifier anyone reads (a plugin's
# five-megabyte message): it is folded rather than printed as one line.
_LONGEST_WORD = 120
_INDENT = "  "


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell: its plain text and an optional rich style (a colour)."""

    text: str
    style: str = ""


@dataclass(frozen=True, slots=True)
class Column:
    """A column's header, and whether its text is free (wraps) or an identifier."""

    header: str
    free: bool = False


def print_rows(
    console: Console,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
) -> None:
    """Print ``rows`` as a table when it fits ``console.width``, else vertically."""
    if _table_width(columns, rows) <= console.width:
        _print_table(console, title, columns, rows)
    else:
        _print_blocks(console, title, columns, rows)


def _words(text: str) -> list[str]:
    return [
        word[i : i + _LONGEST_WORD]
        for word in text.split()
        for i in range(0, len(word), _LONGEST_WORD)
    ]


def _table_width(columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> int:
    width = _EDGE
    for index, column in enumerate(columns):
        texts = [row[index].text for row in rows]
        if column.free:
            # Narrowest it may be: its header and its longest word, whole.
            longest = max((len(w) for t in texts for w in _words(t)), default=0)
        else:
            longest = max((len(t) for t in texts), default=0)
        width += max(len(column.header), longest) + _PER_COLUMN
    return width


def _print_table(
    console: Console,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left")
    for column in columns:
        if column.free:
            # Takes what the identifiers leave; wraps at word boundaries.
            table.add_column(column.header, overflow="fold")
        else:
            table.add_column(column.header, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*(Text(_free(cell.text), style=cell.style) for cell in row))
    console.print(table)


def _free(text: str) -> str:
    # A word too long to be read is folded anyway; keep rich from meeting it whole.
    return " ".join(_words(text)) if len(text) > _LONGEST_WORD else text


def _print_blocks(
    console: Console,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
) -> None:
    from rich.text import Text

    console.print(Text(title), soft_wrap=True)
    label_width = max(len(column.header) for column in columns[1:]) + 1
    for row in rows:
        console.print()
        console.print(Text(row[0].text, style="bold"), soft_wrap=True)
        for column, cell in zip(columns[1:], row[1:], strict=True):
            if not cell.text:
                continue
            label = f"{_INDENT}{column.header.lower() + ':':<{label_width}} "
            for line in _field_lines(label, cell.text, column.free, console.width):
                text = Text(line[: len(label)])
                text.append(line[len(label) :], style=cell.style)
                console.print(text, soft_wrap=True)


def _field_lines(label: str, text: str, free: bool, width: int) -> list[str]:
    """The lines of one field: ``label`` then its value; free text wrapped at words
    under the label, an identifier whole (on a line of its own if it needs one)."""
    hang = " " * len(label)
    if not free:
        if len(label) + len(text) <= width:
            return [label + text]
        return [label.rstrip(), hang[: len(_INDENT) * 2] + text]
    lines = textwrap.wrap(
        " ".join(_words(text)),
        width=max(width - len(label), 20),
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [(label if i == 0 else hang) + line for i, line in enumerate(lines)]
