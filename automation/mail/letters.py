"""The Chinese texts of every e-mail: cover letter, 回执 (receipt) and reminders.

Each letter comes as a subject, a real plain-text body and an HTML body with the same content
(the plain text is written for reading, not derived from the HTML).  Everything that comes from
units or task tables is HTML-escaped: a task title or a problem message is text, never markup.

Register: the office writes to a unit as 「你单位」 throughout; numbers sit in the Chinese text
without spaces (「尚有3项」); dates carry the year (「于2021年12月15日前」).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from automation import clock
from automation.config import Config
from automation.ledger.records import AssignmentRow
from automation.model import Batch, Task, UnitRow
from automation.text import task_list
from automation.workbook.layout import DEFAULT_LAYOUT, filling_rules

__all__ = ["Letter", "ReceiptFacts", "cover_letter", "receipt_letter", "reminder_letter", "cn_date"]

_WEEKDAYS = "一二三四五六日"
_TABLE = 'style="border-collapse:collapse;font-size:14px;margin:8px 0"'
_TH = 'style="border:1px solid #999;background:#D9E1F2;padding:4px 8px;text-align:left"'
_TD = 'style="border:1px solid #999;padding:4px 8px;vertical-align:top"'
_P = 'style="margin:6px 0;line-height:1.6"'


@dataclass(frozen=True)
class Letter:
    subject: str
    text: str
    html: str


def cn_date(day: dt.date) -> str:
    """2026年10月9日（星期五）"""
    return f"{day.year}年{day.month}月{day.day}日（星期{_WEEKDAYS[day.weekday()]}）"


def _cn_time(at: dt.datetime) -> str:
    at = clock.local(at)
    return f"{at.year}年{at.month}月{at.day}日{at.hour}:{at.minute:02d}"


def _cn_day(day: dt.date) -> str:
    """2021年12月15日"""
    return f"{day.year}年{day.month}月{day.day}日"


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _html_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th {_TH}>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td {_TD}>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table {_TABLE}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_doc(paragraphs: Sequence[str]) -> str:
    """``paragraphs`` are HTML fragments already escaped (tables) or plain lines (escaped here)."""
    parts = []
    for p in paragraphs:
        if p.startswith("<"):
            parts.append(p)
        else:
            parts.append(f"<p {_P}>{_e(p)}</p>")
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
            '<body style="font-family:\'Microsoft YaHei\',\'PingFang SC\',SimSun,sans-serif;font-size:14px">'
            + "".join(parts) + "</body></html>")


def _contact_line(config: Config) -> str:
    o = config.office
    bits = [o.name + (o.contact or "")]
    if o.phone:
        bits.append(f"电话{o.phone}")
    if o.email:
        bits.append(f"邮箱{o.email}")
    return "如有疑问，请联系" + "，".join(bits) + "。"


def _signature(config: Config, today: dt.date) -> list[str]:
    return [config.office.name, f"{today.year}年{today.month}月{today.day}日"]


def _reply_address(config: Config) -> str:
    return config.mail.reply_to or config.mail.sender or config.office.email


def _short(text: str, n: int = 60) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


# --------------------------------------------------------------------------- cover letter


def rules(config: Config) -> tuple[str, ...]:
    """The 填报规则 of the 填报说明 sheet, as ``[collect]`` applies them."""
    c = config.collect
    return filling_rules(c.require_progress_when_done, c.no_future_completion)


def cover_letter(config: Config, batch: Batch, unit: UnitRow, assignments: Sequence[AssignmentRow],
                 tasks: Mapping[int, Task], workbook_name: str, today: dt.date | None = None) -> Letter:
    """The distribution message: how many tasks, the deadline, how to fill in and return, and the
    rules that get an answer refused."""
    today = today or dt.date.today()
    lead = sum(1 for a in assignments if a.role == "牵头")
    n = len(assignments)
    deadline = cn_date(batch.deadline)
    subject = f"【督办】{batch.title}——请{unit.name}于{_cn_day(batch.deadline)}前填报落实情况"
    intro = (f"现将《{batch.title}》中涉及你单位的{n}项任务（牵头{lead}项、责任{n - lead}项）发给你单位，"
             f"请于{deadline}前填报落实情况。")
    dated = sum(1 for a in assignments if (t := tasks.get(a.task)) is not None and t.deadline)
    if dated:
        intro += f"其中{dated}项任务有各自的完成时限，见工作簿“完成时限”列，请按时限完成。"
    steps = [
        f"1.打开附件“{workbook_name}”（WPS、Excel均可），在“任务清单”工作表中逐项填写黄色表头的列："
        "落实情况（从下拉列表选择）、工作进展及成效、完成时间、佐证材料、存在问题及下步打算。",
        "2.在表格上方填写填报联系人和联系电话。",
        "3.请勿增删行列、修改序号和任务内容；可以另存为.xls或修改文件名。",
        f"4.保存后直接回复本邮件，把填好的工作簿作为附件发回（{_reply_address(config)}）。"
        "收到后系统会自动回复回执，列出需要修改的地方。",
    ]
    rows = []
    for a in assignments:
        t = tasks.get(a.task)
        rows.append((a.task, t.title if t else "", a.role + ("（" + a.note + "）" if a.note else ""),
                     (t.deadline or "") if t else ""))
    show_due = any(r[3] for r in rows)
    text_rows = [f"  {no}.[{role}]{_short(title, 80)}" + (f"（完成时限：{due}）" if due else "")
                 for no, title, role, due in rows]
    headers = ("序号", "工作任务", "本单位角色", *(("完成时限",) if show_due else ()))
    html_rows = [r if show_due else r[:3] for r in rows]
    text = "\n".join([
        f"{unit.name}：", "", intro, "", "填报方法：", *steps, "", "填报规则（不符合的内容不予采用）：", *rules(config), "",
        f"你单位的任务（共{n}项）：", *text_rows, "", _contact_line(config), "", *_signature(config, today),
    ]) + "\n"
    body = _html_doc([
        f"{unit.name}：", intro, "填报方法：", *steps, "填报规则（不符合的内容不予采用）：", *rules(config),
        f"你单位的任务（共{n}项）：", _html_table(headers, html_rows),
        _contact_line(config), *_signature(config, today),
    ])
    return Letter(subject, text, body)


# --------------------------------------------------------------------------- receipt


_SEVERITY = {"error": "需修改", "warning": "请核实", "info": "提示"}


def _problem_where(p: Mapping[str, Any]) -> str:
    bits = []
    if p.get("sheet") or p.get("cell"):
        bits.append(f"{p.get('sheet') or ''}{'!' if p.get('sheet') and p.get('cell') else ''}{p.get('cell') or ''}")
    if p.get("task_number"):
        bits.append(f"第{p['task_number']}项")
    if p.get("field"):
        column = DEFAULT_LAYOUT.column(str(p["field"]))
        bits.append(column.header if column else str(p["field"]))
    return "，".join(bits)


@dataclass(frozen=True)
class ReceiptFacts:
    """What the ledger knows beyond the file, so a receipt can say whether the return is complete.

    ``assigned``: the unit's tasks in the batch; ``earlier``: those with a valid answer from another
    file (they stand, so they are not asked for again).
    """

    assigned: tuple[int, ...] = ()
    earlier: frozenset[int] = frozenset()


def receipt_letter(config: Config, batch: Batch | None, unit: UnitRow, result: Any, now: dt.datetime,
                   facts: ReceiptFacts | None = None) -> Letter:
    """回执 for one returned file (a :class:`automation.collect.pipeline.FileResult`).

    Counts are in 项 (tasks), not rows.  With ``facts`` an accepted file's receipt says 「已填报
    24/34 项」, lists the tasks still without an answer and every refused row with its reason, and
    calls the return complete only when every assigned task has a valid answer and nothing needs
    correcting.
    """
    name = str(getattr(result, "file_name", "") or "")
    problems = [p if isinstance(p, Mapping) else vars(p) for p in (getattr(result, "problems", None) or [])]
    received = getattr(result, "received_at", None)
    if isinstance(received, str) and received:
        try:
            received = clock.parse(received)
        except ValueError:
            received = None
    when = _cn_time(received) if isinstance(received, dt.datetime) else _cn_time(now)
    title = f"《{batch.title}》" if batch else ""
    rows = [(i, _SEVERITY.get(str(p.get("severity", "error")), "需修改"), _problem_where(p), p.get("message", ""))
            for i, p in enumerate(problems, start=1)]
    errors = sum(1 for p in problems if str(p.get("severity", "error")) == "error")
    table_headers = ("序号", "类别", "位置（工作表!单元格）", "问题及修改方法")
    text_problems = [f"  {i}. [{kind}] {where + '：' if where else ''}{msg}" for i, kind, where, msg in rows]
    if result.outcome == "accepted":
        taken = sorted({int(t) for t in (getattr(result, "tasks_accepted", None) or ())})
        assigned = set(facts.assigned) if facts and facts.assigned else set(taken)
        taken_set = set(taken)
        refused = sorted({int(p["task_number"]) for p in problems if str(p.get("severity", "error")) == "error"
                          and p.get("task_number")} & assigned - taken_set)
        # An earlier file's answer stands when this file left the task blank or had its row refused.
        earlier = sorted((set(facts.earlier) if facts else set()) & assigned - taken_set)
        blank = sorted(assigned - taken_set - set(refused) - set(earlier))
        filled = len(assigned & (taken_set | set(earlier)))
        complete = filled == len(assigned) and not errors
        subject = f"【回执】已收到{unit.name}报送的{title}填报表，已填报{filled}/{len(assigned)}项"
        if errors:
            subject += f"，{errors}处需修改"
        elif not complete:
            subject += f"，{len(assigned) - filled}项未填报"
        elif problems:
            subject += f"，{len(problems)}处请核实"
        lead = (f"{config.office.name}已于{when}收到你单位报送的文件“{name}”，本次接收{len(taken)}项任务的填报内容"
                f"{'（' + task_list(taken, 20) + '）' if taken else ''}。你单位共承担{len(assigned)}项任务，"
                f"目前已填报{filled}项。")
        parts = [lead]
        kept = [t for t in earlier if t not in refused]
        if kept:
            parts.append(f"{task_list(kept, 20)}本次未填写，沿用你单位此前报送的内容。")
        if refused:
            stands = [t for t in refused if t in earlier]
            parts.append(f"{task_list(refused, 20)}的填报内容未通过，未予采用，原因见下表"
                         + (f"；其中{task_list(stands, 20)}仍按你单位此前报送的内容统计。" if stands else "。"))
        if blank:
            parts.append(f"{task_list(blank, 20)}尚未填报落实情况，请补充填报。")
        if complete and not problems:
            parts.append("报送内容完整，无需修改。感谢配合！")
        elif problems:
            parts.append(f"以下{len(problems)}处请修改或核实后，在原文件上更正并重新发送（已接收的内容不会丢失，"
                         "以最新报送为准）：")
        else:
            parts.append("请在原文件上补充后重新发送（已接收的内容不会丢失，以最新报送为准）。")
    else:
        subject = f"【回执】{unit.name}报送的文件未能接收，请修改后重新报送"
        reason = str(getattr(result, "reason", "") or "文件无法识别")
        lead = (f"{config.office.name}已于{when}收到你单位报送的文件“{name}”，但未能接收：{reason}"
                f"{'' if reason.endswith(('。', '！')) else '。'}该文件的内容均未采用，你单位此前报送的内容不受影响。")
        parts = [lead]
        if problems:
            parts.append(f"具体问题（{len(problems)}处）：")
        ask = ("请使用办公室下发的工作簿填报（可在原工作簿上修改），保存为 .xlsx 后重新作为附件发送。"
               "如找不到原工作簿，请回复本邮件索取。")
    tail = ["特此回执。", _contact_line(config), *_signature(config, clock.local(now).date())]
    text_lines = [f"{unit.name}：", "", *parts]
    html_parts: list[str] = [f"{unit.name}：", *parts]
    if problems:
        text_lines += text_problems
        html_parts.append(_html_table(table_headers, rows))
    if result.outcome != "accepted":
        text_lines += ["", ask]
        html_parts.append(ask)
    text = "\n".join([*text_lines, "", *tail]) + "\n"
    return Letter(subject, text, _html_doc([*html_parts, *tail]))


# --------------------------------------------------------------------------- reminders


def _group_head(deadline: dt.date, is_batch: bool, days_left: int, today: dt.date) -> str:
    """「完成时限2021年6月30日（已逾期3个工作日）」 for one due date of a reminder."""
    what = "报送截止" if is_batch else "完成时限"
    if days_left < 0:
        state = f"已逾期{-days_left}个工作日"
    elif deadline == today:
        state = "今天到期"
    else:
        state = f"还有{days_left}个工作日"
    return f"{what}{_cn_day(deadline)}（{state}）"


def _task_state(t: Any) -> str:
    """What the office knows of one unfinished task: never answered, refused (and why), or its answer."""
    if t.refused:
        return f"已报送但未通过：{t.refused}"
    return t.status or "未报送"


def reminder_letter(config: Config, batch: Batch, reminder: Any, today: dt.date, attached: str | None) -> Letter:
    """A reminder listing the unit's unfinished tasks by due date (``reminder``:
    :class:`automation.remind.Reminder`), each with its real state."""
    r = reminder
    n = len(r.tasks)
    due = getattr(r, "deadline", None) or batch.deadline
    round_no = getattr(r, "round", None)
    about = f"第{round_no}期进展报送截止日期为" if round_no else (
        "报送截止日期为" if due == batch.deadline else "部分任务的完成时限为")
    when = cn_date(due)
    refused = sum(1 for t in r.tasks if getattr(t, "refused", ""))
    open_text = f"仍有{n}项任务未报送或未完成" + (f"（其中{refused}项已报送但未通过审核）" if refused else "")
    if r.kind in ("escalate", "overdue"):
        tag = "逾期督办" if r.kind == "escalate" else "逾期提醒"
        subject = f"【{tag}】{batch.title}——{r.unit}已逾期{r.overdue_days}个工作日，尚有{n}项未完成"
        lead = f"《{batch.title}》{about}{when}，你单位已逾期{r.overdue_days}个工作日，{open_text}。"
        lead += "本提醒已抄送督查部门，请抓紧办理并报送。" if r.kind == "escalate" else "请尽快报送。"
    elif r.kind == "before" and r.days_left == 0:
        subject = f"【督办提醒】{batch.title}——今天截止，{r.unit}尚有{n}项未完成"
        lead = f"《{batch.title}》{about}今天（{when}），你单位{open_text}，请于今天内报送。"
    elif r.kind == "before":
        subject = f"【督办提醒】{batch.title}——距截止还有{r.days_left}个工作日，{r.unit}尚有{n}项未完成"
        lead = f"《{batch.title}》{about}{when}，距截止还有{r.days_left}个工作日，你单位{open_text}，请按时报送。"
    else:
        subject = f"【督办提醒】{batch.title}——{r.unit}尚有{n}项任务未完成（{_cn_day(due)}截止）"
        lead = f"《{batch.title}》{about}{when}。你单位{open_text}，请按时报送。"
    groups = [(g.deadline, g.batch, g.days_left, g.tasks) for g in getattr(r, "groups", ())] or [
        (batch.deadline, True, r.days_left if r.days_left is not None else -r.overdue_days, r.tasks)]
    how = ("附件是你单位的工作簿，已预填最近一次报送的内容；未通过的内容已原样填回并以红色标出、附有说明，"
           "请在其中改正、更新后作为附件回复本邮件。" if attached else
           f"请在下发的工作簿中填写后作为附件回复至{_reply_address(config)}。")
    tail = [_contact_line(config), *_signature(config, today)]
    text_lines = [f"{r.unit}：", "", lead, "", "未完成的任务："]
    html_parts: list[str] = [f"{r.unit}：", lead, "未完成的任务："]
    for deadline, is_batch, days_left, tasks in groups:
        head = _group_head(deadline, is_batch, days_left, today)
        rows = [(t.task, _short(t.title, 80), t.role, _task_state(t),
                 _cn_time(clock.parse(t.submitted_at)) if t.submitted_at else "—") for t in tasks]
        text_lines += [head, *(f"  {no}.{title}[{role}]当前：{state}" for no, title, role, state, _w in rows)]
        html_parts += [head, _html_table(("序号", "工作任务", "本单位角色", "当前落实情况", "最近报送"), rows)]
    text = "\n".join([*text_lines, "", how, "", *tail]) + "\n"
    return Letter(subject, text, _html_doc([*html_parts, how, *tail]))
