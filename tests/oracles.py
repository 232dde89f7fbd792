"""Independent SMPP implementations, wrapped for the tests.

Nothing here uses smppcore: these are the oracles our codec is checked against.

- node-smpp (npm ``smpp``), through ``tests/interop/node/golden.js``:
  :func:`node_encode` / :func:`node_decode`.
- smpplib (PyPI): :func:`smpplib_encode` / :func:`smpplib_decode`.
- Wireshark's SMPP dissector, through ``tshark``: :func:`tshark_decode` over a pcap
  written by :func:`write_pcap`.

Bytes cross the JSON boundary to node as ``{"$hex": "..."}``; :func:`hx` builds one.

An oracle that is not installed makes its tests skip on a developer machine, but
fail under CI (``CI`` set in the environment), so a broken CI image cannot turn
interop tests into silent skips. ``bash tests/run.sh`` installs all of them.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
NODE_DIR = TESTS / "interop" / "node"
GOLDEN_JS = NODE_DIR / "golden.js"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(available: bool, what: str) -> None:
    """Skip (locally) or fail (in CI) when an oracle is missing."""
    if available:
        return
    msg = f"{what} is not installed; run `bash tests/run.sh` to install the interop oracles"
    if in_ci():
        pytest.fail(f"CI: {msg}", pytrace=False)
    pytest.skip(msg)


# --- node-smpp ------------------------------------------------------------------


def hx(data: bytes) -> dict[str, str]:
    """How bytes travel to golden.js: ``{"$hex": "..."}``."""
    return {"$hex": bytes(data).hex()}


def node_value(value: Any) -> Any:
    """Turn golden.js JSON into Python values: ``{"$hex": ...}`` becomes bytes."""
    if isinstance(value, dict):
        if set(value) == {"$hex"}:
            return bytes.fromhex(value["$hex"])
        return {k: node_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [node_value(v) for v in value]
    return value


def node_available() -> bool:
    return shutil.which("node") is not None and (NODE_DIR / "node_modules" / "smpp").is_dir()


def _run_golden(mode: str, payload: Any) -> Any:
    require(node_available(), "node-smpp (node + tests/interop/node/node_modules)")
    proc = subprocess.run(
        ["node", str(GOLDEN_JS), mode],
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"golden.js {mode} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return json.loads(proc.stdout)


def node_encode(specs: list[dict]) -> list[bytes]:
    """Encode PDU specs with node-smpp. See golden.js for the spec format."""
    return [bytes.fromhex(h) for h in _run_golden("encode", specs)]


def node_decode(datas: list[bytes]) -> list[dict]:
    """node-smpp's raw parse of each PDU: C-strings as str, octet strings as bytes.

    Keys are node-smpp's names (``command``, ``command_id``, ``sequence_number``,
    the body fields, TLV names like ``receipted_message_id``); an unknown TLV shows
    under its decimal tag; a PDU node-smpp cannot parse gives ``{"$error": ...}``.
    """
    return [node_value(d) for d in _run_golden("decode", [bytes(d).hex() for d in datas])]


# --- smpplib ---------------------------------------------------------------------


class _SmpplibClient:
    """What smpplib's PDU classes want from a client: a sequence source."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


def smpplib_available() -> bool:
    try:
        import smpplib.smpp  # noqa: F401
    except ImportError:
        return False
    return True


def smpplib_encode(command: str, sequence: int, status: int = 0, **fields: Any) -> bytes:
    """Build ``command`` with smpplib's own PDU class and return ``.generate()``.

    smpplib's conventions: C-strings as ``str``, short_message/octet TLVs as ``bytes``;
    a field left out is emitted as its empty/zero value; optional parameters are
    emitted in smpplib's ``params_order``, whatever order they are passed in.
    """
    require(smpplib_available(), "smpplib")
    import smpplib.smpp

    pdu = smpplib.smpp.make_pdu(command, client=_SmpplibClient(), sequence=sequence, status=status, **fields)
    unknown = set(fields) - set(pdu.params)
    if unknown:  # smpplib would silently drop them
        raise ValueError(f"smpplib's {command} has no field(s) {sorted(unknown)}")
    # Command.__init__ only takes `sequence` from kwargs when nothing else answers
    # the attribute, and the client always does; set it explicitly.
    pdu.sequence = sequence
    pdu.status = status
    return pdu.generate()


