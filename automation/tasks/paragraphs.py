"""Word 分工方案 that are not tables: numbered task paragraphs with unit lines under headings.

    一、围绕稳定宏观经济大盘加强政策发布解读          a section
    （一）做好稳增长政策公开                          a subsection
    1.及时公开减税降费政策措施。全面梳理……          a task: title (first sentence) and requirement
    牵头负责领导：陈××副市长                          a person: kept as a note, never a unit
    牵头单位：市发改委                                label lines: the units and their role
    责任单位：市财政局、市工信局等
    2.做好涉企政策精准推送。（牵头单位：市数字发展中心；责任单位：市工信局）   units inline at the end
    以下均需各县市区落实，不再逐一列出。              a unit for every later task (and the report says so)

Everything before the first heading or task (title, 文号, addressees, 「现将…印发给你们」,
signature, date) is preamble; every paragraph that is neither a task, a heading nor one of these
lines becomes a problem with its line and text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from automation.model import Problem, Task
from automation.tasks.deadlines import parse_due_date
from automation.tasks.hierarchy import SECTION_RE, SUBSECTION_RE, TASK_RE
from automation.tasks.interpret import problem, resolve_year
from automation.tasks.records import RawRow, TaskTable
from automation.tasks.roles import UnitReader
from automation.text import normalize_text, parse_unit_cell, squash

__all__ = ["interpret_paragraphs", "looks_like_plan"]

_LEAD_LABELS = ("牵头单位", "牵头部门", "牵头责任单位", "主办单位", "牵头处室")
_RESP_LABELS = ("责任单位", "责任部门", "配合单位", "配合部门", "协同责任单位", "协同单位", "协办单位", "参与单位",
                "承办单位", "责任处室")
_LABEL = "|".join(sorted(_LEAD_LABELS + _RESP_LABELS, key=len, reverse=True))
_LABEL_RE = re.compile(rf"^({_LABEL})\s*[：:]\s*(.*)$", re.S)
_INLINE_RE = re.compile(rf"(?:^|(?<=[。；;，,\s]))({_LABEL})\s*[：:]")
_LEADER_RE = re.compile(r"^((?:牵头|分管|责任|负责)(?:负责|责任)?(?:市)?领导|责任人|联系人)\s*[：:]\s*(.*)$", re.S)
_DEADLINE_RE = re.compile(r"^(完成时限|时限要求|时限|完成时间|完成期限|时间节点)\s*[：:]\s*(.*)$", re.S)
_NOTE_RE = re.compile(r"以下(?:各项|所有)?(?:任务|工作)?(?:均需|均由|均须|均要|都需|都由)(.+?)(?:负责)?(?:抓好)?(?:落实|承担|完成|执行)")
_PREAMBLE_RE = re.compile(
    r"^(?:.{0,30}[〔\[［(（]\s*20\d{2}\s*[〕\]］)）]\s*\d+\s*号|.*印发给你们|.*请认真(?:贯彻|组织|抓好)|.*请结合实际|"
    r"[（(]此件.{0,8}[)）]|附件\s*\d*\s*[：:]?.*|.{0,60}[：:]$|(?:20\d{2}|二[〇○零]..)\s*年.{1,3}月.{1,3}日)$"
)
_SIGNATURE_RE = re.compile(r"^.{2,24}(?:人民政府|政府|办公室|办公厅|委员会|领导小组|局|委|办)$")
_INLINE_ROLE_RE = re.compile(r"牵头|配合|负责")


@dataclass
class _Open:
    """The task being read: its lines so far."""

    task: Task
    row: RawRow
    labelled: bool = False
    continued: list[str] = field(default_factory=list)


def _lines(rows: list[RawRow]) -> list[tuple[RawRow, str]]:
    return [(r, normalize_text(" ".join(c for c in r.cells if c.strip()))) for r in rows if r.joined]


def looks_like_plan(rows: list[RawRow]) -> bool:
    """Running text with numbered tasks (and unit lines), not a table whose header went unseen."""
    lines = _lines(rows)
    if not lines:
        return False
    multi = sum(1 for r, _ in lines if not r.text and sum(1 for c in r.cells if c.strip()) >= 2)
    if multi > len(lines) / 2:
        return False
    numbered = sum(1 for _, t in lines if TASK_RE.match(t))
    labelled = sum(1 for _, t in lines if _LABEL_RE.match(t) or _INLINE_RE.search(t))
    return labelled >= 1 or numbered >= 2


def _split_title(text: str) -> tuple[str, str]:
    """A task paragraph's first sentence is its title (if short), the rest its requirement."""
    m = re.search(r"[。；;]", text)
    if m and 0 < m.start() <= 60 and text[m.end():].strip():
        return text[: m.start()], text[m.end():].strip()
    return text.rstrip("。"), ""


