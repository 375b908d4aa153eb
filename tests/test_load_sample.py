"""The bundled sample (2021 Nanping list) parses exactly."""

from __future__ import annotations

import re

from automation.load import load_tasks

CJK_SPACE = re.compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef“”]\s+[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef“”]")


def test_counts(sample_path):
    table = load_tasks(sample_path)
    assert [t.number for t in table.tasks] == list(range(1, 36))
    assert table.sections == ["一", "二", "三", "四"]
    assert len(table.subsections) == 13
    assert not [p for p in table.problems if p.severity == "error"]


def test_no_space_between_chinese(sample_path):
    for task in load_tasks(sample_path).tasks:
        for key, value in task.to_json().items():
            for text in value if isinstance(value, list) else [value]:
                if isinstance(text, str):
                    assert not CJK_SPACE.search(text), (task.number, key, text)