def smpplib_decode(data: bytes) -> dict[str, Any]:
    """smpplib's parse of one PDU: header values plus every field it set.

    C-string fields come back as ``str`` (latin-1), octet strings as ``bytes``,
    integers as ``int``; fields smpplib did not find are left out.
    """
    require(smpplib_available(), "smpplib")
    import smpplib.smpp
    from smpplib.ptypes import ostr

    pdu = smpplib.smpp.parse_pdu(bytes(data), client=_SmpplibClient(), allow_unknown_opt_params=True)
    out: dict[str, Any] = {
        "command": pdu.command,
        "command_status": pdu.status,
        "sequence_number": pdu.sequence,
        "command_length": pdu.length,
    }
    for name in pdu.params_order:
        value = getattr(pdu, name, None)
        if value is None:
            continue
        if pdu.params[name].type is str and isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("latin-1")
        elif pdu.params[name].type is ostr and isinstance(value, bytearray):
            value = bytes(value)
        out[name] = value
    return out


# --- tshark ---------------------------------------------------------------------

_PCAP_GLOBAL = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")
_LINKTYPE_ETHERNET = 1
_CLIENT_MAC = bytes.fromhex("020000000001")
_SERVER_MAC = bytes.fromhex("020000000002")
_LOCALHOST = bytes((127, 0, 0, 1))


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(src_port: int, dst_port: int, seq: int, ack: int, flags: int, payload: bytes, ip_id: int) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", src_port, dst_port, seq, ack, 5 << 4, flags, 65535, 0, 0)
    pseudo = _LOCALHOST + _LOCALHOST + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    csum = _checksum(pseudo + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ip_id & 0xFFFF, 0x4000, 64, 6, 0, _LOCALHOST, _LOCALHOST)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    src_mac, dst_mac = (_CLIENT_MAC, _SERVER_MAC) if dst_port != 40000 else (_SERVER_MAC, _CLIENT_MAC)
    return dst_mac + src_mac + b"\x08\x00" + ip + tcp + payload


_SYN, _ACK, _PSH = 0x02, 0x10, 0x08


def write_pcap(path: str | os.PathLike, pdus: list[bytes], port: int = 2775, one_segment: bool = False) -> None:
    """Write a pcap of one TCP connection 127.0.0.1:40000 <-> 127.0.0.1:``port``.

    A SYN / SYN-ACK / ACK handshake comes first. Requests go client -> server and
    responses (command_id bit 31 set) server -> client, one PDU per segment, with
    consistent sequence/ack numbers and real checksums. ``one_segment=True`` puts
    all PDUs into a single client -> server segment instead (many PDUs per segment).
    """
    cport = 40000
    c_isn, s_isn = 1000, 5000
    frames = [
        _frame(cport, port, c_isn, 0, _SYN, b"", 1),
        _frame(port, cport, s_isn, c_isn + 1, _SYN | _ACK, b"", 2),
        _frame(cport, port, c_isn + 1, s_isn + 1, _ACK, b"", 3),
    ]
    cseq, sseq = c_isn + 1, s_isn + 1
    ip_id = 4
    if one_segment:
        payload = b"".join(pdus)
        frames.append(_frame(cport, port, cseq, sseq, _PSH | _ACK, payload, ip_id))
    else:
        for pdu in pdus:
            is_resp = len(pdu) >= 8 and (struct.unpack_from("!I", pdu, 4)[0] & 0x80000000)
            if is_resp:
                frames.append(_frame(port, cport, sseq, cseq, _PSH | _ACK, pdu, ip_id))
                sseq += len(pdu)
            else:
                frames.append(_frame(cport, port, cseq, sseq, _PSH | _ACK, pdu, ip_id))
                cseq += len(pdu)
            ip_id += 1
    with open(path, "wb") as f:
        f.write(_PCAP_GLOBAL.pack(0xA1B2C3D4, 2, 4, 0, 0, 262144, _LINKTYPE_ETHERNET))
        for i, frame in enumerate(frames):
            f.write(_PCAP_RECORD.pack(1_700_000_000, i * 1000, len(frame), len(frame)))
            f.write(frame)


