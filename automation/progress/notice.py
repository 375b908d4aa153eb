"""``automation notice``: the 情况通报 a coordinating office sends out, written into its Word template.

What it says comes from the same snapshot as ``status`` and the report (:func:`notice_content`), so
the numbers agree everywhere; how it looks is the office's template
(:mod:`automation.progress.notice_template`).  Units are named by kind — 县（市、区） apart from 市直部门,
as offices report them — with their completion rate and the tasks still open; units that sent
nothing are listed apart from units that are behind.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from automation import clock
from automation.config import Config
from automation.errors import InputError
from automation.fsutil import atomic_path, safe_filename
from automation.ledger import Ledger
from automation.progress.notice_template import MARKERS
from automation.progress.summary import (
    FINISHED,
    IN_PROGRESS,
    NOT_APPLICABLE,
    NOT_STARTED,
    UNREPORTED,
    Snapshot,
    UnitProgress,
    load_snapshot,
    task_due_date,
)
from automation.text import task_list
from automation.workspace import Workspace

__all__ = ["NoticeContent", "notice_content", "write_notice", "NoticeInfo", "default_notice_path"]

#: How the notice groups units by their registry ``kind``, in this order; other kinds follow.
KIND_ORDER = ("县（市、区）政府", "市直部门")
_KIND_LABEL = {"县（市、区）政府": "县（市、区）", "市直部门": "市直部门"}
_CN_ORDINAL = "一二三四五六七八九十"


def cn_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


@dataclass(frozen=True)
class UnitLine:
    name: str
    kind: str
    rate: float
    done: int
    applicable: int
    open_by_status: dict[str, list[int]]   # 推进中 / 未启动 / 未填报 → task numbers

    def text(self) -> str:
        parts = [f"{self.name}：完成率{_pct(self.rate)}（已完成{self.done}项，应完成{self.applicable}项）"]
        said = []
        for status, label in ((IN_PROGRESS, "推进中"), (NOT_STARTED, "未启动"), (UNREPORTED, "未报送")):
            numbers = self.open_by_status.get(status) or []
            if numbers:
                said.append(f"{task_list(numbers)}{label}")
        return parts[0] + ("，" + "，".join(said) if said else "") + "。"


@dataclass(frozen=True)
class OverdueTask:
    number: int
    title: str
    deadline: str
    lead: tuple[str, ...]
    unfinished: int

    def text(self) -> str:
        lead = f"（牵头单位：{'、'.join(self.lead)}）" if self.lead else ""
        return f"第{self.number}项“{self.title}”{lead}，完成时限{self.deadline}，尚有{self.unfinished}个单位未完成。"


@dataclass
class NoticeContent:
    """Everything the 情况通报 states, in order (plain data: the CLI, the console and tests read it)."""

    title: str
    batch: str
    year: int
    as_of: dt.datetime
    office: str
    short_name: str
    overview: str
    finished: dict[str, list[str]]              # kind → unit names
    behind: dict[str, list[UnitLine]]           # kind → lines, worst first
    silent: dict[str, list[str]]                # kind → unit names that sent nothing
    overdue: list[OverdueTask] = field(default_factory=list)
    ranking: dict[str, list[tuple[int, str, float]]] = field(default_factory=dict)   # kind → (rank, unit, score)
    own_deadlines: bool = False                 # some task has its own 完成时限 date
    task_count: int = 0
    completion: float = 0.0

    @property
    def silent_names(self) -> list[str]:
        return [n for names in self.silent.values() for n in names]


def _by_kind(units: Iterable[UnitProgress]) -> dict[str, list[UnitProgress]]:
    groups: dict[str, list[UnitProgress]] = {}
    for u in units:
        groups.setdefault(u.kind or "其他单位", []).append(u)
    order = [k for k in KIND_ORDER if k in groups] + [k for k in groups if k not in KIND_ORDER]
    return {k: groups[k] for k in order}


def notice_content(config: Config, ledger: Ledger, now: dt.datetime) -> NoticeContent:
    """What the notice says at ``now``, from the progress snapshot ``status`` uses."""
    with ledger.reading():
        snap = load_snapshot(config, ledger, now)
    return _content(config, snap)


def _content(config: Config, snap: Snapshot) -> NoticeContent:
    title = snap.batch.title
    heading = f"关于{title}落实情况的通报" if title[:4].isdigit() else f"关于{snap.batch.year}年{title}落实情况的通报"
    finished: dict[str, list[str]] = {}
    behind: dict[str, list[UnitLine]] = {}
    silent: dict[str, list[str]] = {}
    for kind, units in _by_kind(snap.units).items():
        for u in units:
            c = u.counts
            if c.finished:
                finished.setdefault(kind, []).append(u.name)
            elif c.reported == 0:
                silent.setdefault(kind, []).append(u.name)
            else:
                opened: dict[str, list[int]] = {}
                for task, cells in snap.matrix.items():
                    status = cells.get(u.unit_id)
                    if status is not None and status not in FINISHED:
                        opened.setdefault(status, []).append(task)
                behind.setdefault(kind, []).append(UnitLine(u.name, kind, c.completion, c.done, c.applicable,
                                                            {k: sorted(v) for k, v in opened.items()}))
    overall = snap.overall
    info = snap.deadline
    n_finished = sum(len(v) for v in finished.values())
    n_silent = sum(len(v) for v in silent.values())
    n_behind = sum(len(v) for v in behind.values())
    overview = (
        f"截至{cn_date(clock.local(snap.now).date())}，{title}共{len(snap.tasks)}项任务，涉及{len(snap.units)}个责任单位、"
        f"{overall.assigned}条单位分工。已完成{overall.done}条，应完成{overall.applicable}条，整体完成率{_pct(overall.completion)}。"
        f"{n_finished}个单位已全部完成，{n_behind}个单位正在推进但尚未全部完成，{n_silent}个单位至今未报送落实情况。"
        f"报送截止日期为{cn_date(info.deadline)}，{_deadline_phrase(info.passed, info.days_left)}。"
    )
    return NoticeContent(heading, title, snap.batch.year, snap.now, config.office.name,
                         config.office.short_name or config.office.name, overview, finished, behind, silent,
                         _overdue(snap), _ranking(snap),
                         any(getattr(t, "due_date", None) for t in snap.tasks), len(snap.tasks), overall.completion)


def _ranking(snap: Snapshot) -> dict[str, list[tuple[int, str, float]]]:
    return {kind: sorted((u.rank, u.name, u.score) for u in units) for kind, units in _by_kind(snap.units).items()}


def _deadline_phrase(passed: bool, days_left: int) -> str:
    if passed:
        return f"已逾期{-days_left}个工作日"
    return "今天截止" if days_left == 0 else f"距截止还有{days_left}个工作日"


def _overdue(snap: Snapshot) -> list[OverdueTask]:
    """Tasks whose deadline has passed with units still unfinished: the task's own 完成时限 where the
    table gave a date, else the batch deadline."""
    today = clock.local(snap.now).date()
    out = []
    for t in snap.tasks:
        due = task_due_date(t, snap.batch.deadline)
        if today <= due:
            continue
        counts = snap.rollups[t.number].counts
        unfinished = counts.assigned - counts.done - counts[NOT_APPLICABLE]
        if unfinished > 0:
            out.append(OverdueTask(t.number, t.title, t.deadline or cn_date(due), tuple(t.lead), unfinished))
    return out



# --------------------------------------------------------------------------- the document


@dataclass(frozen=True)
class NoticeInfo:
    path: Path
    pdf: Path | None
    content: NoticeContent


def default_notice_path(config: Config, batch_title: str, now: dt.datetime) -> Path:
    stamp = clock.local(now).strftime("%Y%m%d-%H%M")
    return Workspace(config.workspace).reports / safe_filename(f"{batch_title}_情况通报_{stamp}.docx", max_len=120)


def notice_template_path(config: Config) -> Path:
    """The office's template next to config.toml, else the one shipped with the package."""
    from automation.data import bundled

    local = config.base_dir / "templates" / "notice_template.docx"
    if local.is_file():
        return local
    shipped = bundled("templates/notice_template.docx")
    if shipped is None:
        raise InputError("找不到情况通报模板 templates/notice_template.docx，请运行 python scripts/make_template.py 生成。")
    return shipped


