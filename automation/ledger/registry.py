"""The unit registry as synced from config.toml, and the task × unit assignments."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from automation import clock
from automation.config import UnitSpec
from automation.ledger.connection import Connection, _j
from automation.ledger.records import AssignmentRow
from automation.model import UnitRow


class RegistryQueries(Connection):
    def sync_units(self, units: Iterable[UnitSpec], now: dt.datetime) -> None:
        """Upsert the registry from config.toml (by name); units no longer listed become inactive."""
        with self.transaction():
            names = []
            for u in units:
                names.append(u.name)
                self.conn.execute(
                    "INSERT INTO units(name, kind, emails_json, cc_json, aliases_json, contact, phone, active, "
                    "updated_at) VALUES (?,?,?,?,?,?,?,1,?) ON CONFLICT(name) DO UPDATE SET kind=excluded.kind, "
                    "emails_json=excluded.emails_json, cc_json=excluded.cc_json, aliases_json=excluded.aliases_json, "
                    "contact=excluded.contact, phone=excluded.phone, active=1, updated_at=excluded.updated_at "
                    "WHERE units.kind IS NOT excluded.kind OR units.emails_json IS NOT excluded.emails_json "
                    "OR units.cc_json IS NOT excluded.cc_json OR units.aliases_json IS NOT excluded.aliases_json "
                    "OR units.contact IS NOT excluded.contact OR units.phone IS NOT excluded.phone "
                    "OR units.active = 0",
                    (u.name, u.kind, _j(list(u.emails)), _j(list(u.cc)), _j(list(u.aliases)), u.contact, u.phone,
                     clock.iso(now)),
                )
            if names:
                marks = ",".join("?" * len(names))
                self.conn.execute(f"UPDATE units SET active = 0 WHERE active = 1 AND name NOT IN ({marks})", names)

    def has_units(self) -> bool:
        """Has a registry been synced yet (``init`` ran)?"""
        return self.conn.execute("SELECT 1 FROM units LIMIT 1").fetchone() is not None

    def unit_ids(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.conn.execute("SELECT name, id FROM units")}

    def _unit(self, r: sqlite3.Row) -> UnitRow:
        return UnitRow(r["id"], r["name"], r["kind"], tuple(json.loads(r["emails_json"])),
                       tuple(json.loads(r["cc_json"])), tuple(json.loads(r["aliases_json"])), r["contact"], r["phone"])

    def units(self, active_only: bool = True) -> list[UnitRow]:
        sql = "SELECT * FROM units" + (" WHERE active = 1" if active_only else "") + " ORDER BY id"
        return [self._unit(r) for r in self.conn.execute(sql)]

    def unit(self, unit_id: int) -> UnitRow | None:
        r = self.conn.execute("SELECT * FROM units WHERE id = ?", (unit_id,)).fetchone()
        return self._unit(r) if r else None

    def unit_by_name(self, name: str) -> UnitRow | None:
        r = self.conn.execute("SELECT * FROM units WHERE name = ?", (name,)).fetchone()
        return self._unit(r) if r else None

    def assignments(self, batch_id: int, unit_id: int | None = None) -> list[AssignmentRow]:
        """The batch's (or one unit's) assignments, ordered by task then assignment order."""
        sql = ("SELECT a.task_number AS task, u.name AS unit, a.unit_id, a.role, a.note FROM assignments a "
               "JOIN units u ON u.id = a.unit_id WHERE a.batch_id = ?")
        params: list[Any] = [batch_id]
        if unit_id is not None:
            sql += " AND a.unit_id = ?"
            params.append(unit_id)
        sql += " ORDER BY a.task_number, a.rowid"
        return [AssignmentRow(*r) for r in self.conn.execute(sql, params)]

    def roles(self, batch_id: int) -> dict[int, dict[int, str]]:
        """unit id → task number → role, for the whole batch (one plain query: collect needs only
        this, and a province batch has a hundred thousand assignments)."""
        out: dict[int, dict[int, str]] = {}
        for unit_id, task, role in self.conn.execute(
                "SELECT unit_id, task_number, role FROM assignments WHERE batch_id = ?", (batch_id,)):
            got = out.get(unit_id)
            if got is None:
                got = out[unit_id] = {}
            got[task] = role
        return out

    def assigned_units(self, batch_id: int) -> list[UnitRow]:
        """Units with at least one assignment in the batch, in registry order."""
        return [self._unit(r) for r in self.conn.execute(
            "SELECT * FROM units WHERE id IN (SELECT DISTINCT unit_id FROM assignments WHERE batch_id = ?) "
            "ORDER BY id", (batch_id,))]
