"""Generate the hostile corpus: returned "workbooks" that must be quarantined, never parsed blindly.

    python scripts/make_hostile_corpus.py OUT_DIR              # corpus + corpus.json into OUT_DIR
    python scripts/make_hostile_corpus.py OUT_DIR --libreoffice  # also regenerate the committed
                                                                 # tests/fixtures/hostile/encrypted_lo.xls

The tests call :func:`make_corpus` with their own ledger, so the genuine workbooks the corpus is
made from are signed with that ledger's batch secret (forged and re-signed variants need it).
Everything is generated in well under a second except the encrypted .xls: msoffcrypto cannot
encrypt the binary format, so that one file comes from a real LibreOffice
(``scripts/lo_encrypt.py``) and is committed.

Each entry of ``corpus.json``: ``file``, ``what`` (the attack), ``code`` (the pre-check or
collector refusal) and ``words`` (what the office-readable reason must contain).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOSTILE_FIXTURES = ROOT / "tests" / "fixtures" / "hostile"
ENCRYPTED_XLS = HOSTILE_FIXTURES / "encrypted_lo.xls"
SYSTEM_PYTHON = "/usr/bin/python3"
PASSWORD = "duban"


# --------------------------------------------------------------------------- workbook edits (shared with tests)


def find_header(ws: Any) -> tuple[int, dict[str, int]]:
    """(1-based header row, header label -> 1-based column) of a 任务清单 sheet."""
    for row in ws.iter_rows(min_row=1, max_row=30):
        labels = {str(c.value).strip(): c.column for c in row if isinstance(c.value, str)}
        if "序号" in labels:
            return row[0].row, labels
    raise ValueError("no header row")


def fill_workbook(src: Path, out: Path, answers: Mapping[int, Mapping[str, Any]], *, contact: str | None = None,
                  phone: str | None = None, as_text: bool = True) -> None:
    """Fill a workbook as a unit would (openpyxl): ``answers`` maps task number -> {header: value}.

    Strings are stored as text even when they start with ``=`` (typed into a text-formatted
    cell), unless ``as_text`` is False (then openpyxl makes them formulas).
    """
    import openpyxl

    from automation.workbook.layout import CONTACT_LABEL, PHONE_LABEL, TASK_SHEET

    wb = openpyxl.load_workbook(src)
    ws = wb[TASK_SHEET]
    header, cols = find_header(ws)
    rows = {int(ws.cell(r, cols["序号"]).value): r for r in range(header + 1, ws.max_row + 1)
            if isinstance(ws.cell(r, cols["序号"]).value, (int, float))}
    for task, values in answers.items():
        for label, value in values.items():
            cell = ws.cell(rows[task], cols[label])
            cell.value = value
            if as_text and isinstance(value, str):
                cell.data_type = "s"
    for label, value in ((CONTACT_LABEL, contact), (PHONE_LABEL, phone)):
        if value is None:
            continue
        for row in ws.iter_rows(min_row=1, max_row=header - 1):
            for c in row:
                if isinstance(c.value, str) and c.value.startswith(label):
                    target = next(x for x in row if x.column > c.column and type(x).__name__ == "Cell")
                    target.value = value
                    break
    wb.save(out)


def edit_metadata(src: Path, out: Path, changes: Mapping[str, str], secret: bytes | None = None) -> None:
    """Change metadata values; re-sign with ``secret`` (a forger without it cannot)."""
    import openpyxl

    from automation.workbook.layout import META_KEYS, META_SHEET, SIGNATURE_KEY, sign

    wb = openpyxl.load_workbook(src)
    ws = wb[META_SHEET]
    rows = {str(r[0].value): r[1] for r in ws.iter_rows() if r[0].value}
    for key, value in changes.items():
        rows[key].value = value
    if secret is not None:
        fields = {k: str(rows[k].value or "") for k in META_KEYS}
        rows[SIGNATURE_KEY].value = sign(secret, fields)
    wb.save(out)


def retitle_columns(src: Path, out: Path, renames: Mapping[str, str]) -> None:
    """Rename header labels (the unit unprotected the sheet and typed over them)."""
    import openpyxl

    from automation.workbook.layout import TASK_SHEET

    wb = openpyxl.load_workbook(src)
    ws = wb[TASK_SHEET]
    header, cols = find_header(ws)
    for old, new in renames.items():
        ws.cell(header, cols[old]).value = new
    wb.save(out)


def delete_column(src: Path, out: Path, label: str) -> None:
    """Delete a whole column of the task sheet (the unit unprotected the sheet)."""
    import openpyxl

    from automation.workbook.layout import TASK_SHEET

    wb = openpyxl.load_workbook(src)
    ws = wb[TASK_SHEET]
    _header, cols = find_header(ws)
    ws.delete_cols(cols[label])
    wb.save(out)


def swap_numbers(src: Path, out: Path, a: int, b: int) -> None:
    """Swap the 序号 of two task rows, leaving everything else where it is."""
    import openpyxl

    from automation.workbook.layout import TASK_SHEET

    wb = openpyxl.load_workbook(src)
    ws = wb[TASK_SHEET]
    header, cols = find_header(ws)
    col = cols["序号"]
    rows = {int(ws.cell(r, col).value): r for r in range(header + 1, ws.max_row + 1)
            if isinstance(ws.cell(r, col).value, (int, float))}
    ws.cell(rows[a], col).value, ws.cell(rows[b], col).value = b, a
    wb.save(out)


def paste_metadata(src: Path, donor: Path, out: Path, title: str | None = None) -> None:
    """``src`` with ``donor``'s hidden metadata sheet pasted in place of its own (and, if given,
    its title line retyped), as a unit copying another unit's workbook would."""
    import openpyxl

    from automation.workbook.layout import META_SHEET, TASK_SHEET

    wb = openpyxl.load_workbook(src)
    rows = list(openpyxl.load_workbook(donor)[META_SHEET].iter_rows(values_only=True))
    wb.remove(wb[META_SHEET])
    ws = wb.create_sheet(META_SHEET)
    for row in rows:
        ws.append(list(row))
    ws.sheet_state = "veryHidden"
    if title is not None:
        wb[TASK_SHEET].cell(1, 1).value = title
    wb.save(out)


