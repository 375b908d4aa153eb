"""Regenerate tests/fixtures/import/: task lists made the way offices make them.

    python scripts/make_import_fixtures.py          # every test fixture (needs LibreOffice: soffice)
    python scripts/make_import_fixtures.py --bench  # only the 20-page PDF of bench/bench_import.py

Word files are written with python-docx as an office types them (公文 page margins, 仿宋 body, a
page-number footer, header rows marked to repeat on every page, 类别 cells merged down over their
tasks, long cells allowed to split across a page), then converted to PDF by LibreOffice Writer —
the PDFs are what a 红头文件's attachment looks like.  The texts are in
``scripts/import_fixture_texts.py``.

- ``table_sections.docx/.pdf``  序号 | 类别 (merged down) | 工作任务 | 具体要求 | 牵头单位 | 责任单位; 附件 line,
  title and preamble above, a note and the signature below, rows split by page breaks.
- ``table_deadlines.docx/.pdf`` no numbers; 工作任务 | 工作措施 | 责任单位 | 完成时限; a row split by a page break.
- ``fengong_labels.docx/.txt``  a 分工方案 通知: numbered paragraphs with 牵头单位：/责任单位：… lines.
- ``fengong_inline.docx/.txt``  units inline （牵头单位：…；责任单位：…）, a 「以下均需…」 note, numbers restarting.
- ``web_extract.txt``           a web page copied: 索引号 table, one cell per line with ``|`` lines,
  an unlabelled number column, letter-spaced headers, 领域 merged over several tasks.
- ``viewer_extract.txt``        a PDF viewer's copy: each cell's line ends in `` |``; headings merged
  into the first task of their section; a task whose title is the only text of its row.
- ``scanned.pdf``               page 1 of table_sections.pdf as an image only (a scan).
- ``fengong_labels.doc``, ``fengong_labels.wps`` (a .doc renamed), ``table_deadlines.et`` (an .xls renamed,
  as WPS saves them): old formats for the LibreOffice conversion.

The script checks what the tests rely on (pages, split rows) and fails loudly if LibreOffice laid
the documents out differently.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import docx
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import import_fixture_texts as texts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "import"
BENCH_PDF = OUT / "bench_20pages.pdf"

BODY_FONT = "仿宋_GB2312"
TITLE_FONT = "方正小标宋简体"
HEADING_FONT = "黑体"
SUB_FONT = "楷体_GB2312"


# --------------------------------------------------------------------------- Word helpers


def _font(run, name: str, size: float, bold: bool = False) -> None:  # type: ignore[no-untyped-def]
    run.font.name = name
    run.font.size = Pt(size)
    run.font.bold = bold
    rpr = run._element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.append(fonts)
    fonts.set(qn("w:eastAsia"), name)


def new_document(landscape: bool = False) -> docx.document.Document:
    """A 公文 page (A4; margins 37/35/28/26 mm) with a 「— N —」 page number in the footer."""
    document = docx.Document()
    section = document.sections[0]
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = Cm(29.7), Cm(21.0)
    else:
        section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    section.top_margin, section.bottom_margin = Cm(3.7), Cm(3.5)
    section.left_margin, section.right_margin = Cm(2.8), Cm(2.6)
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _font(footer.add_run("— "), BODY_FONT, 14)
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "1"
    run.append(text)
    field.append(run)
    footer._p.append(field)
    _font(footer.add_run(" —"), BODY_FONT, 14)
    style = document.styles["Normal"]
    style.font.name = BODY_FONT
    style.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), BODY_FONT)
    return document


def paragraph(document, kind: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """One paragraph as a 公文 sets it: title, headings 一、（一）, body (two-character indent)."""
    p = document.add_paragraph()
    p.paragraph_format.space_after = Pt(0)
    if kind == "title":
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _font(p.add_run(text), TITLE_FONT, 22)
        p.paragraph_format.space_before = Pt(12)
        p.paragraph_format.space_after = Pt(12)
        return
    if kind in ("center", "right"):
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER if kind == "center" else WD_ALIGN_PARAGRAPH.RIGHT
        _font(p.add_run(text), BODY_FONT, 16)
        return
    if kind == "left":
        _font(p.add_run(text), HEADING_FONT, 16)
        return
    p.paragraph_format.first_line_indent = Pt(32)
    _font(p.add_run(text), {"h1": HEADING_FONT, "h2": SUB_FONT}.get(kind, BODY_FONT), 16)


def _repeat_header(row) -> None:  # type: ignore[no-untyped-def]
    trpr = row._tr.get_or_add_trPr()
    flag = OxmlElement("w:tblHeader")
    flag.set(qn("w:val"), "true")
    trpr.append(flag)


def _cell(cell, value: str | list[str], size: float = 10.5, bold: bool = False,  # type: ignore[no-untyped-def]
          center: bool = False) -> None:
    """Text into a cell; a list gives one paragraph per item (units typed one per line)."""
    values = value if isinstance(value, list) else [value]
    first = cell.paragraphs[0]
    for i, v in enumerate(values):
        p = first if i == 0 else cell.add_paragraph()
        p.paragraph_format.space_after = Pt(0)
        if center:
            p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _font(p.add_run(v), BODY_FONT, size, bold)


def table(document, header: list[str], widths_cm: list[float], rows: list[list[str | list[str]]],  # type: ignore[no-untyped-def]
          centered_cols: tuple[int, ...] = ()):
    t = document.add_table(rows=1 + len(rows), cols=len(header))
    t.style = "Table Grid"
    t.alignment = WD_TABLE_ALIGNMENT.CENTER
    t.autofit = False
    for j, label in enumerate(header):
        _cell(t.rows[0].cells[j], label, 11, bold=True, center=True)
    _repeat_header(t.rows[0])
    for i, row in enumerate(rows, start=1):
        for j, value in enumerate(row):
            if value != "":
                _cell(t.rows[i].cells[j], value, center=j in centered_cols)
    for j, w in enumerate(widths_cm):
        t.columns[j].width = Cm(w)
        for row in t.rows:
            row.cells[j].width = Cm(w)
    return t


# --------------------------------------------------------------------------- documents


def sections_document(repeat: int = 1) -> docx.document.Document:
    """PDF 1: 序号 | 类别 (merged down) | … ; ``repeat`` > 1 makes the long table of the bench."""
    document = new_document()
    paragraph(document, "left", "附件")
    paragraph(document, "title", texts.SECTIONS_TITLE)
    paragraph(document, "p", texts.SECTIONS_PREAMBLE)
    header = ["序号", "类别", "工作任务", "具体要求", "牵头单位", "责任单位"]
    rows: list[list[str | list[str]]] = []
    spans: list[tuple[int, int, str]] = []
    n = 0
    for _ in range(repeat):
        for category, tasks in texts.SECTIONS:
            start = len(rows) + 1
            for title, requirement, lead, responsible in tasks:
                n += 1
                rows.append([str(n), "", title, requirement, lead, responsible])
            spans.append((start, len(rows), category))
    t = table(document, header, [1.1, 2.2, 2.6, 5.9, 2.0, 2.1], rows, centered_cols=(0, 4, 5))
    for first, last, category in spans:
        merged = t.rows[first].cells[1].merge(t.rows[last].cells[1])
        _cell(merged, category, center=True)
    for line in texts.SECTIONS_AFTER:
        paragraph(document, "p", line)
    for line in texts.SECTIONS_SIGNATURE:
        paragraph(document, "right", line)
    return document


def deadlines_document() -> docx.document.Document:
    """PDF 2: no numbers, a 完成时限 column; a landscape page as such lists often are."""
    document = new_document(landscape=True)
    paragraph(document, "left", texts.DEADLINES_ATTACHMENT)
    paragraph(document, "title", texts.DEADLINES_TITLE)
    paragraph(document, "p", texts.DEADLINES_PREAMBLE)
    rows: list[list[str | list[str]]] = [list(r) for r in texts.DEADLINES]
    table(document, ["工作任务", "工作措施", "责任单位", "完成时限"], [4.0, 14.5, 3.4, 3.0], rows,
          centered_cols=(2, 3))
    return document


def prose_document(lines: list[tuple[str, str]]) -> docx.document.Document:
    document = new_document()
    for kind, text in lines:
        paragraph(document, kind, text)
    return document


def prose_text(lines: list[tuple[str, str]]) -> str:
    """The same document pasted into Notepad: one line per paragraph."""
    return "\n".join(text for _kind, text in lines) + "\n"


def web_extract() -> str:
    """A web page's table copied out: one cell per line, a bare ``|`` line after each cell."""
    out = ["三明市人民政府办公室关于印发三明市2021年数字政府建设重点任务清单的通知", ""]
    for key, value in texts.WEB_META:
        out += [key, "|", value, "|"]
    out += ["", "三明市2021年数字政府建设重点任务清单", ""]
    for label in texts.WEB_HEADER:
        out += [label, "|"] if label else ["|"]
    for n, (group, title, requirement, units, deadline) in enumerate(texts.WEB_ROWS, start=1):
        cells = [str(n)] + ([group] if group else []) + [title, requirement, units, deadline]
        for c in cells:
            out += [*c.split("\n"), "|"]
    out += ["", "三明市人民政府办公室", "2021年4月19日"]
    return "\n".join(out) + "\n"


