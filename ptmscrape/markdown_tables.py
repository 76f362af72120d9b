"""Pipe tables in hand-written markdown (GitHub style), read tolerantly. Pure functions, no I/O.

Hand-edited READMEs bend the format: cells padded any which way, a leading space before the
header, rows without the trailing ``|``, rows with fewer cells than the header (GitHub shows the
missing ones empty), tables kept inside ``<!-- -->`` comments. :func:`parse_tables` reads them
all as GitHub renders them, skips tables in comments and fenced code, and notes rows with more
cells than the header (GitHub drops the extra cells; so do we) in ``Table.problems``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_DELIMITER_CELL = re.compile(r"^\s*:?-+:?\s*$")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# An ATX heading; its text less a closing run of #s and spaces is cut in code (parse_tables): as a
# lazy group followed by "\s*#*\s*$", a line of spaces between two words took cubic time.
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*)$")
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
# [text](target "title"); the text may hold one level of brackets, e.g. an image ![alt](src).
# (The nested brackets, and a tag below, end at the next opening one: scanned to the end of the
# cell from each "[" or "<" of a run without a closing one, they took quadratic time.)
_LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^()\s>]*(?:\([^()\s]*\)[^()\s>]*)*)>?"
                   r"(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_TAG = re.compile(r"<[^<>]*>")
_BREAK = re.compile(r"<br\s*/?>", re.I)


@dataclass(frozen=True)
class Link:
    text: str  # the link text, as plain text
    target: str


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]  # each as wide as the header
    line: int  # 1-based line of the header row
    row_lines: tuple[int, ...] = ()
    heading: str | None = None  # text of the nearest heading above the table, as written
    problems: tuple[str, ...] = field(default=())

    @property
    def keys(self) -> tuple[str, ...]:
        """Column names for :meth:`records`: the header cells, repeats made unique (``X (2)``)."""
        seen: dict[str, int] = {}
        out = []
        for name in self.header:
            seen[name] = seen.get(name, 0) + 1
            out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
        return tuple(out)

    def records(self) -> list[dict[str, str]]:
        """Rows as dicts keyed by header cell (as written, stripped)."""
        keys = self.keys
        return [dict(zip(keys, row, strict=True)) for row in self.rows]


def split_row(line: str) -> list[str]:
    """Cells of one table line: outer pipes optional, ``\\|`` is a literal pipe, cells stripped."""
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _UNESCAPED_PIPE.split(text)]


def is_delimiter_row(line: str) -> bool:
    """``|---|:--|:-:|`` (the line under a table's header)."""
    if "-" not in line:
        return False
    return all(_DELIMITER_CELL.match(cell) for cell in split_row(line))


def _has_pipe(line: str) -> bool:
    return bool(_UNESCAPED_PIPE.search(line))


def _blank_comments(markdown: str) -> str:
    """HTML comments replaced by as many newlines, so line numbers stay right."""
    return _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), markdown)


def _code_lines(lines: list[str]) -> list[bool]:
    """For each line: is it part of a fenced code block (fences included)?"""
    mask, fence = [], None
    for line in lines:
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            mask.append(True)
        elif fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            mask.append(True)
        else:
            mask.append(False)
    return mask


def parse_tables(markdown: str) -> list[Table]:
    """Every pipe table of ``markdown``, in order (none from comments or fenced code)."""
    lines = _blank_comments(markdown).splitlines()
    code = _code_lines(lines)
    tables: list[Table] = []
    heading: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        heading_match = None if code[i] else _HEADING.match(line)
        if heading_match:
            heading = heading_match.group(2).rstrip().rstrip("#").rstrip()
        elif (not code[i] and _has_pipe(line) and i + 1 < len(lines) and not code[i + 1]
              and is_delimiter_row(lines[i + 1])):
            table, i = _read_table(lines, code, i, heading)
            tables.append(table)
            continue
        i += 1
    return tables


def _read_table(lines: list[str], code: list[bool], start: int,
                heading: str | None) -> tuple[Table, int]:
    header = split_row(lines[start])
    rows, row_lines, problems = [], [], []
    i = start + 2
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped or code[i] or not _has_pipe(line) or stripped[0] in ">#":
            break
        cells = split_row(line)
        if len(cells) > len(header):
            extra = [c for c in cells[len(header):] if c]
            if extra:  # a stray empty cell after a doubled pipe is no loss
                problems.append(f"line {i + 1}: {len(cells)} cells, the header has {len(header)} "
                                f"(dropped: {' | '.join(extra)[:120]})")
            cells = cells[: len(header)]
        rows.append(tuple(cells + [""] * (len(header) - len(cells))))
        row_lines.append(i + 1)
        i += 1
    return Table(tuple(header), tuple(rows), start + 1, tuple(row_lines), heading, tuple(problems)), i


def links(cell: str) -> list[Link]:
    """The ``[text](target)`` links of a cell (images ``![alt](src)`` alone are not links)."""
    return [Link(plain_text(m.group(2)), m.group(3)) for m in _LINK.finditer(cell) if not m.group(1)]


def plain_text(cell: str) -> str:
    """What a reader sees: links and images as their text, HTML tags gone, ``<br>`` a space,
    whitespace collapsed."""
    text = cell
    for _ in range(3):  # a link around an image: [![alt](src)](target) -> alt
        text, replaced = _LINK.subn(lambda m: m.group(2), text)
        if not replaced:
            break
    text = _BREAK.sub(" ", text)
    text = _TAG.sub("", text)
    return " ".join(text.split())

