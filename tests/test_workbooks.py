"""Assignment workbooks: content, protection, validation, printing, signed metadata, real LibreOffice files."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest
import python_calamine

from automation.config import Office, load_config
from automation.errors import InputError, UnknownUnitError
from automation.fsutil import sha256_file
from automation.ledger import Ledger, open_workspace
from automation.ledger.records import Response
from automation.tasks.importing import init_batch
from automation.workbook.build import (
    BuildContext,
    WorkbookJob,
    build_unit_workbook,
    build_workbooks,
    render_workbook,
    workbook_filename,
)
from automation.workbook.layout import (
    CONTACT_LABEL,
    DEFAULT_LAYOUT,
    HEADER_ROW,
    HELP_SHEET,
    LISTS_SHEET,
    META_KEYS,
    META_SHEET,
    PHONE_LABEL,
    TASK_SHEET,
    Column,
    Layout,
    verify,
)
from automation.workbook.textsize import wrapped_lines as estimate_lines

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "libreoffice"
NOW = dt.datetime(2021, 11, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
FILL = [c for c in DEFAULT_LAYOUT.columns if c.fill_in]


# --------------------------------------------------------------------------- helpers


def read_task_sheet(path: Path, labels: dict[str, str] | None = None) -> dict:
    """What a reader of a returned file sees (calamine): header by labels, rows by 序号, contact cells."""
    labels = labels or {c.key: c.header for c in DEFAULT_LAYOUT.columns}
    wb = python_calamine.CalamineWorkbook.from_path(str(path))
    rows = wb.get_sheet_by_name(TASK_SHEET).to_python()
    header = next(i for i, r in enumerate(rows) if labels["number"] in r and labels["title"] in r)
    col = {key: rows[header].index(label) for key, label in labels.items()}
    tasks = {}
    for r in rows[header + 1:]:
        value = r[col["number"]]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            tasks[int(value)] = {key: r[i] for key, i in col.items()}
    contact = phone = None
    for r in rows[:header]:
        cells = [str(v) for v in r]
        for i, v in enumerate(cells):
            nxt = next((x for x in cells[i + 1:] if x), "")
            if v.rstrip("：:") == CONTACT_LABEL:
                contact = nxt if not nxt.rstrip("：:") == PHONE_LABEL else ""
            if v.rstrip("：:") == PHONE_LABEL:
                phone = nxt if not nxt.startswith("报送截止") else ""
    meta_rows = wb.get_sheet_by_name(META_SHEET).to_python()
    return {"header": header, "tasks": tasks, "order": list(tasks), "contact": contact, "phone": phone,
            "meta": {r[0]: r[1] for r in meta_rows}, "meta_rows": meta_rows, "sheets": wb.sheet_names}


def task_row_numbers(ws) -> dict[int, int]:
    """1-based sheet row per task number (openpyxl)."""
    return {int(ws.cell(r, 1).value): r for r in range(HEADER_ROW + 1, ws.max_row + 1)
            if isinstance(ws.cell(r, 1).value, (int, float))}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The bundled config and sample, every workbook built once for this module (sequentially)."""
    root = tmp_path_factory.mktemp("build")
    shutil.copy(ROOT / "config.toml", root / "config.toml")
    shutil.copytree(ROOT / "samples", root / "samples")
    shutil.copytree(ROOT / "templates", root / "templates")
    config = load_config(root / "config.toml")
    _ws, ledger = open_workspace(config)
    init_batch(config, ledger, NOW)
    workbooks = build_workbooks(config, ledger, NOW, jobs=1)
    yield config, ledger, workbooks
    ledger.close()


def by_unit(workbooks, name):
    return next(b for b in workbooks if b.unit == name)


# --------------------------------------------------------------------------- names


def test_workbook_filename_is_windows_safe_and_bounded():
    assert workbook_filename("2021年南平市政务公开重点工作", "市发改委") == "2021年南平市政务公开重点工作_市发改委.xlsx"
    name = workbook_filename('督办:第一批/"重点"*任务?' + "很长" * 60, "延平区<政府>|")
    assert len(name) <= 80 and name.endswith("_延平区_政府__.xlsx")
    assert not re.search(r'[<>:"/\\|?*]', name)
    assert name.startswith("督办_第一批_")
    assert workbook_filename("CON", "AUX").split(".")[0].upper() not in {"CON", "AUX"}
    assert workbook_filename("t", "NUL") == "t__NUL.xlsx"


