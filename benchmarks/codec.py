"""Codec benchmark: smppcore against smpp34, smpplib, aiosmpplib and node-smpp.

Run ``python -m benchmarks.codec`` (or ``python benchmarks/codec.py``). It measures,
on one core, operations per second of:

- decode, encode and encode+decode pairs of three typical PDUs: a submit_sm
  (international source and destination, a 40-octet GSM text, registered_delivery=1),
  its submit_sm_resp (16-character message_id) and a deliver_sm delivery receipt
  (esm_class 4, the usual ``id:... sub:... dlvrd:... stat:DELIVRD ...`` text and the
  receipted_message_id and message_state TLVs);
- the Framer over one buffer of 10,000 back-to-back submit_sm (PDUs per second).

What is timed, for every implementation alike:

- *encode*: build the PDU object from field values and serialise it to bytes (what
  an application does per message; some peers cache the serialisation on the object,
  so encoding a prebuilt object would not be comparable);
- *decode*: bytes of one whole PDU to a PDU object, dispatching on command_id;
- *encode+decode*: decode what was just encoded; the rate is of pairs;
- *framer*: ``Framer().feed(buf)`` once per repetition. The peers have no buffer
  framer, so theirs is a command_length split loop around their decode (which is
  what their socket readers do, minus the socket).

Methodology: the loops are compiled inline (like :mod:`timeit`, but with the garbage
collector left on, as in production) and timed with :func:`time.perf_counter`. Each
measurement runs for about ``--seconds`` (0.5 s) after a calibration pass that also
warms up; each is repeated ``--repeat`` (5) times and the median is reported. The
implementations are measured interleaved (for each repetition, for each operation,
every implementation in turn, in a rotating order), node-smpp included through a
long-running ``node benchmarks/peers/node_codec.js --serve`` child, so a noisy
neighbour hits all of them alike: the ratios are what matter. The process (and the
node child, which inherits it) is pinned to one CPU (``--cpu``).

Before timing, every peer's encoding of each PDU is decoded by smppcore and compared
with smppcore's own, and every peer's decoding of smppcore's bytes is probed, so a
peer that silently does something else is reported rather than timed.

A peer that is not installed shows as ``n/a``. ``--quick`` is a smoke run for CI;
``--json PATH`` writes every figure; ``--peers none`` measures smppcore alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

if __name__ == "__main__" and not __package__:  # python benchmarks/codec.py
    _ROOT = Path(__file__).resolve().parent.parent
    # Do not let benchmarks/ shadow top-level modules; make smppcore importable.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
    sys.path.insert(0, str(_ROOT))

from smppcore import DeliverSm, Framer, SubmitSm, SubmitSmResp, Tag, decode, encode

ROOT = Path(__file__).resolve().parent.parent
NODE_SCRIPT = Path(__file__).resolve().parent / "peers" / "node_codec.js"
NODE_MODULES = ROOT / "tests" / "interop" / "node" / "node_modules"

# --- the workload -------------------------------------------------------------------

SEQ = 7
SOURCE = "447700900001"
DESTINATION = "447700900123"
TEXT = b"Your verification code is 482913. Thanks"  # 40 octets of GSM 03.38 text
MESSAGE_ID = "a1b2c3d4e5f60718"
RECEIPT = (
    b"id:a1b2c3d4e5f60718 sub:001 dlvrd:001 submit date:2401151230 done date:2401151231"
    b" stat:DELIVRD err:000 text:Your verification co"
)
MESSAGE_STATE_DELIVERED = 2
FRAMER_COUNT = 10_000

#: (key, label) in table order. The key is "<pdu>.<operation>" (node_codec.js uses the same).
OPS: list[tuple[str, str]] = [
    ("submit_sm.decode", "submit_sm decode"),
    ("submit_sm.encode", "submit_sm encode"),
    ("submit_sm.pair", "submit_sm encode+decode"),
    ("submit_sm_resp.decode", "submit_sm_resp decode"),
    ("submit_sm_resp.encode", "submit_sm_resp encode"),
    ("submit_sm_resp.pair", "submit_sm_resp encode+decode"),
    ("deliver_sm.decode", "deliver_sm receipt decode"),
    ("deliver_sm.encode", "deliver_sm receipt encode"),
    ("deliver_sm.pair", "deliver_sm receipt encode+decode"),
    ("framer", "framer, 10k submit_sm (PDUs/s)"),
]
OP_KEYS = [k for k, _ in OPS]
#: node-smpp only, for the footnote: with its default presentation filters on. Each is
#: measured right after the operation it varies (the key), to keep the pairing side by side.
NODE_EXTRA_OPS = {
    "submit_sm.decode": "submit_sm.decode_filtered",
    "submit_sm.pair": "submit_sm.pair_filtered",
    "deliver_sm.decode": "deliver_sm.decode_filtered",
}

PEERS = ["smpp34", "smpplib", "aiosmpplib", "node-smpp"]

TARGET_PAIRS = 250_000
TARGET_VS_NODE = 8.0
TARGET_VS_SMPP34 = 0.4


def reference_pdus() -> dict[str, Any]:
    """smppcore's PDUs of the workload: what every peer's encoding must decode to."""
    return {
        "submit_sm": SubmitSm(
            sequence_number=SEQ,
            source_addr_ton=1, source_addr_npi=1, source_addr=SOURCE,
            dest_addr_ton=1, dest_addr_npi=1, destination_addr=DESTINATION,
            registered_delivery=1, short_message=TEXT,
        ),
        "submit_sm_resp": SubmitSmResp(sequence_number=SEQ, message_id=MESSAGE_ID),
        "deliver_sm": DeliverSm(
            sequence_number=SEQ,
            source_addr_ton=1, source_addr_npi=1, source_addr=DESTINATION,
            dest_addr_ton=1, dest_addr_npi=1, destination_addr=SOURCE,
            esm_class=4, short_message=RECEIPT,
            tlvs={Tag.RECEIPTED_MESSAGE_ID: MESSAGE_ID, Tag.MESSAGE_STATE: MESSAGE_STATE_DELIVERED},
        ),
    }


REFERENCE = reference_pdus()
WIRE = {name: encode(pdu) for name, pdu in REFERENCE.items()}
STREAM = WIRE["submit_sm"] * FRAMER_COUNT

# --- implementations ---------------------------------------------------------------

_U32 = struct.Struct(">I")


@dataclass
class Impl:
    """One implementation: an expression per operation, evaluated in ``ns``."""

    name: str
    version: str | None = None
    #: None when usable; otherwise why not (printed as n/a).
    unavailable: str | None = None
    exprs: dict[str, str] = field(default_factory=dict)
    ns: dict[str, Any] = field(default_factory=dict)
    #: key -> PDUs per evaluation (the framer's is FRAMER_COUNT)
    per_eval: dict[str, int] = field(default_factory=dict)
    #: (pdu name, decoded object) -> a str the check expects to find in it
    probe: Callable[[str, Any], str] | None = None
    #: key -> footnote marker for a figure that is not quite like-for-like
    marks: dict[str, str] = field(default_factory=dict)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def ours() -> Impl:
    ns = {
        "encode": encode, "decode": decode, "Framer": Framer,
        "SubmitSm": SubmitSm, "SubmitSmResp": SubmitSmResp, "DeliverSm": DeliverSm,
        "TEXT": TEXT, "RECEIPT": RECEIPT, "MESSAGE_ID": MESSAGE_ID, "STREAM": STREAM,
        "RMID": int(Tag.RECEIPTED_MESSAGE_ID), "MSTATE": int(Tag.MESSAGE_STATE),
        **{f"W_{k}": v for k, v in WIRE.items()},
    }
    build = {
        "submit_sm": (
            "SubmitSm(sequence_number=7, source_addr_ton=1, source_addr_npi=1, source_addr='447700900001',"
            " dest_addr_ton=1, dest_addr_npi=1, destination_addr='447700900123', registered_delivery=1,"
            " short_message=TEXT)"
        ),
        "submit_sm_resp": "SubmitSmResp(sequence_number=7, message_id=MESSAGE_ID)",
        "deliver_sm": (
            "DeliverSm(sequence_number=7, source_addr_ton=1, source_addr_npi=1, source_addr='447700900123',"
            " dest_addr_ton=1, dest_addr_npi=1, destination_addr='447700900001', esm_class=4,"
            " short_message=RECEIPT, tlvs={RMID: MESSAGE_ID, MSTATE: 2})"
        ),
    }
    exprs = {"framer": "Framer().feed(STREAM)"}
    for pdu, b in build.items():
        exprs[f"{pdu}.encode"] = f"encode({b})"
        exprs[f"{pdu}.decode"] = f"decode(W_{pdu})"
        exprs[f"{pdu}.pair"] = f"decode(encode({b}))"

    def probe(pdu: str, obj: Any) -> str:
        if pdu == "submit_sm_resp":
            return obj.message_id
        if pdu == "deliver_sm":
            return obj.tlvs[Tag.RECEIPTED_MESSAGE_ID] + obj.short_message.decode("latin-1")
        return obj.destination_addr + obj.short_message.decode("latin-1")

    return Impl("ours", _version("smpphub"), None, exprs, ns, {"framer": FRAMER_COUNT}, probe)


def smpp34_impl() -> Impl:
    try:
        import smpp34
    except ImportError as exc:
        return Impl("smpp34", unavailable=f"not installed ({exc})")

    def split(buf: bytes, dec: Callable = smpp34.decode, unpack: Callable = _U32.unpack_from) -> list:
        out = []
        p, n = 0, len(buf)
        while n - p >= 16:
            e = p + unpack(buf, p)[0]
            if e > n:
                break
            out.append(dec(buf[p:e]))
            p = e
        return out

    ns = {
        "S": smpp34, "SubmitSm": smpp34.SubmitSm, "DeliverSm": smpp34.DeliverSm, "Tlv": smpp34.Tlv,
        "decode": smpp34.decode, "split": split, "STREAM": STREAM,
        "TEXT": TEXT, "RECEIPT": RECEIPT, "MID_Z": MESSAGE_ID.encode() + b"\0",
        "RMID": smpp34.TLV_RECEIPTED_MESSAGE_ID, "MSTATE": smpp34.TLV_MESSAGE_STATE,
        **{f"W_{k}": v for k, v in WIRE.items()},
    }
    build = {
        "submit_sm": (
            "SubmitSm('447700900001', '447700900123', TEXT, source_addr_ton=1, source_addr_npi=1,"
            " dest_addr_ton=1, dest_addr_npi=1, registered_delivery=1, sequence_number=7)"
        ),
        "deliver_sm": (
            "DeliverSm('447700900123', '447700900001', RECEIPT, source_addr_ton=1, source_addr_npi=1,"
            " dest_addr_ton=1, dest_addr_npi=1, esm_class=4, sequence_number=7,"
            " tlvs=[Tlv(RMID, MID_Z), Tlv(MSTATE, b'\\x02')])"
        ),
    }
    exprs = {"framer": "split(STREAM)", "submit_sm_resp.decode": "decode(W_submit_sm_resp)"}
    for pdu, b in build.items():
        exprs[f"{pdu}.encode"] = f"{b}.encode()"
        exprs[f"{pdu}.decode"] = f"decode(W_{pdu})"
        exprs[f"{pdu}.pair"] = f"decode({b}.encode())"

    def probe(pdu: str, obj: Any) -> str:
        if pdu == "submit_sm_resp":  # a RawPdu: header and the undecoded body
            return obj.body.decode("latin-1")
        if pdu == "deliver_sm":
            rmid = next(t for t in obj.tlvs if t.tag == smpp34.TLV_RECEIPTED_MESSAGE_ID)
            return rmid.value.rstrip(b"\0").decode("latin-1") + obj.short_message.decode("latin-1")
        return obj.destination_addr + obj.short_message.decode("latin-1")

    return Impl(
        "smpp34", _version("smpp34"), None, exprs, ns, {"framer": FRAMER_COUNT}, probe,
        marks={"submit_sm_resp.decode": "*"},
    )


def smpplib_impl() -> Impl:
    try:
        from smpplib.smpp import make_pdu, parse_pdu
    except ImportError as exc:
        return Impl("smpplib", unavailable=f"not installed ({exc})")

    class Client:
        """What smpplib's PDUs ask of their client: the sequence number source."""

        sequence = SEQ

        def next_sequence(self) -> int:
            return self.sequence

    client = Client()

    def split(buf: bytes, parse: Callable = parse_pdu, unpack: Callable = _U32.unpack_from) -> list:
        out = []
        p, n = 0, len(buf)
        while n - p >= 16:
            e = p + unpack(buf, p)[0]
            if e > n:
                break
            out.append(parse(buf[p:e], client=client))
            p = e
        return out

    ns = {
        "make_pdu": make_pdu, "parse_pdu": parse_pdu, "C": client, "split": split, "STREAM": STREAM,
        "TEXT": TEXT, "RECEIPT": RECEIPT, "MESSAGE_ID": MESSAGE_ID,
        **{f"W_{k}": v for k, v in WIRE.items()},
    }
    build = {
        "submit_sm": (
            "make_pdu('submit_sm', client=C, sequence=7, source_addr_ton=1, source_addr_npi=1,"
            " source_addr='447700900001', dest_addr_ton=1, dest_addr_npi=1, destination_addr='447700900123',"
            " registered_delivery=1, short_message=TEXT)"
        ),
        "submit_sm_resp": "make_pdu('submit_sm_resp', client=C, sequence=7, message_id=MESSAGE_ID)",
        "deliver_sm": (
            "make_pdu('deliver_sm', client=C, sequence=7, source_addr_ton=1, source_addr_npi=1,"
            " source_addr='447700900123', dest_addr_ton=1, dest_addr_npi=1, destination_addr='447700900001',"
            " esm_class=4, short_message=RECEIPT, receipted_message_id=MESSAGE_ID, message_state=2)"
        ),
    }
    exprs = {"framer": "split(STREAM)"}
    for pdu, b in build.items():
        exprs[f"{pdu}.encode"] = f"{b}.generate()"
        exprs[f"{pdu}.decode"] = f"parse_pdu(W_{pdu}, client=C)"
        exprs[f"{pdu}.pair"] = f"parse_pdu({b}.generate(), client=C)"

    def probe(pdu: str, obj: Any) -> str:
        if pdu == "submit_sm_resp":
            return obj.message_id.decode("latin-1")
        if pdu == "deliver_sm":
            return obj.receipted_message_id.decode("latin-1") + obj.short_message.decode("latin-1")
        return obj.destination_addr.decode("latin-1") + obj.short_message.decode("latin-1")

    return Impl("smpplib", _version("smpplib"), None, exprs, ns, {"framer": FRAMER_COUNT}, probe)


