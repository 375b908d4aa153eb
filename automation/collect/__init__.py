"""Returned files in: pre-checks and the sandboxed parser, reading a returned sheet, identification,
durable storage, and the pipeline that ties them together (``automation collect``).

- :mod:`~automation.collect.safety`: pre-checks (sizes, bombs, entities, encryption) and the parser
  worker processes (``python -m automation.collect.safety --worker``);
- :mod:`~automation.collect.returned`, :mod:`~automation.collect.values`: a returned 任务清单 sheet and
  the values a unit typed;
- :mod:`~automation.collect.pipeline`: identification, archive and quarantine, the ledger writes.

May import: the foundations, :mod:`automation.ledger` and :mod:`automation.workbook` (its layout).
"""
