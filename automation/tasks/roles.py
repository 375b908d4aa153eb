"""Who leads a task and who is responsible, from the cells or lines that name units.

A unit's column (or label line) gives its role unless the text says 牵头 / 配合 next to its name
(「A牵头，B配合」); a unit that leads is not also listed as responsible; a scope note in brackets
(「市司法局（负责市政府规章）」) follows its unit.  Shared by the table and the paragraph
interpreters.  A task that names no unit at all is a warning: nobody would be asked about it.
"""

from __future__ import annotations

from automation.model import Problem, Task
from automation.text import parse_unit_cell

__all__ = ["UnitReader"]


class UnitReader:
    """Adds the units named in a lead text and a responsible text to a task."""

    def add(self, task: Task, lead_text: str, responsible_text: str) -> None:
        lead_marked, lead_partners, lead_plain = parse_unit_cell(lead_text)
        resp_marked, resp_partners, resp_plain = parse_unit_cell(responsible_text)
        for name, note in lead_marked + lead_plain + resp_marked:
            if name in task.responsible:
                task.responsible.remove(name)
            if name not in task.lead:
                task.lead.append(name)
            if note:
                task.unit_notes[name] = note
        for name, note in lead_partners + resp_partners + resp_plain:
            if name not in task.responsible and name not in task.lead:
                task.responsible.append(name)
            if note:
                task.unit_notes[name] = note

    @staticmethod
    def warnings(tasks: list[Task]) -> list[Problem]:
        """One warning per task with neither a lead nor a responsible unit."""
        return [
            Problem(message=f"第 {t.number} 项没有牵头单位或责任单位，导入后不会分派给任何单位；请在任务表中补上",
                    severity="warning", row=t.source_row, task_number=t.number, raw=t.title[:60])
            for t in tasks if not t.lead and not t.responsible
        ]