def rewrite_zip(src: Path, out: Path, edits: Mapping[str, Callable[[bytes], bytes]],
                extra: Mapping[str, bytes] | None = None, level: int = 6) -> None:
    """Copy a zip, passing the named parts through ``edits`` and appending ``extra`` parts."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename in edits:
                data = edits[info.filename](data)
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)


def _after_declaration(xml: bytes, insert: bytes) -> bytes:
    end = xml.index(b"?>") + 2 if xml.startswith(b"<?xml") else 0
    return xml[:end] + b"\n" + insert + xml[end:]


def _sheet_part(path: Path, sheet_name: str) -> str:
    """The zip part of a sheet, via workbook.xml and its rels."""
    import re

    with zipfile.ZipFile(path) as z:
        wb = z.read("xl/workbook.xml").decode("utf-8")
        rels = z.read("xl/_rels/workbook.xml.rels").decode("utf-8")
    name, = re.findall(rf'<sheet [^>]*name="{re.escape(sheet_name)}"[^>]*r:id="([^"]+)"', wb)
    rid = re.escape(name)
    target = (re.search(rf'<Relationship [^>]*Id="{rid}"[^>]*Target="([^"]+)"', rels)
              or re.search(rf'<Relationship [^>]*Target="([^"]+)"[^>]*Id="{rid}"', rels))
    return "xl/" + target.group(1).lstrip("/").removeprefix("xl/")


# --------------------------------------------------------------------------- the corpus


def make_corpus(config: Any, ledger: Any, out_dir: Path, now: dt.datetime) -> list[dict[str, Any]]:
    """Write the corpus into ``out_dir`` (made from genuine workbooks of this ledger); return entries.

    Adds an older batch to the ledger (for the "old batch" file).
    """
    from automation.workbook.build import build_unit_workbook
    from automation.workbook.layout import META_SHEET, TASK_SHEET

    out_dir.mkdir(parents=True, exist_ok=True)
    batch = ledger.require_batch(config.batch.title)
    units = {u.name: u for u in ledger.assigned_units(batch.id)}
    a, b = units["市财政局"], units["市司法局"]
    work = Path(tempfile.mkdtemp(prefix="corpus-"))
    try:
        genuine_a = build_unit_workbook(config, ledger, batch, a.id, now, prefill=False,
                                        out_path=work / "a.xlsx").path
        genuine_b = build_unit_workbook(config, ledger, batch, b.id, now, prefill=False,
                                        out_path=work / "b.xlsx").path
        task_a = ledger.assignments(batch.id, a.id)[0].task
        entries: list[dict[str, Any]] = []

        def add(name: str, what: str, code: str, *words: str) -> Path:
            entries.append({"file": name, "what": what, "code": code, "words": list(words)})
            return out_dir / name

        # Zip bomb: a 40 MB XML part of blanks that deflates to ~40 KB (ratio ~1000).
        rewrite_zip(genuine_a, add("zip_bomb.xlsx", "zip bomb (compression ratio ~1000)", "zip_bomb", "压缩炸弹"),
                    {}, extra={"xl/bomb.xml": b"<a>" + b" " * (40 << 20) + b"</a>"}, level=9)

        lol = b"".join(b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10))
        laughs = b'<!DOCTYPE lolz [<!ENTITY lol0 "lol">' + lol + b"]>"
        rewrite_zip(genuine_a, add("billion_laughs.xlsx", "billion laughs in sharedStrings.xml", "xml_entity",
                                   "实体"),
                    {"xl/sharedStrings.xml": lambda x: _after_declaration(x, laughs).replace(
                        b"<t>", b"<t>&lol9;", 1)})

        task_part = _sheet_part(genuine_a, TASK_SHEET)
        xxe = b'<!-- a comment first --><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        rewrite_zip(genuine_a, add("external_entity.xlsx", "external entity (file:///etc/passwd) in the task sheet",
                                   "xml_entity", "实体"),
                    {task_part: lambda x: _after_declaration(x, xxe)})

        import openpyxl

        wb = openpyxl.load_workbook(genuine_a)
        wb[TASK_SHEET].cell(1048576, 16384).value = "x"
        wb.save(add("far_cell.xlsx", "a value at XFD1048576 (calamine would abort the process)", "far_cell",
                    "XFD1048576"))

        far = out_dir / "far_cell.xlsx"
        part = _sheet_part(far, TASK_SHEET)  # e.g. xl/worksheets/sheet2.xml
        moved = "xl/elsewhere/data.xml"
        with zipfile.ZipFile(far) as zin, zipfile.ZipFile(
                add("far_cell_moved.xlsx", "the far cell in a sheet part stored outside xl/worksheets/", "far_cell",
                    "XFD1048576"), "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                body = zin.read(info)
                if info.filename in ("xl/_rels/workbook.xml.rels", "[Content_Types].xml"):
                    body = body.replace(part.removeprefix("xl/").encode(), b"elsewhere/data.xml")
                zout.writestr(moved if info.filename == part else info.filename, body)

        # XML also allows r='…' and blanks around "="; calamine takes lower-case letters and leading
        # zeros too, and aborts on each.  The first cell of the task sheet is moved far away.
        def first_cell(ref: bytes) -> Callable[[bytes], bytes]:
            return lambda x: re.sub(rb'<c r="[A-Z]+[0-9]+"', b"<c " + ref, x, count=1)

        rewrite_zip(genuine_a, add("far_cell_quoted.xlsx", "a cell written r='XFD1048576' (single quotes)",
                                   "far_cell", "XFD1048576"),
                    {task_part: first_cell(b"r='XFD1048576'")})
        rewrite_zip(genuine_a, add("far_cell_spaced.xlsx", 'a cell written r = "xfd0001048576" (blanks, lower case, '
                                   "leading zeros)", "far_cell", "XFD1048576"),
                    {task_part: first_cell(b'r =\n "xfd0001048576"')})

        def doctype_at_piece_end(x: bytes) -> bytes:
            """The DOCTYPE starts on the last byte of the first 1 KB the pre-check inflates."""
            decl, _, rest = x.partition(b"?>")
            decl += b"?>"
            return decl + b" " * (1023 - len(decl)) + xxe.split(b"-->")[1] + rest.lstrip()

        rewrite_zip(genuine_a, add("external_entity_late.xlsx", "the DOCTYPE cut by the pre-check's first 1 KB piece",
                                   "xml_entity", "实体"),
                    {task_part: doctype_at_piece_end})

        import msoffcrypto.format.ooxml as ooxml

        with open(genuine_a, "rb") as fin, open(add("encrypted.xlsx", "password-protected .xlsx (msoffcrypto)",
                                                     "encrypted", "密码"), "wb") as fout:
            ooxml.OOXMLFile(fin).encrypt(PASSWORD, fout)
        if ENCRYPTED_XLS.exists():
            shutil.copy(ENCRYPTED_XLS, add("encrypted_lo.xls", "password-protected .xls (LibreOffice)", "encrypted",
                                           "密码"))

        data = genuine_a.read_bytes()
        add("truncated.xlsx", "zip cut in half (interrupted download)", "corrupt", "损坏").write_bytes(
            data[: len(data) // 2])
        add("random.xlsx", "random bytes named .xlsx", "not_workbook", "无法识别").write_bytes(
            random.Random(4).randbytes(20000))
        add("empty.xlsx", "zero bytes", "empty", "空").write_bytes(b"")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("[Content_Types].xml", "<Types/>")
            z.writestr("word/document.xml", "<w:document/>")
        add("report.xlsx", "a Word document renamed .xlsx", "not_workbook", "Word").write_bytes(buf.getvalue())
        add("export.xls", "an HTML table named .xls", "not_workbook", "网页").write_bytes(
            "<html><body><table><tr><td>序号</td></tr></table></body></html>".encode())
        add("填报表.et", "a WPS .et file", "unsupported", "不支持", ".et").write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 60)

        fill_workbook(genuine_a, add("formula_hyperlink.xlsx", "=HYPERLINK(...) typed as text", "formula", "公式"),
                      {task_a: {"落实情况": "已完成",
                                "工作进展及成效": '=HYPERLINK("http://evil.example/x","点击查看进展")'}})
        fill_workbook(genuine_a, add("formula_dde.xlsx", "=cmd|... (DDE) typed as text", "formula", "公式"),
                      {task_a: {"落实情况": "推进中", "佐证材料": "=cmd|' /C calc'!A0"}})

        paste_metadata(genuine_a, genuine_b, add("pasted_metadata.xlsx", "市司法局's hidden metadata sheet pasted into "
                                                 "市财政局's workbook", "pasted_metadata", a.name, b.name))
        title_b = openpyxl.load_workbook(genuine_b)[TASK_SHEET].cell(1, 1).value
        paste_metadata(genuine_a, genuine_b, add("pasted_metadata_retitled.xlsx", "the same, with the title line "
                                                 "retyped to 市司法局's", "pasted_metadata", a.name, b.name, "不是"),
                       title=title_b)
        edit_metadata(genuine_a, add("forged_metadata.xlsx", "a task added to the metadata without the secret",
                                     "forged", "签名校验失败"),
                      {"tasks": ",".join(str(n) for n in range(1, 36))})
        edit_metadata(genuine_b, add("another_unit.xlsx", "市司法局's workbook relabelled as 市财政局's", "forged",
                                     "签名校验失败"),
                      {"unit_id": str(a.id), "unit_name": a.name})
        edit_metadata(genuine_a, add("unknown_batch.xlsx", "signed for a batch this ledger never issued",
                                     "unknown_batch", "不是本台账"),
                      {"batch_uid": "0" * 32}, secret=b"not-our-secret")
        old = ledger.ensure_batch("2020年南平市政务公开重点工作", 2020, dt.date(2020, 12, 15), now)
        edit_metadata(genuine_a, add("old_batch.xlsx", "a genuine workbook of last year's batch", "old_batch",
                                     "往期批次", old.title),
                      {"batch_uid": old.uid, "batch_title": old.title}, secret=old.secret)
        assert META_SHEET  # the metadata sheet name is what edit_metadata changes
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (out_dir / "corpus.json").write_text(json.dumps(entries, ensure_ascii=False, indent=1), encoding="utf-8")
    return entries


def regenerate_encrypted_xls() -> None:
    """Write tests/fixtures/hostile/encrypted_lo.xls with a real LibreOffice (password: duban)."""
    import xlsxwriter

    HOSTILE_FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "plain.xlsx"
        wb = xlsxwriter.Workbook(str(src))
        ws = wb.add_worksheet("任务清单")
        for c, text in enumerate(("序号", "工作任务", "落实情况")):
            ws.write_string(0, c, text)
        ws.write_number(1, 0, 1)
        ws.write_string(1, 1, "加密的工作簿")
        ws.write_string(1, 2, "已完成")
        wb.close()
        subprocess.run([SYSTEM_PYTHON, str(ROOT / "scripts" / "lo_encrypt.py"), str(src), str(ENCRYPTED_XLS)],
                       check=True, cwd=ROOT / "scripts")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--libreoffice", action="store_true", help="regenerate the committed encrypted .xls")
    args = parser.parse_args(argv)
    if args.libreoffice:
        regenerate_encrypted_xls()
    from automation import clock
    from automation.config import load_config
    from automation.ledger import open_workspace
    from automation.tasks.importing import init_batch

    now = clock.now()
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(ROOT / "config.toml", Path(tmp) / "config.toml")
        shutil.copytree(ROOT / "samples", Path(tmp) / "samples")
        if (ROOT / "templates").exists():
            shutil.copytree(ROOT / "templates", Path(tmp) / "templates")
        config = load_config(Path(tmp) / "config.toml")
        _ws, ledger = open_workspace(config)
        try:
            init_batch(config, ledger, now)
            entries = make_corpus(config, ledger, args.out_dir, now)
        finally:
            ledger.close()
    for e in entries:
        print(f"{e['file']:<24} {e['code']:<14} {e['what']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