def aiosmpplib_impl() -> Impl:
    try:
        from aiosmpplib.protocol import MESSAGE_TYPE_MAP, DeliverSm as ADeliverSm, SmppMessage
        from aiosmpplib.protocol import SubmitSm as ASubmitSm, SubmitSmResp as ASubmitSmResp
        from aiosmpplib.state import MESSAGE_STATE, NPI, RECEIPTED_MESSAGE_ID, TON, OptionalParam, PhoneNumber
    except ImportError as exc:
        return Impl("aiosmpplib", unavailable=f"not installed ({exc})")

    parse_header = SmppMessage.parse_header

    # What aiosmpplib's ESME does with a PDU it has read (esme.py): parse the header,
    # pick the class by command, from_pdu with the ESME's default encoding.
    def adecode(pdu: bytes, types: dict = MESSAGE_TYPE_MAP) -> Any:
        header = parse_header(pdu)
        return types[header.smpp_command].from_pdu(pdu, header, "gsm0338", None)

    def split(buf: bytes, dec: Callable = adecode, unpack: Callable = _U32.unpack_from) -> list:
        out = []
        p, n = 0, len(buf)
        while n - p >= 16:
            e = p + unpack(buf, p)[0]
            if e > n:
                break
            out.append(dec(buf[p:e]))
            p = e
        return out

    ns = {
        "SubmitSm": ASubmitSm, "SubmitSmResp": ASubmitSmResp, "DeliverSm": ADeliverSm,
        "PhoneNumber": PhoneNumber, "INTL": TON.INTERNATIONAL, "ISDN": NPI.ISDN,
        "OptionalParam": OptionalParam, "RMID": RECEIPTED_MESSAGE_ID, "MSTATE": MESSAGE_STATE,
        "adecode": adecode, "split": split, "STREAM": STREAM,
        # aiosmpplib's PDUs carry the text as str; it GSM-encodes on encode.
        "TEXT": TEXT.decode("ascii"), "RECEIPT": RECEIPT.decode("ascii"), "MESSAGE_ID": MESSAGE_ID,
        **{f"W_{k}": v for k, v in WIRE.items()},
    }
    build = {
        "submit_sm": (
            "SubmitSm(short_message=TEXT, source=PhoneNumber('447700900001', INTL, ISDN),"
            " destination=PhoneNumber('447700900123', INTL, ISDN), registered_delivery=1, sequence_num=7)"
        ),
        "submit_sm_resp": "SubmitSmResp(sequence_num=7, message_id=MESSAGE_ID)",
        "deliver_sm": (
            "DeliverSm(short_message=RECEIPT, source=PhoneNumber('447700900123', INTL, ISDN),"
            " destination=PhoneNumber('447700900001', INTL, ISDN), esm_class=4, registered_delivery=0,"
            " sequence_num=7, optional_params=[OptionalParam(RMID, MESSAGE_ID), OptionalParam(MSTATE, 2)])"
        ),
    }
    exprs = {"framer": "split(STREAM)"}
    for pdu, b in build.items():
        exprs[f"{pdu}.encode"] = f"{b}.pdu()"
        exprs[f"{pdu}.decode"] = f"adecode(W_{pdu})"
        exprs[f"{pdu}.pair"] = f"adecode({b}.pdu())"

    def probe(pdu: str, obj: Any) -> str:
        if pdu == "submit_sm_resp":
            return obj.message_id
        if pdu == "deliver_sm":
            rmid = next(p for p in obj.optional_params if p.tag == RECEIPTED_MESSAGE_ID)
            return rmid.value + obj.short_message
        return obj.destination.number + obj.short_message

    return Impl("aiosmpplib", _version("aiosmpplib"), None, exprs, ns, {"framer": FRAMER_COUNT}, probe)


