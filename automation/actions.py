"""What the console does, as plain functions: each action of the loop, audited with who and where.

The web layer parses a request and calls one of these; the CLI calls the same library
functions underneath (``init_batch``, ``build_workbooks``, ``distribute``, ``send_reminders``,
``create_report``) and, for collecting, these very actions (:func:`collect_folder`,
:func:`collect_mailbox`: a collect and the receipts that follow it, one call for both).  What
this module adds is what a console needs around them: an :class:`Actor` (account and client
address) on every audit event in the ledger's ``events``, a progress callback for the long ones,
and uploads saved under generated names before they go through the same hostile-file pipeline as
any returned file.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from automation import clock
from automation.config import Config
from automation.errors import AutomationError
from automation.fsutil import atomic_write_bytes, safe_filename
from automation.ledger import Ledger
from automation.workspace import Workspace

__all__ = [
    "Actor", "Progress", "SavedUpload", "UploadBatch", "save_uploads", "collect_uploads", "CollectOutcome",
    "collect_mailbox", "collect_folder", "recheck", "import_table", "save_table_upload", "build", "send_distribution",
    "send_owed_receipts", "send_receipts_now", "table_upload", "remind_now", "make_report", "original_file", "ReportFile", "report_files",
    "report_file", "DOCUMENTS", "document_name", "ReceiptNote",
]

#: ``progress(done, total, label)``: total None while it is not known yet.
Progress = Callable[[int, int | None, str], None]


def _no_progress(_done: int, _total: int | None, _label: str) -> None:
    return None


@dataclass(frozen=True)
class Actor:
    """Who acts (the console account, or 本机 in single-user mode) and from which address."""

    account: str
    address: str

    def audit(self, ledger: Ledger, kind: str, now: dt.datetime, **detail: Any) -> None:
        ledger.event(kind, now, account=self.account, address=self.address, via="web", **detail)


# --------------------------------------------------------------------------- uploads


@dataclass(frozen=True)
class SavedUpload:
    name: str        # the name the browser sent: shown, never used as a path
    path: Path       # generated: <workspace>/uploads/<time>-<random><suffix>
    size: int


@dataclass
class UploadBatch:
    saved: list[SavedUpload] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)   # (name, reason): not saved


def _suffix(name: str) -> str:
    suffix = Path(name.replace("\\", "/").rsplit("/", 1)[-1]).suffix.lower()
    return suffix if 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ".bin"


def _display(name: str) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip()[:200] or "附件"


def save_uploads(config: Config, files: Sequence[tuple[str, IO[bytes]]], now: dt.datetime,
                 folder: str = "") -> UploadBatch:
    """Store uploaded files under generated names in ``<workspace>/uploads/`` (nothing is lost if the
    process stops before they are collected: they stay there), refusing too many or too big ones.

    ``[collect] max_files`` bounds how many one upload may carry, ``max_file_mb`` each file (a
    bigger one is refused here, as the pipeline would refuse it, without writing it to disk).
    """
    limit = config.collect.max_files
    if len(files) > limit:
        raise AutomationError(f"一次最多上传 {limit} 个文件（config.toml [collect] max_files），本次选择了 {len(files)} 个；"
                              "请分几次上传。")
    max_bytes = int(config.collect.max_file_mb * (1 << 20))
    target = Workspace(config.workspace).uploads / folder
    target.mkdir(parents=True, exist_ok=True)
    out = UploadBatch()
    stamp = clock.local(now).strftime("%Y%m%d-%H%M%S")
    for name, stream in files:
        shown = _display(name)
        data = stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            out.refused.append((shown, f"文件过大（超过 {config.collect.max_file_mb:g} MB，config.toml [collect] "
                                       "max_file_mb），未接收。请删除无关的图片或工作表后重新保存上传。"))
            continue
        if not data:
            out.refused.append((shown, "文件是空的，未接收。"))
            continue
        path = target / f"{stamp}-{secrets.token_hex(6)}{_suffix(name)}"
        atomic_write_bytes(path, data)
        out.saved.append(SavedUpload(shown, path, len(data)))
    return out


@dataclass(frozen=True)
class ReceiptNote:
    sent: int = 0
    failed: int = 0
    warning: str = ""


@dataclass
class CollectOutcome:
    results: list[Any]                                   # automation.collect.pipeline.FileResult
    refused: list[tuple[str, str]] = field(default_factory=list)
    receipts: ReceiptNote = field(default_factory=ReceiptNote)
    summary: str = ""                                    # the mailbox's one-line summary (IMAP only)

    def to_json(self) -> dict[str, Any]:
        """The ``collect --json`` document (files and totals), plus files refused before collecting."""
        from automation.collect.pipeline import summarize

        doc = summarize(self.results)
        doc["refused"] = [{"file_name": n, "reason": r} for n, r in self.refused]
        return doc


def send_owed_receipts(config: Config, ledger: Ledger, now: dt.datetime) -> ReceiptNote:
    """Every 回执 still owed (as ``automation collect`` sends them after collecting); a mail failure is a
    warning, never an error: the files are recorded and the next collect sends them."""
    from automation.mail.receipts import send_owed_receipts as send_owed
    from automation.mail.transports import transport_from_config

    try:
        sent = send_owed(config, ledger, now, lambda: transport_from_config(config))
    except AutomationError as exc:  # password / 授权码 missing or refused, server unreachable
        return ReceiptNote(warning=f"回执未能发送：{exc}。已收到的文件都已记录，改正后下次回收时"
                                   "（或运行 automation send --receipts）即补发回执。")
    failed = sum(1 for r in sent if r.action == "failed")
    return ReceiptNote(sum(1 for r in sent if r.action in ("sent", "resent")), failed,
                       f"{failed} 封回执发送失败（详见台账中的邮件记录），下次回收时重发。" if failed else "")


def collect_folder(config: Config, ledger: Ledger, now: dt.datetime, paths: Sequence[Path] | None = None, *,
                   progress: Callable[[int, int, Any], None] | None = None,
                   waiting: Callable[[str], None] | None = None) -> CollectOutcome:
    """``automation collect``: files and folders (default the workspace inbox), then every 回执 still
    owed, this run's and any an earlier run could not send."""
    from automation.collect.pipeline import collect_paths

    results = collect_paths(config, ledger, list(paths) if paths else None, now, progress=progress, waiting=waiting)
    outcome = CollectOutcome(results)
    outcome.receipts = send_owed_receipts(config, ledger, now)
    return outcome