def viewer_extract() -> str:
    """Copied from a PDF viewer: each cell's last line ends in `` |``."""
    out = list(texts.VIEWER_TITLE)
    out += [f"{label} |" for label in texts.VIEWER_HEADER]
    for row in texts.VIEWER_ROWS:
        for cell in row:
            # a long cell wraps onto a second line, as the viewer shows it
            if len(cell) > 28:
                out += [cell[:28], f"{cell[28:]} |"]
            else:
                out.append(f"{cell} |")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- conversions


def soffice(src: Path, fmt: str, outdir: Path) -> Path:
    program = shutil.which("soffice") or shutil.which("libreoffice")
    if program is None:
        raise SystemExit("LibreOffice (soffice) is needed to make the PDF and old-format fixtures")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([program, f"-env:UserInstallation={Path(profile).as_uri()}", "--headless",
                        "--convert-to", fmt, "--outdir", str(outdir), str(src)],
                       check=True, capture_output=True, timeout=300)
    out = outdir / f"{src.stem}.{fmt.split(':')[0]}"
    if not out.exists():
        raise SystemExit(f"LibreOffice did not write {out}")
    return out


def to_pdf(document: docx.document.Document, name: str) -> Path:
    path = OUT / f"{name}.docx"
    document.save(path)
    return soffice(path, "pdf", OUT)


