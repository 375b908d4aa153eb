"""The issued workbook: the layout contract, the office's template, the bulk writer, building per unit.

- :mod:`~automation.workbook.layout`: the one :class:`Layout` both the builder and the collector use,
  and the signed metadata;
- :mod:`~automation.workbook.template`: ``templates/report_template.xlsx`` ⇄ Layout;
- :mod:`~automation.workbook.build`: one workbook per unit (rendering, the worker pool, the ledger record);
- :mod:`~automation.workbook.xlsxbulk`: millions of rows spliced into an XlsxWriter package (the report).

May import: the foundations and :mod:`automation.ledger`.
"""
