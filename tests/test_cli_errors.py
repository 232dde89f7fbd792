"""Every entry point's bad input and run-time failure is ONE line on stderr, never a traceback.

Each row is argv (+ the text of a config file) -> exit status + a piece of that one line.
Rows that only parse arguments or configuration run ``smpphub.cli.main`` in-process;
the rows that need a server, a closed stdin or dropped privileges run ``python -m
smpphub`` for real, which also proves no traceback reaches a user's terminal.
Placeholders in argv and config text: ``{tmp}`` (a fresh folder), ``{cfg}`` (the config
file written there) and, for run-time rows, the addresses of :class:`Places`.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hubkit import simulator
from tlskit import self_signed

import smppcore
from smpphub import cli

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Row:
    argv: list[str]
    code: int
    says: str  # a piece of the one line on stderr (placeholders allowed)
    config: str | None = None  # written to {cfg}
    stdin: str = ""
    stdin_closed: bool = False

    def __str__(self) -> str:  # the test id
        return " ".join(self.argv)[:90]


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def fill(text: str, places: dict[str, str]) -> str:
    for key, value in places.items():
        text = text.replace("{" + key + "}", value)
    return text


def assert_one_line(row: Row, outcome: Outcome, places: dict[str, str]) -> None:
    assert "Traceback" not in outcome.err, outcome.err
    lines = [line for line in outcome.err.splitlines() if line.strip()]
    assert len(lines) == 1, outcome.err
    assert outcome.code == row.code, outcome.err
    assert fill(row.says, places) in lines[0]
    assert lines[0].startswith("smpphub"), lines[0]


def run_in_process(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                   stdin: str = "", stdin_closed: bool = False) -> Outcome:
    if stdin_closed:
        monkeypatch.setattr(sys, "stdin", None)
    else:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def _close_stdin() -> None:
    os.close(0)


def unprivileged() -> list[str]:
    """A prefix that runs the command without root's power over file permissions (as root: drop
    CAP_DAC_OVERRIDE for it), so a read-only folder is read-only for it."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "running as root: setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE for this test"
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


