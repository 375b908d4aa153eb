"""Returned files in: pre-checks and the sandboxed parser, reading a returned sheet, identification,
durable storage, and the pipeline that ties them together (``automation collect``).

- :mod:`~automation.collect.safety` (a package): pre-checks (sizes, bombs, entities, far cells,
  encryption), the worker protocol, the worker process (``python -m automation.collect.safety
  --worker``) and the pool that runs it;
- :mod:`~automation.collect.returned`, :mod:`~automation.collect.values`: a returned 任务清单 sheet and
  the values a unit typed;
- :mod:`~automation.collect.inputs`: finding, reading and hashing the files given;
- :mod:`~automation.collect.lookups`: what a run asks the ledger, asked once;
- :mod:`~automation.collect.identify`: whose file it is (signature, table revision, unit, sender);
- :mod:`~automation.collect.storage`: archive and quarantine copies, durable before an input leaves;
- :mod:`~automation.collect.results`: :class:`~automation.collect.results.FileResult` and the
  ``collect --json`` shape;
- :mod:`~automation.collect.pipeline`: the run (``collect_paths``, ``collect_file``, ``collect_bytes``).

May import: the foundations, :mod:`automation.ledger` and :mod:`automation.workbook` (its layout).
"""