# --------------------------------------------------------------------------- build


def test_one_workbook_per_assigned_unit_recorded_in_ledger(built):
    config, ledger, workbooks = built
    batch = ledger.require_batch(config.batch.title)
    assigned = ledger.assigned_units(batch.id)
    assert len(workbooks) == len(assigned) == 37
    assert [b.unit for b in workbooks] == [u.name for u in assigned]
    folder = config.workspace / "workbooks"
    assert sorted(p.name for p in folder.iterdir()) == sorted(b.path.name for b in workbooks)
    assert all(b.path.parent == folder for b in workbooks)
    issues = ledger.execute("SELECT unit_id, template_version, tasks_json, sha256, purpose FROM issues").fetchall()
    assert {(r[0], r[1], r[2], r[3], r[4]) for r in issues} == {
        (b.unit_id, DEFAULT_LAYOUT.version, json.dumps(b.tasks), b.sha256, "build") for b in workbooks}
    assert ledger.layout(DEFAULT_LAYOUT.version) == DEFAULT_LAYOUT.to_dict()


def test_tasks_and_roles_match_the_assignments(built):
    config, ledger, workbooks = built
    batch = ledger.require_batch(config.batch.title)
    tasks = {t.number: t for t in ledger.tasks(batch.id)}
    for b in workbooks:
        rows = ledger.assignments(batch.id, b.unit_id)
        sheet = read_task_sheet(b.path)
        assert sheet["header"] == HEADER_ROW - 1
        assert sheet["order"] == [r.task for r in rows] == b.tasks
        for r in rows:
            cells = sheet["tasks"][r.task]
            role = f"{r.role}（{r.note}）" if r.note else r.role
            assert cells["role"] == role
            assert cells["title"] == tasks[r.task].title
            assert cells["requirement"] == tasks[r.task].requirement
            assert cells["lead"] == "、".join(tasks[r.task].lead)
            assert all(cells[c.key] == "" for c in FILL)
    sheet = read_task_sheet(by_unit(workbooks, "市司法局").path)
    assert sheet["tasks"][21]["role"] == "责任（负责市政府规章）"
    assert sheet["tasks"][20]["role"] == "牵头"


def test_sections_and_subsections_head_their_tasks(built):
    _config, _ledger, workbooks = built
    rows = python_calamine.CalamineWorkbook.from_path(str(by_unit(workbooks, "延平区政府").path)) \
        .get_sheet_by_name(TASK_SHEET).to_python()
    firsts = [r[0] for r in rows[HEADER_ROW:]]
    assert firsts[:3] == ["一、紧扣“十四五”开好局起好步深化政务公开", "（一）做好各类规划主动公开", 1.0]
    assert sum(1 for v in firsts if isinstance(v, str) and re.match(r"^[一二三四]、", v)) == 4
    assert sum(1 for v in firsts if isinstance(v, str) and v.startswith("（")) == 13


def test_locked_task_cells_unlocked_fill_cells(built):
    _config, _ledger, workbooks = built
    wb = openpyxl.load_workbook(by_unit(workbooks, "市司法局").path)
    ws = wb[TASK_SHEET]
    rows = task_row_numbers(ws)
    assert len(rows) == len(by_unit(workbooks, "市司法局").tasks)
    for r in rows.values():
        for i, c in enumerate(DEFAULT_LAYOUT.columns, start=1):
            cell = ws.cell(r, i)
            assert cell.protection.locked is (not c.fill_in), (cell.coordinate, c.key)
            if c.kind == "date":
                assert cell.number_format == "yyyy-mm-dd"
    for r in range(1, HEADER_ROW + 1):  # title, labels and header are locked; contact/phone values are not
        unlocked = {ws.cell(r, i).coordinate for i in range(1, 12) if ws.cell(r, i).protection.locked is False}
        assert unlocked == ({"C2", "E2", "F2"} if r == 2 else set())  # the phone cell is merged over E:F
    p = ws.protection
    assert p.sheet and not p.password
    assert p.selectLockedCells is False and p.selectUnlockedCells is False
    assert p.formatRows is False and p.formatColumns is False and p.autoFilter is False  # allowed
    assert p.insertRows and p.deleteRows and p.insertColumns and p.deleteColumns and p.formatCells
    for name in (HELP_SHEET, LISTS_SHEET, META_SHEET):
        assert wb[name].protection.sheet


