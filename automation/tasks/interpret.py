"""Rows → tasks: the interpreter for task tables (every format's rows end here).

A few named steps, in order: find the header; report what stands before it (title, 附件 line,
preamble); join rows a page break split in two; then per row read the headings, the task number
and title, a continuation of the previous task, the cells (re-slotted when they slid left, cells
beyond the header placed by content), the units and the deadline.  Nothing is dropped silently:
every row that is not a task or a heading becomes a :class:`~automation.model.Problem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from automation.errors import InputError
from automation.model import Problem, Task
from automation.tasks.cells import classify, repair
from automation.tasks.deadlines import document_year, looks_like_deadline, parse_due_date
from automation.tasks.header import BARE_NUMBER_RE, CORE_KEYS, Header, find_header, is_header_repeat
from automation.tasks.hierarchy import CN_NUM, SECTION_RE, SUBSECTION_RE, split_heading, task_number
from automation.tasks.pdf import join_split
from automation.tasks.records import RawRow, TaskTable
from automation.tasks.roles import UnitReader
from automation.text import normalize_text, squash

__all__ = ["interpret_rows", "resolve_year", "NO_HEADER"]

NO_HEADER = (
    "{source}：找不到表头，也不是分条列出的任务分工方案。表格需要一行列名，至少包含“工作任务”（或 任务/重点任务/任务名称）"
    "和另一列（如 工作要求、牵头单位、责任单位、落实情况）；分工方案需要编号的任务段落（1. 或（1））和“牵头单位：”"
    "“责任单位：”等行。"
)


def resolve_year(title_texts: list[str], year: int | None, fallback: int | None) -> tuple[int | None, str]:
    """The year 「6月底前」 is read in: the batch's (given), else the title's, else the current one."""
    if year is not None:
        return year, "批次年度"
    found = document_year(title_texts)
    if found is not None:
        return found, "标题"
    return fallback, "当年" if fallback is not None else ""


def problem(row: RawRow | None, message: str, raw: str = "", severity: str = "error",
            task: int | None = None) -> Problem:
    """A problem located at a source row (its sheet or page, its row or line)."""
    sheet = None
    if row is not None:
        sheet = f"第 {row.page} 页" if row.page else row.sheet
    return Problem(message=message, severity=severity, sheet=sheet, row=row.number if row else None,
                   raw=raw, task_number=task)


@dataclass
class _Place:
    """Where the reader is in the hierarchy."""

    section: tuple[str, str] | None = None
    subsection: tuple[str, str] | None = None
    group_numerals: dict[str, str] = field(default_factory=dict)

    def enter(self, kind: str, numeral: str, title: str) -> None:
        if kind == "section":
            self.section = (numeral, normalize_text(title))
            self.subsection = None
        else:
            self.subsection = (f"（{numeral}）", normalize_text(title))

    def group(self, text: str) -> None:
        """A section/group column cell: 「一、深化公开」 or a plain name (numbered in order)."""
        flat = normalize_text(text)
        for rx, kind in ((SECTION_RE, "section"), (SUBSECTION_RE, "subsection")):
            m = rx.match(flat)
            if m:
                if kind == "section" and self.section == (m.group(1), normalize_text(m.group(2))):
                    return
                self.enter(kind, m.group(1), m.group(2))
                return
        if self.section and self.section[1] == flat:
            return
        numeral = self.group_numerals.setdefault(flat, CN_NUM[min(len(self.group_numerals), 9)])
        self.enter("section", numeral, flat)


class _TableReader:
    """Reads the rows under one header into tasks and problems."""

    def __init__(self, header: Header, year: int | None) -> None:
        self.header = header
        self.key_col = header.key_col
        self.order = [header.keys[c] for c in sorted(header.keys) if header.keys[c] in CORE_KEYS]
        self.year = year
        self.place = _Place()
        self.units = UnitReader()
        self.tasks: list[Task] = []
        self.problems: list[Problem] = []
        self.headings: list[str] = []
        self.seen: dict[int, int] = {}
        self.auto_number = 0
        self.numbered = True

    # ------------------------------------------------------------------ cells

    def cell(self, row: RawRow, key: str) -> str:
        c = self.key_col.get(key)
        return row.cells[c] if c is not None and c < len(row.cells) else ""

    def _bare_number(self, row: RawRow) -> int | None:
        m = BARE_NUMBER_RE.fullmatch(self.cell(row, "number").strip())
        return int(m.group(1)) if m else None

    def _head(self, row: RawRow) -> str:
        """The text that carries headings and the task number: the title cell (with a non-number
        text in the number column in front of it, e.g. a heading merged across the row)."""
        number_text = self.cell(row, "number").strip()
        title_text = self.cell(row, "title").strip()
        head = title_text
        if number_text and self._bare_number(row) is None:
            head = (number_text + " " + title_text).strip() if number_text != title_text else number_text
        if not head:
            skip = {self.key_col.get("section")}
            head = next((c.strip() for i, c in enumerate(row.cells) if c.strip() and i not in skip), "")
        return head

    def starts_task(self, row: RawRow) -> bool:
        """Does this row begin a task or a heading (as opposed to continuing the row above)?"""
        if self._bare_number(row) is not None:
            return True
        head = self._head(row)
        headings, rest = split_heading(head)
        return bool(headings) or task_number(rest or head) is not None

    # ------------------------------------------------------------------ steps

    def decide_numbering(self, body: list[RawRow]) -> None:
        """Tables with no numbering at all get numbered in row order."""
        self.numbered = "number" in self.key_col or any(
            task_number(split_heading(self.cell(r, "title"))[1] or self.cell(r, "title")) is not None
            for r in body if not r.text and self.cell(r, "title").strip()
        )

    def join_page_splits(self, body: list[RawRow]) -> list[RawRow]:
        """A row a page break split in two (the tail at the top of the next page) is one row again."""
        out: list[RawRow] = []
        for row in body:
            if is_header_repeat(row, self.header):
                continue
            prev = out[-1] if out else None
            if (prev is not None and row.page and prev.page and row.page != prev.page and not row.text
                    and not prev.text and self._is_tail(row)):
                width = max(len(prev.cells), len(row.cells))
                a, b = prev.cells + [""] * (width - len(prev.cells)), row.cells + [""] * (width - len(row.cells))
                prev.cells = [x if (i in row.carried or not y.strip()) else join_split(x, y, i in prev.wrapped)
                              for i, (x, y) in enumerate(zip(a, b, strict=True))]
                tail = " | ".join(c.strip() for i, c in enumerate(row.cells) if c.strip() and i not in row.carried)
                self.problems.append(problem(row, f"第 {row.page - 1} 页末行在换页处断开，已与下一页首行合并",
                                             tail, "info"))
                continue
            out.append(row)
        return out

    def _is_tail(self, row: RawRow) -> bool:
        if self.starts_task(row):
            return False
        if self.numbered or not self.cell(row, "title").strip():
            return True
        # No numbers: a tail holds only the long cells' rest, never its own units or deadline.
        return not any(self.cell(row, k).strip() for k in ("lead", "responsible", "deadline", "status"))

    def read(self, row: RawRow) -> None:
        """One body row: a heading, a task, a continuation, or a problem."""
        if row.text:
            self.problems.append(problem(row, "表格外的文字，未作为任务", row.joined, "info"))
            return
        if not any(squash(c) for c in row.cells) or is_header_repeat(row, self.header):
            return
        if self.cell(row, "section").strip():
            self.place.group(self.cell(row, "section"))
            if not any(squash(c) for i, c in enumerate(row.cells) if i != self.key_col["section"]):
                self.headings.append(normalize_text(self.cell(row, "section")))
                return
        head = self._head(row)
        others = [c for i, c in enumerate(row.cells)
                  if i not in (self.key_col.get("title"), self.key_col.get("number"), self.key_col.get("section"))
                  and squash(c) and squash(c) != squash(head)]
        headings, rest = split_heading(head)
        for kind, numeral, title in headings:
            self.place.enter(kind, numeral, title)
            self.headings.append(f"{numeral}、{title}" if kind == "section" else f"（{numeral}）{title}")
        if headings and not rest and not others:
            return
        number, title = self._number_and_title(row, rest if headings else head)
        if number is None:
            self._unnumbered(row)
            return
        self._task(row, number, title)

    def _number_and_title(self, row: RawRow, title: str) -> tuple[int | None, str]:
        bare = self._bare_number(row)
        if bare is not None:
            title = self.cell(row, "title").strip()
            found = task_number(title)
            if found and found[0] == bare:
                title = found[1]
            return bare, title
        found = task_number(title)
        return (found[0], found[1]) if found else (None, title)

    def _unnumbered(self, row: RawRow) -> None:
        if self.tasks and not squash(self.cell(row, "title")) and not self.cell(row, "number").strip():
            self._continue_previous(row)
        elif not self.numbered:
            self.auto_number += 1
            self._task(row, self.auto_number, self._head(row))
        else:
            self.problems.append(problem(row, "无法识别：不是标题行，也没有任务编号，已跳过", row.joined))

    def _continue_previous(self, row: RawRow) -> None:
        """A cell split over two rows: append its text to the previous task."""
        prev = self.tasks[-1]
        for key in ("requirement", "status"):
            extra_text = normalize_text(self.cell(row, key))
            if extra_text:
                setattr(prev, key, (getattr(prev, key) + extra_text) if getattr(prev, key) else extra_text)
        self.units.add(prev, self.cell(row, "lead"), self.cell(row, "responsible"))
        self.problems.append(problem(row, f"没有任务编号，已并入第 {prev.number} 项", row.joined, "info",
                                     prev.number))

    def _values(self, row: RawRow, number: int) -> tuple[dict[str, str], list[str]]:
        """The core cells, re-slotted if they slid; cells beyond the header placed by content."""
        values = {k: self.cell(row, k) for k in self.order}
        values, repaired, leftovers = repair(values, self.order)
        if repaired:
            self.problems.append(problem(row, f"第 {number} 项单元格错位，已按内容重新对齐", row.joined, "info",
                                         number))
        beyond = [c for i, c in enumerate(row.cells) if i >= self.header.width and c.strip()]
        for text in beyond:
            kinds = classify(text)
            target = next((k for k in ("responsible", "lead") if k in values and "units" in kinds), None)
            if target is None:
                target = next((k for k in ("status", "deadline") if k in kinds and k in values
                               and not values[k].strip()), None)
            if target is None:
                leftovers.append(text)
                continue
            values[target] = f"{values[target]}，{text}" if values[target].strip() else text
            self.problems.append(problem(row, f"第 {number} 项有超出表头的单元格，已按内容归入“{target}”列",
                                         text, "info", number))
        return values, leftovers

    def _deadline(self, row: RawRow, values: dict[str, str]) -> str | None:
        deadline = normalize_text(values.get("deadline", ""))
        remark = normalize_text(self.cell(row, "remark"))
        if not deadline and remark and looks_like_deadline(remark):
            deadline = remark  # a deadline written in 备注 (kept in 备注 too)
        return deadline or None

    def _task(self, row: RawRow, number: int, title: str) -> None:
        values, leftovers = self._values(row, number)
        extra = {label: normalize_text(row.cells[c]) for c, label in self.header.extra_cols.items()
                 if c < len(row.cells) and row.cells[c].strip()}
        if "remark" in self.key_col and self.cell(row, "remark").strip():
            extra[self.header.labels[self.key_col["remark"]]] = normalize_text(self.cell(row, "remark"))
        if leftovers:
            extra["未归类"] = "；".join(normalize_text(v) for v in leftovers)
            self.problems.append(problem(row, "有无法归类的单元格，已保存在“未归类”", "；".join(leftovers), "info",
                                         number))
        deadline = self._deadline(row, values)
        due = parse_due_date(deadline, self.year) if deadline and self.year else None
        section, subsection = self.place.section, self.place.subsection
        task = Task(
            number=number,
            section=section[0] if section else None,
            section_title=section[1] if section else None,
            subsection=subsection[0] if subsection else None,
            subsection_title=subsection[1] if subsection else None,
            title=normalize_text(title),
            requirement=normalize_text(values.get("requirement", "")),
            lead=[], responsible=[],
            status=normalize_text(values.get("status", "")),
            deadline=deadline,
            due_date=due.isoformat() if due else None,
            unit_notes={},
            extra=extra,
            source_row=row.number,
            raw={self.header.labels.get(c, str(c)): v for c, v in enumerate(row.cells) if v.strip()},
        )
        self.units.add(task, values.get("lead", ""), values.get("responsible", ""))
        if number in self.seen:
            self.problems.append(problem(row, f"任务编号 {number} 与第 {self.seen[number]} 行重复，已跳过", row.joined))
            return
        self.seen[number] = row.number
        self.tasks.append(task)


def interpret_rows(rows: list[RawRow], source: str = "", sheet: str | None = None, year: int | None = None,
                   fallback_year: int | None = None) -> TaskTable:
    """Turn raw rows into tasks: header by synonyms, hierarchy, shift repair, normalisation.

    ``year`` is the batch year deadlines such as 「6月底前」 are read in; without it, the year in
    the title above the table, else ``fallback_year``.
    """
    header = find_header(rows)
    if header is None:
        raise InputError(NO_HEADER.format(source=source))
    preamble = [r for r in rows[: header.index] if r.joined]
    used_year, year_source = resolve_year([r.joined for r in preamble] + [source], year, fallback_year)
    reader = _TableReader(header, used_year)
    for r in preamble:
        reader.problems.append(problem(r, "表头之前的内容（标题、文号、说明等），未作为任务", r.joined, "info"))
    body = rows[header.index + 1 :]
    reader.decide_numbering(body)
    for row in reader.join_page_splits(body):
        reader.read(row)
    reader.problems.extend(reader.units.warnings(reader.tasks))
    if not reader.tasks:
        reader.problems.append(Problem(message="表格中没有找到任何任务行"))
    return TaskTable(source=source, tasks=reader.tasks, problems=reader.problems, columns=header.columns,
                     sheet=sheet, shape="table", year=used_year, year_source=year_source,
                     headings=reader.headings)
