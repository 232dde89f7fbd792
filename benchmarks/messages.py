"""What the load generator sends: destinations, the text mix, and prepared submit_sm bytes.

Building and encoding a SubmitSm costs more than everything else the generator does
per message, so the messages are made before the run: a pool of ``POOL_SIZE``
messages, each drawn like a real one (a kind by its weight, a destination from the
pattern or file, a fresh concatenation reference for a long one) and encoded by
smppcore. The run takes them in turn; the only thing left to do per submit_sm is
to put its sequence number in the header.
"""

from __future__ import annotations

import itertools
import math
import random
import re

import msgspec

__all__ = ["DestinationPattern", "parse_mix", "MIX_KINDS", "MessagePool", "POOL_SIZE"]

#: Messages prepared before a run and used in turn (a long message's concatenation
#: reference comes round again only after this many messages).
POOL_SIZE = 16384


class DestinationPattern:
    """``4477009{00000-99999}``: a literal with one numeric range; or lines of a file."""

    def __init__(self, pattern: str, file: str | None = None, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self.numbers: list[str] | None = None
        if file is not None:
            with open(file) as f:
                self.numbers = [line.strip() for line in f if line.strip()]
            if not self.numbers:
                raise ValueError(f"{file}: no destinations in it")
            return
        m = re.fullmatch(r"([^{}]*)\{(\d+)-(\d+)\}([^{}]*)", pattern)
        if m:
            self.prefix, lo, hi, self.suffix = m.group(1), m.group(2), m.group(3), m.group(4)
            self.lo, self.hi, self.width = int(lo), int(hi), len(lo)
            if self.hi < self.lo:
                raise ValueError(f"empty range in {pattern!r}")
        elif "{" in pattern or "}" in pattern:
            raise ValueError(f"bad destination pattern {pattern!r} (expected PREFIX{{FROM-TO}})")
        else:
            self.prefix, self.lo, self.hi, self.width, self.suffix = pattern, 0, -1, 0, ""

    def next(self) -> str:
        if self.numbers is not None:
            return self.numbers[self.rng.randrange(len(self.numbers))]
        if self.hi < 0:
            return self.prefix
        return f"{self.prefix}{self.rng.randint(self.lo, self.hi):0{self.width}d}{self.suffix}"


_TEXTS = {
    "gsm": ("Load test message, GSM 03.38 text of about 60 characters long", 0),
    "ucs2": ("Нагрузочный тест 🚀 UCS-2 text", 8),
    "long": ("A long message that needs several segments to get through. " * 6, None),  # 3 segments
}
MIX_KINDS = tuple(_TEXTS)


def parse_mix(value: str) -> dict[str, float]:
    """``gsm:70,ucs2:20,long:10`` -> weights; raises ValueError naming the bad part."""
    mix: dict[str, float] = {}
    for part in value.split(","):
        kind, _, weight = part.strip().partition(":")
        if kind not in _TEXTS:
            raise ValueError(f"unknown text kind {kind!r} in --text-mix (known: {', '.join(_TEXTS)})")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"bad weight {weight!r} for {kind} in --text-mix") from None
        if w < 0 or not math.isfinite(w):
            raise ValueError(f"weight of {kind} must be a number >= 0")
        mix[kind] = w
    if not any(mix.values()):
        raise ValueError("--text-mix needs a weight above 0")
    return mix


class MessagePool:
    """``POOL_SIZE`` prepared messages; ``messages[i]`` is one message's submit_sm(s).

    Each submit_sm is a pair ``(head, body)``: ``head`` the 12 octets of its header
    before the sequence number (command_length, command_id, command_status), ``body``
    everything after it, both as smppcore encoded them.
    """

    def __init__(self, *, to: str, to_file: str | None, mix: dict[str, float], source: str, dlr: bool,
                 seed: int, size: int = POOL_SIZE) -> None:
        import smppcore
        from smppcore.text import split_text

        rng = random.Random(seed)
        dest = DestinationPattern(to, to_file, rng)
        kinds = [k for k, w in mix.items() if w > 0]
        weights = list(itertools.accumulate(mix[k] for k in kinds))
        alpha = not source.isdigit()
        base = smppcore.SubmitSm(
            source_addr=source, source_addr_ton=5 if alpha else 1, source_addr_npi=0 if alpha else 1,
            dest_addr_ton=1, dest_addr_npi=1, registered_delivery=1 if dlr else 0,
        )
        one_part: dict[str, list] = {}  # kind -> its segments when it needs only one (no reference)
        self.messages: list[tuple[tuple[bytes, bytes], ...]] = []
        self.segments = 0
        for _ in range(size):
            kind = kinds[0] if len(kinds) == 1 else rng.choices(kinds, cum_weights=weights)[0]
            text, coding = _TEXTS[kind]
            segs = one_part.get(kind)
            if segs is None:
                segs = split_text(text, data_coding=coding, reference=rng.randrange(256))
                if len(segs) == 1:
                    one_part[kind] = segs
            to_addr = dest.next()
            parts = []
            for seg in segs:
                data = smppcore.encode(msgspec.structs.replace(base, destination_addr=to_addr, esm_class=seg.esm_class,
                                                                data_coding=seg.data_coding,
                                                                short_message=seg.short_message, tlvs=dict(seg.tlvs)))
                parts.append((data[:12], data[16:]))
            self.messages.append(tuple(parts))
            self.segments += len(parts)