def _inline_units(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Units written at the end of a task paragraph: （牵头单位：A、B；责任单位：C） or 。牵头单位：A。"""
    body = text.rstrip("。 ")
    if body.endswith(("）", ")")):
        depth = 0
        for i in range(len(body) - 1, -1, -1):
            depth += body[i] in "）)"
            depth -= body[i] in "（("
            if depth == 0:
                inner = body[i + 1 : -1]
                if _INLINE_RE.match(inner):
                    return body[:i].rstrip(), _label_clauses(inner)
                if _INLINE_ROLE_RE.search(inner) and parse_unit_cell(inner)[0]:
                    return body[:i].rstrip(), [("牵头单位", inner)]
                break
    m = _INLINE_RE.search(body)
    if m and m.start() > 0:
        return body[: m.start()].rstrip(), _label_clauses(body[m.start():])
    return text, []


def _label_clauses(text: str) -> list[tuple[str, str]]:
    """「牵头单位：A、B；责任单位：C」 → [(牵头单位, "A、B"), (责任单位, "C")]."""
    starts = list(_INLINE_RE.finditer(text))
    out = []
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        out.append((m.group(1), text[m.end():end].strip(" ；;。，,")))
    return out


class _PlanReader:
    def __init__(self, year: int | None) -> None:
        self.year = year
        self.section: tuple[str, str] | None = None
        self.subsection: tuple[str, str] | None = None
        self.units = UnitReader()
        self.tasks: list[Task] = []
        self.problems: list[Problem] = []
        self.headings: list[str] = []
        self.labels: dict[str, str] = {}
        self.open: _Open | None = None
        self.started = False
        self.task_style: str | None = None
        self.heading_row: tuple[RawRow, str] | None = None  # the last heading, while no task is under it
        self.pending: list[tuple[RawRow, str]] = []  # prose after a task, judged by what follows
        self.notes: list[tuple[RawRow, str, list[str], list[Task]]] = []

    # ------------------------------------------------------------------ line kinds

    def read(self, row: RawRow, text: str) -> None:
        for step in (self._label, self._leader, self._deadline, self._note, self._heading, self._task):
            if step(row, text):
                return
        self._prose(row, text)

    def _label(self, row: RawRow, text: str) -> bool:
        bare = text.rstrip("。")
        if bare[:1] in "（(" and bare[-1:] in "）)":  # （牵头单位：A；责任单位：B） on a line of its own
            bare = bare[1:-1]
        m = _LABEL_RE.match(bare)
        if not m:
            return False
        if self.open is None and self.heading_row is not None:
            self._heading_as_task()
        if self.open is None:
            self.problems.append(problem(row, "单位行前面没有任务段落，已跳过", text))
            return True
        for label, units in _label_clauses(bare):
            self._add_units(self.open, label, units)
        self.open.labelled = True
        return True

    def _leader(self, row: RawRow, text: str) -> bool:
        m = _LEADER_RE.match(text)
        if not m or (self.open is None and self.heading_row is None):
            return False
        if self.open is None:
            self._heading_as_task()
        assert self.open is not None
        self.open.task.extra[m.group(1)] = m.group(2).strip()  # a person, never a unit
        self.open.task.raw[m.group(1)] = m.group(2).strip()
        return True

    def _deadline(self, row: RawRow, text: str) -> bool:
        m = _DEADLINE_RE.match(text)
        if not m or self.open is None:
            return False
        self.open.task.deadline = m.group(2).strip() or None
        self.open.task.raw[m.group(1)] = m.group(2).strip()
        self.labels.setdefault(m.group(1), "deadline")
        return True

    def _note(self, row: RawRow, text: str) -> bool:
        m = _NOTE_RE.search(text)
        if not m or not self.started:
            return False
        _lead, partners, plain = parse_unit_cell(m.group(1))
        names = [n for n, _ in partners + plain]
        if not names:
            return False
        self._close()
        self.notes.append((row, text, names, []))
        return True

    def _heading(self, row: RawRow, text: str) -> bool:
        for rx, kind in ((SECTION_RE, "section"), (SUBSECTION_RE, "subsection")):
            m = rx.match(text)
            if m:
                self._close(next_heading=True)
                title, rest = _split_title(m.group(2))
                if kind == "section":
                    self.section, self.subsection = (m.group(1), title), None
                    self.headings.append(f"{m.group(1)}、{title}")
                else:
                    self.subsection = (f"（{m.group(1)}）", title)
                    self.headings.append(f"（{m.group(1)}）{title}")
                self._drop_heading_row()
                self.heading_row = (row, rest)
                self.started = True
                return True
        return False

    def _task(self, row: RawRow, text: str) -> bool:
        m = TASK_RE.match(text)
        if not m:
            return False
        style = "paren" if m.group(1) else "dot"
        if self.open is not None and not self.open.labelled and self.task_style not in (None, style):
            self.open.continued.append(text)  # （1）（2） points inside task 1.
            return True
        self.task_style = self.task_style or style
        self._close()
        for prow, ptext in self.pending:  # prose between two tasks: a task that lost its number?
            self.problems.append(problem(prow, "两项任务之间的段落没有任务编号，未导入；如是任务请加上编号", ptext))
        self.pending = []
        number = int(m.group(1) or m.group(2))
        body, inline = _inline_units(m.group(3))
        title, requirement = _split_title(body)
        task = self._new_task(row, number, title, requirement, text)
        self.open = _Open(task, row)
        for label, units in inline:
            self._add_units(self.open, label, units)
        self.open.labelled = bool(inline)
        self.started = True
        self._drop_heading_row()
        return True

    def _prose(self, row: RawRow, text: str) -> None:
        if not self.started or _PREAMBLE_RE.match(text) or (_SIGNATURE_RE.match(text) and len(text) <= 24):
            self.problems.append(problem(row, "前言、标题或落款，不是任务", text, "info"))
        elif self.open is not None and not self.open.labelled:
            self.open.continued.append(text)
        elif self.open is not None:
            self.pending.append((row, text))  # after a task's unit lines: judged by what follows
        else:
            self.problems.append(problem(row, "说明文字，未作为任务", text, "info"))

    # ------------------------------------------------------------------ tasks

    def _new_task(self, row: RawRow, number: int, title: str, requirement: str, raw: str) -> Task:
        section, sub = self.section, self.subsection
        return Task(
            number=number, section=section[0] if section else None, section_title=section[1] if section else None,
            subsection=sub[0] if sub else None, subsection_title=sub[1] if sub else None,
            title=normalize_text(title), requirement=normalize_text(requirement), lead=[], responsible=[],
            status="", deadline=None, unit_notes={}, extra={}, source_row=row.number, raw={"段落": raw},
        )

    def _heading_as_task(self) -> None:
        """A heading followed straight by unit lines is itself the task."""
        assert self.heading_row is not None
        row, rest = self.heading_row
        title = self.headings.pop()
        if self.subsection and title.startswith("（"):
            self.subsection = None
        elif not title.startswith("（"):
            self.section = None
        number = (self.tasks[-1].number if self.tasks else 0) + 1
        task = self._new_task(row, number, re.sub(r"^(?:[（(][^）)]+[）)]|[^、]+、)", "", title), rest, title)
        self.open = _Open(task, row)
        self.problems.append(problem(row, f"标题“{title}”下直接列出了单位，已作为第 {number} 项任务", title, "info",
                                     number))
        self.heading_row = None

    def _add_units(self, open_: _Open, label: str, text: str) -> None:
        lead = label in _LEAD_LABELS
        self.labels.setdefault(label, "lead" if lead else "responsible")
        self.units.add(open_.task, text if lead else "", "" if lead else text)
        open_.task.raw[label] = text

    def _close(self, next_heading: bool = False) -> None:
        if self.open is not None:
            task = self.open.task
            if self.open.continued:
                task.raw["续"] = "\n".join(self.open.continued)
                more = normalize_text("".join(self.open.continued))
                task.requirement = f"{task.requirement}{more}" if task.requirement else more
            for _row, _text, names, applied in self.notes:
                self.units.add(task, "", "、".join(names))
                applied.append(task)
            if task.deadline and self.year:
                due = parse_due_date(task.deadline, self.year)
                task.due_date = due.isoformat() if due else None
            self.tasks.append(task)
            self.open = None
        if next_heading:
            for row, text in self.pending:
                self.problems.append(problem(row, "说明文字，未作为任务", text, "info"))
            self.pending = []

    def _drop_heading_row(self) -> None:
        """The last heading got no task under it: its text after the title is prose, said so."""
        if self.heading_row is not None and self.heading_row[1]:
            row, rest = self.heading_row
            self.problems.append(problem(row, "标题后的说明文字，未作为任务", rest, "info"))
        self.heading_row = None

    def finish(self) -> None:
        self._close(next_heading=True)
        self._drop_heading_row()
        self._renumber()
        for row, text, names, applied in self.notes:
            numbers = [t.number for t in applied]
            span = f"第 {numbers[0]}–{numbers[-1]} 项" if len(numbers) > 1 else f"第 {numbers[0]} 项" if numbers else "无"
            self.problems.append(problem(row, f"说明“{squash(text)[:30]}”：其后 {len(applied)} 项任务（{span}）"
                                         f"均加上责任单位“{'、'.join(names)}”", text, "info"))
        self.problems.extend(self.units.warnings(self.tasks))
        if not self.tasks:
            self.problems.append(Problem(message="文档中没有找到任何编号的任务段落"))

    def _renumber(self) -> None:
        """Numbers that restart under each heading (1. 2. 1. 2.) become 1…N, the written one kept."""
        numbers = [t.number for t in self.tasks]
        if all(b > a for a, b in zip(numbers, numbers[1:], strict=False)):
            return
        for i, task in enumerate(self.tasks, start=1):
            if task.number != i:
                task.extra["原编号"] = str(task.number)
            task.number = i
        self.problems.append(Problem(message=f"任务编号在各部分重新开始，已按顺序统一编为 1–{len(self.tasks)}（原编号见“原编号”）",
                                     severity="info"))


def interpret_paragraphs(rows: list[RawRow], source: str = "", sheet: str | None = None, year: int | None = None,
                         fallback_year: int | None = None) -> TaskTable:
    """Read a 分工方案 written as numbered paragraphs into tasks."""
    lines = _lines(rows)
    first_heading = next((i for i, (_, t) in enumerate(lines) if SECTION_RE.match(t) or TASK_RE.match(t)),
                         len(lines))
    used_year, year_source = resolve_year([t for _, t in lines[:first_heading]] + [source], year, fallback_year)
    reader = _PlanReader(used_year)
    for row, text in lines:
        reader.read(row, text)
    reader.finish()
    return TaskTable(source=source, tasks=reader.tasks, problems=reader.problems, columns=reader.labels,
                     sheet=sheet, shape="paragraphs", year=used_year, year_source=year_source,
                     headings=reader.headings)
