"""E-mail: composition and letters, transports, at-most-once sending, distribution, receipts, IMAP intake.

May import: the foundations, :mod:`automation.ledger`, :mod:`automation.workbook` (workbooks to
attach) and :mod:`automation.collect` (IMAP intake hands attachments to the collector).
"""