async def run_subprocess(argv: list[str], *, prefix: list[str] | None = None, stdin_closed: bool = False, timeout: float = 60) -> Outcome:
    proc = await asyncio.create_subprocess_exec(
        *(prefix or []), sys.executable, "-m", "smpphub", *argv, cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=_close_stdin if stdin_closed else None,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Outcome(proc.returncode, out.decode(), err.decode())


def prepare(row: Row, tmp_path: Path, places: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    filled = {"tmp": str(tmp_path), "cfg": str(tmp_path / "smpphub.toml"), **(places or {})}
    if row.config is not None:
        (tmp_path / "smpphub.toml").write_text(fill(row.config, filled))
    return [fill(a, filled) for a in row.argv], filled


# ---- rows ----------------------------------------------------------------------------------


def send(*extra: str, text: str = "x", target: str = "127.0.0.1:2775") -> list[str]:
    return ["send", "--target", target, "--system-id", "me", "--password", "pw", "--to", "447700900123", "--text", text, *extra]


def hub_toml(*, listener: str = 'host = "127.0.0.1"\nport = 0', upstream: str = 'host = "127.0.0.1"\nport = 2776',
             store: str = 'path = "{tmp}/hub.db"', extra: str = "") -> str:
    return (f"[[listeners]]\n{listener}\n"
            f'[[accounts]]\nsystem_id = "acme"\npassword = "pw"\n'
            f'[[upstreams]]\nname = "up"\nsystem_id = "hub"\n{upstream}\n'
            f"{extra}\n[store]\n{store}\n")


CHECK = ["serve", "--config", "{cfg}", "--check"]
SIMULATE = ["simulate", "--config", "{cfg}"]

ARGUMENT_ROWS = [
    # the dispatcher
    Row([], 2, "smpphub: the following arguments are required: COMMAND"),
    Row(["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    Row(["send", "--system-id", "a"], 2, "smpphub send: the following arguments are required: --target"),
    # send: --target
    Row(send(target="nohostport"), 2, "argument --target: expected HOST:PORT, got 'nohostport'"),
    Row(send(target="127.0.0.1"), 2, "argument --target: expected HOST:PORT, got '127.0.0.1'"),
    Row(send(target="127.0.0.1:0"), 2, "argument --target: port must be 1 to 65535, got '127.0.0.1:0'"),
    Row(send(target="127.0.0.1:70000"), 2, "argument --target: port must be 1 to 65535, got '127.0.0.1:70000'"),
    Row(send(target="::1:2775"), 2, "write an IPv6 address as [ADDRESS]:PORT"),
    # send: options that cannot work
    Row(send("--coding", "gsm", text="日本"), 2, "smpphub send: --text: GSM 03.38 cannot carry '日' (U+65E5, character 1); use --coding ucs2"),
    Row(send("--coding", "latin1", text="naïve 日本"), 2, "--text: Latin-1 cannot carry '日' (U+65E5, character 7)"),
    Row(send(text=""), 2, "smpphub send: --text: the message is empty"),
    Row(send(text="x" * 160 * 256), 2, "--text: message needs more than 255 segments"),
    Row(send("--dlr", "--bind", "tx"), 2, "--dlr needs a bind that receives (--bind trx)"),
    Row(send("--timeout", "-1"), 2, "argument --timeout: must be a number of seconds above 0, got '-1'"),
    Row(send("--timeout", "0"), 2, "argument --timeout: must be a number of seconds above 0, got '0'"),
    Row(send("--timeout", "soon"), 2, "argument --timeout: expected a number of seconds, got 'soon'"),
    Row(send("--response-timeout", "0"), 2, "argument --response-timeout: must be a number of seconds above 0"),
    Row(send("--coding", "klingon"), 2, "argument --coding: invalid choice: 'klingon'"),
    Row(send("--insecure"), 2, "--insecure only means something with --tls"),
    Row(send("--system-id", "a-very-long-system-id"), 2, "--system-id: at most 15 characters, got 21"),
    Row(send("--password", "123456789"), 2, "--password: at most 8 characters, got 9"),
    Row(send("--to", " "), 2, "--to: a destination address is needed"),
    Row(send("--to", "1" * 21), 2, "--to: at most 20 characters, got 21"),
    Row(send("--from", "Ω-sender"), 2, "--from: SMPP carries it as Latin-1 text"),
    # serve --check: the file
    Row(CHECK, 2, "smpphub serve: {tmp}/smpphub.toml: no such file"),
    Row(CHECK, 2, "not valid TOML", config="[[listeners]\n"),
    Row(CHECK, 2, "listeners[0].port: expected int <= 65535", config=hub_toml(listener="port = 70000")),
    Row(CHECK, 2, "listeners[0].port: expected int >= 0", config=hub_toml(listener="port = -1")),
    Row(CHECK, 2, "upstreams[0].port: an upstream needs the SMSC's real port (1 to 65535), not 0",
        config=hub_toml(upstream='host = "127.0.0.1"\nport = 0')),
    Row(CHECK, 2, "upstreams[0].host: '127.0.0.1:27761' holds a port: write host = '127.0.0.1' and port = 27761",
        config=hub_toml(upstream='host = "127.0.0.1:27761"\nport = 27761')),
    Row(CHECK, 2, "upstreams[0].host: required", config=hub_toml(upstream='host = ""\nport = 2776')),
    Row(CHECK, 2, "listeners[0].host: '[::1]:2775' holds a port: write host = '::1' and port = 2775",
        config=hub_toml(listener='host = "[::1]:2775"')),
    Row(CHECK, 2, "listeners[1]: 127.0.0.1:2775 is already listeners[0]",
        config=hub_toml(listener='port = 2775\n[[listeners]]\nport = 2775')),
    # serve --check: what starting would fail on
    Row(CHECK, 2, "store.path: cannot open the store {tmp}/nodir/hub.db: the folder {tmp}/nodir does not exist",
        config=hub_toml(store='path = "{tmp}/nodir/hub.db"')),
    Row(CHECK, 2, "store.path: cannot open the store {tmp}: it is a directory, not a file", config=hub_toml(store='path = "{tmp}"')),
    Row(CHECK, 2, "store.path: cannot open the store {cfg}/hub.db: {cfg} is not a folder",
        config=hub_toml(store='path = "{cfg}/hub.db"')),
    Row(CHECK, 2, "listeners[0]: tls_cert and tls_key do not load as a certificate and its key",
        config=hub_toml(listener='port = 0\ntls_cert = "{cfg}"\ntls_key = "{cfg}"')),
    # simulate
    Row(SIMULATE, 2, "smpphub simulate: {cfg}: system_id: expected str of length <= 15", config='system_id = "a-very-long-system-id"\n'),
    Row(SIMULATE, 2, "accounts[0].password: expected str of length <= 8",
        config='[[accounts]]\nsystem_id = "a"\npassword = "123456789"\n'),
    Row(SIMULATE, 2, "mo.templates[0].system_id: unknown account 'ghost'",
        config='[[accounts]]\nsystem_id = "a"\npassword = "p"\n[mo]\nrate = 1\n[[mo.templates]]\nsystem_id = "ghost"\n'),
    Row(SIMULATE, 2, "mo.templates[0].source_addr: expected str of length <= 20",
        config='[mo]\nrate = 1\n[[mo.templates]]\nsource_addr = "123456789012345678901"\n'),
    Row(SIMULATE, 2, "listen: port must be 0 to 65535, got '127.0.0.1:70000'", config='listen = "127.0.0.1:70000"\n'),
    Row(["simulate", "--listen", "nohost"], 2, "smpphub simulate: listen: expected HOST:PORT, got 'nohost'"),
    Row(["simulate", "--listen", "::1:2775"], 2, "listen: write an IPv6 address as [ADDRESS]:PORT"),
    Row(["simulate", "--http", "127.0.0.1:"], 2, "http_listen: expected HOST:PORT, got '127.0.0.1:'"),
    Row(["simulate", "--seed", "x"], 2, "argument --seed: invalid int value: 'x'"),
    # hash-password
    Row(["hash-password", ""], 2, "smpphub hash-password: the password is empty"),
    Row(["hash-password", "waytoolongpassword"], 2, "SMPP passwords are 1 to 8 characters, got 18"),
    Row(["hash-password", "日本"], 2, "SMPP carries the password as Latin-1 text"),
    Row(["hash-password"], 2, "no password: give it as an argument or as a line on stdin (stdin was empty)"),
    Row(["hash-password"], 2, "SMPP passwords are 1 to 8 characters, got 9", stdin="123456789\n"),
    Row(["hash-password"], 2, "the password is empty", stdin="\n"),
    Row(["hash-password"], 2, "no password: give it as an argument or on stdin (stdin is closed)", stdin_closed=True),
]


@pytest.mark.parametrize("row", ARGUMENT_ROWS, ids=str)
def test_bad_input_is_one_line(row: Row, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    argv, places = prepare(row, tmp_path)
    outcome = run_in_process(argv, capsys, monkeypatch, stdin=row.stdin, stdin_closed=row.stdin_closed)
    assert_one_line(row, outcome, places)
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["smpphub.toml"])  # nothing created


# ---- warnings: a valid configuration with parts that never take effect ---------------------

ROUTE = '[[routes]]\nprefix = "{prefix}"\nupstreams = ["up"]\n'

WARNING_ROWS = [
    (ROUTE.format(prefix="44") + ROUTE.format(prefix="44") + 'accounts = ["acme"]\n',
     ["routes[1]: never matches: routes[0] has the same prefix '44', comes first and accepts every account and source"]),
    (ROUTE.format(prefix="44") + 'source_prefix = "BANK"\n' + ROUTE.format(prefix="44") + 'source_prefix = "BANKCO"\n',
     ["routes[1]: never matches: routes[0] has the same prefix '44'"]),
    (ROUTE.format(prefix="33") + 'route_group = "premium"\n', ["routes[0]: never matches: no account has route_group 'premium'"]),
    (ROUTE.format(prefix="") + '[default_route]\nupstreams = ["up"]\n',
     ["default_route: never used: routes[0] has the empty prefix and accepts every account"]),
    ('[[mo_routes]]\nprefix = "123"\naccount = "acme"\n[[mo_routes]]\nprefix = "123"\nwebhook = "http://x/"\nwebhook_secret = "s"\n',
     ["mo_routes[1]: never used: mo_routes[0] has the same prefix '123'"]),
    ('[[mo_routes]]\nprefix = "9"\nwebhook = "http://x/"\n',  # the key from before signing: loads, warned
     ["mo_routes[0].webhook_secret: not set (deprecated): its MO webhooks go unsigned"]),
    # not warned: a later route for fewer sources, or for accounts the first one does not take
    (ROUTE.format(prefix="44") + 'source_prefix = "BANKCO"\n' + ROUTE.format(prefix="44") + 'source_prefix = "BANK"\n', []),
    ('[[accounts]]\nsystem_id = "vip"\npassword = "pw"\nroute_group = "premium"\n'
     + ROUTE.format(prefix="44") + 'route_group = "default"\n' + ROUTE.format(prefix="44") + ROUTE.format(prefix="447") + 'accounts = ["acme"]\n', []),
]


@pytest.mark.parametrize("extra,warnings", WARNING_ROWS, ids=[" / ".join(w) or "none" for _, w in WARNING_ROWS])
def test_check_warns_of_what_never_takes_effect(extra: str, warnings: list[str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    row = Row(CHECK, 0, "", config=hub_toml(extra=extra))
    argv, _ = prepare(row, tmp_path)
    outcome = run_in_process(argv, capsys, monkeypatch)
    assert outcome.code == 0, outcome.err
    assert f"{tmp_path / 'smpphub.toml'}: OK (" in outcome.out
    lines = outcome.err.splitlines()
    assert len(lines) == len(warnings), outcome.err
    for line, expected in zip(lines, warnings, strict=True):
        assert line.startswith(f"warning: {tmp_path / 'smpphub.toml'}: ") and expected in line


def test_no_accounts_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    row = Row(CHECK, 0, "", config='[[upstreams]]\nname = "up"\nhost = "h"\nport = 1\nsystem_id = "x"\n' + ROUTE.format(prefix="44"))
    argv, _ = prepare(row, tmp_path)
    outcome = run_in_process(argv, capsys, monkeypatch)
    assert outcome.code == 0
    assert outcome.err.splitlines() == [f"warning: {tmp_path / 'smpphub.toml'}: accounts: none configured, so no ESME can bind and no route is used"]


# ---- the dispatcher's last line of defence ---------------------------------------------------


def _broken(args: object) -> int:
    raise RuntimeError("kaput\nin two lines")


def test_an_unexpected_exception_is_one_line_unless_debugging(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    command = cli.COMMANDS["hash-password"]
    monkeypatch.setitem(cli.COMMANDS, "hash-password", cli.Command(command.help, command.add_arguments, _broken))
    monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)
    outcome = run_in_process(["hash-password", "pw"], capsys, monkeypatch)
    assert outcome.code == 1
    assert outcome.err == ("smpphub hash-password: internal error: RuntimeError: kaput in two lines"
                           " (run with SMPPHUB_DEBUG=1 for the traceback)\n")
    monkeypatch.setenv(cli.DEBUG_VARIABLE, "1")
    with pytest.raises(RuntimeError, match="kaput"):
        cli.main(["hash-password", "pw"])


def test_nothing_below_imports_the_dispatcher() -> None:
    for folder in ("router", "simulator", "benchmarks", "smppcore"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            assert "smpphub.cli" not in text and "from smpphub import cli" not in text, path


# ---- run time: real processes against real (and silent) servers --------------------------------


@dataclass
class Places:
    """Addresses the run-time rows point at, all on 127.0.0.1, all stopped after the test."""

    smsc: str  # a simulator: account me/pw, receipts off, destination ...999 refused
    silent: str  # accepts TCP, never says a word
    closed: str  # nothing listens
    taken: str  # a plain socket listens (for serve/simulate to collide with)
    tls: str  # a TLS SMPP server with a self-signed certificate

    def as_dict(self) -> dict[str, str]:
        return {"smsc": self.smsc, "silent": self.silent, "closed": self.closed, "taken": self.taken,
                "taken_port": self.taken.rpartition(":")[2], "tls": self.tls}


@pytest.fixture
async def places(tmp_path: Path):
    smsc = await simulator(accounts=[{"system_id": "me", "password": "pw"}], receipts={"enabled": False},
                           errors={"rules": [{"destination": "999$", "status": "ESME_RINVDSTADR"}]})

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client goes
        writer.close()

    silent = await asyncio.start_server(never_answer, HOST, 0)
    taken = socket.socket()
    taken.bind((HOST, 0))
    taken.listen()
    with socket.socket() as s:
        s.bind((HOST, 0))
        closed_port = s.getsockname()[1]
    certs = tmp_path / "certs"
    certs.mkdir()
    server_ctx, _, _ = self_signed(certs)
    tls = await smppcore.serve(None, HOST, 0, ssl=server_ctx)
    yield Places(
        smsc=f"{HOST}:{smsc.port}", silent=f"{HOST}:{silent.sockets[0].getsockname()[1]}", closed=f"{HOST}:{closed_port}",
        taken=f"{HOST}:{taken.getsockname()[1]}", tls=f"{HOST}:{tls.port}",
    )
    await tls.close()
    taken.close()
    silent.close()
    await silent.wait_closed()
    await smsc.close()


RUN_ROWS = [
    Row(send(target="{closed}"), 1, "smpphub send: cannot connect to {closed}: connection refused"),
    Row(send("--password", "wrong", target="{smsc}"), 1, "smpphub send: bind refused by {smsc}: ESME_RINVPASWD"),
    Row(send("--response-timeout", "0.5", target="{silent}"), 1, "no bind response from {silent} within 0.5s"),
    Row(send("--tls", target="{smsc}"), 1, "TLS handshake with {smsc} failed: wrong version number (is it a TLS port?)"),
    Row(send("--tls", target="{tls}"), 1, "TLS certificate of {tls} not accepted: self-signed certificate (--insecure skips the check)"),
    Row(send("--dlr", "--timeout", "0.5", target="{smsc}"), 1, "no receipt from {smsc} for message_id 1 within 0.5s (--timeout)"),
    Row(send("--to", "447700900999", target="{smsc}"), 1, "submit refused by {smsc}: ESME_RINVDSTADR"),
    Row(send("--coding", "gsm", text="日本"), 2, "smpphub send: --text: GSM 03.38 cannot carry '日'"),
    Row(["serve", "--config", "{cfg}"], 1, "smpphub serve: cannot listen on {taken} (listeners[0]): address already in use",
        config=hub_toml(listener='host = "127.0.0.1"\nport = {taken_port}')),
    Row(["serve", "--config", "{cfg}"], 2, "store.path: cannot open the store {tmp}/nodir/hub.db: the folder {tmp}/nodir does not exist",
        config=hub_toml(store='path = "{tmp}/nodir/hub.db"')),
    Row(["simulate", "--listen", "{taken}", "--quiet"], 1, "smpphub simulate: cannot listen on {taken} (SMPP): address already in use"),
    Row(["simulate", "--listen", "127.0.0.1:0", "--http", "{taken}", "--quiet"], 1, "cannot listen on {taken} (HTTP): address already in use"),
    Row(["hash-password"], 2, "smpphub hash-password: no password: give it as an argument or on stdin (stdin is closed)", stdin_closed=True),
]


@pytest.mark.parametrize("row", RUN_ROWS, ids=str)
async def test_run_time_failure_is_one_line(row: Row, places: Places, tmp_path: Path) -> None:
    argv, filled = prepare(row, tmp_path, places.as_dict())
    before = sorted(p.name for p in tmp_path.iterdir())
    outcome = await run_subprocess(argv, stdin_closed=row.stdin_closed)
    assert_one_line(row, outcome, filled)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # a failed start leaves nothing behind


# ---- the store at run time: one line naming the path, and no file left behind ------------------


async def test_a_store_that_is_not_a_database_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "hub.db").write_text("these are my notes, not a database\n")
    row = Row(["serve", "--config", "{cfg}"], 1, "smpphub serve: cannot open the store {tmp}/hub.db: file is not a database",
              config=hub_toml())
    argv, filled = prepare(row, tmp_path)
    outcome = await run_subprocess(argv)
    assert_one_line(row, outcome, filled)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub.db", "smpphub.toml"]
    assert (tmp_path / "hub.db").read_text() == "these are my notes, not a database\n"


async def test_a_store_in_a_read_only_folder_is_refused_by_check_and_serve(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(tmp_path, 0o755)  # the unprivileged process must reach the config and the folder
    folder.chmod(0o555)
    try:
        for argv in (CHECK, ["serve", "--config", "{cfg}"]):
            row = Row(argv, 2, "store.path: cannot open the store {tmp}/ro/hub.db: the folder {tmp}/ro is not writable",
                      config=hub_toml(store='path = "{tmp}/ro/hub.db"'))
            filled_argv, filled = prepare(row, tmp_path)
            outcome = await run_subprocess(filled_argv, prefix=unprivileged())
            assert_one_line(row, outcome, filled)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


async def test_a_hub_that_cannot_bind_every_listener_binds_none_and_opens_no_store(tmp_path: Path) -> None:
    from smpphub.router.config import config_from_dict
    from smpphub.router.hub import Hub, ListenError

    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        free = socket.socket()
        free.bind((HOST, 0))
        free_port = free.getsockname()[1]
        free.close()
        config = config_from_dict({
            "listeners": [{"port": free_port}, {"port": taken.getsockname()[1]}],
            "store": {"path": str(tmp_path / "hub.db")},
        })
        hub = Hub(config)
        with pytest.raises(ListenError, match=r"listeners\[1\]\): address already in use"):
            await hub.start()
    assert hub.servers == [] and list(tmp_path.iterdir()) == []
    with socket.socket() as again:  # the first listener was released
        again.bind((HOST, free_port))