def test_dropdown_source_input_messages_and_date_validation(built):
    _config, _ledger, workbooks = built
    wb = openpyxl.load_workbook(by_unit(workbooks, "延平区政府").path)
    ws = wb[TASK_SHEET]
    rows = task_row_numbers(ws)
    first, last = min(rows.values()), max(rows.values())
    lists = wb[LISTS_SHEET]
    assert lists.sheet_state == "hidden"
    assert [lists.cell(r, 1).value for r in range(2, 6)] == list(DEFAULT_LAYOUT.statuses)
    rules = {str(dv.sqref): dv for dv in ws.data_validations.dataValidation}
    for i, c in enumerate(DEFAULT_LAYOUT.columns):
        letter = "ABCDEFGHIJKL"[i]
        ref = f"{letter}{first}:{letter}{last}"
        if not c.fill_in:
            assert not any(k.startswith(letter) for k in rules)
            continue
        candidates = [dv for k, dv in rules.items() if k.startswith(letter)]
        assert len(candidates) == 1, c.key
        dv = candidates[0]
        lo, hi = str(dv.sqref).split(":")
        assert int(lo[1:]) <= first and int(hi[1:]) >= last, ref
        assert dv.showInputMessage and dv.promptTitle == c.header and dv.prompt
        if c.kind == "status":
            assert dv.type == "list" and dv.formula1 == f"'{LISTS_SHEET}'!$A$2:$A$5"
            assert dv.errorStyle in (None, "stop") and "已完成 / 推进中 / 未启动 / 不适用" in dv.prompt
        elif c.kind == "date":
            assert dv.type == "date" and dv.operator in (None, "between")  # absent means between
            assert (dv.formula1, dv.formula2) == ("36526", "73050")  # 2000-01-01 … 2099-12-31
        else:
            assert dv.type is None  # input message only


def test_metadata_very_hidden_and_signed(built):
    config, ledger, workbooks = built
    batch = ledger.require_batch(config.batch.title)
    b = by_unit(workbooks, "市司法局")
    wb = openpyxl.load_workbook(b.path)
    assert wb[META_SHEET].sheet_state == "veryHidden"
    assert [ws.title for ws in wb if ws.sheet_state == "visible"] == [HELP_SHEET, TASK_SHEET]
    sheet = read_task_sheet(b.path)
    assert all(isinstance(v, str) for row in sheet["meta_rows"] for v in row)  # plain strings for calamine
    meta = sheet["meta"]
    assert [r[0] for r in sheet["meta_rows"][: len(META_KEYS) + 1]] == [*META_KEYS, "signature"]
    assert meta["batch_uid"] == batch.uid and meta["unit_id"] == str(b.unit_id) and meta["unit_name"] == "市司法局"
    assert meta["tasks"] == ",".join(map(str, b.tasks))
    assert meta["issued_at"] == "2021-11-01T09:30:00+08:00"
    assert meta["template_version"] == DEFAULT_LAYOUT.version
    assert meta["header_row"] == str(HEADER_ROW) and meta["contact_cell"] == "C2" and meta["phone_cell"] == "E2"
    assert verify(batch.secret, meta, meta["signature"])
    for key, forged in (("unit_id", "1"), ("tasks", "20,21"), ("batch_uid", "x")):
        assert not verify(batch.secret, {**meta, key: forged}, meta["signature"])
    assert not verify(b"another secret", meta, meta["signature"])


def test_print_settings_freeze_and_filter(built):
    _config, _ledger, workbooks = built
    wb = openpyxl.load_workbook(by_unit(workbooks, "市发改委").path)
    ws = wb[TASK_SHEET]
    last = ws.max_row
    assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.page_setup.fitToWidth in (None, 1) and int(ws.page_setup.fitToHeight) == 0
    assert ws.print_title_rows == f"${HEADER_ROW}:${HEADER_ROW}"
    assert ws.oddFooter.center.text == "第 &P 页 共 &N 页" and ws.oddFooter.left.text == "市发改委"
    assert ws.freeze_panes == f"C{HEADER_ROW + 1}"
    assert ws.auto_filter.ref == f"A{HEADER_ROW}:L{last}"
    assert ws.print_area == f"'{TASK_SHEET}'!$A$1:$L${last}"
    help_ws = wb[HELP_SHEET]
    assert int(help_ws.page_setup.paperSize) == 9 and help_ws.sheet_properties.pageSetUpPr.fitToPage


