"""Web-page and PDF text extracts with one cell per line: rows rebuilt from the header.

Copying a table out of a government web page (or some PDF viewers) gives one cell per line with
a bare ``|`` line after each cell, or each cell's line ending in `` |``; the row boundaries are
gone.  They are rebuilt here: the header's cells give the column count, a bare task number
(``1`` ``2`` …, in an unlabelled column too) or a numbered title starts each row, a heading
cell (``一、…``) is a row of its own, and a row one or two cells short inherits them from the row
above — a group cell (``领域``, a shared 责任单位) merged over several tasks — choosing the columns
where the row's cells then fit best by content.  A key/value metadata table before the header
(索引号、发布机构、文号 …) comes back as text rows, reported as such and never read as tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from automation.tasks.cells import classify
from automation.tasks.header import BARE_NUMBER_RE, header_key
from automation.tasks.hierarchy import split_heading, task_number
from automation.tasks.records import RawRow
from automation.text import squash

__all__ = ["is_cell_per_line", "rebuild_rows"]

_MAX_INHERITED = 2
_GROUP_CELL_MAX = 30  # a cell merged over several tasks is short (a field, a unit list), never prose


@dataclass
class _Cell:
    line: int
    text: str
    loose: bool = False  # lines no ``|`` closed: a title or signature around the table, not a cell


def _ends_cell(line: str) -> bool:
    s = line.strip()
    return s == "|" or (s.endswith("|") and s.count("|") == 1)


def is_cell_per_line(lines: list[str]) -> bool:
    """Does this text hold one cell per line (``|`` lines between cells), not ``a | b | c`` rows?"""
    nonempty = [line for line in lines if line.strip()]
    per_line = sum(1 for line in nonempty if _ends_cell(line))
    multi = sum(1 for line in nonempty if sum(1 for part in line.split("|") if part.strip()) >= 2)
    return per_line >= 3 and per_line > multi and per_line >= 0.2 * len(nonempty)


def _cells(lines: list[str]) -> list[_Cell]:
    """The cells in order: the lines up to each ``|`` line (or a line ending in `` |``)."""
    out: list[_Cell] = []
    buf: list[str] = []
    first = 0
    for i, line in enumerate(lines, start=1):
        s = line.strip()
        if not s:
            if buf:  # a blank line ends text that no | closed
                out.append(_Cell(first, "\n".join(buf), loose=True))
                buf = []
            continue
        if not buf:
            first = i
        if s == "|":
            out.append(_Cell(first or i, "\n".join(buf)))
            buf = []
        elif _ends_cell(s):
            buf.append(s[:-1].strip())
            out.append(_Cell(first, "\n".join(buf)))
            buf = []
        else:
            buf.append(s)
    if buf:
        out.append(_Cell(first, "\n".join(buf), loose=True))
    return out


def _peel_header_label(cells: list[_Cell]) -> list[_Cell]:
    """Title lines run into the first header cell when no ``|`` separates them: split them off."""
    out: list[_Cell] = []
    for cell in cells:
        lines = cell.text.split("\n")
        if len(lines) > 1 and not header_key(cell.text) and header_key(lines[-1]):
            out.append(_Cell(cell.line, "\n".join(lines[:-1]), loose=True))
            out.append(_Cell(cell.line + len(lines) - 1, lines[-1]))
        else:
            out.append(cell)
    return out


def _header_at(cells: list[_Cell]) -> tuple[int, int] | None:
    """(start, length) of the first run of header labels (at least two, one of them the task)."""
    i = 0
    while i < len(cells):
        j = i
        keys: list[str] = []
        while j < len(cells) and header_key(cells[j].text):
            keys.append(header_key(cells[j].text) or "")
            j += 1
        if len(keys) >= 2 and ("title" in keys or "number" in keys):
            start = i - 1 if i > 0 and not squash(cells[i - 1].text) else i  # an unlabelled first column
            return start, j - start
        i = j + 1 if j > i else i + 1
    return None


def _metadata_rows(cells: list[_Cell]) -> list[RawRow]:
    """Cells before the header as text rows, a ``索引号：`` cell with the value after it."""
    rows: list[RawRow] = []
    k = 0
    while k < len(cells):
        cell = cells[k]
        if cell.loose:
            rows += [RawRow(cell.line + n, [t], text=True) for n, t in enumerate(cell.text.split("\n")) if t.strip()]
            k += 1
            continue
        texts = [cell.text]
        if cell.text.rstrip().endswith(("：", ":")) and k + 1 < len(cells):
            texts.append(cells[k + 1].text)
            k += 1
        if any(t.strip() for t in texts):
            rows.append(RawRow(cell.line, texts, text=True))
        k += 1
    return rows


def _fits(key: str | None, text: str) -> float:
    """How well a text fits a column (0 when empty or unknown)."""
    flat = squash(text)
    if not flat or key is None:
        return 0.0
    if key == "number":
        return 1.0 if BARE_NUMBER_RE.fullmatch(flat) else -1.0
    kinds = classify(text)
    if key in ("lead", "responsible"):
        return 1.0 if "units" in kinds else -1.0
    if key in ("deadline", "status"):
        return 1.0 if key in kinds else -1.0
    if key == "section":
        return 1.0 if len(flat) <= _GROUP_CELL_MAX and kinds == {"prose"} else -1.0
    if key in ("title", "requirement"):
        return 1.0 if kinds == {"prose"} else -1.0
    return 0.0


class _Rows:
    """Groups the body cells into rows of the header's width."""

    def __init__(self, keys: list[str | None], numbered_column: bool) -> None:
        self.keys = keys
        self.width = len(keys)
        self.numbered_column = numbered_column
        self.rows: list[RawRow] = []
        self.current: list[_Cell] = []
        self.previous: list[str] | None = None
        self.expected: int | None = None

    def _starts_row(self, cell: _Cell, upcoming: _Cell | None) -> bool:
        flat = squash(cell.text)
        full = len(self.current) >= self.width
        if self.numbered_column:
            m = BARE_NUMBER_RE.fullmatch(flat)
            if m and (self.expected is None or int(m.group(1)) == self.expected or full):
                self.expected = int(m.group(1)) + 1
                return True
            return False
        found = task_number(split_heading(flat)[1] or flat)
        if found and (self.expected is None or found[0] == self.expected or full):
            self.expected = found[0] + 1
            return True
        return full or not self.current

    def _is_heading(self, cell: _Cell, upcoming: _Cell | None) -> bool:
        headings, rest = split_heading(squash(cell.text))
        if not headings or rest:
            return False
        if not self.current or len(self.current) >= self.width:
            return True
        # A heading mid-row only when the next cell starts a row again (a number, another heading).
        nxt = squash(upcoming.text) if upcoming else ""
        return upcoming is None or bool(BARE_NUMBER_RE.fullmatch(nxt)) or bool(split_heading(nxt)[0])

    def add(self, cell: _Cell, upcoming: _Cell | None) -> None:
        if self._is_heading(cell, upcoming):
            self.close()
            self.rows.append(RawRow(cell.line, [cell.text]))
            return
        if self._starts_row(cell, upcoming):
            self.close()
        self.current.append(cell)

    def close(self) -> None:
        if not self.current:
            return
        texts = [c.text for c in self.current]
        carried: set[int] = set()
        short = self.width - len(texts)
        if 0 < short <= _MAX_INHERITED and self.previous is not None and len(texts) > 2 - int(
                not self.numbered_column):
            texts, carried = self._inherit(texts, short)
        if len(texts) < self.width:
            texts += [""] * (self.width - len(texts))
        self.rows.append(RawRow(self.current[0].line, texts, carried=carried))
        if len(self.current) + len(carried) >= self.width:
            self.previous = texts
        self.current = []

    def _inherit(self, texts: list[str], short: int) -> tuple[list[str], set[int]]:
        """Insert the cells merged down from the row above where the row then fits best."""
        assert self.previous is not None
        first = 1 if self.numbered_column else 0
        candidates = [c for c in range(first, self.width)
                      if squash(self.previous[c]) and len(squash(self.previous[c])) <= _GROUP_CELL_MAX]
        best: tuple[float, list[str], set[int]] | None = None
        for combo in combinations(candidates, short):
            row = list(texts)
            for c in combo:
                row.insert(c, self.previous[c])
            score = sum(_fits(k, t) for k, t in zip(self.keys, row, strict=False))
            if best is None or score > best[0]:
                best = (score, row, set(combo))
        if best is None or best[0] <= sum(_fits(k, t) for k, t in zip(self.keys, texts, strict=False)):
            return texts, set()
        return best[1], best[2]