def tshark_available() -> bool:
    return shutil.which("tshark") is not None


class TsharkResult(list):
    """The SMPP PDUs tshark found, in order, each a dict field name -> value.

    Values are tshark's strings (``"0x00000004"``, ``"7"``, ``"447700900123"``); a
    field that occurs several times in one PDU (e.g. submit_multi's dest_addr) has a
    list. ``malformed`` is True when tshark flagged any frame as malformed or raised
    an expert error; ``problems`` says which and where.
    """

    malformed: bool = False
    problems: list[str]


def _collect(node: Any, out: dict[str, Any], problems: list[str], frame_no: str) -> None:
    if isinstance(node, list):
        for item in node:
            _collect(item, out, problems, frame_no)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "_ws.malformed" or key.startswith("_ws.malformed"):
            problems.append(f"frame {frame_no}: malformed: {value!r}")
        if key == "_ws.expert":
            for exp in value if isinstance(value, list) else [value]:
                if isinstance(exp, dict) and exp.get("_ws.expert.severity") in ("8388608", "error"):
                    problems.append(f"frame {frame_no}: expert error: {exp.get('_ws.expert.message')}")
        if isinstance(value, (dict, list)) and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            _collect(value, out, problems, frame_no)
            continue
        if key.startswith("smpp."):
            if key in out:
                prev = out[key]
                out[key] = (prev if isinstance(prev, list) else [prev]) + (value if isinstance(value, list) else [value])
            else:
                out[key] = value


def tshark_decode(pdus: list[bytes], port: int = 2775, one_segment: bool = False) -> TsharkResult:
    """Run Wireshark's SMPP dissector over a capture of ``pdus``.

    Returns a :class:`TsharkResult`: one dict per SMPP PDU tshark dissected, with
    the ``smpp.*`` fields (``smpp.command_id``, ``smpp.sequence_number``,
    ``smpp.source_addr``, ``smpp.sm_length``, ``smpp.message_id``, TLVs such as
    ``smpp.receipted_message_id``...), plus ``.malformed``/``.problems``.
    """
    require(tshark_available(), "tshark")
    with tempfile.TemporaryDirectory(prefix="smpphub-tshark-") as tmp:
        pcap = Path(tmp) / "capture.pcap"
        write_pcap(pcap, pdus, port=port, one_segment=one_segment)
        return tshark_read(pcap, port)


def tshark_read(pcap: str | os.PathLike, *ports: int) -> TsharkResult:
    """Run Wireshark's SMPP dissector over an existing pcap file, TCP ``ports`` decoded as
    SMPP (the simulator's ``--pcap`` capture, say); the same result as :func:`tshark_decode`."""
    require(tshark_available(), "tshark")
    decode_as = [arg for port in ports for arg in ("-d", f"tcp.port=={port},smpp")]
    with tempfile.TemporaryDirectory(prefix="smpphub-tshark-") as tmp:
        proc = subprocess.run(
            [
                "tshark", "-n", "-r", str(pcap),
                "-o", "tcp.desegment_tcp_streams:TRUE",
                *decode_as,
                "-T", "json", "--no-duplicate-keys",
            ],
            capture_output=True,
            timeout=60,
            check=False,
            env={**os.environ, "HOME": tmp},  # keep tshark off any user profile
        )
    if proc.returncode != 0:
        raise RuntimeError(f"tshark failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    packets = json.loads(proc.stdout or b"[]")
    result = TsharkResult()
    result.problems = []
    for packet in packets:
        layers = packet["_source"]["layers"]
        frame_no = layers.get("frame", {}).get("frame.number", "?")
        frame_problems: list[str] = []
        for key, value in layers.items():
            if key == "smpp":
                continue
            scratch: dict[str, Any] = {}
            _collect({key: value}, scratch, frame_problems, frame_no)
        smpp = layers.get("smpp")
        if smpp is not None:
            for pdu_layer in smpp if isinstance(smpp, list) else [smpp]:
                fields: dict[str, Any] = {"frame": frame_no}
                _collect(pdu_layer, fields, frame_problems, frame_no)
                result.append(fields)
        result.problems += frame_problems
    result.malformed = bool(result.problems)
    return result
