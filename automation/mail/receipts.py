"""回执 (receipts): one message per returned file from a known unit, saying what was taken and what to fix.

:func:`send_owed_receipts` is the one entry point: ``collect``, ``run`` / the service's poll and
``send --receipts`` all call it.  It sends every receipt still owed according to the ledger
(:func:`pending_receipts`), not just the files of one run: the run that collected a file may not
get its receipt out (the password / 授权码 is wrong on first setup, the server is down, the
process dies after the ledger write), and the next call then sends it.  Each receipt is sent at
most once per file content and outcome (:func:`receipt_key`).

Inside, three steps a change can find separately: what is owed (:func:`pending_receipts`), to
whom (:func:`receipt_recipients`), and the message itself (:func:`receipt_message`, with the
text from :func:`automation.mail.letters.receipt_letter`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from email.message import Message
from email.utils import getaddresses
from typing import Any

from automation.config import Config
from automation.ledger import Ledger
from automation.ledger.records import OwedReceipt
from automation.mail import letters
from automation.mail.compose import compose_message, unit_recipients
from automation.mail.sending import SendResult, no_address, send_once, settled_result
from automation.mail.transports import Transport
from automation.model import Batch, UnitRow

__all__ = ["receipt_key", "receipt_facts", "pending_receipts", "receipt_recipients", "receipt_message", "send_receipts",
           "send_owed_receipts", "OwedReceipt"]

#: An open transport, or a function that opens one (see :func:`send_owed_receipts`).
TransportSource = Transport | Callable[[], Transport]


def receipt_key(result: Any) -> str:
    """Idempotency key of the 回执 for one collected file: per content and outcome, so a file
    quarantined first and accepted after a re-check gets one receipt for each.
    (:meth:`automation.ledger.Ledger.owed_receipts` builds the same key in SQL.)"""
    return f"receipt:{result.sha256}:{result.outcome}"


def pending_receipts(
    config: Config,
    ledger: Ledger,
    *,
    retry_refused: bool = False,
    include_uncertain: bool = False,
) -> list[OwedReceipt]:
    """Every 回执 still owed, from the ledger, oldest first.

    Owed: an accepted or quarantined submission of the current batch from a known unit whose
    receipt (:func:`receipt_key`) has no ``messages`` row, or one in state ``failed``; ``sent``,
    ``pending`` and ``uncertain`` ones are never owed again (``include_uncertain`` brings the
    pending / uncertain ones back for ``--resend-uncertain``).

    A receipt that every one of its current recipients refused permanently (5xx, e.g. the address
    does not exist) is left out unless ``retry_refused``: each poll would only be refused again.
    When the unit's addresses are corrected (config.toml, synced into the ledger by ``init``) its
    recipients change and it is owed again.  Files with no address to answer (unit without e-mail,
    file from a folder) are left out too.  Empty when ``[collect] receipts`` is off or there is no
    batch yet.
    """
    if not config.collect.receipts:
        return []
    batch = ledger.batch_by_title(config.batch.title)
    if batch is None:
        return []
    units: dict[int, UnitRow | None] = {}
    out: list[OwedReceipt] = []
    for owed in ledger.owed_receipts(batch.id, include_uncertain=include_uncertain):
        if owed.unit_id not in units:
            units[owed.unit_id] = ledger.unit(owed.unit_id)
        unit = units[owed.unit_id]
        if unit is None:
            continue
        if not receipt_recipients(unit, owed.sender)[0]:
            continue  # no address to send it to (the registry lacks one; a folder file has no sender)
        if owed.last_state == "failed" and not retry_refused and _refused_by_all(owed.last_detail, unit, owed.sender):
            continue
        out.append(owed)
    return out


def _refused_by_all(detail: dict[str, Any], unit: UnitRow, sender: str | None) -> bool:
    """Did the last attempt fail because every one of today's recipients refused it for good?"""
    refused = {str(a).lower() for a in (detail.get("refused") or {})}
    if not detail.get("permanent") or not refused:
        return False  # transient, or nothing per recipient (login refused, server down): try again
    to, cc = receipt_recipients(unit, sender)
    return bool(to) and {a.lower() for a in to + cc} <= refused


def receipt_recipients(unit: UnitRow, sender: Any) -> tuple[list[str], list[str]]:
    """(To, Cc): the unit's addresses, plus the address the file came from when it is another one."""
    to, cc = unit_recipients(unit)
    address = _plain_address(sender)
    if address and address.lower() not in {a.lower() for a in to + cc}:
        to = [*to, address]
    return to, cc


def _plain_address(value: Any) -> str:
    if not value:
        return ""
    addr = getaddresses([str(value)])[0][1]
    return addr if "@" in addr and not any(c in addr for c in "\r\n<>,;") else ""


