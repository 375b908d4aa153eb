"""What the readers hand the interpreters, and what an import gives back.

Readers turn every format into :class:`RawRow` (cells as text, where the user finds the row);
the interpreters turn rows into a :class:`TaskTable` of tasks, with every row they could not use
reported as a :class:`~automation.model.Problem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from automation.model import Problem, Task

__all__ = ["RawRow", "TaskTable", "Problem"]


@dataclass
class RawRow:
    """One row as read from the source: cell texts and the row (or line) number the user sees.

    ``page`` is the PDF page; ``text`` marks running text outside any table (a Word paragraph, a
    line of a PDF page, a title above the table): never a table row, but a paragraph plan's lines.
    Both matter when a table row must be told from the row a page break cut off above it.
    """

    number: int
    cells: list[str]
    sheet: str | None = None
    page: int | None = None
    text: bool = False
    #: columns whose text was carried down from a cell merged over this row (a group cell)
    carried: set[int] = field(default_factory=set)
    #: PDF: columns whose last line runs to the cell's edge (a page break there cut a wrapped line)
    wrapped: set[int] = field(default_factory=set)

    @property
    def joined(self) -> str:
        """The row's non-empty cells, as a problem quotes them."""
        return " | ".join(c.strip() for c in self.cells if c.strip())


@dataclass
class TaskTable:
    """The result of an import: tasks, the problems found, and how the source was read."""

    source: str
    tasks: list[Task]
    problems: list[Problem]
    columns: dict[str, str]  # header label -> key ("extra:<label>" for unknown columns)
    sheet: str | None = None
    #: "table" (a header and rows) or "paragraphs" (a numbered 分工方案 in running text)
    shape: str = "table"
    #: the year 「6月底前」 is read in, and where it came from (配置 / 标题 / 当年)
    year: int | None = None
    year_source: str = ""
    #: headings seen, in order, whether or not tasks sit under them
    headings: list[str] = field(default_factory=list)

    @property
    def sections(self) -> list[str]:
        return list(dict.fromkeys(t.section for t in self.tasks if t.section))

    @property
    def subsections(self) -> list[tuple[str | None, str]]:
        return list(dict.fromkeys((t.section, t.subsection) for t in self.tasks if t.subsection))