def scanned(pdf: Path, name: str) -> Path:
    """Page 1 of a PDF rendered to an image and wrapped as an image-only PDF (a scan)."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdftoppm", "-r", "110", "-gray", "-f", "1", "-l", "1", "-png", str(pdf),
                        str(Path(tmp) / "page")], check=True)
        png = next(Path(tmp).glob("page*.png"))
        out = OUT / f"{name}.pdf"
        with Image.open(png) as image:
            image.convert("L").save(out, "PDF", resolution=110)
    return out


def old_formats() -> None:
    """The labels 分工方案 as .doc and .wps, the deadline list as .et (an .xls as WPS writes it)."""
    with tempfile.TemporaryDirectory() as tmp:
        doc = soffice(OUT / "fengong_labels.docx", "doc", Path(tmp))
        shutil.copyfile(doc, OUT / "fengong_labels.doc")
        shutil.copyfile(doc, OUT / "fengong_labels.wps")
        import openpyxl

        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "任务清单"
        ws.append([texts.DEADLINES_TITLE])
        ws.append(["工作任务", "工作措施", "责任单位", "完成时限"])
        for row in texts.DEADLINES:
            ws.append(list(row))
        xlsx = Path(tmp) / "table_deadlines.xlsx"
        wb.save(xlsx)
        xls = soffice(xlsx, "xls", Path(tmp))
        shutil.copyfile(xls, OUT / "table_deadlines.et")


# --------------------------------------------------------------------------- checks


def _pages_and_splits(pdf: Path) -> tuple[int, int]:
    """Pages, and how many pages start with a row continued from the page before."""
    import pdfplumber

    splits = 0
    with pdfplumber.open(pdf) as doc:
        pages = len(doc.pages)
        for page in doc.pages[1:]:
            tables = page.extract_tables()
            if tables and len(tables[0]) > 1:
                first = tables[0][1]  # under the repeated header
                if not (first[0] or "").strip():
                    splits += 1
    return pages, splits


def check(pdf: Path, min_pages: int, min_splits: int) -> None:
    pages, splits = _pages_and_splits(pdf)
    if pages < min_pages or splits < min_splits:
        raise SystemExit(f"{pdf.name}: {pages} pages, {splits} split rows; the tests need ≥{min_pages} and "
                         f"≥{min_splits}. Lengthen the texts in import_fixture_texts.py.")
    print(f"{pdf.name}: {pages} pages, {splits} rows split by a page break")


def make_bench() -> Path:
    """The bench's 20-page PDF: the sections table repeated until it fills 20 pages."""
    with tempfile.TemporaryDirectory() as tmp:
        repeat = 4
        while True:
            src = Path(tmp) / "bench_20pages.docx"
            sections_document(repeat).save(src)
            pdf = soffice(src, "pdf", Path(tmp))
            pages, _ = _pages_and_splits(pdf)
            if pages >= 20:
                break
            repeat = max(repeat + 1, round(repeat * 20 / pages))
        if pages > 21:
            raise SystemExit(f"bench PDF came out at {pages} pages")
        shutil.copyfile(pdf, BENCH_PDF)
    print(f"{BENCH_PDF.name}: {pages} pages ({repeat}× the sections table)")
    return BENCH_PDF


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", action="store_true", help="make only the bench's 20-page PDF")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.bench:
        make_bench()
        return
    sections = to_pdf(sections_document(), "table_sections")
    check(sections, 3, 2)
    deadlines = to_pdf(deadlines_document(), "table_deadlines")
    check(deadlines, 2, 1)
    prose_document(texts.LABELS_DOC).save(OUT / "fengong_labels.docx")
    (OUT / "fengong_labels.txt").write_text(prose_text(texts.LABELS_DOC), encoding="utf-8")
    prose_document(texts.INLINE_DOC).save(OUT / "fengong_inline.docx")
    (OUT / "fengong_inline.txt").write_text(prose_text(texts.INLINE_DOC), encoding="utf-8")
    (OUT / "web_extract.txt").write_text(web_extract(), encoding="utf-8")
    (OUT / "viewer_extract.txt").write_text(viewer_extract(), encoding="utf-8")
    scanned(sections, "scanned")
    old_formats()
    for path in sorted(OUT.iterdir()):
        print(f"  {path.name:28} {path.stat().st_size:>8} bytes")


if __name__ == "__main__":
    main()
