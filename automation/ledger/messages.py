"""E-mail state: every message under an idempotency key, and IMAP intake by Message-ID."""

from __future__ import annotations

from automation.ledger.connection import Connection


class MessageQueries(Connection):
    pass
