"""The workbook contract: one layout spec drives both the writer and the parser.

The builder (:mod:`automation.workbook.build`) writes assignment workbooks from a :class:`Layout`;
the collector (:mod:`automation.collect.pipeline`) reads returned workbooks with the *same* layout, looked
up in the ledger by the template version recorded in the file's metadata sheet, so the two
cannot drift even after the office edits the template.

The office edits ``templates/report_template.xlsx`` (column order, labels, widths, styles,
fill-in flags, status options, instructions); :func:`automation.workbook.template.read_template` turns
it into a Layout.  :data:`DEFAULT_LAYOUT` is what ``scripts/make_template.py`` writes.

An issued workbook (what :func:`automation.workbook.build.build_unit_workbook` writes):

- :data:`TASK_SHEET` (任务清单): row 1 the title (:attr:`Layout.title_format`); row 2 the contact
  row: a cell ``填报联系人：`` (:data:`CONTACT_LABEL` followed by a full-width colon, possibly
  merged over several columns) and the unit's answer in the first cell after it, then the same
  for ``联系电话：`` (:data:`PHONE_LABEL`); row :data:`HEADER_ROW` the header (the layout's
  labels, in the layout's order); below it section (``一、…``) and subsection (``（一）…``)
  heading rows, merged across the table and with an empty 序号 cell, and one row per task whose
  ``number`` column holds the task number as a number.  Units may re-sort, filter, insert rows
  or save as .xls/.ods, so readers should locate the header by its labels and rows by 序号.
- :data:`HELP_SHEET` (填报说明): the instructions.
- :data:`LISTS_SHEET` (hidden): column A row 1 the status column's header, rows 2.. the status
  options (the dropdown's source range); column B their meanings.
- :data:`META_SHEET` (very hidden): one key/value pair per row, column A the key, column B the
  value, every cell a string, no header row.  The rows are :data:`META_KEYS` in order
  (``tasks`` = comma-separated task numbers in sheet order, ``unit_id`` = ledger ``units.id``,
  ``issued_at`` = ISO time with offset), then ``signature`` = :func:`sign` over them with the
  batch secret (hex), then unsigned layout hints (:data:`META_HINT_KEYS`: ``header_row`` as
  a 1-based row number, ``contact_cell`` and ``phone_cell`` as A1 references), then one
  ``col_<key>`` row per fill-in column with its column letters (:data:`COLUMN_HINT_PREFIX`), so a
  column whose header a unit retitled is still found; a reader may use hints as a first guess
  but must not trust them.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = [
    "Column",
    "Layout",
    "DEFAULT_LAYOUT",
    "TASK_SHEET",
    "HELP_SHEET",
    "LISTS_SHEET",
    "META_SHEET",
    "META_MAGIC",
    "META_KEYS",
    "META_HINT_KEYS",
    "COLUMN_HINT_PREFIX",
    "SIGNATURE_KEY",
    "HEADER_ROW",
    "FIELD_NAMES",
    "CONTACT_LABEL",
    "PHONE_LABEL",
    "FILL_KEYS",
    "TASK_KEYS",
    "canonical_metadata",
    "filling_rules",
    "sign",
    "verify",
]

TASK_SHEET = "任务清单"
HELP_SHEET = "填报说明"
LISTS_SHEET = "选项"          # hidden: dropdown source ranges
META_SHEET = "_duban_meta"    # very hidden: batch, unit, tasks, signature
META_MAGIC = "duban-workbook/1"
CONTACT_LABEL = "填报联系人"
PHONE_LABEL = "联系电话"

#: Keys signed by the HMAC, in canonical order.
META_KEYS = ("magic", "batch_uid", "batch_title", "unit_id", "unit_name", "template_version", "issued_at", "tasks")
#: The metadata row holding the HMAC (hex) over :data:`META_KEYS`.
SIGNATURE_KEY = "signature"
#: Unsigned hints after the signature row: where the builder put the header and contact cells.
META_HINT_KEYS = ("header_row", "contact_cell", "phone_cell")
#: Unsigned hint per fill-in column after those: ``col_progress`` = ``H`` (where it was issued).
COLUMN_HINT_PREFIX = "col_"
#: 1-based row of the 任务清单 header in issued workbooks (title, contact row, header).
HEADER_ROW = 3

#: Column keys the office may place, and what they hold.
TASK_KEYS = ("number", "title", "requirement", "lead", "responsible", "role", "due")
FILL_KEYS = ("status", "progress", "completed_on", "evidence", "issues")
#: The fixed Chinese name of each column key: what the template's 对应内容 row holds, so the
#: office may rename a header freely while the builder still knows what the column is.
FIELD_NAMES = {
    "number": "序号", "title": "工作任务", "requirement": "工作要求", "lead": "牵头单位", "responsible": "责任单位",
    "role": "本单位角色", "due": "完成时限", "status": "落实情况", "progress": "工作进展及成效", "completed_on": "完成时间",
    "evidence": "佐证材料", "issues": "存在问题及下步打算",
}
COLUMN_KINDS = {
    "number": "number", "title": "text", "requirement": "text", "lead": "text", "responsible": "text",
    "role": "text", "due": "text", "status": "status", "progress": "long_text", "completed_on": "date", "evidence": "text",
    "issues": "long_text",
}


@dataclass(frozen=True)
class Column:
    """One column of the 任务清单 sheet."""

    key: str
    header: str
    width: float
    fill_in: bool
    prompt: str = ""  # input message; {statuses} stands for the status options
    header_style: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return COLUMN_KINDS.get(self.key, "text")


@dataclass(frozen=True)
class Layout:
    """Everything about a workbook's shape that the template controls."""

    columns: tuple[Column, ...]
    status_options: tuple[tuple[str, str], ...]  # (value, meaning)
    instructions: tuple[str, ...]                # lines with {unit} {deadline} {office} {contact} {phone}
    styles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # title/header/section/…
    title_format: str = "{batch}——{unit}落实情况填报表"

    @property
    def statuses(self) -> tuple[str, ...]:
        return tuple(v for v, _ in self.status_options)

    def column(self, key: str) -> Column | None:
        return next((c for c in self.columns if c.key == key), None)

    def index(self, key: str) -> int | None:
        return next((i for i, c in enumerate(self.columns) if c.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [{**asdict(c), "header_style": dict(c.header_style)} for c in self.columns],
            "status_options": [list(o) for o in self.status_options],
            "instructions": list(self.instructions),
            "styles": {k: dict(v) for k, v in self.styles.items()},
            "title_format": self.title_format,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Layout:
        return cls(
            columns=tuple(Column(**{**c, "header_style": dict(c.get("header_style") or {})})
                          for c in data["columns"]),
            status_options=tuple((o[0], o[1]) for o in data["status_options"]),
            instructions=tuple(data.get("instructions", ())),
            styles={k: dict(v) for k, v in (data.get("styles") or {}).items()},
            title_format=data.get("title_format", cls.title_format),
        )

    @property
    def version(self) -> str:
        """A short content hash: the same template gives the same version on every machine."""
        payload = json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]

    def with_columns(self, columns: Sequence[Column]) -> Layout:
        return replace(self, columns=tuple(columns))


_HEADER = {"bold": True, "font_name": "宋体", "font_size": 11, "bg_color": "#D9E1F2", "border": 1,
           "align": "center", "valign": "vcenter", "text_wrap": True}
_FILL_HEADER = {**_HEADER, "bg_color": "#FFF2CC"}

DEFAULT_LAYOUT = Layout(
    columns=(
        Column("number", "序号", 5, False, header_style=_HEADER),
        Column("title", "工作任务", 22, False, header_style=_HEADER),
        Column("requirement", "工作要求", 36, False, header_style=_HEADER),
        Column("lead", "牵头单位", 12, False, header_style=_HEADER),
        Column("responsible", "责任单位", 12, False, header_style=_HEADER),
        Column("role", "本单位角色", 10, False, header_style=_HEADER),
        Column("status", "落实情况", 10, True,
               "请从下拉列表选择：{statuses}。", _FILL_HEADER),
        Column("progress", "工作进展及成效", 32, True,
               "简要写明已做的工作、取得的成效；选“已完成”时必填。", _FILL_HEADER),
        Column("completed_on", "完成时间", 11, True,
               "填写日期，例如 2021-06-30；未完成可留空。", _FILL_HEADER),
        Column("evidence", "佐证材料", 16, True,
               "填写佐证材料名称或网址，材料另行报送。", _FILL_HEADER),
        Column("issues", "存在问题及下步打算", 24, True,
               "如有困难或问题，请写明原因和下一步安排。", _FILL_HEADER),
        Column("due", "完成时限", 10, False, header_style=_HEADER),
    ),
    status_options=(
        ("已完成", "该项任务已全部完成"),
        ("推进中", "已启动，正在推进，尚未全部完成"),
        ("未启动", "尚未开展"),
        ("不适用", "本单位不涉及该项任务（请在“存在问题及下步打算”中说明理由）"),
    ),
    instructions=(
        "{batch}——填报说明",
        "填报单位：{unit}",
        "报送截止日期：{deadline}",
        "一、请在“任务清单”工作表中逐项填写黄色表头的各列：落实情况、工作进展及成效、完成时间、佐证材料、存在问题及下步打算。",
        "二、“落实情况”请从下拉列表中选择。各选项含义：",
        "{status_meanings}",
        "三、填报规则（不符合的内容不予采用，回执中会逐项列出，请改正后重新报送）：",
        "{rules}",
        "四、序号、工作任务、工作要求、牵头单位、责任单位、本单位角色、完成时限为下发内容，已锁定，请勿修改。"
        "任务按完成时限先后排列，已过完成时限仍未完成的，完成时限以红色标出。",
        "五、请在表格上方填写填报联系人和联系电话。",
        "六、填好后请直接保存本文件（可另存为.xlsx、.xls或.ods，可改文件名），作为邮件附件回复至{email}。",
        "七、填报中有疑问请联系：{office}{contact}，电话{phone}。",
    ),
    styles={
        "title": {"bold": True, "font_name": "黑体", "font_size": 16, "valign": "vcenter"},  # centred by the builder
        "section": {"bold": True, "font_name": "黑体", "font_size": 11, "bg_color": "#EDEDED", "border": 1,
                    "valign": "vcenter", "text_wrap": True},
        "subsection": {"bold": True, "font_name": "楷体", "font_size": 11, "bg_color": "#F5F5F5", "border": 1,
                       "valign": "vcenter", "text_wrap": True},
        "task": {"font_name": "宋体", "font_size": 10, "border": 1, "valign": "top", "text_wrap": True},
        "fill": {"font_name": "宋体", "font_size": 10, "border": 1, "valign": "top", "text_wrap": True,
                 "bg_color": "#FFFDF0"},
        "help": {"font_name": "宋体", "font_size": 12, "text_wrap": True, "valign": "top"},
        "help_title": {"bold": True, "font_name": "黑体", "font_size": 16},
    },
)


def filling_rules(require_progress_when_done: bool = True, no_future_completion: bool = True) -> tuple[str, ...]:
    """The rules a return is judged by, for the unit (填报说明 ``{rules}``, the sending mail): the
    first two follow ``[collect]``, so what the unit is told is what the collector refuses."""
    rules = []
    if require_progress_when_done:
        rules.append("“落实情况”选“已完成”的，必须填写“工作进展及成效”，写明做了哪些工作、取得了什么成效；"
                     "未填写的，该项不予采用。")
    if no_future_completion:
        rules.append("“完成时间”填写实际完成的日期（如2021-06-30），不能晚于报送当天；尚未完成的请选“推进中”，"
                     "完成时间留空。")
    rules.append("佐证材料：在“佐证材料”列写明材料名称或网址；材料文件（PDF、图片、Word等）作为附件随填报邮件一并发送，"
                 "不要插入工作簿中（工作簿里的图片、附件不会被读取）。")
    rules.append("本单位角色为“牵头”的任务，请填报该项任务的总体推进情况（含各责任单位的落实情况），不只是本单位自身的工作；"
                 "角色为“责任”的，填报本单位承担部分的落实情况。")
    return tuple(f"{i}.{text}" for i, text in enumerate(rules, start=1))


def canonical_metadata(fields: Mapping[str, Any]) -> bytes:
    """The bytes the signature covers: ``key=value`` lines in :data:`META_KEYS` order."""
    lines = []
    for key in META_KEYS:
        value = fields.get(key, "")
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        lines.append(f"{key}={value}")
    return "\n".join(lines).encode("utf-8")


def sign(secret: bytes, fields: Mapping[str, Any]) -> str:
    """HMAC-SHA256 (hex) of the metadata fields with the batch secret."""
    return hmac.new(secret, canonical_metadata(fields), hashlib.sha256).hexdigest()


def verify(secret: bytes, fields: Mapping[str, Any], signature: str) -> bool:
    """Constant-time check of a metadata signature."""
    return hmac.compare_digest(sign(secret, fields), str(signature or "").strip().lower())