# --- timing --------------------------------------------------------------------------

_TEMPLATE = """
def inner(_it, _timer):
    _t0 = _timer()
    for _ in _it:
        {expr}
    return _timer() - _t0
"""


class PyCase:
    """One (implementation, operation): a loop compiled around the expression."""

    def __init__(self, expr: str, ns: dict[str, Any], per_eval: int) -> None:
        local = dict(ns)
        exec(compile(_TEMPLATE.format(expr=expr), f"<bench {expr[:40]}>", "exec"), local)  # noqa: S102
        self.inner = local["inner"]
        self.per_eval = per_eval
        self.n = 0

    def time(self, n: int) -> float:
        return self.inner(itertools.repeat(None, n), time.perf_counter)

    def calibrate(self, seconds: float) -> None:
        """Find the iterations for ~``seconds`` (this is the warm-up too)."""
        floor = min(0.05, seconds / 5)
        n = 1
        t = self.time(n)
        while t < floor:
            n *= min(10, max(2, int(floor / t) + 1)) if t > 0 else 10
            t = self.time(n)
        self.n = max(1, round(n * seconds / t))

    def measure(self, seconds: float) -> float:
        if not self.n:
            self.calibrate(seconds)
        return self.n * self.per_eval / self.time(self.n)


class NodePeer:
    """node-smpp, timed by benchmarks/peers/node_codec.js in a child that answers requests."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}
        self.unavailable: str | None = None
        node = shutil.which("node")
        if node is None:
            self.unavailable = "node is not installed"
            return
        if not (NODE_MODULES / "smpp").is_dir():
            self.unavailable = f"node-smpp is not installed (npm install in {NODE_MODULES.parent})"
            return
        env = dict(os.environ)
        env["NODE_PATH"] = os.pathsep.join(p for p in (str(NODE_MODULES), env.get("NODE_PATH", "")) if p)
        try:
            self.proc = subprocess.Popen(
                [node, str(NODE_SCRIPT), "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT),
            )
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(self.proc.stderr.read().strip() or "node exited")
            self.info = json.loads(line)
        except Exception as exc:  # node-smpp broken or missing: report, do not fail
            self.unavailable = f"node_codec.js did not start: {exc}"
            self.close()

    def measure(self, op: str, seconds: float) -> float:
        assert self.proc is not None
        self.proc.stdin.write(json.dumps({"op": op, "seconds": seconds}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"node_codec.js died: {self.proc.stderr.read().strip()}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"node_codec.js: {reply['error']}")
        return reply["n"] * reply["ops"] / reply["elapsed"]

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except Exception:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


# --- checks --------------------------------------------------------------------------

_EXPECT = {
    "submit_sm": DESTINATION + TEXT.decode("latin-1"),
    "submit_sm_resp": MESSAGE_ID,
    "deliver_sm": MESSAGE_ID + RECEIPT.decode("latin-1"),
}


def check_python(impl: Impl) -> str | None:
    """None if every expression of ``impl`` does what it says; else what is wrong."""
    try:
        for key, expr in impl.exprs.items():
            out = eval(expr, dict(impl.ns))  # noqa: S307 - our own expressions
            if key == "framer":
                if len(out) != FRAMER_COUNT or impl.probe("submit_sm", out[-1]).find(_EXPECT["submit_sm"]) < 0:
                    return f"{key}: framed {len(out)} PDUs, not {FRAMER_COUNT} submit_sm"
                continue
            pdu, op = key.split(".")
            if op == "encode":
                if decode(out) != REFERENCE[pdu]:
                    return f"{key}: bytes decode to {decode(out)!r}, not {REFERENCE[pdu]!r}"
            elif _EXPECT[pdu] not in impl.probe(pdu, out):
                return f"{key}: decoded {out!r} lacks {_EXPECT[pdu]!r}"
    except Exception as exc:
        return f"{key}: {type(exc).__name__}: {exc}"
    return None


def check_node(node: NodePeer) -> str | None:
    for pdu, hexed in node.info.get("wire", {}).items():
        got = decode(bytes.fromhex(hexed))
        if got != REFERENCE[pdu]:
            return f"{pdu}.encode: bytes decode to {got!r}, not {REFERENCE[pdu]!r}"
    if set(node.info.get("wire", {})) != set(REFERENCE):
        return "node_codec.js did not report its encodings"
    return None


# --- running ---------------------------------------------------------------------------


def pin(cpu: int | None) -> tuple[set[int] | None, int | None]:
    """Pin this process to one CPU; returns (previous affinity, the CPU) to restore later."""
    if cpu is None or cpu < 0 or not hasattr(os, "sched_setaffinity"):
        return None, None
    before = os.sched_getaffinity(0)
    if cpu not in before:
        raise SystemExit(f"--cpu {cpu}: not one of the allowed CPUs {sorted(before)}")
    os.sched_setaffinity(0, {cpu})
    return before, cpu


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.codec",
        description="SMPP codec ops/s: smppcore vs smpp34, smpplib, aiosmpplib, node-smpp.",
    )
    ap.add_argument("--quick", action="store_true", help="short smoke run (CI): 0.02 s x 3 per figure")
    ap.add_argument("--seconds", type=float, help="seconds per measurement (default 0.5; --quick 0.02)")
    ap.add_argument("--repeat", type=int, help="measurements per figure, median reported (default 5; --quick 3)")
    ap.add_argument(
        "--peers", default="all",
        help="comma-separated peers to compare with: smpp34, smpplib, aiosmpplib, node-smpp (or node); "
        "'all' (default) or 'none'",
    )
    ap.add_argument("--cpu", type=int, help="CPU to pin to (default: the highest allowed; -1: do not pin)")
    ap.add_argument("--json", metavar="PATH", help="also write every figure as JSON to PATH")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)
    args.seconds = args.seconds or (0.02 if args.quick else 0.5)
    args.repeat = args.repeat or (3 if args.quick else 5)
    want = args.peers.strip().lower()
    if want in ("all", ""):
        args.peer_list = list(PEERS)
    elif want == "none":
        args.peer_list = []
    else:
        names = [("node-smpp" if p.strip() == "node" else p.strip()) for p in want.split(",") if p.strip()]
        bad = [p for p in names if p not in PEERS]
        if bad:
            ap.error(f"unknown peer(s) {bad}; choose from {PEERS}")
        args.peer_list = [p for p in PEERS if p in names]
    if args.cpu is None and hasattr(os, "sched_getaffinity"):
        args.cpu = max(os.sched_getaffinity(0))
    return args


def fmt_rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:,.0f}"


def fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    def line(cells: list[str]) -> str:
        return " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def run(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    started: list[NodePeer] = []
    try:
        return _run(args, log, started)
    finally:
        for node in started:
            node.close()


def _run(args: argparse.Namespace, log: Callable[[str], None], started: list[NodePeer]) -> dict[str, Any]:
    impls: list[Impl] = [ours()]
    makers = {"smpp34": smpp34_impl, "smpplib": smpplib_impl, "aiosmpplib": aiosmpplib_impl}
    node: NodePeer | None = None
    status: dict[str, str | None] = {}
    versions: dict[str, str | None] = {"ours": impls[0].version}
    for name in args.peer_list:
        if name == "node-smpp":
            node = NodePeer()
            started.append(node)
            if node.unavailable is None:
                problem = check_node(node)
                if problem:
                    node.unavailable = f"check failed: {problem}"
                    node.close()
            status[name] = node.unavailable
            versions[name] = node.info.get("smpp")
            if node.unavailable:
                node = None
            continue
        impl = makers[name]()
        if impl.unavailable is None:
            problem = check_python(impl)
            if problem:
                impl.unavailable = f"check failed: {problem}"
        status[name] = impl.unavailable
        versions[name] = impl.version
        if impl.unavailable is None:
            impls.append(impl)
    problem = check_python(impls[0])
    if problem:
        raise RuntimeError(f"smppcore fails its own benchmark check: {problem}")
    for name, why in status.items():
        if why:
            log(f"{name}: n/a ({why})")

    cases: dict[tuple[str, str], Callable[[float], float]] = {}
    for impl in impls:
        for key in OP_KEYS:
            if key in impl.exprs:
                case = PyCase(impl.exprs[key], impl.ns, impl.per_eval.get(key, 1))
                cases[(impl.name, key)] = case.measure
    names = [impl.name for impl in impls]
    extra_keys: list[str] = []
    if node is not None:
        names.append("node-smpp")
        node_ops = set(node.info.get("ops", []))
        for key in OP_KEYS:
            if key in node_ops:
                cases[("node-smpp", key)] = (lambda k: lambda s: node.measure(k, s))(key)
        extra_keys = [k for k in NODE_EXTRA_OPS.values() if k in node_ops]
        for key in extra_keys:
            cases[("node-smpp", key)] = (lambda k: lambda s: node.measure(k, s))(key)

    runs: dict[str, dict[str, list[float]]] = {k: {} for k in OP_KEYS + extra_keys}
    t_start = time.perf_counter()
    log(f"calibrating {len(cases)} measurements ...")
    for measure in cases.values():
        measure(args.seconds)  # calibration + warm-up; not recorded
    for rep in range(args.repeat):
        log(f"run {rep + 1}/{args.repeat} ...")
        for key in OP_KEYS:
            order = names[rep % len(names):] + names[: rep % len(names)]
            todo = [(name, key) for name in order]
            if NODE_EXTRA_OPS.get(key) in extra_keys:
                todo.append(("node-smpp", NODE_EXTRA_OPS[key]))
            for name, k in todo:
                measure = cases.get((name, k))
                if measure is not None:
                    runs[k].setdefault(name, []).append(measure(args.seconds))
    elapsed = time.perf_counter() - t_start

    medians = {key: {name: statistics.median(v) for name, v in per.items()} for key, per in runs.items()}
    marks = {impl.name: impl.marks for impl in impls}
    return {
        "columns": ["ours", *args.peer_list],
        "status": status,
        "versions": versions,
        "runs": runs,
        "median": medians,
        "marks": marks,
        "elapsed_s": elapsed,
    }


def report(args: argparse.Namespace, res: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    cols = res["columns"]
    peers = cols[1:]
    med = res["median"]
    marks = res["marks"]

    def rate(name: str, key: str) -> float | None:
        return med.get(key, {}).get(name)

    def ratio(key: str, peer: str, peer_key: str | None = None) -> float | None:
        """Median of the per-run ratios: each run's two figures were taken side by side."""
        a = res["runs"].get(key, {}).get("ours")
        b = res["runs"].get(peer_key or key, {}).get(peer)
        if not a or not b:
            return None
        return statistics.median(x / y for x, y in zip(a, b))

    headers = ["operation", *cols, *(f"ours/{p}" for p in peers)]
    rows = []
    for key, label in OPS:
        row = [label]
        for name in cols:
            row.append(fmt_rate(rate(name, key)) + marks.get(name, {}).get(key, ""))
        for p in peers:
            row.append(fmt_ratio(ratio(key, p)) + marks.get(p, {}).get(key, ""))
        rows.append(row)
    out = [render_table(headers, rows)]

    pairs = rate("ours", "submit_sm.pair")
    vs_node = ratio("submit_sm.pair", "node-smpp")
    vs_s34 = ratio("submit_sm.pair", "smpp34")

    def verdict(value: float | None, target: float) -> str:
        return "n/a" if value is None else ("MET" if value >= target else "MISSED")

    targets = {
        "ours_submit_sm_pairs_per_s": {"value": pairs, "target": TARGET_PAIRS, "verdict": verdict(pairs, TARGET_PAIRS)},
        "ratio_vs_node_smpp": {"value": vs_node, "target": TARGET_VS_NODE, "verdict": verdict(vs_node, TARGET_VS_NODE)},
        "ratio_vs_smpp34": {"value": vs_s34, "target": TARGET_VS_SMPP34, "verdict": verdict(vs_s34, TARGET_VS_SMPP34)},
    }
    out.append("")
    out.append(
        f"targets: ours submit_sm encode+decode {fmt_rate(pairs)} pairs/s (>= {TARGET_PAIRS:,}: "
        f"{targets['ours_submit_sm_pairs_per_s']['verdict']}); "
        f"vs node-smpp {fmt_ratio(vs_node)} (>= {TARGET_VS_NODE:g}x: {targets['ratio_vs_node_smpp']['verdict']}); "
        f"vs smpp34 {fmt_ratio(vs_s34)} (>= {TARGET_VS_SMPP34:g}x: {targets['ratio_vs_smpp34']['verdict']})"
    )

    notes = [
        f"ops/s, median of {args.repeat} runs of ~{args.seconds:g} s each, implementations interleaved"
        + (f", pinned to CPU {args.cpu}" if args.cpu is not None and args.cpu >= 0 else "")
        + f"; {res['elapsed_s']:.0f} s in all.",
        "encode = build the PDU object + serialise; decode = bytes -> PDU object; encode+decode per pair.",
    ]
    if "smpp34" in peers and res["status"].get("smpp34") is None:
        notes.append(
            "* smpp34 has no submit_sm_resp type: its decode gives a RawPdu (header, body left undecoded);"
            " it cannot encode one."
        )
    if "aiosmpplib" in peers and res["status"].get("aiosmpplib") is None:
        notes.append("aiosmpplib keeps short_message as str: its encode/decode include GSM 03.38 text coding.")
    if "node-smpp" in peers and res["status"].get("node-smpp") is None:
        node_med = {k: med.get(k, {}).get("node-smpp") for k in NODE_EXTRA_OPS.values()}
        stock_pair = node_med.get("submit_sm.pair_filtered")
        notes.append(
            "node-smpp decodes with its presentation filters off (raw wire view, as ours); with its default"
            f" filters (text decoding, dates) decode is submit_sm {fmt_rate(node_med.get('submit_sm.decode_filtered'))}/s,"
            f" deliver_sm {fmt_rate(node_med.get('deliver_sm.decode_filtered'))}/s, and submit_sm encode+decode"
            f" {fmt_rate(stock_pair)} pairs/s (ours/node-smpp {fmt_ratio(ratio('submit_sm.pair', 'node-smpp', 'submit_sm.pair_filtered'))})."
        )
    if any(res["status"].get(p) is None for p in peers):
        notes.append("framer: peers have no buffer framer; theirs is a command_length split loop around their decode.")
    for name, why in res["status"].items():
        if why:
            notes.append(f"{name}: n/a: {why}")
    out.append("")
    out.extend(notes)
    return "\n".join(out), targets


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    log = (lambda msg: None) if args.quiet else (lambda msg: print(f"codec bench: {msg}", file=sys.stderr, flush=True))
    before, cpu = pin(args.cpu)
    try:
        res = run(args, log)
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)
    table, targets = report(args, res)
    vers = ", ".join(f"{k} {v}" for k, v in res["versions"].items() if v)
    print(f"SMPP codec benchmark -- Python {platform.python_version()} ({platform.python_implementation()}), {vers}")
    print()
    print(table)
    res["targets"] = targets
    res["table"] = table
    if args.json:
        doc = {
            "benchmark": "codec",
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu": cpu,
            "seconds": args.seconds,
            "repeat": args.repeat,
            "quick": args.quick,
            "operations": dict(OPS),
            **{k: res[k] for k in ("columns", "status", "versions", "median", "runs", "targets", "elapsed_s")},
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
