"""Whose file is this: the signature, the table revision it was issued for, the unit, the sender.

A signed workbook (the hidden metadata sheet with an HMAC under the batch's secret) names its
batch, unit and layout; the signature vouches for them, but only for the sheet it came with: a
unit that pasted another unit's hidden sheet into its own workbook would be filed as that unit.
So the signed unit must agree with what the workbook shows (the title line names the unit, the
rows are the signed unit's tasks); when they disagree the file is quarantined naming both.  An unsigned one (a unit copied its rows
into a new book) is accepted only when ``[collect] accept_unsigned`` allows it, and its unit
comes from the sheet title or the file name, which anyone can type: from a mailbox it is
accepted only for one of the sender's own units.

Files from a mailbox carry a ``sender``: it must be a registered unit address (``email``/``cc``)
or the file is quarantined; a unit's address sending another unit's signed workbook is accepted
for the workbook's unit with a warning naming the sender's unit.

Everything here reads :class:`~automation.collect.lookups.Lookups` and raises
:class:`~automation.collect.results.Quarantine` with the office's reason; nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from automation import clock
from automation.collect.lookups import Lookups
from automation.collect.results import Quarantine
from automation.collect.returned import (
    NoTaskSheet,
    SheetReading,
    read_metadata,
    read_task_sheet,
    role_shown,
    text_index,
)
from automation.collect.safety import ParsedBook
from automation.collect.values import parse_task_number
from automation.model import Batch, Problem, UnitRow
from automation.text import squash
from automation.workbook.layout import META_KEYS, META_MAGIC, Layout, verify

__all__ = ["Identity", "identify", "sender_unit", "sender_units", "sender_names", "address"]

_FORGED = ("签名校验失败：工作簿的隐藏签名页被改动过或为伪造，未接收。"
           "请使用办公室下发的原工作簿填报（可以另存为其他格式，但不要复制到新表格）。")


@dataclass
class Identity:
    batch: Batch
    unit: UnitRow
    layout: Layout
    signed: bool
    problems: list[Problem]


def address(sender: str | None) -> str:
    """The bare address of a From header, lower case."""
    return (parseaddr(sender or "")[1] or sender or "").strip().lower()


def sender_units(look: Lookups, sender: str | None) -> set[int] | None:
    """The units whose registered address sent the file (None: not from a mailbox)."""
    if not sender:
        return None
    addr = address(sender)
    units = look.by_email.get(addr)
    if not units:
        raise Quarantine(
            f"发件人 {addr} 不在单位通讯录中（config.toml 各单位的 email/cc），未接收。"
            "如确为某单位的新邮箱，请在 config.toml 中登记后重新收取。")
    return units


def sender_unit(look: Lookups, sender: str | None) -> UnitRow | None:
    """The one registered unit whose address sent a file (None: a folder file, or an address two
    units share)."""
    units = look.by_email.get(address(sender)) if sender else None
    if units and len(units) == 1:
        return look.units.get(next(iter(units)))
    return None


def sender_names(look: Lookups, units: set[int]) -> str:
    return "、".join(look.units[u].name for u in sorted(units) if u in look.units)


def identify(look: Lookups, book: ParsedBook, file_name: str, sender: str | None, senders: set[int] | None,
             accept_unsigned: bool) -> tuple[Identity, SheetReading]:
    """The batch, unit and layout of a parsed file, and where its task table is."""
    meta = read_metadata(book)
    problems: list[Problem] = []
    if meta is not None:
        batch, unit, layout = _verify_metadata(look, meta)
        signed = True
    else:
        layout = look.latest_layout()
        batch, unit, signed = look.batch, None, False
    try:
        reading = read_task_sheet(book, layout, meta or {})
    except NoTaskSheet as exc:
        raise Quarantine(exc.reason, unit=unit) from exc
    if unit is not None and meta is not None:
        _check_shown_unit(look, meta, unit, reading)
    if unit is None:
        unit, how = _unsigned_unit(look, reading, file_name, sender, senders, accept_unsigned)
        problems.append(Problem(
            f"文件没有签名页（不是下发的原工作簿），已根据{how}认定为“{unit.name}”并接收，请核实。", "warning"))
    return Identity(batch, unit, layout, signed, problems), reading


def _shown_rows(look: Lookups, reading: SheetReading) -> dict[int, Any]:
    """The tasks the sheet's rows show, each known by its issued text (its 序号 where the text is
    the issued one, else the task whose text it is) → the row's 本单位角色 cell."""
    cols, rows = reading.columns, reading.sheet.rows
    num, title, req, role = cols.get("number"), cols.get("title"), cols.get("requirement"), cols.get("role")
    if num is None or (title is None and req is None):
        return {}
    index = text_index(look.tasks)
    shown: dict[int, Any] = {}

    def cell(row: Sequence[Any], i: int | None) -> Any:
        return row[i] if i is not None and i < len(row) else ""

    for row in rows[reading.header_row + 1:]:
        n = parse_task_number(cell(row, num))
        t = cell(row, title)
        task = look.tasks.get(n) if n is not None else None
        found = task.number if task is not None and t == task.title else index.find(t, cell(row, req))
        if found is not None:
            shown.setdefault(found, cell(row, role))
    return shown


