"""Progress: the numbers (:mod:`~automation.progress.summary`) and the report workbook
(:mod:`~automation.progress.report`) that ``status``, the report and the reminders share.

May import: the foundations, :mod:`automation.ledger` and :mod:`automation.workbook` (the bulk writer,
the layout's column names).
"""
