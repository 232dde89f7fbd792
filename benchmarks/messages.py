"""What the load generator sends: addresses, the text and operation mixes, prepared PDU bytes.

Building and encoding a PDU costs more than everything else the generator does per
message, so the messages are made before the run: a pool of ``POOL_SIZE`` messages,
each drawn like a real one (an operation and a text kind by their weights, a source
and destinations from their patterns or files, a fresh concatenation reference for a
long one) and encoded by smppcore. The run takes them in turn; the only thing left to
do per PDU is to put its sequence number in the header.
"""

from __future__ import annotations

import itertools
import math
import random
import re

__all__ = [
    "AddressPattern", "DestinationPattern", "parse_mix", "parse_op_mix", "parse_weights", "MIX_KINDS", "OPS",
    "MessagePool", "POOL_SIZE", "MAX_MULTI_DESTS",
]

#: Messages prepared before a run and used in turn (a long message's concatenation
#: reference comes round again only after this many messages).
POOL_SIZE = 16384
#: Lines read of an address file: more than a pool could ever use, and memory stays bounded.
MAX_FILE_LINES = 1_000_000
#: The longest line of an address file read at once (an address and the spaces around it).
MAX_LINE = 256
#: The longest address SMPP 3.4 carries in submit_sm and submit_multi (source_addr and
#: destination_addr are C-octet strings of 21 octets, NUL included).
MAX_ADDRESS = 20
#: The most destinations of one submit_multi (number_of_dests is one octet).
MAX_MULTI_DESTS = 254


class AddressPattern:
    """``4477009{00000-99999}``: a literal with one numeric range; or the lines of a file.

    Destinations (``--to``, ``--to-file``) and sources (``--from``, ``--from-file``)
    alike: an SMSC that routes or throttles by source address sees many senders, as
    it would from an aggregator, not one.
    """

    def __init__(self, pattern: str, file: str | None = None, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self.numbers: list[str] | None = None
        if file is not None:
            self.numbers = _read_addresses(file)
            return
        m = re.fullmatch(r"([^{}]*)\{(\d+)-(\d+)\}([^{}]*)", pattern)
        if m:
            self.prefix, lo, hi, self.suffix = m.group(1), m.group(2), m.group(3), m.group(4)
            self.lo, self.hi, self.width = int(lo), int(hi), len(lo)
            if self.hi < self.lo:
                raise ValueError(f"empty range in {pattern!r}")
            longest = len(self.prefix) + max(self.width, len(hi)) + len(self.suffix)
        elif "{" in pattern or "}" in pattern:
            raise ValueError(f"bad address pattern {pattern!r} (expected PREFIX{{FROM-TO}})")
        else:
            self.prefix, self.lo, self.hi, self.width, self.suffix = pattern, 0, -1, 0, ""
            longest = len(pattern)
        if longest > MAX_ADDRESS:
            raise ValueError(f"{pattern!r} makes addresses longer than {MAX_ADDRESS} characters")

    def next(self) -> str:
        if self.numbers is not None:
            return self.numbers[self.rng.randrange(len(self.numbers))]
        if self.hi < 0:
            return self.prefix
        return f"{self.prefix}{self.rng.randint(self.lo, self.hi):0{self.width}d}{self.suffix}"


def _read_addresses(file: str) -> list[str]:
    """The addresses of ``file``, one per line (blank lines skipped), at most
    :data:`MAX_FILE_LINES` of them; a line is read at most :data:`MAX_LINE` characters
    at a time, so a file without line breaks cannot fill the memory."""
    out: list[str] = []
    with open(file) as f:
        while len(out) < MAX_FILE_LINES:
            line = f.readline(MAX_LINE)
            if not line:
                break
            address = line.strip()
            if len(address) > MAX_ADDRESS or (len(line) >= MAX_LINE and not line.endswith("\n")):
                raise ValueError(f"{file}: {address[:30]!r}... is longer than {MAX_ADDRESS} characters")
            if address:
                out.append(address)
    if not out:
        raise ValueError(f"{file}: no addresses in it")
    return out


#: The older name, from when only destinations had patterns.
DestinationPattern = AddressPattern


_TEXTS = {
    "gsm": ("Load test message, GSM 03.38 text of about 60 characters long", 0),
    "ucs2": ("Нагрузочный тест 🚀 UCS-2 text", 8),
    "long": ("A long message that needs several segments to get through. " * 6, None),  # 3 segments
}
MIX_KINDS = tuple(_TEXTS)


#: The operations a run can mix: each message goes as one of these (a long one as
#: several of it, one per segment; data_sm carries the whole text in message_payload).
OPS = ("submit_sm", "submit_multi", "data_sm")


def parse_weights(value: str, known: tuple[str, ...], flag: str, noun: str) -> dict[str, float]:
    """``a:70,b:30`` -> weights of names in ``known``; raises ValueError naming ``flag`` and the bad part."""
    mix: dict[str, float] = {}
    for part in value.split(","):
        name, _, weight = part.strip().partition(":")
        if name not in known:
            raise ValueError(f"unknown {noun} {name!r} in {flag} (known: {', '.join(known)})")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"bad weight {weight!r} for {name} in {flag}") from None
        if w < 0 or not math.isfinite(w):
            raise ValueError(f"weight of {name} must be a number >= 0")
        mix[name] = w
    if not any(mix.values()):
        raise ValueError(f"{flag} needs a weight above 0")
    return mix