def collect_uploads(config: Config, ledger: Ledger, now: dt.datetime, batch: UploadBatch, *, actor: Actor,
                    progress: Progress = _no_progress) -> CollectOutcome:
    """Collect uploaded files through the collect pipeline (pre-checks, sandboxed parse,
    identification), each under the name it was uploaded with, received now; then the receipts.

    An upload copy is removed once the file is stored (archive or quarantine) or known already;
    one the pipeline skipped stays in ``uploads/`` and is collected again by the next upload.
    """
    from automation.collect.pipeline import collect_file

    results = []
    total = len(batch.saved)
    progress(0, total, "回收")
    for i, up in enumerate(batch.saved):
        result = collect_file(config, ledger, up.path, now, source="web", received_at=now, original_name=up.name)
        results.append(result)
        if result.outcome != "skipped":
            up.path.unlink(missing_ok=True)
        progress(i + 1, total, up.name)
    outcome = CollectOutcome(results, list(batch.refused))
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    actor.audit(ledger, "collect", now, source="upload", files=len(results), refused=len(batch.refused), **counts)
    if results:
        outcome.receipts = send_owed_receipts(config, ledger, now)
    return outcome


def collect_mailbox(config: Config, ledger: Ledger, now: dt.datetime, *, actor: Actor | None = None,
                    who: str = "automation web 收取邮件") -> CollectOutcome:
    """「收取邮件」 and ``collect --imap``: the mailbox once (one reader at a time: ``who`` names this
    one to another that finds the lock taken), then the receipts; ``actor``: the console's audit."""
    from automation.mail.intake import collect_imap
    from automation.service import InstanceLock

    if not config.imap.host:
        raise AutomationError("config.toml 中没有设置收信服务器（[imap] host），无法从邮箱收取。")
    with InstanceLock(config.workspace, who):
        result = collect_imap(config, ledger, now)
        outcome = CollectOutcome(list(result.files), summary=result.summary())
        outcome.receipts = send_owed_receipts(config, ledger, now)
    if actor is not None:
        actor.audit(ledger, "collect", now, source="imap", files=len(result.files), summary=result.summary())
    if result.error:
        outcome.receipts = ReceiptNote(outcome.receipts.sent, outcome.receipts.failed,
                                       (outcome.receipts.warning + " " + str(result.error)).strip())
    return outcome


