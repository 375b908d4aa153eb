"""The ledger's schema: numbered migrations, applied in order, each in one transaction.

``PRAGMA user_version`` is the schema version; :data:`MIGRATIONS` is append-only (a released
ledger file must open with every later version of the program).
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

MIGRATIONS: list[str] = [
    # 1: the whole loop
    """
    CREATE TABLE batches (
        id          INTEGER PRIMARY KEY,
        uid         TEXT NOT NULL UNIQUE,
        title       TEXT NOT NULL UNIQUE,
        year        INTEGER NOT NULL,
        deadline    TEXT NOT NULL,
        secret      TEXT NOT NULL,
        revision    INTEGER NOT NULL DEFAULT 0,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    CREATE TABLE table_revisions (
        batch_id      INTEGER NOT NULL REFERENCES batches(id),
        revision      INTEGER NOT NULL,
        digest        TEXT NOT NULL,
        source_name   TEXT,
        source_sha256 TEXT,
        tasks_json    TEXT NOT NULL,
        imported_at   TEXT NOT NULL,
        PRIMARY KEY (batch_id, revision)
    );
    CREATE TABLE tasks (
        batch_id         INTEGER NOT NULL REFERENCES batches(id),
        number           INTEGER NOT NULL,
        section          TEXT,
        section_title    TEXT,
        subsection       TEXT,
        subsection_title TEXT,
        title            TEXT NOT NULL,
        requirement      TEXT NOT NULL DEFAULT '',
        lead_json        TEXT NOT NULL DEFAULT '[]',
        responsible_json TEXT NOT NULL DEFAULT '[]',
        status           TEXT NOT NULL DEFAULT '',
        deadline         TEXT,
        unit_notes_json  TEXT NOT NULL DEFAULT '{}',
        extra_json       TEXT NOT NULL DEFAULT '{}',
        raw_json         TEXT NOT NULL DEFAULT '{}',
        source_row       INTEGER,
        PRIMARY KEY (batch_id, number)
    );
    CREATE TABLE units (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        kind        TEXT NOT NULL DEFAULT '',
        emails_json TEXT NOT NULL DEFAULT '[]',
        cc_json     TEXT NOT NULL DEFAULT '[]',
        aliases_json TEXT NOT NULL DEFAULT '[]',
        contact     TEXT NOT NULL DEFAULT '',
        phone       TEXT NOT NULL DEFAULT '',
        active      INTEGER NOT NULL DEFAULT 1,
        updated_at  TEXT NOT NULL
    );
    CREATE TABLE assignments (
        batch_id    INTEGER NOT NULL REFERENCES batches(id),
        task_number INTEGER NOT NULL,
        unit_id     INTEGER NOT NULL REFERENCES units(id),
        role        TEXT NOT NULL,
        note        TEXT,
        PRIMARY KEY (batch_id, task_number, unit_id)
    );
    CREATE INDEX assignments_unit ON assignments(batch_id, unit_id);
    CREATE TABLE layouts (
        version    TEXT PRIMARY KEY,
        spec_json  TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE issues (
        id               INTEGER PRIMARY KEY,
        batch_id         INTEGER NOT NULL REFERENCES batches(id),
        unit_id          INTEGER NOT NULL REFERENCES units(id),
        issued_at        TEXT NOT NULL,
        template_version TEXT NOT NULL,
        tasks_json       TEXT NOT NULL,
        path             TEXT,
        sha256           TEXT,
        purpose          TEXT NOT NULL DEFAULT 'build'
    );
    CREATE INDEX issues_unit ON issues(batch_id, unit_id);
    CREATE TABLE submissions (
        id            INTEGER PRIMARY KEY,
        sha256        TEXT NOT NULL UNIQUE,
        batch_id      INTEGER REFERENCES batches(id),
        unit_id       INTEGER REFERENCES units(id),
        file_name     TEXT NOT NULL,
        archive_path  TEXT NOT NULL,
        received_at   TEXT NOT NULL,
        processed_at  TEXT NOT NULL,
        outcome       TEXT NOT NULL CHECK (outcome IN ('accepted', 'quarantined')),
        reason        TEXT,
        signed        INTEGER NOT NULL DEFAULT 0,
        source        TEXT NOT NULL DEFAULT 'folder',
        message_id    TEXT,
        sender        TEXT,
        contact       TEXT,
        phone         TEXT,
        rows_accepted INTEGER NOT NULL DEFAULT 0,
        problem_count INTEGER NOT NULL DEFAULT 0,
        quarantine_path TEXT
    );
    CREATE INDEX submissions_unit ON submissions(batch_id, unit_id);
    CREATE TABLE responses (
        id            INTEGER PRIMARY KEY,
        submission_id INTEGER NOT NULL REFERENCES submissions(id),
        batch_id      INTEGER NOT NULL REFERENCES batches(id),
        unit_id       INTEGER NOT NULL REFERENCES units(id),
        task_number   INTEGER NOT NULL,
        status        TEXT NOT NULL,
        progress      TEXT NOT NULL DEFAULT '',
        completed_on  TEXT,
        evidence      TEXT NOT NULL DEFAULT '',
        issues        TEXT NOT NULL DEFAULT '',
        received_at   TEXT NOT NULL,
        UNIQUE (submission_id, task_number)
    );
    CREATE INDEX responses_unit_task ON responses(batch_id, unit_id, task_number, received_at);
    CREATE TABLE answers (
        batch_id    INTEGER NOT NULL,
        unit_id     INTEGER NOT NULL,
        task_number INTEGER NOT NULL,
        response_id INTEGER NOT NULL REFERENCES responses(id),
        received_at TEXT NOT NULL,
        PRIMARY KEY (batch_id, unit_id, task_number)
    );
    CREATE TABLE problems (
        id            INTEGER PRIMARY KEY,
        submission_id INTEGER NOT NULL REFERENCES submissions(id),
        severity      TEXT NOT NULL DEFAULT 'error',
        sheet         TEXT,
        cell          TEXT,
        task_number   INTEGER,
        field         TEXT,
        message       TEXT NOT NULL
    );
    CREATE INDEX problems_submission ON problems(submission_id);
    CREATE TABLE messages (
        id             INTEGER PRIMARY KEY,
        idem_key       TEXT NOT NULL UNIQUE,
        purpose        TEXT NOT NULL,
        batch_id       INTEGER,
        unit_id        INTEGER,
        message_id     TEXT NOT NULL,
        subject        TEXT NOT NULL,
        recipients_json TEXT NOT NULL DEFAULT '[]',
        state          TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'uncertain')),
        attempts       INTEGER NOT NULL DEFAULT 0,
        error          TEXT,
        path           TEXT,
        created_at     TEXT NOT NULL,
        sent_at        TEXT,
        detail_json    TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX messages_unit ON messages(batch_id, unit_id, purpose);
    CREATE TABLE imap_messages (
        message_id   TEXT PRIMARY KEY,
        folder       TEXT,
        uid          TEXT,
        sender       TEXT,
        subject      TEXT,
        state        TEXT NOT NULL,
        note         TEXT,
        seen_at      TEXT NOT NULL,
        processed_at TEXT
    );
    CREATE TABLE events (
        id      INTEGER PRIMARY KEY,
        at      TEXT NOT NULL,
        kind    TEXT NOT NULL,
        detail  TEXT NOT NULL DEFAULT '{}'
    );
    """,
    # 2: responses in receipt order: the report's 提交记录 streams every response without a sort
    """
    CREATE INDEX responses_received ON responses(batch_id, received_at);
    """,
    # 3: the current answer per (unit, task) lives in `answers`; nothing looks responses up by
    # (unit, task) any more, and every stored row paid for the index (a sixth of collect's writes)
    """
    DROP INDEX IF EXISTS responses_unit_task;
    """,
    # 4: per-task deadlines as a date (「6月底前」 → the batch year's June 30), beside the text
    """
    ALTER TABLE tasks ADD COLUMN due_date TEXT;
    """,
]
