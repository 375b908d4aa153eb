"""Fill issued workbooks in a real LibreOffice through UNO, as a unit's contact would, and save them.

Run with the *system* Python that has LibreOffice's ``uno`` module (Debian: python3-uno), not
the project venv:

    /usr/bin/python3 scripts/lo_fill.py JOB.json

``scripts/make_lo_fixtures.py`` writes JOB.json and calls this.  The job lists documents; each
has ``source`` (an issued .xlsx), ``outputs`` ([{"path", "filter"}]: LibreOffice filter names),
``contact``/``phone``, ``fills`` ({task number: {column header: {"kind": "string"|"date", "value"}}}),
``resort`` (unprotect the sheet, unmerge the heading rows and sort the rows by 序号
descending, as a unit that rearranged its sheet would), and optionally ``formulas`` ({task
number: {column header: formula}}: typed as formulas, so LibreOffice stores their results),
``retitle`` ({header: new header}) and ``swap`` ([a, b]: the 序号 of two task rows exchanged); the
last two unprotect the sheet first, as a unit must to change them.

LibreOffice runs headless on a private profile (``-env:UserInstallation``) and a private pipe,
so it neither disturbs nor is disturbed by another running LibreOffice.  Only the soffice
process started here is stopped at the end.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import uno  # type: ignore[import-not-found]  # system python3-uno
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]
from com.sun.star.connection import NoConnectException  # type: ignore[import-not-found]

TASK_SHEET = "任务清单"
NUMBER_HEADER = "序号"
CONTACT_LABEL = "填报联系人"
PHONE_LABEL = "联系电话"


def prop(name: str, value: object) -> PropertyValue:
    p = PropertyValue()
    p.Name = name
    p.Value = value
    return p


def start_office(profile: Path) -> tuple[subprocess.Popen, object, object]:
    pipe = "duban_" + uuid.uuid4().hex[:12]
    proc = subprocess.Popen(
        ["soffice", f"-env:UserInstallation={profile.as_uri()}", "--headless", "--invisible", "--norestore",
         "--nologo", "--nodefault", f"--accept=pipe,name={pipe};urp;StarOffice.ComponentContext"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.monotonic() + 60
    while True:
        try:
            ctx = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
            break
        except NoConnectException:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("LibreOffice did not start") from None
            time.sleep(0.3)
    desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
    return proc, ctx, desktop


def used_rows(sheet: object) -> int:
    cursor = sheet.createCursor()
    cursor.gotoEndOfUsedArea(False)
    return cursor.RangeAddress.EndRow + 1


def find_header(sheet: object) -> tuple[int, dict[str, int]]:
    for row in range(0, 15):
        labels = {}
        for col in range(0, 40):
            text = sheet.getCellByPosition(col, row).getString().strip()
            if text:
                labels[text] = col
        if NUMBER_HEADER in labels:
            return row, labels
    raise RuntimeError("header row not found")


def value_cell_after(sheet: object, label: str) -> object:
    """The cell right after the (possibly merged) label cell in the top rows."""
    for row in range(0, 5):
        for col in range(0, 40):
            cell = sheet.getCellByPosition(col, row)
            if cell.getString().strip().rstrip("：:") == label:
                cursor = sheet.createCursorByRange(cell)
                cursor.collapseToMergedArea()
                end = cursor.RangeAddress.EndColumn
                return sheet.getCellByPosition(end + 1, row)
    raise RuntimeError(f"label {label} not found")


def excel_serial(day: dt.date) -> float:
    return float((day - dt.date(1899, 12, 30)).days)


def fill_document(desktop: object, doc_job: dict) -> None:
    source = Path(doc_job["source"]).resolve()
    doc = desktop.loadComponentFromURL(source.as_uri(), "_blank", 0, (prop("Hidden", True),))
    try:
        sheet = doc.Sheets.getByName(TASK_SHEET)
        header_row, labels = find_header(sheet)
        number_col = labels[NUMBER_HEADER]
        last = used_rows(sheet)
        rows = {}
        for row in range(header_row + 1, last):
            cell = sheet.getCellByPosition(number_col, row)
            if cell.getType().value == "VALUE":
                rows[int(cell.getValue())] = row
        for number, values in doc_job["fills"].items():
            row = rows[int(number)]
            for header, spec in values.items():
                cell = sheet.getCellByPosition(labels[header], row)
                if spec["kind"] == "date":
                    cell.setValue(excel_serial(dt.date.fromisoformat(spec["value"])))
                else:
                    cell.setString(spec["value"])
        for number, values in doc_job.get("formulas", {}).items():
            for header, formula in values.items():
                sheet.getCellByPosition(labels[header], rows[int(number)]).setFormula(formula)
        if doc_job.get("retitle") or doc_job.get("swap"):
            sheet.unprotect("")
        for old, new in doc_job.get("retitle", {}).items():
            sheet.getCellByPosition(labels[old], header_row).setString(new)
        if doc_job.get("swap"):
            a, b = (int(n) for n in doc_job["swap"])
            sheet.getCellByPosition(number_col, rows[a]).setValue(b)
            sheet.getCellByPosition(number_col, rows[b]).setValue(a)
        if doc_job.get("contact"):
            value_cell_after(sheet, CONTACT_LABEL).setString(doc_job["contact"])
        if doc_job.get("phone"):
            value_cell_after(sheet, PHONE_LABEL).setString(doc_job["phone"])
        if doc_job.get("resort"):
            sheet.unprotect("")
            ncols = max(labels.values()) + 1
            for row in range(header_row + 1, last):
                sheet.getCellRangeByPosition(0, row, ncols - 1, row).merge(False)
            body = sheet.getCellRangeByPosition(0, header_row + 1, ncols - 1, last - 1)
            field = uno.createUnoStruct("com.sun.star.table.TableSortField")
            field.Field = number_col
            field.IsAscending = False
            descriptor = body.createSortDescriptor()
            for p in descriptor:
                if p.Name == "SortFields":
                    p.Value = uno.Any("[]com.sun.star.table.TableSortField", (field,))
                elif p.Name == "ContainsHeader":
                    p.Value = False
            body.sort(descriptor)
        for out in doc_job["outputs"]:
            target = Path(out["path"]).resolve()
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                target.unlink()
            doc.storeToURL(target.as_uri(), (prop("FilterName", out["filter"]), prop("Overwrite", True)))
            if not target.exists():
                raise RuntimeError(f"LibreOffice did not write {target}")
    finally:
        doc.close(True)


def office_version(ctx: object) -> str:
    """LibreOffice's version from its configuration (no second soffice process)."""
    try:
        provider = ctx.ServiceManager.createInstanceWithContext("com.sun.star.configuration.ConfigurationProvider", ctx)
        access = provider.createInstanceWithArguments(
            "com.sun.star.configuration.ConfigurationAccess", (prop("nodepath", "/org.openoffice.Setup/Product"),))
        return f"{access.getByName('ooName')} {access.getByName('ooSetupVersionAboutBox')}"
    except Exception:  # informational only
        return "LibreOffice"


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as tmp:
        proc, ctx, desktop = start_office(Path(tmp) / "profile")
        try:
            version = office_version(ctx)
            for doc_job in job["documents"]:
                fill_document(desktop, doc_job)
            print(json.dumps({"libreoffice": version}, ensure_ascii=False))
        finally:
            stop_office(proc, desktop)
    return 0


def stop_office(proc: subprocess.Popen, desktop: object) -> None:
    """Ask soffice to quit, then make sure it has (a stuck one is killed)."""
    try:
        desktop.terminate()  # type: ignore[attr-defined]
    except Exception:  # the bridge drops as soffice exits
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
