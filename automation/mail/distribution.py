"""Distribution: every assigned unit gets its workbook with a Chinese cover letter, once per table revision."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from automation import clock
from automation.config import Config
from automation.errors import AutomationError
from automation.fsutil import sha256_file
from automation.ledger import Ledger
from automation.mail import letters
from automation.mail.attachment import Attachment
from automation.mail.compose import compose_message, unit_recipients
from automation.mail.sending import SendResult, no_address, send_once, settled_result
from automation.mail.transports import Transport
from automation.model import Batch, UnitRow

__all__ = ["distribute", "distribution_key"]


def distribution_key(batch: Batch, unit: UnitRow) -> str:
    """Per (batch, table revision, unit): a new task-table revision is a new distribution."""
    return f"distribute:{batch.id}:{unit.id}:r{batch.revision}"


def distribute(
    config: Config,
    ledger: Ledger,
    now: dt.datetime,
    transport: Transport,
    units: Sequence[str] | None = None,
    *,
    resend_uncertain: bool = False,
    results: list[SendResult] | None = None,
) -> list[SendResult]:
    """Mail every assigned unit (or the named ones) its workbook with a Chinese cover letter.

    Idempotent per (batch, table revision, unit): a re-run sends only what has not gone out.
    Missing or stale workbooks are built first.  ``results``: a list to append each result to as
    it is settled (returned), so a caller still has what went out when a fatal transport error
    (login refused, server gone) stops the run.
    """
    batch = ledger.require_batch(config.batch.title)
    out = results if results is not None else []
    todo: list[tuple[UnitRow, str]] = []
    for unit in _select_units(config, ledger, batch, units):
        key = distribution_key(batch, unit)
        settled = settled_result(ledger, key, now, resend_uncertain=resend_uncertain, purpose="distribute",
                                 unit=unit.name, unit_id=unit.id)
        if settled is not None:
            out.append(settled)
        elif not unit.emails:
            out.append(no_address(key, "distribute", unit, ""))
        else:
            todo.append((unit, key))
    if not todo:
        return out
    paths = _ensure_workbooks(config, ledger, batch, [u for u, _k in todo], now)
    tasks = {t.number: t for t in ledger.tasks(batch.id)}
    for unit, key in todo:
        assignments = ledger.assignments(batch.id, unit.id)
        letter = letters.cover_letter(config, batch, unit, assignments, tasks, paths[unit.id].name,
                                      clock.local(now).date())
        to, cc = unit_recipients(unit)
        msg = compose_message(config.mail, to=to, cc=cc, subject=letter.subject, text=letter.text, html=letter.html,
                              attachments=[Attachment.from_path(paths[unit.id])], now=now, to_name=unit.name)
        out.append(send_once(ledger, transport, key, "distribute", batch.id, unit.id, msg, now,
                             resend_uncertain=resend_uncertain, unit=unit.name,
                             detail={"tasks": len(assignments), "workbook": paths[unit.id].name}))
    return out


def _select_units(config: Config, ledger: Ledger, batch: Batch, names: Sequence[str] | None) -> list[UnitRow]:
    units = ledger.assigned_units(batch.id)
    if not names:
        return units
    from automation.units import Registry

    registry = Registry.from_config(config)
    wanted = {u for n in names for u in registry.resolve(n, where="--unit")}
    return [u for u in units if u.name in wanted]


def _current_workbook(ledger: Ledger, batch: Batch, unit: UnitRow) -> Path | None:
    """The latest built workbook for the unit if it is on disk, intact and for the current tasks."""
    built = ledger.latest_built_workbook(batch.id, unit.id)
    if built is None:
        return None
    path = Path(built.path)
    if not path.is_file() or (built.sha256 and sha256_file(path) != built.sha256):
        return None
    wanted = sorted({a.task for a in ledger.assignments(batch.id, unit.id)})
    if sorted(built.tasks) != wanted:
        return None
    return path


def _ensure_workbooks(config: Config, ledger: Ledger, batch: Batch, units: Sequence[UnitRow],
                      now: dt.datetime) -> dict[int, Path]:
    paths: dict[int, Path] = {}
    missing: list[UnitRow] = []
    for unit in units:
        path = _current_workbook(ledger, batch, unit)
        if path is None:
            missing.append(unit)
        else:
            paths[unit.id] = path
    if missing:
        from automation.workbook.build import build_workbooks

        for built in build_workbooks(config, ledger, now, units=[u.name for u in missing]):
            paths[built.unit_id] = Path(built.path)
    lost = [u.name for u in units if u.id not in paths]
    if lost:
        raise AutomationError(f"未能生成以下单位的工作簿：{'、'.join(lost)}。请先运行 automation build 查看原因。")
    return paths
