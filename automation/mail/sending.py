"""At-most-once sending: every message under an idempotency key, recorded before it goes out.

Every message has an idempotency key and a row in the ledger's ``messages`` table.  The row is
written as ``pending`` with the Message-ID *before* the transport is called and marked ``sent``
after.  A ``pending`` row found later means the process died in between: it may or may not have
gone out, so it becomes ``uncertain`` and is never sent again unless the user asks
(``--resend-uncertain``, same Message-ID, so a client that got both shows one).  Every mailing
(distribution, receipts, reminders) sends through :func:`send_once`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses
from typing import Any

from automation.ledger import Ledger
from automation.mail.compose import headers_of, make_message_id, recipients_of, set_message_id
from automation.mail.transports import Delivery, Transport, TransportError
from automation.model import UnitRow

__all__ = ["SendResult", "send_once", "settled_result", "no_address"]

_UNCERTAIN = ("上次运行在发送与记录之间中断，无法确定是否已发出；为避免重复未再发送。"
              "如确认对方未收到，可加 --resend-uncertain 重发。")


@dataclass
class SendResult:
    """One message and what happened to it in this run.

    ``action``: ``sent`` (went out now), ``resent`` (an uncertain one, on request), ``skipped``
    (already sent earlier), ``held`` (uncertain: a crash may have sent it; not repeated),
    ``failed`` (nobody got it; a later run tries again), ``no-address`` (unit has no e-mail),
    ``dry-run`` (would be sent).  ``state`` is the ledger state afterwards.
    """

    idem_key: str
    purpose: str
    unit: str
    unit_id: int | None
    subject: str
    action: str
    state: str = ""
    message_id: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    error: str = ""
    path: str | None = None
    attempts: int = 0
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.idem_key, "purpose": self.purpose, "unit": self.unit, "action": self.action,
            "state": self.state, "message_id": self.message_id, "subject": self.subject, "to": self.to,
            "cc": self.cc, "refused": self.refused, "error": self.error, "path": self.path,
            "attempts": self.attempts, **self.detail,
        }


def no_address(key: str, purpose: str, unit: UnitRow, subject: str) -> SendResult:
    """The result for a unit that has no e-mail address to send to."""
    return SendResult(key, purpose, unit.name, unit.id, subject, action="no-address", state="",
                      error=f"单位“{unit.name}”未登记邮箱：请在 config.toml 该单位的 [[units]] 中填写 email。")


def settled_result(
    ledger: Ledger,
    idem_key: str,
    now: dt.datetime,
    *,
    resend_uncertain: bool = False,
    purpose: str = "",
    unit: str = "",
    unit_id: int | None = None,
) -> SendResult | None:
    """A result when ``idem_key`` needs no sending now (``skipped`` / ``held``), else None.

    Turns a leftover ``pending`` row (a run died between sending and recording) into
    ``uncertain``.  Callers check this before building attachments they would not need.
    """
    row = ledger.message_row(idem_key)
    if row is None or row.state == "failed" or (row.state == "uncertain" and resend_uncertain):
        return None
    result = SendResult(idem_key, purpose or row.purpose, unit, unit_id, row.subject, action="skipped",
                        state=row.state, message_id=row.message_id, path=row.path, attempts=row.attempts,
                        to=list(row.recipients))
    if row.state == "sent":
        return result
    if row.state == "pending":
        if resend_uncertain:
            return None
        with ledger.transaction():
            ledger.record_message_uncertain(row.id, error=_UNCERTAIN, only_if_pending=True)
            ledger.event("mail-uncertain", now, key=idem_key, message_id=row.message_id)
    result.action, result.state = "held", "uncertain"
    result.error = "发送结果不确定（上次运行中断），未重发；确认未收到时可加 --resend-uncertain。"
    return result


def send_once(
    ledger: Ledger,
    transport: Transport,
    idem_key: str,
    purpose: str,
    batch_id: int | None,
    unit_id: int | None,
    message: Message,
    now: dt.datetime,
    *,
    resend_uncertain: bool = False,
    unit: str = "",
    detail: dict[str, Any] | None = None,
) -> SendResult:
    """Send ``message`` at most once per ``idem_key``.

    - no row: insert ``pending`` with the message's Message-ID, send, mark ``sent``;
    - ``sent``: nothing (``skipped``);
    - ``pending`` (a previous run died between sending and recording): mark ``uncertain``, do not
      send (``held``) — it may already be in the unit's inbox;
    - ``uncertain``: ``held`` again, unless ``resend_uncertain``: then sent with the *same*
      Message-ID (``resent``);
    - ``failed`` (nobody got it): sent again with the same Message-ID.
    A transport failure marks the row ``failed`` (per-recipient reasons in its detail); an
    unexpected exception while sending marks it ``uncertain`` and propagates.
    """
    detail = dict(detail or {})
    subject, to, cc = headers_of(message)
    recipients = recipients_of(message)
    base = SendResult(idem_key, purpose, unit, unit_id, subject, action="", to=to, cc=cc, detail=detail)
    with ledger.transaction():
        settled = settled_result(ledger, idem_key, now, resend_uncertain=resend_uncertain, purpose=purpose,
                                 unit=unit, unit_id=unit_id)
        if settled is not None:
            settled.to, settled.cc, settled.detail = to, cc, detail
            return settled
        row = ledger.message_row(idem_key)
        if row is not None:
            base.attempts = row.attempts
            action = "resent" if row.state in ("uncertain", "pending") else "sent"
            set_message_id(message, row.message_id)
            ledger.record_message_retry(row.id, subject=subject, recipients=recipients)
            row_id = row.id
        else:
            action = "sent"
            message_id = str(message.get("Message-ID") or "")
            if not message_id:
                message_id = make_message_id(str(getaddresses([str(message.get("From", ""))])[0][1]), now)
                set_message_id(message, message_id)
            row_id = ledger.record_pending_message(
                idem_key=idem_key, purpose=purpose, batch_id=batch_id, unit_id=unit_id, message_id=message_id,
                subject=subject, recipients=recipients, now=now, detail=detail)
    base.message_id = str(message["Message-ID"])
    base.attempts += 1
    try:
        delivery = transport.send(message, idem_key)
    except TransportError as exc:
        ledger.record_message_failed(row_id, error=str(exc),
                                     detail={**detail, "refused": exc.refused, "permanent": exc.permanent})
        if exc.fatal:
            raise
        base.action, base.state, base.error, base.refused = "failed", "failed", str(exc), dict(exc.refused)
        return base
    except BaseException as exc:
        ledger.record_message_uncertain(row_id, error=f"发送时出错，结果不确定：{type(exc).__name__}: {exc}")
        raise
    _record_sent(ledger, row_id, delivery, now, detail)
    base.action, base.state, base.refused, base.path = action, "sent", dict(delivery.refused), delivery.path
    if delivery.refused:
        base.error = "部分收件人拒收：" + "；".join(f"{a} {t}" for a, t in delivery.refused.items())
    return base


def _record_sent(ledger: Ledger, row_id: int, delivery: Delivery, now: dt.datetime, detail: dict[str, Any]) -> None:
    ledger.record_message_sent(
        row_id, now, path=delivery.path,
        error="；".join(f"{a} {t}" for a, t in delivery.refused.items()) or None,
        detail={**detail, "accepted": delivery.accepted, "refused": delivery.refused,
                "smtp_attempts": delivery.attempts})
