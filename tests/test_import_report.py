"""Nothing lost without a word: the summary line, --strict, and every row accounted for."""

from __future__ import annotations

import json
import re

import pytest

from automation.cli import main
from automation.tasks.load import load_tasks, read_rows
from automation.tasks.report import describe, summarize
from automation.units import Registry
from tests.import_kit import FIXTURES


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_sample_summary(capsys, sample_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no config.toml: names are not checked, and it says so
    code, out, err = run(capsys, "tasks", "show", str(sample_path), "--strict")
    assert code == 0
    assert err.rstrip().splitlines()[-1] == (
        "汇总：35 项任务，4 个大项，13 个小项，单位名称 13 个（未检查是否登记：没有找到 config.toml），跳过 0 行，无单位的任务 0 项。")


def test_names_not_in_the_registry_when_a_config_is_given(capsys, config_file):
    code, _, err = run(capsys, "--config", str(config_file), "tasks", "show", str(FIXTURES / "fengong_inline.docx"))
    assert code == 0
    last = err.rstrip().splitlines()[-1]
    assert "8 项任务，3 个大项" in last and "个未在 config.toml 登记（市审改办、市税务局、各县市区" in last


def test_a_config_found_in_the_current_folder_is_used(capsys, config_file, monkeypatch):
    monkeypatch.chdir(config_file.parent)
    _, _, err = run(capsys, "tasks", "show", str(FIXTURES / "table_sections.pdf"))
    assert "单位名称 20 个，均已登记" in err


def test_strict_exits_3_when_a_row_was_skipped(capsys, tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("工作任务 | 牵头单位\n1.公开规划 | 市发改委\n注：不是任务 | \n", encoding="utf-8")
    code, out, err = run(capsys, "tasks", "show", str(path), "--strict", "--json")
    assert code == 3
    assert len(json.loads(out)) == 1  # the --json list stays as it is
    assert "跳过：第 3 行" in err and "跳过 1 行" in err
    assert run(capsys, "tasks", "show", str(path))[0] == 0  # without --strict: shown, exit 0


def test_strict_exits_3_when_a_task_has_no_unit(capsys):
    code, _, err = run(capsys, "tasks", "show", str(FIXTURES / "viewer_extract.txt"), "--strict")
    assert code == 3 and "无单位的任务 1 项" in err and "警告：第 26 行：第 5 项没有牵头单位或责任单位" in err


def _flat(text: str) -> str:
    return re.sub(r"[\s，。；：、（）()“”,;:|]", "", text)


@pytest.mark.parametrize("name", ["table_sections.pdf", "table_deadlines.pdf", "fengong_labels.docx",
                                  "fengong_inline.docx", "web_extract.txt", "viewer_extract.txt", "fengong_labels.txt"])
def test_every_source_line_is_a_task_a_heading_or_a_problem(name):
    """Each non-empty paragraph or row is in a task (its cells or lines), a heading, or a problem."""
    table = load_tasks(FIXTURES / name)
    rows, _ = read_rows(FIXTURES / name)
    tasks = [_flat("".join(f"{k}{v}" for k, v in {**t.raw, **t.extra}.items())) for t in table.tasks]
    problems = {_flat(p.raw) for p in table.problems}
    headings = {_flat(h) for h in table.headings}
    header = [r for r in rows if not r.text][0] if table.shape == "table" else None
    missing = []
    for r in rows:
        text = _flat(r.joined)
        if not text or (header is not None and _flat(header.joined) == text):
            continue  # the header and its repeats on every page
        if text in problems or any(text in t for t in tasks) or any(h and h in text for h in headings):
            continue
        cells = [_flat(c) for c in r.cells if _flat(c)]
        if any(all(c in t for c in cells) for t in tasks):  # every cell of the row in one task
            continue
        if any(p and p in text for p in problems):  # a split row: its tail is in the problem
            continue
        missing.append(r.joined[:40])
    assert not missing


def test_summary_and_problem_lines():
    table = load_tasks(FIXTURES / "table_deadlines.pdf")
    summary = summarize(table, Registry([], {}))
    assert summary.complete and summary.deadlines == 12 and summary.due_dates == 8
    assert "6 个未在 config.toml 登记" in summary.line() and "按 2022 年，年份取自标题" in summary.line()
    split = next(p for p in table.problems if "换页" in p.message)
    assert describe(split).startswith("第 2 页第 2 行：第 1 页末行在换页处断开")