def recheck(config: Config, ledger: Ledger, now: dt.datetime, submission_id: int, *, actor: Actor) -> Any:
    """Check a quarantined file again (a sender or unit registered since, a rule changed): accepted now,
    it takes over its ledger row; still refused, it stays as it was.  Returns the FileResult."""
    from automation.collect.pipeline import collect_file

    rec = ledger.submission_record(submission_id)
    if rec is None or rec.outcome != "quarantined":
        raise AutomationError(f"台账中没有编号为 {submission_id} 的隔离文件。")
    path = _inside(Workspace(config.workspace).root, rec.quarantine_path or rec.archive_path)
    if path is None or not path.is_file():
        raise AutomationError(f"隔离文件“{rec.file_name}”的副本不在隔离区中，无法重新检查。")
    result = collect_file(config, ledger, path, now, source=rec.source, sender=rec.sender, message_id=rec.message_id,
                          received_at=clock.parse(rec.received_at), original_name=rec.file_name)
    actor.audit(ledger, "recheck", now, submission=submission_id, file=rec.file_name, outcome=result.outcome)
    if result.outcome in ("accepted", "quarantined"):
        send_owed_receipts(config, ledger, now)
    return result


def _inside(root: Path, rel: str | None) -> Path | None:
    """``root / rel`` when it stays inside ``root`` (ledger paths are ours; checked all the same)."""
    if not rel:
        return None
    path = (root / rel).resolve()
    return path if path.is_relative_to(root.resolve()) else None


def original_file(config: Config, ledger: Ledger, submission_id: int) -> tuple[Path, str] | None:
    """The archived original (or the quarantine copy) of a returned file and its name as received."""
    rec = ledger.submission_record(submission_id)
    if rec is None:
        return None
    root = Workspace(config.workspace).root
    path = _inside(root, rec.archive_path if rec.outcome == "accepted" else (rec.quarantine_path or rec.archive_path))
    if path is None or not path.is_file():
        return None
    return path, rec.file_name


# --------------------------------------------------------------------------- the table


def save_table_upload(config: Config, name: str, stream: IO[bytes], now: dt.datetime) -> SavedUpload:
    """A task table uploaded for preview, under a generated name in ``uploads/tables/``."""
    from automation.tasks.load import SUPPORTED_SUFFIXES

    suffix = _suffix(name)
    if suffix not in SUPPORTED_SUFFIXES:
        raise AutomationError(f"“{_display(name)}”不是可读取的任务表格式；请上传 {'、'.join(SUPPORTED_SUFFIXES)} 之一。")
    batch = save_uploads(config, [(name, stream)], now, folder="tables")
    if batch.refused:
        raise AutomationError(f"{batch.refused[0][0]}：{batch.refused[0][1]}")
    return batch.saved[0]


def table_upload(config: Config, token: str) -> Path | None:
    """The saved table of a preview by its generated name (nothing else is reachable)."""
    if not token or "/" in token or "\\" in token or token.startswith("."):
        return None
    path = Workspace(config.workspace).uploads / "tables" / token
    return path if path.is_file() else None


def import_table(config: Config, ledger: Ledger, now: dt.datetime, path: Path, *, actor: Actor, source_name: str,
                 replace: bool = False) -> Any:
    """``automation init --tasks`` with a previewed upload (``replace`` as ``--replace``); returns the ImportResult."""
    from automation.tasks.importing import init_batch

    result, _table = init_batch(config, ledger, now, path, replace=replace)
    actor.audit(ledger, "import", now, source=source_name, revision=result.revision, changed=result.changed,
                replace=replace)
    return result


# --------------------------------------------------------------------------- build, send, remind, report


def build(config: Config, ledger: Ledger, now: dt.datetime, *, actor: Actor, progress: Progress = _no_progress,
          units: Sequence[str] | None = None) -> list[Any]:
    """``automation build``: every unit's workbook (or the named ones)."""
    from automation.workbook.build import build_workbooks

    progress(0, None, "生成工作簿")
    built = build_workbooks(config, ledger, now, units=list(units) if units else None,
                            progress=lambda done, total: progress(done, total, "生成工作簿"))
    actor.audit(ledger, "build", now, workbooks=len(built))
    return built


class _CountingTransport:
    """A transport that reports each message handed to it (``distribute`` and ``send_reminders`` take
    no progress callback; counting at the transport is exact and needs no change to them)."""

    def __init__(self, inner: Any, on_send: Callable[[], None]) -> None:
        self.inner, self.on_send = inner, on_send

    def send(self, message: Any, idem_key: str) -> Any:
        try:
            return self.inner.send(message, idem_key)
        finally:
            self.on_send()

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> _CountingTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _mailing(config: Config, progress: Progress, total: int | None, label: str) -> _CountingTransport:
    from automation.mail.transports import transport_from_config

    done = [0]

    def step() -> None:
        done[0] += 1
        progress(done[0], total, label)

    progress(0, total, label)
    return _CountingTransport(transport_from_config(config), step)