def parse_mix(value: str) -> dict[str, float]:
    """``gsm:70,ucs2:20,long:10`` -> weights; raises ValueError naming the bad part."""
    return parse_weights(value, MIX_KINDS, "--text-mix", "text kind")


def parse_op_mix(value: str) -> dict[str, float]:
    """``submit_sm:8,submit_multi:1,data_sm:1`` -> weights; raises ValueError naming the bad part."""
    return parse_weights(value, OPS, "--op-mix", "operation")


class _Draw:
    """Names drawn by weight from one seeded generator (a single name costs no draw)."""

    def __init__(self, weights: dict[str, float], rng: random.Random) -> None:
        self.names = [k for k, w in weights.items() if w > 0]
        self.cum = list(itertools.accumulate(weights[k] for k in self.names))
        self.rng = rng

    def next(self) -> str:
        if len(self.names) == 1:
            return self.names[0]
        return self.rng.choices(self.names, cum_weights=self.cum)[0]


class MessagePool:
    """``POOL_SIZE`` prepared messages; ``messages[i]`` is one message as ``(parts, multi, op)``.

    ``parts`` are its PDUs (several for a long message), each a pair ``(head, body)``:
    ``head`` the 12 octets of its header before the sequence number (command_length,
    command_id, command_status), ``body`` everything after it, both as smppcore
    encoded them. ``multi`` is the number of destinations of a submit_multi, 0 for
    submit_sm and data_sm; ``op`` the index in :data:`OPS` of its operation.
    """

    def __init__(self, *, to: str, to_file: str | None, mix: dict[str, float], source: str, dlr: bool,
                 seed: int, source_file: str | None = None, ops: dict[str, float] | None = None,
                 multi_dests: int = 2, size: int = POOL_SIZE) -> None:
        rng = random.Random(seed)
        dest = AddressPattern(to, to_file, rng)
        src = AddressPattern(source, source_file, rng)
        kinds = _Draw(mix, rng)
        operations = _Draw(ops or {"submit_sm": 1.0}, rng)
        self.dlr = dlr
        self.one_part: dict[tuple[str, str], list] = {}  # (kind, op) -> its segments when one needs no reference
        self.messages: list[tuple[tuple[tuple[bytes, bytes], ...], int, int]] = []
        self.segments = 0
        for _ in range(size):
            op = operations.next()
            kind = kinds.next()
            dests = [dest.next() for _ in range(multi_dests if op == "submit_multi" else 1)]
            parts = self._encode(op, kind, src.next(), dests, rng)
            multi = len(dests) if op == "submit_multi" else 0
            self.messages.append((parts, multi, OPS.index(op)))
            self.segments += len(parts)

    def _encode(self, op: str, kind: str, source: str, dests: list[str],
                rng: random.Random) -> tuple[tuple[bytes, bytes], ...]:
        """The PDUs of one message, split in head and body around the sequence number."""
        import smppcore
        from smppcore.text import split_text

        text, coding = _TEXTS[kind]
        segs = self.one_part.get((kind, op))
        if segs is None:
            segs = split_text(text, data_coding=coding, reference=rng.randrange(256),
                              method="payload" if op == "data_sm" else "udh")
            if len(segs) == 1:
                self.one_part[kind, op] = segs
        alpha = not source.isdigit()
        addressing = {"source_addr": source, "source_addr_ton": 5 if alpha else 1, "source_addr_npi": 0 if alpha else 1,
                      "registered_delivery": 1 if self.dlr else 0}
        parts = []
        for seg in segs:
            pdu: smppcore.Pdu
            if op == "data_sm":
                pdu = smppcore.DataSm(**addressing, dest_addr_ton=1, dest_addr_npi=1, destination_addr=dests[0],
                                      esm_class=seg.esm_class, data_coding=seg.data_coding, tlvs=dict(seg.tlvs))
            elif op == "submit_multi":
                pdu = smppcore.SubmitMulti(**addressing,
                                           dest_address=[smppcore.pdus.DestAddress(d, 1, 1) for d in dests],
                                           esm_class=seg.esm_class, data_coding=seg.data_coding,
                                           short_message=seg.short_message, tlvs=dict(seg.tlvs))
            else:
                pdu = smppcore.SubmitSm(**addressing, dest_addr_ton=1, dest_addr_npi=1, destination_addr=dests[0],
                                        esm_class=seg.esm_class, data_coding=seg.data_coding,
                                        short_message=seg.short_message, tlvs=dict(seg.tlvs))
            data = smppcore.encode(pdu)
            parts.append((data[:12], data[16:]))
        return tuple(parts)