def test_row_heights_grow_with_text(built):
    _config, _ledger, workbooks = built
    wb = openpyxl.load_workbook(by_unit(workbooks, "延平区政府").path)
    ws = wb[TASK_SHEET]
    rows = task_row_numbers(ws)
    widths = {i: c.width for i, c in enumerate(DEFAULT_LAYOUT.columns, start=1)}

    def lines(r):
        return max(estimate_lines(str(ws.cell(r, i).value or ""), widths[i], 10) for i in widths if i > 1)

    heights = {n: ws.row_dimensions[r].height for n, r in rows.items()}
    assert heights[12] > 3 * heights[7]  # the longest requirement vs a one-liner
    for n, r in rows.items():
        assert heights[n] >= lines(r) * 10 * 1.3, n  # at least 1.3 × font size per wrapped line
    pairs = sorted((lines(r), heights[n]) for n, r in rows.items())
    assert all(a[1] <= b[1] for a, b in zip(pairs, pairs[1:], strict=False))  # monotonic in the text length


def test_estimate_lines():
    assert estimate_lines("", 10) == 1
    assert estimate_lines("短", 10) == 1
    assert estimate_lines("字" * 40, 36) == 3  # 36 wide ≈ 18 Chinese characters per line at 10 pt
    assert estimate_lines("a" * 20, 36) == 1
    assert estimate_lines("a" * 40, 36) < estimate_lines("字" * 40, 36)
    assert estimate_lines("一\n二\n三", 36) == 3


