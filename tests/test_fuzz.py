"""The fuzz targets of benchmarks/fuzz: a short atheris run of each, the seed corpus, the command.

- each target runs under atheris for a few seconds (``python -m smpphub.bench.fuzz``,
  as a developer runs it for longer) and finds nothing;
- the seed corpus replays clean through both targets, holds all 27 command ids and
  stays small;
- the server target's output over the corpus is also read by Wireshark's SMPP
  dissector (the second judge the target itself cannot afford per input): no
  malformed PDU, one dissected PDU per PDU written;
- hypothesis draws inputs of its own (random bytes, and valid PDU streams with a few
  octets changed) for both targets, so the targets run in CI without atheris too;
- the command's bad arguments are one line each, exit status 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import oracles
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import pdus

import smppcore
from smppcore import PDU_TYPES
from smpphub.bench.fuzz import cli
from smpphub.bench.fuzz.codec_target import check_codec
from smpphub.bench.fuzz.invariants import InvariantBroken, chunks
from smpphub.bench.fuzz.server_target import check_server

CORPUS = sorted(cli.CORPUS.iterdir())
#: How long each target runs under atheris here: the whole file stays near 15 s.
ATHERIS_SECONDS = 5


def run_fuzz(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smpphub.bench.fuzz", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )


@pytest.mark.parametrize("target, keep", [("codec", True), ("server", False)])
def test_atheris_run_finds_nothing(target: str, keep: bool, tmp_path: Path):
    """Without --keep the inputs found go to a temporary folder that must be gone afterwards
    (conftest reports any smpphub-* folder left in the temp directory)."""
    found = tmp_path / "found"
    args = ["--target", target, "--seconds", str(ATHERIS_SECONDS), "--artifacts", str(tmp_path / "crashes")]
    proc = run_fuzz(*args, *(["--keep", str(found)] if keep else []), cwd=tmp_path)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report[-4000:]
    assert "Done " in proc.stderr, report[-2000:]
    runs = int(proc.stderr.split("Done ", 1)[1].split()[0])
    assert runs > 1000, f"only {runs} inputs in {ATHERIS_SECONDS}s"
    assert not list((tmp_path / "crashes").iterdir())
    if keep:
        assert list(found.iterdir()), "the run kept no input: the seeds did not load or nothing was learnt"


def test_corpus_holds_every_command_id_and_stays_small():
    seen = set()
    for path in CORPUS:
        framer = smppcore.Framer()
        items = framer.feed(path.read_bytes())
        assert items and framer.buffered == 0, path.name
        assert all(isinstance(item, smppcore.Pdu) for item in items), path.name
        seen.update(item.command_id for item in items)
    assert seen == set(PDU_TYPES), f"missing: {[hex(c) for c in set(PDU_TYPES) - seen]}"
    assert 27 <= len(CORPUS) <= 400
    assert sum(p.stat().st_size for p in CORPUS) < 300_000


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_replays_clean_through_the_codec(path: Path):
    data = path.read_bytes()
    items = check_codec(data)
    assert [type(i) for i in items] == [type(i) for i in smppcore.Framer().feed(data)]


def test_corpus_replays_clean_through_the_server_and_wireshark_agrees():
    written: list[bytes] = []
    sessions_bound = requests = unanswerable = 0
    for path in CORPUS:
        data = path.read_bytes()
        run = check_server(data)
        written += run.output
        received = smppcore.Framer().feed(data)
        requests += sum(not p.is_response for p in received)
        # data_sm is answered by a coroutine; an unbind behind it in the same chunk closes the connection first
        if any(p.command_id == smppcore.CommandId.UNBIND for p in received):
            unanswerable += sum(p.command_id == smppcore.CommandId.DATA_SM for p in received)
        sessions_bound += any(raw[4:8] == bytes.fromhex("80000009") and raw[8:12] == b"\0" * 4 for raw in run.output)
    assert sessions_bound >= 3, "the session seeds should bind"
    assert requests - unanswerable <= len(written) <= requests
    result = oracles.tshark_decode(written)
    assert not result.malformed, result.problems[:10]
    assert len(result) == len(written)
    for fields, raw in zip(result, written, strict=True):
        assert int(fields["smpp.command_id"], 16) == int.from_bytes(raw[4:8], "big")
        assert int(fields["smpp.sequence_number"]) == int.from_bytes(raw[12:16], "big")


@st.composite
def mangled_streams(draw: st.DrawFn) -> bytes:
    """Valid PDUs back to back, then a few octets overwritten, cut or repeated."""
    stream = bytearray(b"".join(smppcore.encode(p) for p in draw(st.lists(pdus(), min_size=1, max_size=4))))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(stream) - 1))
        how = draw(st.sampled_from(["set", "cut", "repeat"]))
        if how == "set":
            stream[at] = draw(st.integers(0, 255))
        elif how == "cut":
            del stream[at : at + draw(st.integers(1, 20))]
        else:
            stream[at:at] = stream[at : at + draw(st.integers(1, 40))]
        if not stream:
            break
    return bytes(stream)


HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPOTHESIS
@given(st.one_of(st.binary(max_size=300), mangled_streams()))
def test_codec_target_on_drawn_input(data: bytes):
    items = check_codec(data)
    assert all(isinstance(i, smppcore.Pdu | smppcore.PduError) for i in items)


@HYPOTHESIS
@given(st.one_of(st.binary(max_size=300), mangled_streams()))
def test_server_target_on_drawn_input(data: bytes):
    run = check_server(data)
    assert len(run.output) <= len(run.fed) // 16 + 1


def test_chunks_cover_the_input_and_replay_exactly():
    data = bytes(range(256)) * 3
    cut = chunks(data)
    assert b"".join(cut) == data and len(cut) > 3
    assert chunks(data) == cut


def test_codec_target_catches_a_framer_that_depends_on_the_cut(monkeypatch: pytest.MonkeyPatch):
    """The harness is a real judge: a Framer that loses a PDU completed across two feeds is caught."""
    real_feed = smppcore.Framer.feed

    def forgetful(self: smppcore.Framer, data: bytes) -> list:
        had_part = self.buffered > 0
        items = real_feed(self, data)
        return items[1:] if had_part else items

    monkeypatch.setattr(smppcore.Framer, "feed", forgetful)
    stream = b"".join(smppcore.encode(smppcore.EnquireLink(sequence_number=n)) for n in range(1, 40))
    with pytest.raises(InvariantBroken, match="depend on the chunking"):
        check_codec(stream)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seconds", "5"], "the following arguments are required: --target"),
        (["--target", "codec"], "the following arguments are required: --seconds"),
        (["--target", "http", "--seconds", "5"], "argument --target: invalid choice: 'http'"),
        (["--target", "codec", "--seconds", "0"], "argument --seconds: 0 must be at least 1"),
        (["--target", "codec", "--seconds", "1.5"], "argument --seconds: '1.5' is not a whole number"),
        (["--target", "codec", "--seconds", "5", "--max-len", "-1"], "argument --max-len: -1 must be at least 1"),
        (["--target", "codec", "--seconds", "5", "--corpus", "/nonexistent/seeds"],
         "--corpus /nonexistent/seeds: not a folder"),
        (["--target", "codec", "--seconds", "5", "--artifacts", "/proc/version/x"],
         "--artifacts /proc/version/x: cannot create it"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(args: list[str], message: str, tmp_path: Path):
    proc = run_fuzz(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fuzz: ") and message in lines[0], proc.stderr