def write_notice(config: Config, ledger: Ledger, now: dt.datetime, out: Path | None = None,
                 pdf: bool = False) -> NoticeInfo:
    """Write the 情况通报 (.docx, atomically) from the office's template; ``pdf`` also converts it with
    LibreOffice (an :class:`~automation.errors.InputError` when LibreOffice is not installed)."""
    import docx

    if out is not None and not Path(out).parent.is_dir():
        raise InputError(f"{Path(out).parent}：文件夹不存在。请先建立该文件夹，或把 --out 指向已有的文件夹。")
    content = notice_content(config, ledger, now)
    target = Path(out) if out else default_notice_path(config, content.batch, now)
    target.parent.mkdir(parents=True, exist_ok=True)
    template = notice_template_path(config)
    try:
        document = docx.Document(str(template))
    except Exception as exc:  # python-docx raises several types for a broken file
        raise InputError(f"情况通报模板 {template.name} 无法打开（{type(exc).__name__}），请在 Word/WPS 中另存为 .docx。") from exc
    _fill(document, content)
    document.core_properties.title = content.title
    document.core_properties.created = clock.local(now).astimezone(dt.UTC).replace(tzinfo=None)
    with atomic_path(target) as tmp:
        document.save(str(tmp))
    pdf_path = None
    if pdf:
        from automation import office

        pdf_path = office.convert(target, "pdf", target.parent,
                                  how="可在 Word 或 WPS 中打开 .docx 后“另存为 PDF”。")
    return NoticeInfo(target, pdf_path, content)


