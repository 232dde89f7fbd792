"""Every input the fuzzers (benchmarks/fuzz) found to break smppcore, kept as a test.

Each case is the crashing input exactly as the fuzzer wrote it (``crash-<sha1>``),
replayed through the same target, plus a direct check of the fixed behaviour where
the target's wording alone would not say what was wrong.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import pytest

import smppcore
from smppcore import CommandStatus, PduError
from smpphub.bench.fuzz.codec_target import check_codec


@dataclass(frozen=True)
class Crash:
    name: str
    target: Callable[[bytes], object]
    data: bytes
    why: str


CRASHES = [
    Crash(
        "submit_multi_cstr_past_end",
        check_codec,
        base64.b64decode("AAAAGQAAACElPj4+Pj4+Pj7Cwf//ABAODg4ODg4ODg4ODg4ODg4ODg4ODgAAbgAVjA=="),
        "submit_multi's fast decoder searched source_addr's NUL past the PDU's end, into the next PDU's "
        "bytes, and went on into the dest list: the error status depended on what followed in the buffer "
        "(ESME_RINVCMDLEN when fed whole, ESME_RINVSRCADR when the chunk ended at the PDU)",
    ),
]


@pytest.mark.parametrize("crash", CRASHES, ids=[c.name for c in CRASHES])
def test_fuzz_crash_fixed(crash: Crash):
    crash.target(crash.data)


def test_submit_multi_error_does_not_depend_on_the_next_pdu():
    """A submit_multi whose source_addr has no NUL before its end gets ESME_RINVSRCADR, whatever follows."""
    pdu = bytes.fromhex("00000019" "00000021" "00000000" "00000007" "00" "0101" "313233343536")  # no NUL
    follower = bytes.fromhex("00000010" "00000015" "00000000" "00000008")  # an enquire_link: has NULs
    alone = smppcore.Framer().feed(pdu)
    followed = smppcore.Framer().feed(pdu + follower)
    assert isinstance(alone[0], PduError) and isinstance(followed[0], PduError)
    assert alone[0].command_status == followed[0].command_status == CommandStatus.ESME_RINVSRCADR
    assert followed[1] == smppcore.EnquireLink(sequence_number=8)
