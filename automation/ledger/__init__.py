"""The ledger: every piece of state, in one SQLite file in the workspace, and all of its SQL.

The process holds no state between commands; the ledger does.  The schema is created and
upgraded by numbered migrations (:mod:`~automation.ledger.schema`), every unit of work is one
transaction (:mod:`~automation.ledger.connection`), and rows have natural keys so every command
can be re-run safely.  Queries live in one module per subject and return typed records
(:mod:`automation.model`, :mod:`~automation.ledger.records`), never rows:

- :mod:`~automation.ledger.batches`: batches, table revisions, tasks;
- :mod:`~automation.ledger.registry`: units as synced from config.toml, assignments;
- :mod:`~automation.ledger.issues`: workbook layouts and every workbook issued;
- :mod:`~automation.ledger.submissions`: returned files, their responses and problems;
- :mod:`~automation.ledger.answers`: the current answer per (unit, task), history, the report's streams;
- :mod:`~automation.ledger.messages`: every e-mail under an idempotency key, IMAP intake state;
- :mod:`~automation.ledger.accounts`: console accounts (salted scrypt hashes) and login throttling;
- :mod:`~automation.ledger.console`: one unit's or one task's answers, history, files and mails (the console's pages).

May import: the foundations (config, model, units, workspace, clock, errors, fsutil) only.
No other package runs SQL: ``grep -rE "\\.execute|SELECT|INSERT INTO" automation`` finds this
folder alone.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from automation.config import Config
from automation.errors import LedgerError
from automation.ledger.accounts import AccountQueries
from automation.ledger.answers import AnswerQueries
from automation.ledger.batches import BatchQueries, tasks_digest
from automation.ledger.connection import activity_fingerprint
from automation.ledger.console import ConsoleQueries
from automation.ledger.issues import IssueQueries
from automation.ledger.messages import MessageQueries
from automation.ledger.records import ImportResult
from automation.ledger.registry import RegistryQueries
from automation.ledger.schema import MIGRATIONS
from automation.ledger.submissions import DuplicateSubmission, SubmissionQueries
from automation.model import Batch, UnitRow
from automation.workspace import LEDGER_FILE, Workspace

__all__ = ["Ledger", "Batch", "UnitRow", "ImportResult", "MIGRATIONS", "LEDGER_FILE", "tasks_digest",
           "open_workspace", "activity_fingerprint", "DuplicateSubmission", "LEDGER_FAILURES"]

#: What the ledger raises when it (or the disk under it) fails, rather than an input: a caller
#: working through many inputs stops on these instead of blaming one input.
LEDGER_FAILURES: tuple[type[BaseException], ...] = (sqlite3.Error, LedgerError)


class Ledger(BatchQueries, RegistryQueries, IssueQueries, SubmissionQueries, AnswerQueries, MessageQueries,
             AccountQueries, ConsoleQueries):
    """A connection to the workspace ledger with the queries every stage needs."""


def open_workspace(config: Config, now: dt.datetime | None = None, *,
                   create: bool = True) -> tuple[Workspace, Ledger]:
    """The workspace folders and its ledger, with the unit registry synced from config.toml.

    Syncing on every open means an address added to config.toml is used by the next ``send``,
    ``collect`` or reminder without re-running ``init`` (it is an upsert that changes nothing when
    the registry is unchanged).  ``create=False`` (read-only commands) refuses a workspace with no
    ledger instead of creating folders and an empty ledger where a mistyped ``--workspace`` points.
    """
    from automation import clock

    ws = Workspace(config.workspace)
    if not create and not ws.exists():
        raise LedgerError(f"{ws.root}：这里没有台账（{LEDGER_FILE}），请先运行 automation init，"
                          "或用 --workspace 指定正确的工作目录。")
    ws.create()
    ledger = Ledger.open(ws.root)
    if ledger.has_units():
        ledger.sync_units(config.units, now or clock.now())
    return ws, ledger
