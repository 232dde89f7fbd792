"""The load generator's receipt bookkeeping (benchmarks/receipt_book.py), event by event.

Each case is a sequence of what a worker tells the book: ``owe`` (a response accepted
an id owing n receipts), ``receipt`` (a final receipt for an id and a handset came),
and what the book must answer; then the counts it ends with.
"""

from __future__ import annotations

import pytest

from smpphub.bench.receipt_book import ReceiptBook

# (name, events, expected, duplicates, pending ids at the end, early ids at the end)
# event: ("owe", id, due, owed, answer) or ("receipt", id, handset, now, answer); answer is
# what match returns (None, or a time) or owe (the times of the receipts that came before it),
# "dup" for a receipt seen_before says is a copy
CASES = [
    ("one submit, one receipt", [("owe", "7", 1.0, 1, ()), ("receipt", "7", "447700900001", 2.0, 1.0)],
     1, 0, [], []),
    ("ids compared after normalising", [("owe", "00AB", 1.0, 1, ()), ("receipt", "ab", "4477", 2.0, 1.0)],
     1, 0, [], []),
    ("a receipt before its response", [("receipt", "7", "4477", 0.5, None), ("owe", "7", 0.25, 1, (0.5,))],
     1, 0, [], []),
    ("a second copy is a duplicate", [("owe", "7", 1.0, 1, ()), ("receipt", "7", "4477", 2.0, 1.0),
                                      ("receipt", "7", "4477", 3.0, "dup")], 1, 1, [], []),
    ("submit_multi: one per handset under one id",
     [("owe", "9", 1.0, 3, ()), ("receipt", "9", "4477001", 2.0, 1.0), ("receipt", "9", "4477002", 2.5, 1.0),
      ("receipt", "9", "4477002", 2.6, "dup"), ("receipt", "9", "4477003", 3.0, 1.0)], 3, 1, [], []),
    ("submit_multi: still owed at the end", [("owe", "9", 1.0, 3, ()), ("receipt", "9", "4477001", 2.0, 1.0)],
     3, 0, ["9"], []),
    ("submit_multi: two receipts before its response",
     [("receipt", "9", "4477001", 0.5, None), ("receipt", "9", "4477002", 0.6, None), ("owe", "9", 0.25, 3, (0.5, 0.6)),
      ("receipt", "9", "4477003", 1.0, 0.25)], 3, 0, [], []),
    ("a hub's id.N for each destination", [("owe", "abc", 1.0, 3, ()), ("receipt", "abc", "4477001", 2.0, 1.0),
                                           ("receipt", "abc.1", "4477002", 2.0, 1.0),
                                           ("receipt", "ABC.2", "4477003", 2.0, 1.0)], 3, 0, [], []),
    ("id.N with leading zeros: its stem loses them too",
     [("owe", "00ab", 1.0, 2, ()), ("receipt", "00AB", "4477001", 2.0, 1.0),
      ("receipt", "00ab.1", "4477002", 2.0, 1.0)], 2, 0, [], []),
    ("id.N receipts before the submit_multi_resp (the CI run that found it)",
     [("receipt", "0042.1", "4477002", 0.5, None), ("receipt", "42.2", "4477003", 0.6, None),
      ("owe", "0042", 0.25, 3, (0.5, 0.6)), ("receipt", "42", "4477001", 1.0, 0.25)], 3, 0, [], []),
    ("an id with a dot of its own, owed as itself, is not taken again by its stem",
     [("receipt", "7.1", "4477", 0.5, None), ("owe", "7.1", 0.25, 1, (0.5,)), ("owe", "7", 0.3, 2, ())],
     3, 0, ["7"], []),
    ("id.N of a plain submit is not its stem", [("owe", "abc", 1.0, 1, ()), ("receipt", "abc.1", "4477", 2.0, None)],
     1, 0, ["abc"], ["abc.1"]),
    ("nothing owed: all refused in submit_multi_resp", [("owe", "5", 1.0, 0, ())], 0, 0, [], []),
    ("a receipt for a message of another run", [("receipt", "42", "4477", 1.0, None)], 0, 0, [], ["42"]),
]


@pytest.mark.parametrize("name, events, expected, duplicates, pending, early", CASES, ids=[c[0] for c in CASES])
def test_receipts_are_matched_per_message_and_handset(name, events, expected, duplicates, pending, early):
    book = ReceiptBook()
    for kind, message_id, a, b, answer in events:
        if kind == "owe":
            assert book.owe(message_id, a, b) == answer
        elif book.seen_before(message_id, a):
            assert answer == "dup"
        else:
            assert book.match(message_id, b) == answer
    assert (book.expected, book.duplicates) == (expected, duplicates)
    assert sorted(book.pending) == pending and sorted(book.early) == early


def test_an_id_acked_again_while_its_receipt_is_owed_is_counted_as_reused():
    # two messages answered with one id hide a lost receipt from a count by id: the soak fails on it
    book = ReceiptBook()
    book.owe("7", 1.0, 1)
    book.owe("8", 1.1, 1)
    assert book.reused == 0
    book.owe("007", 1.2, 1)
    assert book.reused == 1 and sorted(book.pending) == ["7", "8"]


def test_every_map_is_bounded_and_forgets_the_oldest():
    book = ReceiptBook(limit=3)
    for i in range(5):
        book.owe(str(i + 10), float(i), 2)
        book.seen_before(str(i + 10), "4477")
        book.match(str(i + 100), float(i))  # nobody owes these: early
    assert list(book.pending) == ["12", "13", "14"] and set(book.left) == {"12", "13", "14"}
    assert len(book.seen) == 3 and len(book.early) == 3
    assert book.match("10", 9.0) is None  # forgotten: its receipt waits as early, later unmatched
    for i in range(5):
        book.match(f"{i + 200}.1", float(i))
    assert len(book.early) == 3 and len(book.early_parts) <= 3


def test_a_receipt_id_is_normalised_once(monkeypatch):
    """seen_before then match for one receipt: one normalise_message_id, not one each."""
    import smpphub.bench.receipt_book as receipt_book

    calls: list[str] = []
    real = receipt_book.normalise_message_id

    def counting(message_id: str) -> str:
        calls.append(message_id)
        return real(message_id)

    monkeypatch.setattr(receipt_book, "normalise_message_id", counting)
    book = ReceiptBook()
    book.owe("00AB", 1.0, 1)
    book.owe("cd", 1.0, 1)
    calls.clear()
    assert not book.seen_before("ab", "4477")
    assert book.match("ab", 2.0) == 1.0
    assert calls == ["ab"]
    assert book.seen_before("ab", "4477") and book.match("cd", 3.0) == 1.0  # a new id: normalised
    assert calls == ["ab", "cd"]
