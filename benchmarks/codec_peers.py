"""What the codec benchmark measures: the workload and one adapter per implementation.

:mod:`smpphub.bench.codec` times and tabulates; this module says *what* it times. It
holds the workload (a submit_sm, its submit_sm_resp and a deliver_sm receipt, and a
buffer of back-to-back submit_sm for the framers), smppcore's adapter and each peer's
(smpp34, smpplib, aiosmpplib: an expression per operation, compiled into a timing
loop by the orchestrator; node-smpp: a ``node benchmarks/peers/node_codec.js --serve``
child that times itself), and the checks that every adapter's encoding decodes to
smppcore's and every decoding finds the workload's values, so a peer that silently
does something else is reported rather than timed.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

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


def _timed(build: dict[str, str], encode: str, decode: str, **extra: str) -> dict[str, str]:
    """The expressions timed for one library: ``encode`` and ``decode`` are templates
    (``{b}``: the expression building a PDU; ``{w}``: the name of its wire bytes), the
    pair is a decode of an encode; ``extra`` adds or overrides (the framer, ...)."""
    exprs = {}
    for pdu, b in build.items():
        enc = encode.format(b=b)
        exprs[f"{pdu}.encode"] = enc
        exprs[f"{pdu}.decode"] = decode.format(w=f"W_{pdu}")
        exprs[f"{pdu}.pair"] = decode.format(w=enc)
    exprs.update({k.replace("__", "."): v for k, v in extra.items()})
    return exprs


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
    exprs = _timed(build, "encode({b})", "decode({w})", framer="Framer().feed(STREAM)")

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
    exprs = _timed(build, "{b}.encode()", "decode({w})", framer="split(STREAM)",
                   submit_sm_resp__decode="decode(W_submit_sm_resp)")

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
    exprs = _timed(build, "{b}.generate()", "parse_pdu({w}, client=C)", framer="split(STREAM)")

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
    exprs = _timed(build, "{b}.pdu()", "adecode({w})", framer="split(STREAM)")

    def probe(pdu: str, obj: Any) -> str:
        if pdu == "submit_sm_resp":
            return obj.message_id
        if pdu == "deliver_sm":
            rmid = next(p for p in obj.optional_params if p.tag == RECEIPTED_MESSAGE_ID)
            return rmid.value + obj.short_message
        return obj.destination.number + obj.short_message

    return Impl("aiosmpplib", _version("aiosmpplib"), None, exprs, ns, {"framer": FRAMER_COUNT}, probe)


# --- node-smpp ---------------------------------------------------------------------


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
