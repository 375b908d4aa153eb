"""督办 (duban): a coordinating office's task-supervision loop over plain Excel and e-mail.

Stages, one module each: :mod:`~automation.tasks.load` → :mod:`~automation.units` →
:mod:`~automation.workbook.build` → :mod:`~automation.collect.pipeline` → :mod:`~automation.ledger` →
:mod:`~automation.progress.report` → :mod:`~automation.mail` / :mod:`~automation.remind` /
:mod:`~automation.service`.  The CLI in :mod:`~automation.cli` is a thin layer over them.
"""

__version__ = "0.1.0"