def send_distribution(config: Config, ledger: Ledger, now: dt.datetime, *, actor: Actor,
                      resend_uncertain: bool = False, progress: Progress = _no_progress) -> list[Any]:
    """``automation send`` (``--resend-uncertain``): each unit's workbook and cover letter, at most once."""
    from automation.mail.distribution import distribute
    from automation.mail.preview import distribution_preview

    preview = distribution_preview(config, ledger)
    total = preview.to_send + (preview.count("uncertain") + preview.count("pending") if resend_uncertain else 0)
    with _mailing(config, progress, total, "发送") as transport:
        results = distribute(config, ledger, now, transport, resend_uncertain=resend_uncertain)
    actor.audit(ledger, "send", now, purpose="distribute", resend_uncertain=resend_uncertain, **_actions(results))
    return results


def send_receipts_now(config: Config, ledger: Ledger, now: dt.datetime, *, actor: Actor,
                      resend_uncertain: bool = False, progress: Progress = _no_progress) -> list[Any]:
    """``automation send --receipts``: every 回执 still owed, also those refused before."""
    from automation.mail.receipts import pending_receipts, send_owed_receipts

    if not config.collect.receipts:
        raise AutomationError("config.toml 中 [collect] receipts = false（不发回执）；如需补发请先改为 true。")
    owed = pending_receipts(config, ledger, retry_refused=True, include_uncertain=resend_uncertain)
    with _mailing(config, progress, len(owed), "发送回执") as transport:
        results = send_owed_receipts(config, ledger, now, transport, retry_refused=True,
                                     resend_uncertain=resend_uncertain)
    actor.audit(ledger, "send", now, purpose="receipt", **_actions(results))
    return results


def remind_now(config: Config, ledger: Ledger, now: dt.datetime, *, actor: Actor,
               progress: Progress = _no_progress) -> list[Any]:
    """「立即发送到期提醒」: ``automation remind`` at ``now``."""
    from automation.remind import due_reminders, send_reminders

    with _mailing(config, progress, len(due_reminders(config, ledger, now)), "发送提醒") as transport:
        results = send_reminders(config, ledger, now, transport)
    actor.audit(ledger, "remind", now, **_actions(results))
    return results


def _actions(results: Iterable[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.action] = counts.get(r.action, 0) + 1
    return counts


# --------------------------------------------------------------------------- documents

#: The documents the 报表 page offers: (key, name, file pattern under reports/); each has its maker in
#: :func:`make_report`.
DOCUMENTS = (("report", "汇总表", "*_汇总表_*.xlsx"), ("notice", "情况通报", "*_情况通报_*.docx"))


def document_name(kind: str) -> str:
    """The Chinese name of a document of :data:`DOCUMENTS` (the kind itself when unknown)."""
    return next((name for key, name, _p in DOCUMENTS if key == kind), kind)


@dataclass(frozen=True)
class ReportFile:
    kind: str
    name: str
    path: Path
    size: int
    modified: dt.datetime


def report_files(config: Config) -> list[ReportFile]:
    """Every document in ``<workspace>/reports/``, newest first."""
    folder = Workspace(config.workspace).reports
    out = []
    for kind, _title, pattern in DOCUMENTS:
        for p in folder.glob(pattern) if folder.is_dir() else ():
            if p.is_file() and not p.name.startswith("."):
                st = p.stat()
                out.append(ReportFile(kind, p.name, p, st.st_size, dt.datetime.fromtimestamp(st.st_mtime, clock.TZ)))
    return sorted(out, key=lambda f: f.modified, reverse=True)


def report_file(config: Config, name: str) -> Path | None:
    """A document of :func:`report_files` by its name (nothing else in the workspace is reachable)."""
    return next((f.path for f in report_files(config) if f.name == name), None)


def make_report(config: Config, ledger: Ledger, now: dt.datetime, *, actor: Actor, kind: str = "report",
                progress: Progress = _no_progress) -> Any:
    """``automation report`` (``kind`` "report": the workbook, a ReportInfo) or ``automation notice``
    (``kind`` "notice": the 情况通报 .docx, a NoticeInfo) at ``now``."""
    if kind == "report":
        from automation.progress.report import create_report as make
    elif kind == "notice":
        from automation.progress.notice import write_notice as make
    else:
        raise AutomationError(f"不认识的报表类型“{kind}”。")
    label = f"生成{document_name(kind)}"
    progress(0, None, label)
    info = make(config, ledger, now)
    actor.audit(ledger, "report", now, document=kind, path=safe_filename(info.path.name, max_len=120))
    progress(1, 1, label)
    return info
