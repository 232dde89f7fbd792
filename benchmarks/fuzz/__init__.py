"""Coverage-guided fuzzing of smppcore: the codec and a whole server connection.

Two targets, each a plain function of one ``bytes`` input that raises
:class:`~smpphub.bench.fuzz.invariants.InvariantBroken` when smppcore breaks a
promise (and lets any unexpected exception through, which is the crash):

- :func:`~smpphub.bench.fuzz.codec_target.check_codec`: the bytes through a
  :class:`smppcore.Framer` whole and in chunks (the cuts derived from the bytes
  themselves, so an input replays exactly), every item a PDU or a PduError with a
  real command_status, every PDU surviving encode/decode;
- :func:`~smpphub.bench.fuzz.server_target.check_server`: the bytes through an
  :class:`smppcore.SmscConnection` on a fake transport, so only whole valid PDUs (or
  a close) come out, no more answers than requests, and bounded buffers.

The functions are engine-free: atheris drives them (``python -m smpphub.bench.fuzz
--target codec --seconds 60``), the tests replay the corpus and the regressions
through them, and a crash found is kept as a bytes literal in
tests/test_fuzz_regressions.py. The seed corpus (``corpus/``) holds valid PDUs of
every command id and a few whole sessions; ``python -m smpphub.bench.fuzz.corpus``
rebuilds it.
"""