def _paragraphs(content: NoticeContent, marker: str) -> list[str]:
    if marker == "{{总体情况}}":
        return [content.overview]
    if marker == "{{全部完成单位}}":
        if not content.finished:
            return ["截至统计日，暂无单位全部完成任务。"]
        return [f"{_KIND_LABEL.get(k, k)}：{'、'.join(names)}（{len(names)}个）。" for k, names in content.finished.items()]
    if marker == "{{进度滞后单位}}":
        if not content.behind:
            return ["截至统计日，已报送的单位均已全部完成任务。"]
        out: list[str] = []
        for i, (kind, lines) in enumerate(content.behind.items()):
            out.append(f"（{_CN_ORDINAL[i]}）{_KIND_LABEL.get(kind, kind)}")
            out += [f"{j}. {line.text()}" for j, line in enumerate(lines, start=1)]
        return out
    if marker == "{{未报送单位}}":
        if not content.silent:
            return ["所有单位均已报送落实情况。"]
        names = "；".join(f"{_KIND_LABEL.get(k, k)}：{'、'.join(v)}" for k, v in content.silent.items())
        return [f"{names}。以上{len(content.silent_names)}个单位至今未报送任何落实情况，请于收到本通报后3个工作日内报送。"]
    if marker == "{{单位排名}}":
        out = ["按综合得分（满分100分：完成率占50分，按时完成率占30分，报送率占20分）分类排名如下："]
        for kind, rows in content.ranking.items():
            ranked = "、".join(f"{rank}.{name}（{score:g}分）" for rank, name, score in rows)
            out.append(f"{_KIND_LABEL.get(kind, kind)}：{ranked}。")
        return out
    if marker == "{{逾期任务}}":
        if not content.overdue:
            return ["截至统计日，暂无逾期未完成的任务。"]
        if not content.own_deadlines:  # every task is due on the batch deadline: one sentence, not 35
            numbers = [t.number for t in content.overdue]
            which = (f"全部{len(numbers)}项任务均" if len(numbers) == content.task_count
                     else f"{task_list(numbers)}共{len(numbers)}项任务")
            return [f"报送截止日期已过，{which}尚有单位未完成，各项任务的未完成单位见汇总表“落实情况汇总”工作表。"]
        return [f"{i}. {t.text()}" for i, t in enumerate(content.overdue, start=1)]
    return []


def _fill(document: object, content: NoticeContent) -> None:
    values = {
        "{标题}": content.title, "{批次}": content.batch, "{年度}": str(content.year),
        "{统计日期}": cn_date(clock.local(content.as_of).date()), "{办公室}": content.office,
        "{简称}": content.short_name, "{落款日期}": cn_date(clock.local(content.as_of).date()),
    }
    for paragraph in list(document.paragraphs):  # type: ignore[attr-defined]
        text = paragraph.text.strip()
        if text in MARKERS:
            _replace_marker(paragraph, _paragraphs(content, text))
        elif "{" in paragraph.text:
            new = paragraph.text
            for key, value in values.items():
                new = new.replace(key, value)
            if new != paragraph.text:
                _set_text(paragraph, new)


def _set_text(paragraph: object, text: str) -> None:
    """Replace a paragraph's text, keeping the first run's formatting."""
    runs = paragraph.runs  # type: ignore[attr-defined]
    if not runs:
        paragraph.add_run(text)  # type: ignore[attr-defined]
        return
    runs[0].text = text
    for run in runs[1:]:
        run._r.getparent().remove(run._r)


def _replace_marker(paragraph: object, lines: list[str]) -> None:
    """The marker paragraph becomes ``lines``: copies of it (style and run formatting kept)."""
    if not lines:
        paragraph._p.getparent().remove(paragraph._p)  # type: ignore[attr-defined]
        return
    anchor = paragraph._p  # type: ignore[attr-defined]
    for line in lines[1:][::-1]:
        clone = copy.deepcopy(anchor)
        anchor.addnext(clone)
        from docx.text.paragraph import Paragraph

        _set_text(Paragraph(clone, paragraph._parent), line)  # type: ignore[attr-defined]
    _set_text(paragraph, lines[0])
