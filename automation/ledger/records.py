"""Typed results of ledger queries (dataclasses, not rows)."""

from __future__ import annotations

from dataclasses import dataclass

from automation.model import Batch

__all__ = ["ImportResult"]


@dataclass(frozen=True)
class ImportResult:
    batch: Batch
    changed: bool
    revision: int
    task_count: int
    assignment_count: int
    message: str
