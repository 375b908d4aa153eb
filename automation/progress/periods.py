"""Progress per reporting round (定期报送): who reported in each round and how far everyone was at its end.

The report's 各期进度 sheet, its trend chart and the console's trend all read :func:`round_progress`:
one pass over every response in receipt order (the ledger streams them), keeping each unit's
counts as they change, frozen at the end of each round.  The numbers are those of
:func:`automation.progress.summary.load_snapshot` for each round (an answer belongs to the round
in which it was received; a round's completion is the answers as they stood at its end).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from automation import clock
from automation.ledger import Ledger
from automation.progress.summary import UNREPORTED, Counts, Snapshot, effective_status
from automation.rounds import Round, round_of

__all__ = ["RoundProgress", "round_progress", "KIND_ALL"]

#: The series of every unit together in the trend.
KIND_ALL = "全部单位"


@dataclass
class RoundProgress:
    """One round: each unit's tasks answered in it and counts at its end, and the rates by kind."""

    round: Round
    closed: bool                                             # its deadline has passed
    reported: dict[int, int] = field(default_factory=dict)   # unit id → tasks answered in the round
    counts: dict[int, Counts] = field(default_factory=dict)  # unit id → counts at the round's end (or now)

    def completion(self, units: list[int] | None = None) -> float:
        total = Counts()
        for uid in units if units is not None else list(self.counts):
            c = self.counts.get(uid)
            if c is not None:
                for k, v in c.by_status.items():
                    total.by_status[k] += v
        return total.completion

    def reported_units(self) -> int:
        return sum(1 for n in self.reported.values() if n)


def round_progress(ledger: Ledger, snap: Snapshot) -> list[RoundProgress]:
    """Every round up to the current one (as of ``snap.now``), in order."""
    today = clock.local(snap.now).date()
    rounds = [r for r in snap.rounds if r.start is None or r.start < today]
    status: dict[tuple[int, int], str] = {}
    counts: dict[int, Counts] = {}
    for task, cells in snap.matrix.items():
        for uid in cells:
            status[(uid, task)] = UNREPORTED
            counts.setdefault(uid, Counts()).add(UNREPORTED)
    out = [RoundProgress(r, today > r.deadline) for r in rounds]
    answered: dict[tuple[int, int], set[int]] = {}
    index = 0

    def freeze(upto: int) -> None:
        nonlocal index
        while index < upto:
            out[index].counts = {uid: _copy(c) for uid, c in counts.items()}
            index += 1

    for received_at, unit_id, task, value, _sid in ledger.iter_responses(snap.batch.id):
        key = (unit_id, task)
        old = status.get(key)
        if old is None:
            continue   # not (or no longer) assigned
        day = clock.parse(received_at).date()
        if day > today:
            break
        r = round_of(snap.rounds, day)
        if r.number > len(out):
            break
        freeze(r.number - 1)
        new = effective_status(value)
        c = counts[unit_id]
        c.by_status[old] -= 1
        c.by_status[new] += 1
        status[key] = new
        answered.setdefault((r.number, unit_id), set()).add(task)
    freeze(len(out))
    for (number, unit_id), tasks in answered.items():
        out[number - 1].reported[unit_id] = len(tasks)
    return out


def _copy(c: Counts) -> Counts:
    return Counts(dict(c.by_status))