def _check_shown_unit(look: Lookups, meta: dict[str, str], unit: UnitRow, reading: SheetReading) -> None:
    """The signed unit must be the one the workbook shows: its title line, else its rows (whose
    tasks, or whose 本单位角色, are another unit's)."""
    shown = _unit_from_names(look, reading.title, "")
    if shown is not None and shown.id != unit.id:
        raise Quarantine(
            f"工作簿的隐藏签名页是“{unit.name}”的，但表格标题显示的是“{shown.name}”（“{reading.title[:60]}”），"
            f"可能是把“{unit.name}”工作簿中的隐藏页复制到了本表，未接收。请“{shown.name}”使用本单位下发的原工作簿"
            "重新填报，不要从其他单位的工作簿中复制工作表。", unit=shown)
    signed = {int(n) for n in meta.get("tasks", "").split(",") if n.strip().isdigit()}
    rows = _shown_rows(look, reading)
    if not rows or set(rows) == signed:
        return
    foreign = set(rows) - signed
    mine = look.assigned.get(unit.id, {})
    ours = sum(n in mine and role_shown(value, mine[n]) for n, value in rows.items())
    fits: dict[int, int] = {}  # units whose tasks are exactly the rows → how many role cells are theirs
    for u, tasks in look.assigned.items():
        if u != unit.id and set(tasks) == set(rows) and u in look.units:
            fits[u] = sum(role_shown(value, tasks[n]) for n, value in rows.items())
    best = max(fits.values(), default=0)
    owners = [look.units[u] for u, score in sorted(fits.items()) if score == best and score > ours]
    if not owners and len(foreign) <= len(set(rows) & signed):
        return  # rows deleted or added by the unit itself: reported row by row
    owner = owners[0] if len(owners) == 1 else None
    listed = "、".join(str(n) for n in sorted(foreign)[:10]) + ("等" if len(foreign) > 10 else "")
    names = "”或“".join(o.name for o in owners[:3]) + ("”等单位" if len(owners) > 3 else "”")
    whose = f"“{names}的任务清单" if owners else "其他单位的任务清单"
    detail = f"第 {listed} 项不是“{unit.name}”的任务" if foreign else f"各项的本单位角色不是“{unit.name}”的"
    raise Quarantine(
        f"工作簿的隐藏签名页是“{unit.name}”的，但表中的任务是{whose}（{detail}），"
        f"可能是把“{unit.name}”工作簿中的隐藏页复制到了本表，未接收。请使用本单位下发的原工作簿重新填报，"
        "不要从其他单位的工作簿中复制工作表。", unit=owner)


def _unsigned_unit(look: Lookups, reading: SheetReading, file_name: str, sender: str | None,
                   senders: set[int] | None, accept_unsigned: bool) -> tuple[UnitRow, str]:
    """The unit of a file without a signature, and how it was found (title, file name, sender)."""
    if not accept_unsigned:
        raise Quarantine("文件没有签名页（可能是把内容复制到了新表格中），按设置不予接收。"
                         "请在下发的原工作簿中填写后发送。")
    unit = _unit_from_names(look, reading.title, file_name)
    how = "标题或文件名"
    if unit is not None and senders is not None and unit.id not in senders:
        # Without a signature nothing vouches for the content: the unit comes from text anyone can
        # type, so a mailbox may only answer for its own units (a signed workbook is another matter).
        raise Quarantine(
            f"文件没有签名页（不是下发的原工作簿），标题或文件名表明是“{unit.name}”的，却由"
            f"“{sender_names(look, senders)}”的邮箱 {address(sender)} 发来，未接收。"
            f"没有签名页的文件只接收本单位登记邮箱发来的：请“{unit.name}”用本单位邮箱发送，"
            "或使用下发的原工作簿填报。")
    if unit is None and senders is not None and len(senders) == 1:
        only = next(iter(senders))
        unit, how = (look.units.get(only), "发件邮箱") if only in look.assigned else (None, how)
    if unit is None:
        raise Quarantine(
            "文件没有签名页（可能是把内容复制到了新表格中），且无法从标题或文件名确定是哪个单位。"
            "请在下发的原工作簿中填写，或在文件名中写明单位名称后重新发送。")
    return unit, how


