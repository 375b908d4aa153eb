"""What a cell holds (units, a status, a deadline or prose), and re-slotting cells that slid left.

When a PDF or Word cell is empty, text extraction moves the cells after it one column left: the
lead units land under 工作要求, the status under 责任单位.  Reading each cell by its content puts
them back, and cells beyond the header's columns are placed the same way.
"""

from __future__ import annotations

from automation.tasks.deadlines import looks_like_deadline
from automation.text import looks_like_units, normalize_status

__all__ = ["classify", "repair", "COMPATIBLE"]

#: Which contents fit each column.
COMPATIBLE = {
    "requirement": {"prose", "deadline"},
    "lead": {"units"},
    "responsible": {"units"},
    "status": {"status", "prose"},
    "deadline": {"deadline", "prose"},
}


def classify(text: str) -> set[str]:
    """What a cell's content may be: {"status"}, {"units"}, {"deadline"}, {"status", "deadline"} …

    「持续推进」 is both a status and a deadline (a standing duty): its column decides.
    """
    kinds: set[str] = set()
    if normalize_status(text) is not None:
        kinds.add("status")
    elif looks_like_units(text):
        return {"units"}
    if looks_like_deadline(text):
        kinds.add("deadline")
    return kinds or {"prose"}


def repair(values: dict[str, str], order: list[str]) -> tuple[dict[str, str], bool, list[str]]:
    """Re-slot core cells by content when they slid left; returns (values, repaired, leftovers)."""
    present = {k: v for k, v in values.items() if v.strip()}
    kinds = {k: classify(v) for k, v in present.items()}
    if all(kinds[k] & COMPATIBLE[k] for k in present):
        return values, False, []
    # Cells in source order, regardless of their column.
    ordered = [(values[k], kinds[k]) for k in order if k in present]
    fixed = {k: "" for k in order}
    leftovers: list[str] = []
    unit_cells = [v for v, c in ordered if "units" in c]
    if unit_cells:
        if len(unit_cells) == 1 or "lead" not in order:
            target = "responsible" if "responsible" in order else "lead"
            fixed[target] = "，".join(unit_cells)
        else:
            fixed["lead"] = unit_cells[0]
            fixed["responsible"] = "，".join(unit_cells[1:])
    for value, cls in ordered:
        if "units" in cls:
            continue
        if "status" in cls and "status" in order and not fixed["status"]:
            fixed["status"] = value
        elif "deadline" in cls and "deadline" in order and not fixed["deadline"]:
            fixed["deadline"] = value
        elif "requirement" in order and not fixed["requirement"]:
            fixed["requirement"] = value
        elif "status" in order and not fixed["status"]:
            fixed["status"] = value
        else:
            leftovers.append(value)
    return fixed, True, leftovers
