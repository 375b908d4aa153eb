"""``automation notice``: the 情况通报, from the same numbers as ``status``, in the office's Word template."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import docx
import pytest

from automation import clock
from automation.cli import main
from automation.config import load_config
from automation.ledger import open_workspace
from automation.progress.notice import notice_content, write_notice
from automation.progress.notice_template import MARKERS, write_notice_template
from automation.progress.status import status_summary

AFTER = dt.datetime(2021, 12, 20, 9, 0, tzinfo=clock.TZ)
SILENT = {"松溪县政府", "市统计局", "市城管局"}


@pytest.fixture
def demo(demo_dir, tmp_path):
    """A private copy of the shared demo (the notice writes into its reports folder)."""
    copy = tmp_path / "demo"
    shutil.copytree(demo_dir, copy)
    config = load_config(copy / "config.toml")
    _ws, ledger = open_workspace(config, create=False)
    yield config, ledger
    ledger.close()


def text_of(path) -> list[str]:
    return [p.text for p in docx.Document(str(path)).paragraphs]


def test_the_notice_names_the_silent_units_and_the_rate_status_reports(demo):
    config, ledger = demo
    content = notice_content(config, ledger, AFTER)
    status = status_summary(config, ledger, AFTER)
    assert set(content.silent_names) == SILENT
    assert content.completion == pytest.approx(status["completion"], abs=5e-5)
    assert f"{status['completion'] * 100:.1f}%" in content.overview
    # Counties and city departments apart, as offices report them.
    assert list(content.silent) == ["县（市、区）政府", "市直部门"]
    assert content.silent["县（市、区）政府"] == ["松溪县政府"]
    behind = {line.name for lines in content.behind.values() for line in lines}
    assert "光泽县政府" in behind and not behind & SILENT


def test_the_document_reads_like_an_office_notice(demo):
    config, ledger = demo
    info = write_notice(config, ledger, AFTER)
    paragraphs = text_of(info.path)
    body = "\n".join(paragraphs)
    assert paragraphs[0] == "关于2021年南平市政务公开重点工作落实情况的通报"
    assert "市政务公开办〔2021〕" in paragraphs[1]
    for heading in ("一、总体情况", "三、进度滞后的单位", "四、未报送落实情况的单位", "七、下一步要求"):
        assert heading in paragraphs
    assert "截至2021年12月20日" in body and "已逾期3个工作日" in body
    assert "松溪县政府" in body and "市统计局、市城管局" in body
    assert "光泽县政府：完成率" in body and "推进中" in body
    assert not any(m in body for m in MARKERS) and "{" not in body
    assert paragraphs[-1] == "2021年12月20日"
    document = docx.Document(str(info.path))
    assert document.paragraphs[0].style.name == "通报标题"
    section = document.sections[0]
    assert round(section.page_width.cm, 1) == 21.0 and round(section.page_height.cm, 1) == 29.7
    assert "PAGE" in section.footer.paragraphs[0]._p.xml
    assert info.path.parent == config.workspace / "reports"


def test_equal_scores_share_a_rank_and_silence_ranks_last(demo):
    config, ledger = demo
    units = status_summary(config, ledger, AFTER)["units"]
    counties = sorted((u for u in units if u["kind"] == "县（市、区）政府"), key=lambda u: u["rank"])
    assert [u["rank"] for u in counties if u["score"] == 100] == [1] * 7
    assert counties[-1]["unit"] == "松溪县政府" and counties[-1]["score"] == 0
    assert all(u["on_time_rate"] <= 1 for u in units)


def test_the_office_edits_its_template(demo, tmp_path):
    config, ledger = demo
    template = config.base_dir / "templates" / "notice_template.docx"
    write_notice_template(template)
    document = docx.Document(str(template))
    for p in document.paragraphs:
        if p.text == "{{单位排名}}":
            p._p.getparent().remove(p._p)
        elif p.text == "六、综合排名":
            p._p.getparent().remove(p._p)
        elif p.text == "各有关单位：":
            p.runs[0].text = "各县（市、区）人民政府，市直有关单位："
    document.save(str(template))
    out = tmp_path / "通报.docx"
    paragraphs = text_of(write_notice(config, ledger, AFTER, out).path)
    assert "各县（市、区）人民政府，市直有关单位：" in paragraphs
    assert not any("综合得分" in p for p in paragraphs)


def test_cli_notice_json_and_errors(demo, capsys):
    config, _ledger = demo
    code = main(["--config", str(config.path), "notice", "--now", "2021-12-20T09:00", "--json"])
    import json

    data = json.loads(capsys.readouterr().out)
    assert code == 0 and set(data["silent"]) == SILENT and data["pdf"] is None
    code = main(["--config", str(config.path), "notice", "--out", str(config.base_dir / "无此目录" / "x.docx")])
    assert code == 1 and "文件夹不存在" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdftotext") is None,
                    reason="LibreOffice or poppler-utils is not installed")
def test_pdf_with_libreoffice(demo):
    config, ledger = demo
    info = write_notice(config, ledger, AFTER, pdf=True)
    assert info.pdf is not None and info.pdf.suffix == ".pdf"
    text = subprocess.run(["pdftotext", str(info.pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = "".join(text.split())
    assert "落实情况的通报" in flat and "松溪县政府" in flat and "—1—" in flat