def _verify_metadata(look: Lookups, meta: dict[str, str]) -> tuple[Batch, UnitRow, Layout]:
    if meta.get("magic") != META_MAGIC or not meta.get("signature"):
        raise Quarantine(_FORGED)
    batch = look.batch_by_uid(meta.get("batch_uid", ""))
    if batch is None:
        raise Quarantine("这个工作簿不是本台账中任何批次下发的（批次标识不认识），未接收。")
    fields = {k: meta.get(k, "") for k in META_KEYS}
    if not verify(batch.secret, fields, meta.get("signature", "")):
        raise Quarantine(_FORGED)
    try:
        unit_id = int(float(meta.get("unit_id", "")))
    except ValueError:
        raise Quarantine(_FORGED) from None
    unit = look.units.get(unit_id)
    if batch.id != look.batch.id:
        raise Quarantine(
            f"这是往期批次“{batch.title}”的工作簿，不是本批“{look.batch.title}”的。"
            "请使用本批下发的工作簿填报。", unit=unit)
    if unit is None or unit_id not in look.assigned:
        raise Quarantine(f"工作簿对应的单位“{meta.get('unit_name', '')}”在本批次中没有任务，未接收。", unit=unit)
    _check_revision(look, meta, unit)
    return batch, unit, look.layout(meta.get("template_version", "")) or look.latest_layout()


def _check_revision(look: Lookups, meta: dict[str, str], unit: UnitRow) -> None:
    """A workbook issued before the current task-table revision (``init --replace``) is accepted
    only if its tasks still have the same numbers and titles; otherwise its answers could land on
    other tasks (a renumbered table), so it is quarantined with a reason the office can act on."""
    revisions = look.revisions()
    if len(revisions) < 2:
        return
    try:
        issued = clock.parse(meta.get("issued_at", ""))
    except ValueError:
        return
    current = revisions[-1]
    if issued >= clock.parse(current.imported_at):
        return
    older = [r for r in revisions if clock.parse(r.imported_at) <= issued] or revisions[:1]
    old_titles = look.revision_titles(older[-1].revision)
    numbers = [int(n) for n in meta.get("tasks", "").split(",") if n.strip().isdigit()]
    changed = [n for n in numbers
               if n in look.tasks and n in old_titles and squash(old_titles[n]) != squash(look.tasks[n].title)]
    if changed:
        shown = "、".join(str(n) for n in changed[:10]) + ("等" if len(changed) > 10 else "")
        raise Quarantine(
            f"这份工作簿是按旧版任务表（第 {older[-1].revision} 版）生成的，任务表已更新为第 {current.revision} 版，"
            f"第 {shown} 项的任务已经变化；为避免把填报记到错误的任务上，未接收。请使用新下发的工作簿重新填报。",
            unit=unit)


def _unit_from_names(look: Lookups, title: str, file_name: str) -> UnitRow | None:
    """The one unit named in the sheet title, else in the file name (None if none or several)."""
    batch_key = squash(look.batch.title)
    for text in (title, Path(file_name).stem):
        hay = squash(text).replace(batch_key, "")
        found: set[int] = set()
        taken: list[tuple[int, int]] = []
        for spelling, uid in look.spellings():
            start = hay.find(spelling)
            while start >= 0:
                end = start + len(spelling)
                if not any(s < end and start < e for s, e in taken):
                    taken.append((start, end))
                    found.add(uid)
                start = hay.find(spelling, start + 1)
        if len(found) == 1:
            return look.units[found.pop()]
        if len(found) > 1:
            return None
    return None