def test_formula_and_link_text_stay_text(ledger, config, now):
    """A task title beginning with '=' (and a URL) from a task table is stored as a string."""
    batch = ledger.require_batch(config.batch.title)
    evil = '=HYPERLINK("http://evil.example/x","点我")'
    ledger.execute("UPDATE tasks SET title = ?, requirement = ? WHERE batch_id = ? AND number = 1",
                   (evil, "http://www.np.gov.cn/=1+1", batch.id))
    unit = ledger.unit_by_name("延平区政府")
    b = build_unit_workbook(config, ledger, batch, unit.id, now)
    ws = openpyxl.load_workbook(b.path)[TASK_SHEET]
    r = task_row_numbers(ws)[1]
    assert ws.cell(r, 2).value == evil and ws.cell(r, 2).data_type == "s"
    assert ws.cell(r, 3).value == "http://www.np.gov.cn/=1+1" and ws.cell(r, 3).hyperlink is None
    with zipfile.ZipFile(b.path) as z:
        xml = "".join(z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/sheet"))
        assert "<f>" not in xml and "<hyperlink" not in xml
        assert not any("hyperlink" in z.read(n).decode() for n in z.namelist() if n.endswith(".rels"))
    assert read_task_sheet(b.path)["tasks"][1]["title"] == evil


def test_prefill_latest_answers_and_contact(ledger, config, now):
    batch = ledger.require_batch(config.batch.title)
    unit = ledger.unit_by_name("市司法局")
    common = dict(file_name="a.xlsx", archive_path="archive/a.xlsx", now=now, outcome="accepted",
                  batch_id=batch.id, unit_id=unit.id, signed=True)
    ledger.record_submission(sha256="1" * 64, received_at=now - dt.timedelta(days=2), contact="旧联系人",
                             phone="0599-1", responses=[Response(20, "推进中", "旧进展")], **common)
    ledger.record_submission(sha256="2" * 64, received_at=now - dt.timedelta(days=1), contact="王小明",
                             phone="13800138000", responses=[
                                 Response(20, "已完成", "已更新行政法规文本", completed_on="2021-06-30",
                                          evidence="https://www.np.gov.cn/a.html", issues=""),
                                 Response(21, "推进中", "=正在推进", issues="人手不足"),
                             ], **common)
    later = now + dt.timedelta(days=3)
    b = build_unit_workbook(config, ledger, batch, unit.id, later, purpose="remind",
                            out_path=config.workspace / "outbox" / "x.xlsx")
    assert b.path == config.workspace / "outbox" / "x.xlsx" and b.path.exists()
    sheet = read_task_sheet(b.path)
    assert sheet["contact"] == "王小明" and sheet["phone"] == "13800138000"
    t20, t21 = sheet["tasks"][20], sheet["tasks"][21]
    assert (t20["status"], t20["progress"], t20["completed_on"], t20["evidence"]) == (
        "已完成", "已更新行政法规文本", dt.date(2021, 6, 30), "https://www.np.gov.cn/a.html")
    assert (t21["status"], t21["progress"], t21["issues"]) == ("推进中", "=正在推进", "人手不足")
    assert sheet["tasks"][22]["status"] == ""
    ws = openpyxl.load_workbook(b.path)[TASK_SHEET]
    rows = task_row_numbers(ws)
    date_cell = ws.cell(rows[20], 9)
    assert date_cell.is_date and date_cell.protection.locked is False
    assert ws.cell(rows[21], 8).data_type == "s"
    (purpose,) = ledger.execute("SELECT purpose FROM issues WHERE path = ?", (str(b.path),)).fetchone()
    assert purpose == "remind"
    blank = build_unit_workbook(config, ledger, batch, unit.id, later, prefill=False,
                                out_path=config.workspace / "outbox" / "blank.xlsx")
    sheet = read_task_sheet(blank.path)
    assert sheet["tasks"][20]["status"] == "" and sheet["contact"] == ""


def test_unit_selection_aliases_groups_and_errors(ledger, config, now, tmp_path):
    built = build_workbooks(config, ledger, now, units=["延平区", "南平市发展和改革委员会"], out_dir=tmp_path / "o")
    assert sorted(b.unit for b in built) == ["市发改委", "延平区政府"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted(b.path.name for b in built)
    assert len(build_workbooks(config, ledger, now, units=["各县（市、区）政府"], out_dir=tmp_path / "g")) == 10
    with pytest.raises(UnknownUnitError, match="市不存在局"):
        build_workbooks(config, ledger, now, units=["市不存在局"])
    batch = ledger.require_batch(config.batch.title)
    ledger.execute("DELETE FROM assignments WHERE unit_id = (SELECT id FROM units WHERE name = '市城管局')")
    with pytest.raises(InputError, match="市城管局.*没有任务"):
        build_workbooks(config, ledger, now, units=["市城管局"])
    with pytest.raises(InputError, match="没有任务"):
        build_unit_workbook(config, ledger, batch, ledger.unit_by_name("市城管局").id, now)


def test_parallel_build_is_byte_identical_and_rebuild_overwrites(ledger, config, now, tmp_path):
    seen = []
    one = build_workbooks(config, ledger, now, out_dir=tmp_path / "one", jobs=1)
    two = build_workbooks(config, ledger, now, out_dir=tmp_path / "two", jobs=2,
                          progress=lambda done, total: seen.append((done, total)))
    assert [b.sha256 for b in one] == [b.sha256 for b in two]
    assert all(a.path.read_bytes() == b.path.read_bytes() for a, b in zip(one, two, strict=True))
    assert seen[0] == (0, 37) and seen[-1] == (37, 37) and len(seen) == 38
    again = build_workbooks(config, ledger, now + dt.timedelta(hours=1), units=["各县（市、区）政府"],
                            out_dir=tmp_path / "two", jobs=2)
    assert len(again) == 10
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(b.path.name for b in two)  # no temp files
    old = {b.unit: b.sha256 for b in two}
    assert all(b.sha256 != old[b.unit] and sha256_file(b.path) == b.sha256 for b in again)  # new time, new signature
    (count,) = ledger.execute("SELECT COUNT(*) FROM issues").fetchone()
    assert count == 2 * 37 + 10


def test_long_prompts_are_truncated_without_xlsxwriter_warnings():
    """XlsxWriter drops (with a warning, an error here) input messages over 255 characters."""
    long = Column("progress", "工作进展及成效" * 10, 30, True, "很长的提示" * 80)
    layout = Layout(columns=(*DEFAULT_LAYOUT.columns[:7], long), status_options=DEFAULT_LAYOUT.status_options,
                    instructions=("{unit}",), styles=DEFAULT_LAYOUT.styles)
    ctx = BuildContext(layout, "批次", dt.date(2021, 12, 15), Office(), NOW)
    job = WorkbookJob("单位", 1, ({"number": 1, "title": "t", "answers": {}},), "", "",
                      (("magic", "m"),), "", (1,))
    ws = openpyxl.load_workbook(io.BytesIO(render_workbook(ctx, job)))[TASK_SHEET]
    (dv,) = [dv for dv in ws.data_validations.dataValidation if "H" in str(dv.sqref)]
    assert len(dv.prompt) == 255 and len(dv.promptTitle) == 32


def test_matches_committed_reference_except_volatile_parts(ledger, config, now):
    """The built file equals tests/fixtures/libreoffice/sifaju_issued.xlsx (made by scripts/make_lo_fixtures.py
    with a fixed batch uid and secret) apart from document timestamps and the batch uid/signature."""
    batch = ledger.require_batch(config.batch.title)
    unit = ledger.unit_by_name("市司法局")
    ours = build_unit_workbook(config, ledger, batch, unit.id, now).path
    reference = FIXTURES / "sifaju_issued.xlsx"
    manifest = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
    ref_meta = read_task_sheet(reference)["meta"]
    our_meta = read_task_sheet(ours)["meta"]
    volatile = {ref_meta[k]: f"<{k}>" for k in ("batch_uid", "signature", "issued_at")}
    volatile.update({our_meta[k]: f"<{k}>" for k in ("batch_uid", "signature", "issued_at")})
    assert ref_meta["batch_uid"] == manifest["batch"]["uid"]

    def normalised(path: Path) -> dict[str, str]:
        out = {}
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                text = z.read(name).decode("utf-8")
                if name == "docProps/core.xml":
                    text = re.sub(r"<dcterms:(created|modified)[^>]*>[^<]*</dcterms:\1>", "", text)
                for value, mark in volatile.items():
                    text = text.replace(f">{value}<", f">{mark}<")
                out[name] = text
        return out

    a, b = normalised(ours), normalised(reference)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], f"{name} 与参考文件不同：如属有意修改，运行 python scripts/make_lo_fixtures.py"


# --------------------------------------------------------------------------- real LibreOffice files


MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=lambda e: e["file"])
def test_libreoffice_resaved_fixtures_read_back(entry):
    labels = {c["key"]: c["header"] for c in MANIFEST["layout"]["columns"]}
    path = FIXTURES / entry["file"]
    sheet = read_task_sheet(path, labels)
    assert sheet["sheets"][:2] == [HELP_SHEET, TASK_SHEET] and META_SHEET in sheet["sheets"]
    meta = sheet["meta"]
    assert meta["unit_name"] == entry["unit"] and meta["unit_id"] == str(entry["unit_id"])
    assert meta["tasks"] == ",".join(map(str, entry["tasks"]))
    assert meta["template_version"] == MANIFEST["template_version"]
    assert verify(bytes.fromhex(MANIFEST["batch"]["secret"]), meta, meta["signature"])
    assert sorted(sheet["tasks"]) == sorted(entry["tasks"])
    if entry["resorted"]:
        assert sheet["order"] == sorted(entry["tasks"], reverse=True)
    assert (sheet["contact"], sheet["phone"]) == (entry["contact"], entry["phone"])
    for number, want in entry["filled"].items():
        got = sheet["tasks"][int(number)]
        for key in ("status", "progress", "evidence", "issues"):
            assert got[key] == want[key], (number, key)
        if want["completed_on_cell"] == "date":
            assert got["completed_on"] == dt.date.fromisoformat(want["completed_on"])
        else:
            assert got["completed_on"] == want["completed_on"]
    for number in entry["blank_tasks"]:
        assert all(sheet["tasks"][number][c.key] == "" for c in FILL)
    if entry["format"] == "xlsx":  # and through openpyxl, as the collector's other reader sees it
        wb = openpyxl.load_workbook(path)
        ws = wb[TASK_SHEET]
        assert wb[META_SHEET].sheet_state in ("hidden", "veryHidden")  # LibreOffice keeps it hidden only
        header = next(r for r in range(1, 10) if ws.cell(r, 1).value == labels["number"])
        col = {ws.cell(header, i).value: i for i in range(1, ws.max_column + 1)}
        rows = {int(ws.cell(r, 1).value): r for r in range(header + 1, ws.max_row + 1)
                if isinstance(ws.cell(r, 1).value, (int, float))}
        for number, want in entry["filled"].items():
            r = rows[int(number)]
            assert ws.cell(r, col[labels["status"]]).value == want["status"]
            value = ws.cell(r, col[labels["completed_on"]]).value
            if want["completed_on_cell"] == "date":
                assert value == dt.datetime.fromisoformat(want["completed_on"])
            elif want["completed_on_cell"] == "text":
                assert value == want["completed_on"]


