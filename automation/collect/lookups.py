"""What a collect run asks the ledger, each thing asked once per run and kept.

One object holds it so that identification (:mod:`~automation.collect.identify`) needs the
ledger's answers, not the run with its pool, folders and durability bookkeeping.  The batch's
tasks, roles and units are read when the first file needs them, not before: a run hands its
first files to the parser workers first, so they parse while this is read.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from automation.ledger import Ledger
from automation.ledger.records import Submission
from automation.model import Batch, Task, UnitRow
from automation.text import squash
from automation.workbook.layout import DEFAULT_LAYOUT, Layout

__all__ = ["Lookups"]


class Lookups:
    """The ledger's answers for one run over one batch (``batch`` is the configured batch)."""

    def __init__(self, ledger: Ledger, batch_title: str, city: str = "") -> None:
        self.ledger = ledger
        self.batch = ledger.require_batch(batch_title)
        self.city = city
        self._layouts: dict[str, Layout | None] = {}
        self._batches: dict[str, Batch | None] = {}
        self._spellings: list[tuple[str, int]] | None = None
        self._revisions: list[dict[str, Any]] | None = None
        self._revision_titles: dict[int, dict[int, str]] = {}
        # SHA-256 → earlier submission (None: never seen), looked up for many files at once;
        # a file recorded during the run is dropped from it and looked up again if repeated.
        self._known: dict[str, Submission | None] = {}

    @functools.cached_property
    def tasks(self) -> dict[int, Task]:
        return {t.number: t for t in self.ledger.tasks(self.batch.id)}

    @functools.cached_property
    def assigned(self) -> dict[int, dict[int, str]]:
        """unit id → task number → role."""
        return self.ledger.roles(self.batch.id)

    @functools.cached_property
    def units(self) -> dict[int, UnitRow]:
        return {u.id: u for u in self.ledger.units(active_only=False)}

    @functools.cached_property
    def by_email(self) -> dict[str, set[int]]:
        """Registered address (email or cc, lower case) → the units it belongs to."""
        out: dict[str, set[int]] = {}
        for u in self.units.values():
            for addr in (*u.emails, *u.cc):
                out.setdefault(addr.strip().lower(), set()).add(u.id)
        return out

    # -- earlier submissions of the same bytes

    def previous(self, sha256: str) -> Submission | None:
        """The earlier submission of these bytes (accepted or quarantined), if any."""
        if sha256 in self._known:
            return self._known[sha256]
        return self.ledger.submission_by_sha(sha256)

    def look_up(self, shas: Iterable[str]) -> None:
        """Look up the earlier submissions of many files in one query (the ledger sees this run's
        own uncommitted rows, so a file stored earlier in the run is found too)."""
        wanted = [s for s in shas if s]
        found = self.ledger.submissions_by_sha(wanted)
        self._known.update((s, found.get(s)) for s in wanted)

    def recorded(self, sha256: str) -> None:
        """These bytes were just stored: forget what was known about them."""
        self._known.pop(sha256, None)

    # -- layouts, batches, revisions

    def layout(self, version: str) -> Layout | None:
        if version not in self._layouts:
            spec = self.ledger.layout(version) if version else None
            try:
                self._layouts[version] = Layout.from_dict(spec) if spec else None
            except (KeyError, TypeError, ValueError):
                self._layouts[version] = None
        return self._layouts[version]

    def latest_layout(self) -> Layout:
        """The layout of the batch's latest issued workbook (for files without a signature)."""
        version = self.ledger.latest_template_version(self.batch.id)
        return (self.layout(version) if version else None) or DEFAULT_LAYOUT

    def batch_by_uid(self, uid: str) -> Batch | None:
        if uid not in self._batches:
            self._batches[uid] = self.ledger.batch_by_uid(uid) if uid else None
        return self._batches[uid]

    def revisions(self) -> list[dict[str, Any]]:
        if self._revisions is None:
            self._revisions = self.ledger.revisions(self.batch.id)
        return self._revisions

    def revision_titles(self, revision: int) -> dict[int, str]:
        """Task number → title in an earlier revision of the table."""
        if revision not in self._revision_titles:
            self._revision_titles[revision] = {t.number: t.title
                                               for t in self.ledger.revision_tasks(self.batch.id, revision)}
        return self._revision_titles[revision]

    def spellings(self) -> list[tuple[str, int]]:
        """(squashed spelling, unit id) for every unit with tasks in the batch, longest first."""
        if self._spellings is None:
            city = self.city
            out: list[tuple[str, int]] = []
            for uid in self.assigned:
                u = self.units.get(uid)
                if u is None:
                    continue
                names = [u.name, *u.aliases]
                if city:
                    names += [f"{city}{n}" for n in names if n.startswith("市")]
                    names += [f"{city}市{n}" for n in names if not n.startswith(("市", city))]
                out += [(squash(n), uid) for n in names if squash(n)]
            self._spellings = sorted(set(out), key=lambda s: (-len(s[0]), s[0]))
        return self._spellings
