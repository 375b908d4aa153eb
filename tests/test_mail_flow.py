"""Distribution (automation send) and 回执 receipts, end to end through a real SMTP server."""

from __future__ import annotations

import datetime as dt
import email
import json
from email import policy
from email.header import decode_header, make_header
from pathlib import Path

import openpyxl
import pytest
from smtp_server import USER, smtp_server

from automation import clock
from automation.cli import main
from automation.collect.pipeline import FileResult, collect_file
from automation.config import Config
from automation.ledger import Ledger
from automation.mail.distribution import distribute
from automation.mail.receipts import send_receipts
from automation.mail.transports import SmtpTransport
from automation.workbook.build import build_unit_workbook, workbook_filename

NOW = dt.datetime(2021, 11, 1, 9, 30, tzinfo=clock.TZ)


class NoSleep:
    def __init__(self) -> None:
        self.t = 0.0

    def sleep(self, s: float) -> None:
        self.t += s

    def monotonic(self) -> float:
        return self.t


def transport_for(server) -> SmtpTransport:
    c = NoSleep()
    return SmtpTransport(host=server.host, port=server.port, security="none", sender=USER, per_minute=20,
                         retries=2, backoff_seconds=1, timeout=5, sleep=c.sleep, monotonic=c.monotonic)


def subject(msg) -> str:
    return str(make_header(decode_header(str(msg["Subject"]))))


def test_distribute_sends_each_unit_its_workbook_once(config: Config, ledger: Ledger) -> None:
    batch = ledger.require_batch(config.batch.title)
    with smtp_server("plain") as server:
        transport = transport_for(server)
        results = distribute(config, ledger, NOW, transport, ["市财政局", "延平区政府"])
        again = distribute(config, ledger, NOW, transport, ["市财政局", "延平区政府"])
        transport.close()
        received = list(server.handler.received)
    assert [r.action for r in results] == ["sent", "sent"] and [r.action for r in again] == ["skipped", "skipped"]
    assert len(received) == 2
    by_unit = {r.unit: r for r in results}
    yp = next(g for g in received if "ypq@np.example.com" in g.rcpt_tos)
    assert sorted(yp.rcpt_tos) == ["ypq-gk@np.example.com", "ypq@np.example.com"]  # to and cc from the registry
    czj = next(g for g in received if "czj@np.example.com" in g.rcpt_tos).message
    assert czj["Message-ID"] == by_unit["市财政局"].message_id
    n_tasks = len(ledger.assignments(batch.id, ledger.unit_by_name("市财政局").id))
    assert "市财政局" in subject(czj) and "12月15日" in subject(czj)
    plain = czj.get_body(("plain",)).get_content()
    assert f"{n_tasks}项任务" in plain and "2021年12月15日" in plain and "0599-8888001" in plain
    assert "回复本邮件" in plain and "<br" not in plain
    html = czj.get_body(("html",)).get_content()
    assert html.count("<tr>") == n_tasks + 1
    (att,) = list(czj.iter_attachments())
    name = workbook_filename(config.batch.title, "市财政局")
    assert att.get_filename() == name
    path = config.workspace / "workbooks" / name
    assert att.get_content() == path.read_bytes()     # the workbook built for the unit, unchanged
    issues = ledger.execute("SELECT COUNT(*) FROM issues WHERE purpose = 'build'").fetchone()[0]
    assert issues == 2                                # built once, not again on the re-run
    assert ledger.was_sent(batch.id)


def test_send_cli_outbox_json(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config_file), "init"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config_file), "send", "--unit", "市财政局", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["action"] == "sent" and row["unit"] == "市财政局" and row["to"] == ["czj@np.example.com"]
    eml = Path(row["path"])
    assert eml.parent == config_file.parent / "var" / "outbox" and eml.suffix == ".eml"
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg["Message-ID"] == row["message_id"]
    assert main(["--config", str(config_file), "send", "--unit", "市财政局"]) == 0
    out = capsys.readouterr().out
    assert "已发过" in out
    assert len(list(eml.parent.glob("*.eml"))) == 1


def _fill(path: Path, values: dict[tuple[int, int], str]) -> None:
    wb = openpyxl.load_workbook(path)
    sheet = wb["任务清单"]
    for (row, col), value in values.items():
        sheet.cell(row=row, column=col, value=value)
    wb.save(path)


def test_receipts_for_accepted_and_quarantined_files(config: Config, ledger: Ledger, tmp_path: Path) -> None:
    batch = ledger.require_batch(config.batch.title)
    unit = ledger.unit_by_name("市财政局")
    built = build_unit_workbook(config, ledger, batch, unit.id, NOW)
    returned = tmp_path / "财政局回传.xlsx"
    returned.write_bytes(Path(built.path).read_bytes())
    # row 6 is task 4: 已完成 without progress (a problem), row 7 is task 5: 推进中 with progress
    _fill(returned, {(6, 7): "已完成", (7, 7): "推进中", (7, 8): "已起草方案"})
    accepted = collect_file(config, ledger, returned, NOW + dt.timedelta(days=1), sender="财政局 <czj@np.example.com>",
                            message_id="<orig-1@np.example.com>")
    assert accepted.outcome == "accepted" and accepted.unit_id == unit.id
    quarantined = FileResult("南平市财政局.xls", "ab" * 32, "quarantined", reason="文件已损坏，无法打开",
                             unit="市财政局", unit_id=unit.id)
    duplicate = FileResult("x.xlsx", "cd" * 32, "duplicate", unit="市财政局", unit_id=unit.id)
    unknown = FileResult("y.xlsx", "ef" * 32, "quarantined", reason="无法识别单位")
    with smtp_server("plain") as server:
        transport = transport_for(server)
        sent = send_receipts(config, ledger, [accepted, quarantined, duplicate, unknown], NOW, transport)
        again = send_receipts(config, ledger, [accepted, quarantined], NOW, transport)
        transport.close()
        received = list(server.handler.received)
    assert [r.action for r in sent] == ["sent", "sent"] and [r.action for r in again] == ["skipped", "skipped"]
    assert len(received) == 2
    first = received[0]
    assert first.rcpt_tos == ["czj@np.example.com"]
    msg = first.message
    assert msg["In-Reply-To"] == "<orig-1@np.example.com>"
    assigned = sorted({a.task for a in ledger.assignments(ledger.require_batch(config.batch.title).id, unit.id)})
    assert accepted.tasks_accepted == [5] and len(assigned) == 28
    # counted in 项 over the unit's 28 tasks: one taken, one refused (task 4), the rest blank
    assert subject(msg).endswith("已填报1/28项，1处需修改")
    plain = msg.get_body(("plain",)).get_content()
    assert "本次接收1项任务的填报内容（第5项）" in plain and "财政局回传.xlsx" in plain
    assert "共承担28项任务，目前已填报1项" in plain and "第4项的填报内容未通过" in plain
    blank = [t for t in assigned if t not in (4, 5)]
    assert f"第{'、'.join(map(str, blank[:20]))}项等{len(blank)}项尚未填报" in plain
    assert "无需修改" not in plain and "特此回执。" in plain
    assert accepted.problems, "the 已完成 row without progress must be reported"
    for p in accepted.problems:
        assert p.message in plain
        if p.cell:
            assert p.cell in plain
    html = msg.get_body(("html",)).get_content()
    assert html.count("<tr>") == len(accepted.problems) + 1
    q = received[1].message
    assert "未能接收" in subject(q)
    assert "文件已损坏，无法打开" in q.get_body(("plain",)).get_content()
