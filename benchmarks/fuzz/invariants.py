"""What both fuzz targets share: the failure they raise and how an input is cut.

A target must replay exactly from its bytes alone (a crash is kept as one bytes
literal in tests/test_fuzz_regressions.py), so the chunking of the stream is not
drawn from a random generator of the engine: it is derived from the bytes with a
checksum. A mutation anywhere changes the cuts as well, which is what we want: the
Framer and the connection must not care where the stream is cut.
"""

from __future__ import annotations

import random
import zlib

from smppcore.constants import CommandStatus
from smppcore.errors import FramingError, PduError

__all__ = ["InvariantBroken", "chunks", "check_error"]

#: Chunk sizes: mostly tiny (cuts inside headers and fields), some large.
_SIZES = (1, 1, 2, 3, 4, 5, 7, 8, 11, 15, 16, 17, 31, 64, 255, 1024)


class InvariantBroken(Exception):
    """smppcore broke one of the promises a target checks; the message says which."""


def chunks(data: bytes) -> list[bytes]:
    """``data`` cut into pieces whose sizes come from a checksum of ``data`` itself."""
    rng = random.Random(zlib.crc32(data))
    out = []
    pos = 0
    while pos < len(data):
        n = rng.choice(_SIZES)
        out.append(data[pos : pos + n])
        pos += n
    return out


def check_error(err: PduError) -> None:
    """A PduError must carry a real, non-zero SMPP status and header values that fit the wire."""
    status = err.command_status
    if status == 0 or status not in CommandStatus._value2member_map_:
        raise InvariantBroken(f"PduError with command_status 0x{status:08X}, not an SMPP 3.4 error: {err!r}")
    for name in ("sequence_number", "command_id"):
        value = getattr(err, name)
        if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
            raise InvariantBroken(f"PduError.{name} {value!r} does not fit 32 bits: {err!r}")
    if err.fatal != isinstance(err, FramingError):
        raise InvariantBroken(f"PduError.fatal is {err.fatal} on a {type(err).__name__}")
