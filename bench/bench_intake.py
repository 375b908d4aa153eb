"""Benchmark: one IMAP poll of a busy office inbox, ours against the naive loop, on a real Dovecot.

The service polls the office mailbox every few minutes all year.  The office's inbox is mostly
*other* mail — notices with PDF attachments the staff have not opened yet — and the program must
leave it unread.  The naive loop (what ``imap_tools``' ``fetch(AND(seen=False), mark_seen=False)``
does) downloads and parses every unseen message in full on every poll.  Ours fetches only the
Message-ID/From/Date/Subject headers of unseen messages, downloads a message in full once, and
remembers in the ledger the ones without a workbook.  Both find the same workbook-carrying
messages (checked here).

    python bench/bench_intake.py [N_OTHER]     # default 300 unread notices of ~200 KB each
"""

from __future__ import annotations

import datetime as dt
import imaplib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from dovecot_server import PASSWORD, start_dovecot  # noqa: E402
from test_intake import gbk_attachment, message  # noqa: E402

from automation import clock  # noqa: E402
from automation.config import ImapConfig, load_config  # noqa: E402
from automation.ledger import open_workspace  # noqa: E402
from automation.mail.intake import collect_imap  # noqa: E402
from automation.mail.parsing import parse_message  # noqa: E402
from automation.tasks.importing import init_batch  # noqa: E402

NOW = dt.datetime(2021, 11, 1, 9, 0, tzinfo=clock.TZ)


class Counting(imaplib.IMAP4):
    """An IMAP4 client that counts the bytes it receives."""

    received = 0

    def read(self, size: int) -> bytes:
        data = super().read(size)
        Counting.received += len(data)
        return data

    def readline(self) -> bytes:
        data = super().readline()
        Counting.received += len(data)
        return data


def naive_poll(imap: ImapConfig) -> list[str]:
    """Download and parse every unseen message; keep those with workbooks (leaving all unread)."""
    client = Counting(imap.host, imap.port)
    client.login(imap.user, PASSWORD)
    client.select("INBOX")
    found = []
    for uid in client.uid("SEARCH", None, "UNSEEN")[1][0].split():
        data = client.uid("FETCH", uid, "(BODY.PEEK[])")[1]
        parsed = parse_message(data[0][1])
        if parsed.workbooks:
            found.append(parsed.message_id)
    client.logout()
    return found


def main() -> None:
    n_other = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    n_replies = 20
    server = start_dovecot(tls=False)
    folder = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    try:
        shutil.copy(ROOT / "config.toml", folder / "config.toml")
        (folder / "samples").mkdir()
        shutil.copy(ROOT / "samples" / "task-table.txt", folder / "samples")
        os.environ["BENCH_IMAP_PASSWORD"] = PASSWORD
        config = load_config(folder / "config.toml")
        imap = ImapConfig(host="127.0.0.1", port=server.port, security="none", user="office",
                          password_env="BENCH_IMAP_PASSWORD", folder="INBOX", processed_folder="督办已处理")
        config = replace(config, imap=imap)
        _ws, ledger = open_workspace(config)
        init_batch(config, ledger, NOW)

        admin = imaplib.IMAP4("127.0.0.1", server.port)
        admin.login("office", PASSWORD)
        pdf = os.urandom(200_000)
        for i in range(n_other):
            admin.append("INBOX", None, None, message(
                "notice@gov.example.org", f"会议通知 {i}", [('Content-Type: application/pdf; name="n.pdf"', pdf)]))

        def stub(config, ledger, name, data, now, **kw):
            return SimpleNamespace(file_name=name, outcome="accepted", sha256="", unit=None, unit_id=None)

        factory = lambda cfg: Counting(cfg.host, cfg.port)  # noqa: E731
        rows = []
        # Steady state, as in the service: the notices are known; a batch of replies comes in each time.
        collect_imap(config, ledger, NOW, collector=stub, client_factory=factory)  # first poll: learns the notices
        for label, run in (("naive: fetch+parse every unseen message", None),
                           ("ours: headers, full fetch once, ledger memory", True)):
            for i in range(n_replies):
                admin.append("INBOX", None, None, message(
                    "fgw@np.example.com", f"报送 {i}", [(gbk_attachment(f"市发改委{i}.xlsx"), os.urandom(30_000))]))
            Counting.received = 0
            t0 = time.perf_counter()
            if run is None:
                found = naive_poll(imap)
                n_found = len(found)
            else:
                result = collect_imap(config, ledger, NOW, collector=stub, client_factory=factory)
                n_found = len(result.files)
            rows.append((label, time.perf_counter() - t0, Counting.received, n_found))
            if run is None:
                # the naive loop has no memory: it would move the same replies; do it for it
                collect_imap(config, ledger, NOW, collector=stub, client_factory=factory)
        admin.logout()
        ledger.close()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)

    print(f"One poll: {n_other} unread notices with a 200 KB PDF + {n_replies} new replies with a workbook")
    print(f"{'variant':48} {'seconds':>8} {'MB received':>12} {'found':>6}")
    for label, secs, nbytes, found in rows:
        print(f"{label:48} {secs:8.3f} {nbytes / 1e6:12.1f} {found:6d}")
    (naive, ours) = rows
    assert naive[3] == ours[3] == n_replies, rows
    print(f"ratio: {naive[1] / ours[1]:.1f}x faster, {naive[2] / max(1, ours[2]):.1f}x fewer bytes")


if __name__ == "__main__":
    main()
