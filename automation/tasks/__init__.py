"""The office's task table in: every format it arrives in, understood, and imported into the ledger.

- :mod:`~automation.tasks.load`: readers (text and web extracts, CSV, workbooks, Word tables) into
  raw rows, and the interpreter (header by synonyms, 一、/（一）/1. hierarchy, cells that slid left);
- :mod:`~automation.tasks.importing`: ``automation init`` (registry sync, unknown names, assignments).

May import: the foundations and :mod:`automation.ledger` (importing only).
"""