def rebuild_rows(lines: list[str]) -> list[RawRow]:
    """Rows of a one-cell-per-line extract (the header first, metadata before it as text rows)."""
    cells = _peel_header_label(_cells(lines))
    found = _header_at(cells)
    if found is None:  # not a table after all: every cell a line of text
        return [RawRow(c.line, [c.text]) for c in cells if c.text.strip()]
    start, length = found
    header = cells[start : start + length]
    body = cells[start + length :]
    trailing: list[_Cell] = []
    while body and body[-1].loose:  # the signature and date under the table
        trailing.insert(0, body.pop())
    keys: list[str | None] = [header_key(c.text) for c in header]
    first_body = next((squash(c.text) for c in body if squash(c.text) and not split_heading(squash(c.text))[0]),
                      "")
    numbered_column = "number" in keys or bool(BARE_NUMBER_RE.fullmatch(first_body))
    labels = [c.text for c in header]
    if numbered_column and "number" not in keys and (keys[0] is not None or squash(labels[0])):
        keys.insert(0, "number")
        labels.insert(0, "")
    elif numbered_column and keys[0] is None:
        keys[0] = "number"
    rows = _metadata_rows(cells[:start])
    rows.append(RawRow(header[0].line, labels))
    grouper = _Rows(keys, numbered_column)
    for i, cell in enumerate(body):
        grouper.add(cell, body[i + 1] if i + 1 < len(body) else None)
    grouper.close()
    return rows + grouper.rows + [RawRow(c.line + k, [t], text=True) for c in trailing
                                  for k, t in enumerate(c.text.split("\n")) if t.strip()]
