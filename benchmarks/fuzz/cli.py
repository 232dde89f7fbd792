"""Run one fuzz target under atheris (libFuzzer) for a set time.

::

    python -m smpphub.bench.fuzz --target codec --seconds 300
    python -m smpphub.bench.fuzz --target server --seconds 300 --jobs 1

smppcore is imported under atheris' instrumentation (and so are the codec's
generated decoders and encoders, which are compiled at import time and would
otherwise be invisible to it), so the search is guided by the coverage of smppcore
alone, not of asyncio or the harness. The seed corpus shipped in ``corpus/`` is
read-only: what the run discovers goes to ``--keep DIR``, or to a temporary folder
that a parent process removes afterwards (libFuzzer ends the process it runs in,
so that process cannot clean up after itself), and
a crashing input is written to ``--artifacts DIR`` as ``crash-<sha1>``, to be kept
as a regression test. libFuzzer prints its own progress (``exec/s``, ``cov``) and a
final ``Done N runs in S second(s)``; this command's exit status is libFuzzer's
(0: nothing found).

Bad arguments are one line on stderr and exit status 2; atheris missing is one
line and exit status 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["main", "CORPUS", "TARGETS"]

CORPUS = Path(__file__).resolve().parent / "corpus"
TARGETS = ("codec", "server")
#: Inputs longer than this are not generated: a few PDUs, and a few over the fuzz PDU size limit.
DEFAULT_MAX_LEN = 4096


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"fuzz: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m smpphub.bench.fuzz", description="Fuzz smppcore with atheris for a set time.")
    p.add_argument("--target", required=True, choices=TARGETS, help="codec: Framer and decoder; server: a connection")
    p.add_argument("--seconds", required=True, type=_positive_int, help="how long to run")
    p.add_argument("--corpus", type=Path, default=CORPUS, help="seed folder, read only (default: the shipped one)")
    p.add_argument("--keep", type=Path, help="folder for the inputs the run discovers (default: a temporary one)")
    p.add_argument("--artifacts", type=Path, default=Path("."), help="folder for crashing inputs (default: .)")
    p.add_argument("--max-len", type=_positive_int, default=DEFAULT_MAX_LEN, help="longest input, octets")
    p.add_argument("--seed", type=int, default=0, help="libFuzzer's random seed (0: from the clock)")
    return p


def _check_folder(path: Path, what: str, *, create: bool) -> str | None:
    """One line naming the problem with a folder argument, or None."""
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"{what} {path}: cannot create it ({exc.strerror})"
    if not path.is_dir():
        return f"{what} {path}: not a folder"
    return None


def _instrumented_target(name: str) -> Callable[[bytes], object]:
    """Import smppcore under atheris' instrumentation and return the target function."""
    import atheris

    if "smppcore" in sys.modules:  # pragma: no cover - only when main() is called in-process
        raise RuntimeError("smppcore was imported before the fuzzer could instrument it")
    with atheris.instrument_imports(include=["smppcore"]):
        import smppcore.codec
        import smppcore.server  # noqa: F401 - the server target's whole stack, instrumented
    for generated in [*smppcore.codec._DECODERS.values(), *smppcore.codec._ENCODERS.values()]:
        atheris.instrument_func(generated)
    if name == "codec":
        from .codec_target import check_codec

        return check_codec
    from .server_target import check_server

    return check_server


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    problems = [
        _check_folder(args.corpus, "--corpus", create=False),
        _check_folder(args.artifacts, "--artifacts", create=True),
        _check_folder(args.keep, "--keep", create=True) if args.keep else None,
    ]
    for problem in problems:
        if problem:
            print(f"fuzz: {problem}", file=sys.stderr)
            return 2
    try:
        import atheris
    except ImportError as exc:
        print(f"fuzz: atheris is not installed ({exc}); pip install atheris", file=sys.stderr)
        return 1
    if args.keep is None:
        return _run_with_scratch(argv if argv is not None else sys.argv[1:])
    target = _instrumented_target(args.target)

    def one_input(data: bytes) -> None:
        target(data)

    print(f"fuzz: target {args.target} for {args.seconds}s, seeds {args.corpus}, new inputs {args.keep}", flush=True)
    libfuzzer_args = [
        sys.argv[0],
        f"-max_total_time={args.seconds}",
        f"-max_len={args.max_len}",
        f"-seed={args.seed}",
        f"-artifact_prefix={args.artifacts.resolve()}/",
        "-print_final_stats=1",
        str(args.keep),
        str(args.corpus),
    ]
    atheris.Setup(libfuzzer_args, one_input)
    atheris.Fuzz()  # exits the process when the time is up or on a crash
    return 0  # pragma: no cover - atheris.Fuzz does not return


def _run_with_scratch(argv: list[str]) -> int:
    """Run this command again in a child with ``--keep`` a temporary folder, removed when it ends."""
    with tempfile.TemporaryDirectory(prefix="smpphub-fuzz-") as scratch:
        try:
            return subprocess.call([sys.executable, "-m", "smpphub.bench.fuzz", *argv, "--keep", scratch])
        except KeyboardInterrupt:
            return 130
