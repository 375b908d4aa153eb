"""E-mail: composition and letters, transports, at-most-once sending, distribution, receipts, IMAP intake.

Going out, one module per job, each using the ones above it:

- :mod:`~automation.mail.attachment`: the one :class:`Attachment` type, out and in;
- :mod:`~automation.mail.compose`: the MIME message, Chinese names, Message-ID;
- :mod:`~automation.mail.letters`: the Chinese texts (cover letter, 回执, reminders);
- :mod:`~automation.mail.transports`: outbox folder or SMTP, each a context manager;
- :mod:`~automation.mail.sending`: at-most-once sending under an idempotency key;
- :mod:`~automation.mail.distribution`: workbooks to every assigned unit;
- :mod:`~automation.mail.receipts`: the 回执 owed for returned files (one entry for CLI and service).

Coming in: :mod:`~automation.mail.parsing` (decoding a received message),
:mod:`~automation.mail.imap` (the IMAP session) and :mod:`~automation.mail.intake` (the pipeline:
unseen messages to the collector, exactly once).

May import: the foundations, :mod:`automation.ledger`, :mod:`automation.workbook` (workbooks to
attach) and :mod:`automation.collect` (IMAP intake hands attachments to the collector).
"""