def receipt_facts(ledger: Ledger, batch: Batch | None, unit: UnitRow, result: Any) -> letters.ReceiptFacts | None:
    """The unit's assigned tasks and those its files received before this one answered, for the
    receipt's counts (a file received later is not "earlier", even when its receipt went first)."""
    if batch is None:
        return None
    assigned = tuple(dict.fromkeys(a.task for a in ledger.assignments(batch.id, unit.id)))
    received = getattr(result, "received_at", None)
    return letters.ReceiptFacts(assigned, ledger.answered_before(
        batch.id, unit.id, getattr(result, "submission_id", None), str(received) if received else None))


def receipt_message(config: Config, batch: Batch | None, unit: UnitRow, result: Any, to: Sequence[str],
                    cc: Sequence[str], now: dt.datetime, facts: letters.ReceiptFacts | None = None) -> Message:
    """The 回执 for one file, as a reply to the unit's message when it came by mail."""
    letter = letters.receipt_letter(config, batch, unit, result, now, facts)
    return compose_message(config.mail, to=to, cc=cc, subject=letter.subject, text=letter.text, html=letter.html,
                           now=now, in_reply_to=getattr(result, "message_id", None) or None)


def send_receipts(
    config: Config,
    ledger: Ledger,
    results: Sequence[Any],
    now: dt.datetime,
    transport: Transport,
    *,
    resend_uncertain: bool = False,
    out: list[SendResult] | None = None,
) -> list[SendResult]:
    """回执 for the given files: one message per returned file from a known unit (accepted or quarantined).

    ``results`` are :class:`automation.collect.pipeline.FileResult` or :class:`OwedReceipt` (what
    :func:`pending_receipts` finds owed).  Duplicates (a file already processed) and files from
    unknown senders get none.  Idempotent per submission (file hash and outcome).  ``out``: a
    list to append each result to as it is settled (returned).
    """
    out = out if out is not None else []
    if not config.collect.receipts:
        return out
    batch = ledger.batch_by_title(config.batch.title)
    for fr in results:
        if getattr(fr, "outcome", "") not in ("accepted", "quarantined") or getattr(fr, "unit_id", None) is None:
            continue
        unit = ledger.unit(int(fr.unit_id))
        if unit is None:
            continue
        key = receipt_key(fr)
        settled = settled_result(ledger, key, now, resend_uncertain=resend_uncertain, purpose="receipt",
                                 unit=unit.name, unit_id=unit.id)
        if settled is not None:
            out.append(settled)
            continue
        to, cc = receipt_recipients(unit, getattr(fr, "sender", None))
        facts = receipt_facts(ledger, batch, unit, fr)
        if not to:
            out.append(no_address(key, "receipt", unit,
                                  letters.receipt_letter(config, batch, unit, fr, now, facts).subject))
            continue
        msg = receipt_message(config, batch, unit, fr, to, cc, now, facts)
        out.append(send_once(ledger, transport, key, "receipt", batch.id if batch else None, unit.id, msg, now,
                             resend_uncertain=resend_uncertain, unit=unit.name,
                             detail={"file": fr.file_name, "outcome": fr.outcome,
                                     "submission_id": getattr(fr, "submission_id", None)}))
    return out


def send_owed_receipts(
    config: Config,
    ledger: Ledger,
    now: dt.datetime,
    transport: TransportSource,
    *,
    retry_refused: bool = False,
    resend_uncertain: bool = False,
    results: list[SendResult] | None = None,
) -> list[SendResult]:
    """Send every 回执 the ledger says is owed; the one function the CLI and the service call.

    ``transport``: an open transport (used, left open), or a function that opens one: it is
    called only when a receipt is owed, and what it opens is closed here.  The service polls
    every few minutes; with nothing owed it neither logs in to the SMTP server nor needs the
    password.  ``retry_refused`` / ``resend_uncertain``: see :func:`pending_receipts` (``send
    --receipts`` retries refused ones).  ``results``: a list to append each result to as it is
    settled, so a caller still has what went out when a fatal transport error (login refused,
    server gone) stops the run.  Empty when nothing is owed or ``[collect] receipts`` is off.
    """
    out = results if results is not None else []
    owed = pending_receipts(config, ledger, retry_refused=retry_refused, include_uncertain=resend_uncertain)
    if not owed:
        return out
    if hasattr(transport, "send"):
        return send_receipts(config, ledger, owed, now, transport, resend_uncertain=resend_uncertain, out=out)
    with transport() as opened:
        return send_receipts(config, ledger, owed, now, opened, resend_uncertain=resend_uncertain, out=out)
