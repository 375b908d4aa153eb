"""What ``send`` would do, shown before it does it: recipients, attachments, outbox or SMTP.

The console's 分发 page and ``automation send --preview`` read it.  Writes nothing and never
touches a password (only the name of the environment variable that holds it, and whether it
is set).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from automation.config import Config
from automation.ledger import Ledger
from automation.mail.distribution import distribution_key

__all__ = ["RecipientLine", "DistributionPreview", "distribution_preview", "STATE_NAMES"]

#: The ledger's message states (and "not sent yet") in the office's words.
STATE_NAMES = {"": "未发送", "pending": "发送中", "sent": "已发送", "failed": "发送失败", "uncertain": "结果不确定",
               "no-address": "未登记邮箱"}


@dataclass(frozen=True)
class RecipientLine:
    unit_id: int
    unit: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    attachment: str
    tasks: int
    state: str            # "" (not sent yet), pending, sent, failed, uncertain, no-address
    error: str
    sent_at: str | None

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, self.state)

    @property
    def will_send(self) -> bool:
        """Would a plain ``send`` mail this unit now (not sent, or failed before)?"""
        return self.state in ("", "failed")


@dataclass(frozen=True)
class DistributionPreview:
    batch: str
    revision: int
    mode: str                     # outbox | smtp
    mode_text: str                # what happens, in plain words
    sender: str
    password_env: str             # the variable's name only
    password_set: bool
    lines: list[RecipientLine]

    def count(self, state: str) -> int:
        return sum(1 for line in self.lines if line.state == state)

    @property
    def to_send(self) -> int:
        return sum(1 for line in self.lines if line.will_send)


def distribution_preview(config: Config, ledger: Ledger, units: Sequence[str] | None = None) -> DistributionPreview:
    """Every assigned unit (or the named ones): addresses, the workbook it gets, its mail's state."""
    from automation.units import Registry
    from automation.workbook.build import workbook_filename
    from automation.workspace import Workspace

    batch = ledger.require_batch(config.batch.title)
    selected = ledger.assigned_units(batch.id)
    if units:
        registry = Registry.from_config(config)
        wanted = {u for n in units for u in registry.resolve(n, where="--unit")}
        selected = [u for u in selected if u.name in wanted]
    counts = ledger.assignment_counts(batch.id)
    built = ledger.latest_issue_paths(batch.id)
    messages = ledger.messages_by_keys(distribution_key(batch, u) for u in selected)
    lines = []
    for u in selected:
        m = messages.get(distribution_key(batch, u))
        emails = {e.lower() for e in u.emails}
        state = m.state if m else ("" if u.emails else "no-address")
        lines.append(RecipientLine(
            u.id, u.name, tuple(u.emails), tuple(c for c in u.cc if c.lower() not in emails),
            Path(built[u.id]).name if u.id in built else workbook_filename(batch.title, u.name),
            counts.get(u.id, 0), state, (m.error or "") if m else "", m.sent_at if m else None))
    mail = config.mail
    if mail.mode == "smtp":
        text = (f"SMTP 真实发送：{mail.host}:{mail.port}（{ {'ssl': 'SSL', 'starttls': 'STARTTLS', 'none': '不加密'}[mail.security] }），"
                f"发件人 {mail.sender or '（未设置）'}")
    else:
        text = f"发件箱模式（不真正发出）：邮件写成 .eml 文件，保存在 {Workspace(config.workspace).outbox}"
    return DistributionPreview(batch.title, batch.revision, mail.mode, text, mail.sender, mail.password_env,
                               bool(mail.password()), lines)
