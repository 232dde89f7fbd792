"""Rebuild the seed corpus: ``python -m smpphub.bench.fuzz.seeds`` (from a checkout).

The corpus (``corpus/``, one input per file) gives the fuzzer valid PDUs of every
one of SMPP 3.4's 27 command ids to mutate, so it starts past the header checks:

- ``<command>-<sha1>``: PDUs drawn by tests/strategies.py (every mandatory field and
  TLV kind, random values), encoded by smppcore; derandomized, so a rebuild with the
  same hypothesis version writes the same files;
- ``golden-<case>``: the golden vectors of tests/test_golden.py (the hand-typed spec
  vectors, and the peer cases whose bytes that test proves identical to
  node-smpp's or smpplib's);
- ``session-<name>``: whole conversations for the server target (bind, submits,
  data_sm, enquire_link, unbind), so it reaches the bound states.

It reads tests/, so it runs from a checkout, not from an installed wheel.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from .cli import CORPUS

__all__ = ["build", "PER_TYPE"]

TESTS = Path(__file__).resolve().parents[2] / "tests"
#: Examples drawn per command id: 27 x 8 files, about 100 KB in all.
PER_TYPE = 8


def _drawn() -> dict[str, bytes]:
    from hypothesis import HealthCheck, given, settings
    from strategies import pdus

    from smppcore import PDU_TYPES, encode
    from smppcore.pdus import Pdu

    seen: list[Pdu] = []

    @settings(max_examples=PER_TYPE, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def draw(pdu: Pdu) -> None:
        seen.append(pdu)

    out: dict[str, bytes] = {}
    for cls in PDU_TYPES.values():
        seen.clear()
        given(pdus(cls))(draw)()
        for pdu in seen:
            data = encode(pdu)
            out[f"{pdu.command_name}-{hashlib.sha1(data).hexdigest()[:12]}"] = data
    return out


def _golden() -> dict[str, bytes]:
    import test_golden

    from smppcore import encode

    out = {f"golden-{name}": data for name, data, _pdu in test_golden.HAND_VECTORS}
    for case in test_golden.CASES:
        out[f"golden-{case.id}"] = encode(case.pdu)
    return out


def _sessions() -> dict[str, bytes]:
    from smppcore import (
        BindReceiver,
        BindTransceiver,
        BindTransmitter,
        DataSm,
        DeliverSmResp,
        DestAddress,
        DistributionList,
        EnquireLink,
        GenericNack,
        QuerySm,
        SubmitMulti,
        SubmitSm,
        Unbind,
        encode,
    )
    from smppcore.pdus import Pdu

    def join(*pdus: Pdu) -> bytes:
        return b"".join(encode(p) for p in pdus)

    submit = SubmitSm(sequence_number=2, source_addr="12345", destination_addr="447700900123", short_message=b"hi")
    return {
        "session-trx": join(
            BindTransceiver(sequence_number=1, system_id="esme", password="pw"),
            submit,
            DataSm(sequence_number=3, destination_addr="447700900123", tlvs={0x0424: b"payload"}),
            EnquireLink(sequence_number=4),
            DeliverSmResp(sequence_number=77),
            Unbind(sequence_number=5),
        ),
        "session-tx-multi": join(
            BindTransmitter(sequence_number=1, system_id="esme", password="pw"),
            SubmitMulti(sequence_number=2, dest_address=[DestAddress("4477", 1, 1), DistributionList("friends")],
                        short_message=b"to many"),
            QuerySm(sequence_number=3, message_id="1"),
        ),
        "session-rx-submit": join(BindReceiver(sequence_number=1, system_id="esme"), submit),
        "session-refused": join(BindTransceiver(sequence_number=1, system_id="bad"), submit),
        "session-twice": join(
            BindTransceiver(sequence_number=1, system_id="esme"), BindTransceiver(sequence_number=2, system_id="e")
        ),
        "session-nack": join(GenericNack(sequence_number=9, command_status=3), EnquireLink(sequence_number=10)),
    }


def build(folder: Path = CORPUS) -> dict[str, bytes]:
    """Write the corpus into ``folder`` (replacing what is there); returns it."""
    if not (TESTS / "strategies.py").is_file():
        raise FileNotFoundError(f"{TESTS}/strategies.py not found: run this from a checkout of smpphub")
    sys.path.insert(0, str(TESTS))
    corpus = {**_drawn(), **_golden(), **_sessions()}
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.is_file():
            old.unlink()
    for name, data in sorted(corpus.items()):
        (folder / name).write_bytes(data)
    return corpus


def main() -> int:
    try:
        corpus = build()
    except (FileNotFoundError, ImportError) as exc:
        print(f"seeds: {exc}", file=sys.stderr)
        return 1
    print(f"seeds: {len(corpus)} files, {sum(map(len, corpus.values()))} octets in {CORPUS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
