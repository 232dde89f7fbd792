"""The load generator's receipt bookkeeping: what the accepted requests owe, and matching what comes.

A worker tells the book two things: a request was accepted under a message id and owes
so many receipts (:meth:`ReceiptBook.owe`), and a final receipt came for an id and a
handset (:meth:`ReceiptBook.seen_before`, then :meth:`ReceiptBook.match`). The book
answers with the due time of the submit a receipt belongs to, so the worker can time
it. The cases it knows:

- one receipt per submit_sm or data_sm (or per segment of a long one: each has its id);
- a submit_multi to N destinations owes N receipts under its one id, less the
  destinations its response listed as unsuccessful; they are told apart by handset
  (the receipt's source address), so each counts once and a second copy of any one
  is a duplicate;
- a hub that splits a submit_multi gives each destination's message the id ``ID.N``
  (smpphub numbers them ``ID``, ``ID.1``, ``ID.2``, ...): matched to ``ID`` too;
- a receipt that overtakes its response (or reached a bind of another worker) waits
  in ``early`` until its id is owed; what is still there at the end the run's merge
  matches across workers, or counts as unmatched.

Ids are compared after :func:`smppcore.receipt.normalise_message_id` (case, leading
zeros). A receipt's id comes twice in a row (:meth:`ReceiptBook.seen_before`, then
:meth:`ReceiptBook.match`): the book keeps the last id it normalised with its key, so
that is done once per receipt. Every map holds at most ``limit`` ids; past it the
oldest is forgotten (its receipt then counts as unmatched, or a very late duplicate as
new), so memory stays bounded on a long run against an SMSC that never reports.
"""

from __future__ import annotations

from smppcore.receipt import normalise_message_id

__all__ = ["ReceiptBook", "TRACKED_RECEIPTS", "stem_of"]

#: The most message ids each map of the book holds.
TRACKED_RECEIPTS = 1_000_000


def stem_of(key: str) -> str:
    """The id a split submit_multi's ``ID.N`` key belongs to, normalised.

    Normalised again, and not for nothing: a key with a dot kept its leading zeros, its
    stem ("0042" of "0042.1") must lose them to be found ("42").
    """
    return normalise_message_id(key.rpartition(".")[0])


class ReceiptBook:
    """One worker's receipts owed, waiting, and seen.

    ``pending``: id -> when its submit was due, while it owes receipts; ``early``: id ->
    when a receipt came for an id nobody owed yet (as the run's merge reads them);
    ``expected``: receipts owed in all; ``duplicates``: second copies seen; ``reused``:
    requests accepted under an id that an earlier one still owes receipts under.
    """

    def __init__(self, limit: int = TRACKED_RECEIPTS) -> None:
        self.limit = limit
        self.pending: dict[str, float] = {}
        self.left: dict[str, int] = {}  # an id that owes more than one receipt -> how many still
        self.early: dict[str, float] = {}
        self.early_more: dict[str, list[float]] = {}  # further receipts for an id in early (a submit_multi's)
        # a stem -> the "STEM.N" ids in early: a split submit_multi's receipts that overtook its response
        self.early_parts: dict[str, list[str]] = {}
        self.seen: dict[str, None] = {}  # (id, handset) of the receipts counted: an ordered set, oldest first
        self.expected = 0
        self.duplicates = 0
        self.reused = 0
        # the last id normalised and its key: a receipt's id comes to seen_before, then to match
        self._last_id = ""
        self._last_key = normalise_message_id("")

    def _key(self, message_id: str) -> str:
        """``message_id`` normalised, the last one remembered."""
        if message_id == self._last_id:
            return self._last_key
        key = normalise_message_id(message_id)
        self._last_id, self._last_key = message_id, key
        return key

    def owe(self, message_id: str, due: float, owed: int) -> tuple[float, ...]:
        """A request due at ``due`` was accepted as ``message_id`` and owes ``owed`` receipts.
        Returns when each of those that already came did (to time them): none, usually."""
        self.expected += owed
        if not owed:
            return ()
        key = self._key(message_id)
        first = self.early.pop(key, None)
        came: tuple[float, ...] = ()
        if first is not None:
            came = (first, *self.early_more.pop(key, ()))
        if owed > 1 and self.early_parts:
            came += self._early_parts_of(key)
        if came:
            owed -= len(came)
            if owed <= 0:
                return came
        pending = self.pending
        if key in pending:
            self.reused += 1
        if len(pending) >= self.limit:
            gone = next(iter(pending))
            del pending[gone]
            self.left.pop(gone, None)
        pending[key] = due
        if owed > 1:
            self.left[key] = owed
        return came

    def _early_parts_of(self, key: str) -> tuple[float, ...]:
        """When the receipts for the ``KEY.N`` ids in early came (taken out of early)."""
        came: list[float] = []
        for part in self.early_parts.pop(key, ()):
            at = self.early.pop(part, None)
            if at is not None:  # gone when an id with a dot of its own was owed as itself
                came.append(at)
                came.extend(self.early_more.pop(part, ()))
        return tuple(came)

    def seen_before(self, message_id: str, handset: str) -> bool:
        """True for a second copy of the receipt for ``message_id`` to ``handset`` (it counts
        as a duplicate); otherwise it is remembered as seen."""
        key = f"{self._key(message_id)} {handset}"
        seen = self.seen
        if key in seen:
            self.duplicates += 1  # at least once: an SMSC may send one again
            return True
        if len(seen) >= self.limit:
            del seen[next(iter(seen))]
        seen[key] = None
        return False

    def match(self, message_id: str, now: float) -> float | None:
        """A final receipt for ``message_id`` came at ``now``: when its submit was due, or
        None when no submit owes it yet (kept as early)."""
        key = self._key(message_id)
        pending = self.pending
        due = pending.get(key)
        stem = ""
        if due is None and "." in key:
            stem = stem_of(key)
            if stem in self.left:
                key, due = stem, pending[stem]
        if due is None:
            if key in self.early:
                self.early_more.setdefault(key, []).append(now)
            elif len(self.early) < self.limit:
                self.early[key] = now
                if stem and len(self.early_parts) < self.limit:
                    self.early_parts.setdefault(stem, []).append(key)
            return None
        left = self.left.get(key, 1)
        if left > 1:
            self.left[key] = left - 1
        else:
            del pending[key]
            self.left.pop(key, None)
        return due