def test_manifest_describes_the_fixtures():
    names = {e["file"] for e in MANIFEST["files"]}
    assert {"sifaju_lo.xlsx", "sifaju_lo.xls", "sifaju_lo.ods", "yanping_lo_resorted.xlsx"} <= names
    assert all((FIXTURES / n).exists() for n in names | set(MANIFEST["issued"]))
    kinds = {r["completed_on_cell"] for e in MANIFEST["files"] for r in e["filled"].values()}
    assert {"date", "text"} <= kinds
    typed = {r["status"] for e in MANIFEST["files"] for r in e["filled"].values()}
    assert "完成" in typed and "待定" in typed
    # A ledger set up as the manifest says verifies the fixtures' signatures.
    assert len(bytes.fromhex(MANIFEST["batch"]["secret"])) == 32


def test_manifest_ledger_recipe_reproduces_unit_ids(config, now, tmp_path):
    ledger = Ledger.open(tmp_path / "ws")
    b = MANIFEST["batch"]
    ledger.ensure_batch(b["title"], b["year"], dt.date.fromisoformat(b["deadline"]), now, uid=b["uid"],
                        secret=bytes.fromhex(b["secret"]))
    init_batch(config, ledger, now)
    for entry in MANIFEST["files"]:
        assert ledger.unit_by_name(entry["unit"]).id == entry["unit_id"]
    assert ledger.require_batch(b["title"]).uid == b["uid"]
    ledger.close()


@pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdfinfo") is None,
                    reason="needs libreoffice-calc and poppler-utils")
def test_pdf_conversion_is_a4_with_no_text_off_the_page(built, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("workbook_pdf", ROOT / "scripts" / "workbook_pdf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pdf = module.convert_to_pdf(by_unit(built[2], "市司法局").path, tmp_path)
    assert pdf.exists() and pdf.stat().st_size > 10_000
    info = subprocess.run(["pdfinfo", "-f", "1", "-l", "3", str(pdf)], capture_output=True, text=True,
                          check=True).stdout
    sizes = re.findall(r"Page\s+(\d+) size:\s+([\d.]+) x ([\d.]+)", info)
    assert sizes[0][1:] == ("595.304", "841.89")  # 填报说明: A4 portrait
    assert sizes[1][1:] == ("841.89", "595.304")  # 任务清单: A4 landscape
    # No text runs off a page: every word's box lies inside its page (LibreOffice does not scale a
    # one-column sheet to fit, and substitutes wider fonts than Excel's, so this is a real check).
    boxes = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    words = 0
    for page in re.findall(r'<page width="([\d.]+)" height="[\d.]+">(.*?)</page>', boxes, re.S):
        width = float(page[0])
        for x_max, word in re.findall(r'<word xMin="[\d.]+" yMin="[\d.]+" xMax="([\d.]+)"[^>]*>([^<]*)</word>', page[1]):
            words += 1
            assert float(x_max) <= width - 10, word
    assert words > 100


def test_cli_build_json_and_table(ledger, config_file, config, capsys):
    from automation.cli import main

    assert main(["--config", str(config_file), "build", "--unit", "延平区", "--unit", "市司法局", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [set(o) for o in out] == [{"unit", "unit_id", "path", "tasks", "sha256"}] * 2
    assert sorted(o["unit"] for o in out) == ["市司法局", "延平区政府"]
    assert all(Path(o["path"]).parent == config.workspace / "workbooks" and Path(o["path"]).exists() for o in out)
    assert main(["--config", str(config_file), "build", "--out", str(config.workspace / "x")]) == 0
    text = capsys.readouterr().out
    assert "已生成 37 个工作簿" in text and len(list((config.workspace / "x").glob("*.xlsx"))) == 37
    assert main(["--config", str(config_file), "build", "--unit", "市不存在局"]) == 1
    assert "未知单位“市不存在局”" in capsys.readouterr().err
