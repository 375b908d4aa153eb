"""Regenerate templates/report_template.xlsx from the built-in default layout, and
templates/notice_template.docx (the 情况通报 template).

Run after changing :data:`automation.workbook.layout.DEFAULT_LAYOUT` or the notice template's text
(or when an office has broken a template and wants the default back).  The workbook template is
reproducible byte for byte, so an unchanged layout gives no diff to commit; the Word template
carries the time it was written in its zip entries.

    python scripts/make_template.py [OUT.xlsx]
"""

from __future__ import annotations

import sys
from pathlib import Path

from automation.progress.notice_template import write_notice_template
from automation.workbook.layout import DEFAULT_LAYOUT
from automation.workbook.template import read_template, write_template

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "templates" / "report_template.xlsx"
    write_template(out, DEFAULT_LAYOUT)
    version = read_template(out).version
    if version != DEFAULT_LAYOUT.version:  # the template must read back as exactly the default
        print(f"模板读回的版本 {version} 与默认版本 {DEFAULT_LAYOUT.version} 不一致", file=sys.stderr)
        return 1
    print(f"{out}（模板版本 {version}）")
    if not argv:
        notice = ROOT / "templates" / "notice_template.docx"
        write_notice_template(notice)
        print(notice)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
