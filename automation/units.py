"""The unit registry and the task × unit assignments.

Stage 2 of the loop.  Task tables name units loosely (市发改委, 南平市发展和改革委员会, 各县（市、区）政府);
the registry maps every spelling to one registered unit or to a group of units, and
:func:`expand_assignments` turns each task's lead and responsible cells into one assignment per
(task, unit).  A unit that leads a task and is also responsible through a group appears once, as
牵头.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from automation.config import Config, UnitSpec
from automation.errors import UnknownUnitError
from automation.model import Task
from automation.text import squash

__all__ = ["Registry", "Assignment", "expand_assignments", "unknown_names", "ROLE_LEAD", "ROLE_RESPONSIBLE"]

ROLE_LEAD = "牵头"
ROLE_RESPONSIBLE = "责任"


@dataclass(frozen=True)
class Assignment:
    """One (task, unit) pair: the unit's role and its scope note (e.g. 负责市政府规章)."""

    task: int
    unit: str
    role: str
    note: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"task": self.task, "unit": self.unit, "role": self.role, "note": self.note}


class Registry:
    """Lookup of unit and group names after normalisation and through aliases."""

    def __init__(self, units: Iterable[UnitSpec], groups: dict[str, Sequence[str]] | None = None,
                 city: str = "") -> None:
        self.units: dict[str, UnitSpec] = {}
        self.groups: dict[str, tuple[str, ...]] = {}
        self.city = city
        self._index: dict[str, tuple[str, str]] = {}  # key -> ("unit"|"group", canonical name)
        for u in units:
            self.units[u.name] = u
            for spelling in (u.name, *u.aliases):
                self._index.setdefault(self._key(spelling), ("unit", u.name))
        for name, members in (groups or {}).items():
            resolved = []
            for m in members:
                unit = self.find_unit(m)
                if unit is None:
                    raise UnknownUnitError(m, self.suggest(m), where=f"config.toml [groups] “{name}”")
                resolved.append(unit)
            self.groups[name] = tuple(dict.fromkeys(resolved))
            self._index[self._key(name)] = ("group", name)

    @classmethod
    def from_config(cls, config: Config) -> Registry:
        return cls(config.units, config.groups, config.office.city)

    def _key(self, name: str) -> str:
        return squash(name)

    def _keys(self, name: str) -> list[str]:
        key = self._key(name)
        keys = [key]
        if self.city:
            # 南平市财政局 and 市财政局 are the same unit; so are 南平市延平区 and 延平区.
            for prefix in (f"{self.city}市", self.city):
                if key.startswith(prefix) and len(key) > len(prefix):
                    rest = key[len(prefix):]
                    keys += [rest, "市" + rest] if prefix.endswith("市") else [rest]
        return keys

    def lookup(self, name: str) -> tuple[str, str] | None:
        """("unit", name) or ("group", name) for a spelling, or None."""
        for key in self._keys(name):
            hit = self._index.get(key)
            if hit:
                return hit
        return None

    def find_unit(self, name: str) -> str | None:
        hit = self.lookup(name)
        return hit[1] if hit and hit[0] == "unit" else None

    def resolve(self, name: str, where: str = "") -> list[str]:
        """The registered units a name stands for (one unit, or every member of a group)."""
        hit = self.lookup(name)
        if hit is None:
            raise UnknownUnitError(name, self.suggest(name), where)
        kind, canon = hit
        return [canon] if kind == "unit" else list(self.groups[canon])

    def suggest(self, name: str, n: int = 3) -> list[str]:
        """The closest known unit or group names (for error messages)."""
        spellings: dict[str, str] = {}
        for u in self.units.values():
            for s in (u.name, *u.aliases):
                spellings[self._key(s)] = u.name
        for g in self.groups:
            spellings[self._key(g)] = g
        close = difflib.get_close_matches(self._key(name), list(spellings), n=n * 2, cutoff=0.4)
        return list(dict.fromkeys(spellings[c] for c in close))[:n]


def unknown_names(tasks: Iterable[Task], registry: Registry) -> list[tuple[str, int]]:
    """Every unit name in the tasks that the registry does not know, with the first task naming it."""
    out: dict[str, int] = {}
    for t in tasks:
        for name in (*t.lead, *t.responsible):
            if registry.lookup(name) is None and name not in out:
                out[name] = t.number
    return list(out.items())


def expand_assignments(tasks: Iterable[Task], registry: Registry) -> list[Assignment]:
    """One assignment per (task, unit); lead wins over responsible; notes follow their unit.

    Raises :class:`UnknownUnitError` naming the task for the first unknown name.
    """
    result: list[Assignment] = []
    for t in tasks:
        roles: dict[str, tuple[str, str | None]] = {}
        for role, names in ((ROLE_LEAD, t.lead), (ROLE_RESPONSIBLE, t.responsible)):
            for name in names:
                note = t.unit_notes.get(name)
                for unit in registry.resolve(name, where=f"第 {t.number} 项任务（{t.title[:20]}）"):
                    if unit not in roles:
                        roles[unit] = (role, note)
                    elif note and roles[unit][1] is None:
                        roles[unit] = (roles[unit][0], note)
        result.extend(Assignment(t.number, unit, role, note) for unit, (role, note) in roles.items())
    return result
