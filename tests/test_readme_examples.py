"""Every example of README.md, simulator/README.md and benchmarks/README.md runs as printed.

A newcomer copies a block and runs it: it has to work in *their* project, with the
wheel installed and pytest-asyncio in its default (strict) mode, not only in this
checkout under our own pytest configuration. So the blocks run in the fresh virtual
environment of tests/venvkit.py, in a user project that has packages of its own named
``simulator``, ``router`` and ``benchmarks``.

``BLOCKS`` says how each block is proven, and the first test fails when a README gains
a block nobody proves (or loses one). One change is made to what runs, the same
everywhere: a server an example starts on the fixed port 2775 (or 8080, or 0.0.0.0)
listens on 127.0.0.1 port 0 instead, and the client examples that follow it talk to the
port it printed, so tests never fight over a port.
"""

from __future__ import annotations

import asyncio
import configparser
import enum
import inspect
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import msgspec
import oracles
import pytest
from venvkit import README_VENV, REPO, Block, FreshVenv, fenced_blocks, fresh_venv

import smppcore
from smpphub.bench.simulator import format_table
from smpphub.router import config as hub_config
from smpphub.router.auth import is_valid_hash, verify_password
from smpphub.router.hub import Hub


class Kind(enum.Enum):
    """How a block is proven."""

    QUICK_START = "`bash smpphub.sh demo` run in a copy of the checkout until the demo is up, then Ctrl-C"
    TEST_COMMAND = "the CI entry .ci/run executes exactly this line (the whole suite cannot run inside itself)"
    SCRIPT = "run as a Python script in a user's project"
    PYTEST = "run by pytest, strict mode, in a user's project"
    HUB_TOML = "saved as hub.toml, passes `smpphub serve --config hub.toml --check`"
    HASH = "run; the hash it prints verifies the password"
    INSTALL = "tests/venvkit.py runs it to make the fresh venv every test here uses"
    UNIT = "systemd-analyze verify, and what an operator needs is in it"
    SERVER = "each line started (port 0), waited for, stopped with SIGTERM: exit 0"
    CLIENT = "run against the server of the README's SERVER block"
    SIMULATOR_TOML = "loaded by the simulator's config loader; the standalone line with --config runs it"
    CONFIG_ERRORS = "each line reproduced by a bad simulator.toml: the same line, exit 2"
    HTTP_JSON = "the keys of the real answer of the --http standalone line"
    RESULT = "a measured table: format_table prints exactly it for these figures"
    OPS_TOML = "the [http] of a hub that tests/test_readme_ops.py runs (port 0) for the next block"
    OPS_SHELL = "tests/test_readme_ops.py runs each line as printed against that hub (its port): exit 0"
    AUTH_TOML = "added to OPS_TOML's [http] by tests/test_http_metrics_auth.py for a hub it runs (port 0)"
    AUTH_SHELL = "tests/test_http_metrics_auth.py runs it as printed against that hub (its port): exit 0, 200 then 401"
    API_TOML = "the [http] and account of a hub that tests/test_readme_http.py runs (port 0) for the next block"
    API_SHELL = "tests/test_readme_http.py runs it as printed against that hub (its port): exit 0, webhooks arrive"
    CHECK_ESME = "tests/test_check_esme.py runs both lines as printed (port 0) and checks the report it wrote"
    CHECK_ESME_REPORT = "what that run prints: tests/test_check_esme.py compares it line by line, timings aside"
    SIM_CURL = "tests/test_simulator_http.py runs each line as printed against `smpphub simulate` (its port): exit 0, JSON"
    CARRIER_TOML = "tests/test_simulator_profiles.py / test_simulator_network.py load it and check what it says"


@dataclass(frozen=True)
class Proof:
    readme: str
    first_line: str  # how the block begins
    kind: Kind


BLOCKS = [
    Proof("README.md", "bash smpphub.sh demo", Kind.QUICK_START),
    Proof("README.md", "bash tests/run.sh", Kind.TEST_COMMAND),
    Proof("README.md", "smpphub simulate", Kind.SERVER),
    Proof("README.md", "smpphub send --target 127.0.0.1:2775", Kind.CLIENT),
    Proof("README.md", "from smppcore import", Kind.SCRIPT),
    Proof("README.md", "import asyncio", Kind.SCRIPT),
    Proof("README.md", "[[listeners]]", Kind.HUB_TOML),
    Proof("README.md", "smpphub hash-password", Kind.HASH),
    Proof("README.md", f"python3 -m venv {README_VENV}", Kind.INSTALL),
    Proof("README.md", "[Unit]", Kind.UNIT),
    Proof("README.md", "# hub.toml: the HTTP API's listener, and an account", Kind.API_TOML),
    Proof("README.md", "export TOKEN=", Kind.API_SHELL),
    Proof("README.md", "# in hub.toml: the listener, and the admin token", Kind.OPS_TOML),
    Proof("README.md", "curl -s http://127.0.0.1:8080/metrics", Kind.OPS_SHELL),
    Proof("README.md", "# in hub.toml's [http], beside admin_token: /metrics", Kind.AUTH_TOML),
    Proof("README.md", "curl -s -H \"Authorization: Bearer shk_scrape", Kind.AUTH_SHELL),
    Proof("simulator/README.md", "smpphub simulate ", Kind.SERVER),
    Proof("simulator/README.md", "smpphub simulate: simulator.toml:", Kind.CONFIG_ERRORS),
    Proof("simulator/README.md", 'listen = "127.0.0.1:2775"', Kind.SIMULATOR_TOML),
    Proof("simulator/README.md", '{"count": ', Kind.HTTP_JSON),
    Proof("simulator/README.md", '{"binds": ', Kind.HTTP_JSON),
    Proof("simulator/README.md", "import pytest", Kind.PYTEST),
    Proof("simulator/README.md", "import smpplib.client", Kind.PYTEST),
    Proof("simulator/README.md", "server ", Kind.RESULT),
    Proof("simulator/README.md", "smpphub check-esme ", Kind.CHECK_ESME),
    Proof("simulator/README.md", "check-esme: listening on ", Kind.CHECK_ESME_REPORT),
    Proof("simulator/README.md", "curl -sf 127.0.0.1:8080/binds", Kind.SIM_CURL),
    Proof("simulator/README.md", "# simulator.toml: carrier profiles", Kind.CARRIER_TOML),
    Proof("simulator/README.md", "# simulator.toml: the network per destination prefix", Kind.CARRIER_TOML),
    Proof("simulator/README.md", "# test_carrier_habits.py", Kind.PYTEST),
    Proof("simulator/README.md", "# test_routing.py", Kind.PYTEST),
    Proof("benchmarks/README.md", "smpphub simulate --quiet", Kind.SERVER),
    Proof("benchmarks/README.md", "smpphub bench --target 127.0.0.1:2775", Kind.CLIENT),
]

READMES = sorted({proof.readme for proof in BLOCKS})


def proof_of(block: Block) -> Proof:
    """The one proof whose first line is the longest match for ``block``'s."""
    matching = [p for p in BLOCKS if p.readme == block.readme and block.first_line.startswith(p.first_line)]
    if not matching:
        raise LookupError(f"{block}: no test proves this block; add it to BLOCKS")
    return max(matching, key=lambda p: len(p.first_line))


def blocks(kind: Kind, readme: str | None = None) -> list[Block]:
    return [b for r in READMES for b in fenced_blocks(r) if proof_of(b).kind is kind and readme in (None, r)]


def block(kind: Kind, readme: str) -> Block:
    (only,) = blocks(kind, readme)
    return only


def by_id(found: list[Block]) -> list[object]:
    return [pytest.param(b, id=f"{b.readme}:{b.line}") for b in found]


@pytest.fixture(scope="session")
def venv(request: pytest.FixtureRequest) -> FreshVenv:
    return fresh_venv(request)


@pytest.fixture
def project(venv: FreshVenv, request: pytest.FixtureRequest) -> Path:
    """A fresh user project (with its own simulator/router/benchmarks packages) for this test."""
    return venv.project(re.sub(r"\W+", "-", request.node.name))


def test_every_block_of_every_readme_is_proven() -> None:
    used: list[Proof] = []
    for readme in READMES:
        for found in fenced_blocks(readme):
            used.append(proof_of(found))  # LookupError names a block nobody proves
    unused = [p for p in BLOCKS if p not in used]
    assert not unused, f"blocks gone from the READMEs: {unused}"
    assert len(used) == len(BLOCKS), "two blocks share a proof: give each its own first line"


def test_no_link_leaves_the_repository() -> None:
    for readme in READMES:
        for target in re.findall(r"\]\(([^)#]+)[^)]*\)|`(\.\./[^`]*)`", (REPO / readme).read_text()):
            path = next(t for t in target if t).split("#")[0]
            if re.match(r"^[a-z]+://", path):
                continue
            resolved = ((REPO / readme).parent / path).resolve()
            assert resolved.is_relative_to(REPO) and resolved.exists(), f"{readme}: {path}"


# --- Python -------------------------------------------------------------------------------


@pytest.mark.parametrize("example", by_id(blocks(Kind.SCRIPT)))
def test_python_example_runs_as_a_script(venv: FreshVenv, project: Path, example: Block) -> None:
    (project / "example.py").write_text(example.code)
    done = venv.run(["python", "example.py"], project, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_pytest_examples_pass_in_strict_mode(venv: FreshVenv, project: Path) -> None:
    examples = blocks(Kind.PYTEST)
    for i, example in enumerate(examples):
        (project / f"test_readme_{i}.py").write_text(example.code)
    done = venv.run(["python", "-m", "pytest", "-p", "no:cacheprovider", "-rA"], project, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 0 and f"{len(examples)} passed" in out, out
    assert re.search(r"asyncio: mode=(Mode\.)?strict", out, re.I), out


# --- configuration ------------------------------------------------------------------------------


def test_hub_toml_passes_check_as_copied(venv: FreshVenv, project: Path) -> None:
    example = block(Kind.HUB_TOML, "README.md")
    (project / "hub.toml").write_text(example.code)
    done = venv.run(["smpphub", "serve", "--config", "hub.toml", "--check"], project)
    assert done.returncode == 0 and "hub.toml: OK" in done.stdout, done.stdout + done.stderr
    assert done.stderr == ""  # not even a warning
    assert hub_config.load_config(str(project / "hub.toml")).store.path == "hub.db"  # beside it, no folder to make
    for stored, password in re.findall(r'password_hash = "([^"]+)"\s+# smpphub hash-password (\S+)', example.code):
        assert verify_password(password, stored)  # the comment tells the truth


def test_hash_password_prints_a_hash_of_the_password(venv: FreshVenv, project: Path) -> None:
    example = block(Kind.HASH, "README.md")
    done = venv.sh(example.code, project)
    stored = done.stdout.strip()
    assert done.returncode == 0 and is_valid_hash(stored) and stored.startswith("scrypt$"), done.stderr
    assert verify_password(shlex.split(example.code)[-1], stored)


def test_simulator_toml_loads(venv: FreshVenv, project: Path) -> None:
    (project / "simulator.toml").write_text(block(Kind.SIMULATOR_TOML, "simulator/README.md").code)
    script = "from smpphub.simulator.config import load_config; print(load_config('simulator.toml').seed)"
    done = venv.run(["python", "-c", script], project)
    assert (done.returncode, done.stdout.strip()) == (0, "42"), done.stderr


#: simulator.toml files that make each line of the README's list of configuration errors
BAD_SIMULATOR_TOML = {
    "smpphub simulate: simulator.toml: throttle.per_bind: expected float >= 0.0": "[throttle]\nper_bind = -1\n",
    "smpphub simulate: simulator.toml: receipts.delai: unknown key": "[receipts]\ndelai = 5\n",
    "smpphub simulate: simulator.toml: errors.probabilities.ESME_RSYSERR: "
    "expected a probability between 0 and 1, got 1.5": "[errors.probabilities]\nESME_RSYSERR = 1.5\n",
}


def test_every_listed_configuration_error_is_what_simulate_prints(venv: FreshVenv, project: Path) -> None:
    printed = block(Kind.CONFIG_ERRORS, "simulator/README.md").code.strip().splitlines()
    assert sorted(printed) == sorted(BAD_SIMULATOR_TOML)
    for i, (line, toml) in enumerate(BAD_SIMULATOR_TOML.items()):
        folder = project / f"bad{i}"
        folder.mkdir()
        (folder / "simulator.toml").write_text(toml)
        done = venv.run(["smpphub", "simulate", "--config", "simulator.toml"], folder, timeout=30)
        assert (done.returncode, done.stderr.strip()) == (2, line)


def test_simulator_speed_table_is_what_format_table_prints() -> None:
    printed = block(Kind.RESULT, "simulator/README.md").code.rstrip("\n")
    rows = [[cell.strip() for cell in line.split("|")] for line in printed.splitlines()[2:]]
    medians: dict[str, dict[str, float]] = {}
    runs: dict[str, list[dict[str, float]]] = {}
    for name, rate, span, p50, p99, cpu, receipts, dlr, _ in rows:
        figures = {"msg_per_s": float(rate.replace(",", "")), "p50_ms": float(p50), "p99_ms": float(p99),
                   "server_cpu_us": float(cpu), "receipts": float(receipts.replace(",", "").replace("-", "0")),
                   "dlr_per_s": float(dlr.replace(",", "").replace("-", "0"))}
        medians[name] = figures
        low, high = (float(k.rstrip("k")) * 1000 for k in span.split("-"))
        runs[name] = [{"msg_per_s": low}, {"msg_per_s": high}]
    assert format_table(medians, [row[0] for row in rows], runs).rstrip("\n") == printed


# --- servers and the commands that talk to them ---------------------------------------------------


@dataclass
class Served:
    """A server an example started, and the ports it printed."""

    process: subprocess.Popen[bytes]
    port: int
    http_port: int | None
    output: bytes


def served_args(line: str) -> list[str]:
    """A README line that starts a server, listening on 127.0.0.1 port 0 (see the module docstring)."""
    fixed_port = r"^(0\.0\.0\.0|127\.0\.0\.1):(2775|8080)$"
    args = [re.sub(fixed_port, "127.0.0.1:0", a) for a in shlex.split(line, comments=True)]
    if "--listen" not in args:
        args += ["--listen", "127.0.0.1:0"]
    return args


def read_until(
    process: subprocess.Popen[bytes], pattern: str, seen: bytes = b"", timeout: float = 30,
) -> tuple[re.Match[bytes], bytes]:
    """Wait (at most ``timeout``) until what the process printed (``seen`` so far) matches ``pattern``."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    while (match := re.search(pattern.encode(), seen)) is None:
        left = deadline - time.monotonic()
        assert left > 0, f"no {pattern!r} within {timeout} s: {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        chunk = os.read(fd, 65536) if ready else b""
        assert chunk or not ready, f"exited ({process.wait()}) before {pattern!r}: {seen!r}"
        seen += chunk
    return match, seen


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@contextmanager
def serve(venv: FreshVenv, line: str, cwd: Path) -> Iterator[Served]:
    """Run a README's server line; yields once it listens; SIGTERM after, which must exit 0."""
    args = served_args(line)
    process = subprocess.Popen(args, cwd=cwd, env=venv.env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        match, seen = read_until(process, r"listening on [\d.]+:(\d+)\n")
        http_port = None
        if "--http" in args:
            http, seen = read_until(process, r"http://[\d.]+:(\d+)/", seen)
            http_port = int(http.group(1))
        yield Served(process, int(match.group(1)), http_port, seen)
    finally:
        code = stop(process)
    assert code == 0, f"{args} exited {code}"


def client_script(example: Block, port: int) -> str:
    return example.code.replace("127.0.0.1:2775", f"127.0.0.1:{port}")


@pytest.mark.parametrize("readme", ["README.md", "benchmarks/README.md"])
def test_client_examples_against_the_readmes_server(venv: FreshVenv, project: Path, readme: str) -> None:
    (server_line,) = block(Kind.SERVER, readme).code.strip().splitlines()
    with serve(venv, server_line, project) as served:
        done = venv.sh(client_script(block(Kind.CLIENT, readme), served.port), project, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr


def keys_of(example: Block) -> dict[str, object]:
    return json.loads(example.code)


async def send_one_message(port: int) -> None:
    async with smppcore.connect("127.0.0.1", port, system_id="acme", password="secret") as client:
        await client.submit_sm(source_addr="Shop", destination_addr="447700900123", short_message=b"Your code is 4821")


def check_http_answers(served: Served) -> None:
    """The README's JSON shows the keys the simulator really answers with."""
    asyncio.run(send_one_message(served.port))
    base = f"http://127.0.0.1:{served.http_port}"
    messages_example, stats_example = blocks(Kind.HTTP_JSON, "simulator/README.md")
    with urllib.request.urlopen(f"{base}/messages", timeout=10) as answer:
        messages = json.load(answer)
    with urllib.request.urlopen(f"{base}/stats", timeout=10) as answer:
        stats = json.load(answer)
    shown = keys_of(messages_example)
    assert set(messages) == set(shown)
    assert messages["count"] == 1 and set(messages["messages"][0]) == set(shown["messages"][0])  # type: ignore[index]
    assert messages["messages"][0]["text"] == "Your code is 4821"
    assert set(stats) == set(keys_of(stats_example))


STANDALONE = block(Kind.SERVER, "simulator/README.md").code.strip().splitlines()


@pytest.mark.parametrize("line", STANDALONE, ids=[f"line{i}" for i in range(len(STANDALONE))])
def test_standalone_simulator_lines(venv: FreshVenv, project: Path, line: str) -> None:
    (project / "simulator.toml").write_text(block(Kind.SIMULATOR_TOML, "simulator/README.md").code)
    with serve(venv, line, project) as served:
        if served.http_port is not None:
            check_http_answers(served)
    assert any("--http" in ln for ln in STANDALONE)  # so the JSON is checked by one of them


# --- Quick start, install, systemd ----------------------------------------------------------------------


def test_quick_start_demo_from_a_checkout(venv: FreshVenv) -> None:
    """``bash smpphub.sh demo`` as printed, in a copy of the checkout: makes .venv, installs, the demo comes up."""
    checkout = venv.root / "checkout"  # the copy venvkit built the wheel from
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PYTEST_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    args = shlex.split(block(Kind.QUICK_START, "README.md").code)
    process = subprocess.Popen(args, cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _, seen = read_until(process, r"smpphub demo is up", timeout=300)
    finally:
        code = stop(process, signal.SIGINT)
    assert b"tour done" in seen and code == 0, seen.decode(errors="replace")
    assert (checkout / ".venv" / "bin" / "smpphub").exists()


def test_the_test_command_is_what_ci_runs() -> None:
    line = block(Kind.TEST_COMMAND, "README.md").code.strip()
    assert f"exec {line}" in (REPO / ".ci" / "run").read_text().splitlines()


def test_readme_install_block_made_the_venv(venv: FreshVenv) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert block(Kind.INSTALL, "README.md").code.count("\n") == 4
    assert venv.install_output.strip().splitlines()[-1] == f"smpphub {version}"


def unit_file(venv: FreshVenv) -> str:
    return block(Kind.UNIT, "README.md").code.replace(README_VENV, str(venv.venv))


def test_systemd_unit_has_what_an_operator_needs() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment, method-assign]  # keys keep their case
    unit.read_string(block(Kind.UNIT, "README.md").code)
    service = unit["Service"]
    assert service["User"] and service["StateDirectory"] == "smpphub"
    assert service["WorkingDirectory"] == "/var/lib/smpphub"  # a relative store path lands in the state folder
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["ExecStart"] == f"{README_VENV}/bin/smpphub serve --config /etc/smpphub/hub.toml"
    # Hub.stop's default is the config's drain_timeout: one deadline for the whole drain (listeners included)
    assert inspect.signature(Hub.stop).parameters["timeout"].default is None
    drain = next(f.default for f in msgspec.structs.fields(hub_config.HubConfig) if f.name == "drain_timeout")
    exiting = 3.0  # the interpreter's own exit after the drain (flushing the store, closing the loop)
    assert int(service["TimeoutStopSec"]) > drain + exiting


def test_systemd_unit_verifies(venv: FreshVenv, tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    oracles.require(tool is not None, "systemd-analyze (apt: systemd)")
    assert tool is not None
    (tmp_path / "smpphub.service").write_text(unit_file(venv))
    unit = tmp_path / "smpphub.service"
    done = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on keys it ignores; it says so on stderr
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


# --- router/hub.example.toml ----------------------------------------------------------------------------

EXAMPLE = REPO / "router" / "hub.example.toml"

#: [header] or [[header]] -> the Struct of that table
SECTIONS: dict[str, type[msgspec.Struct]] = {
    "": hub_config.HubConfig,
    "listeners": hub_config.Listener,
    "accounts": hub_config.Account,
    "upstreams": hub_config.Upstream,
    "routes": hub_config.Route,
    "default_route": hub_config.DefaultRoute,
    "mo_routes": hub_config.MoRoute,
    "store": hub_config.StoreConfig,
    "log": hub_config.LogConfig,
    "security": hub_config.SecurityConfig,
    "http": hub_config.HttpConfig,
}


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    value: object
    example: bool  # marked `# example`: differs from the default on purpose
    commented: bool  # a line `# key = ...`: shown, not set
    line: int


def example_settings() -> list[Setting]:
    """Every ``key = value`` line of hub.example.toml (set or commented out), with its table."""
    settings: list[Setting] = []
    section = ""
    for number, raw in enumerate(EXAMPLE.read_text().splitlines(), 1):
        header = re.match(r"^\[\[?([\w.]+)\]\]?", raw)
        if header:
            section = header.group(1)
            continue
        setting = re.match(r"^(# )?(\w+) = (.*)$", raw)
        if setting is None:
            continue
        commented, key = bool(setting.group(1)), setting.group(2)
        value = None if commented else tomllib.loads(raw)[key]  # the line is TOML, its comment too
        settings.append(Setting(section, key, value, "# example" in raw, commented, number))
    return settings


def default_of(struct: type[msgspec.Struct], key: str) -> object:
    field = {f.name: f for f in msgspec.structs.fields(struct)}[key]
    if field.default is not msgspec.NODEFAULT:
        return field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return msgspec.NODEFAULT


def test_hub_example_toml_is_valid() -> None:
    config = hub_config.load_config(str(EXAMPLE))
    assert config.accounts and config.upstreams and config.routes and config.mo_routes


def test_hub_example_shows_true_defaults() -> None:
    """A value equal to the Struct default, or marked ``# example``: then it must differ, or be required."""
    wrong = []
    for s in example_settings():
        if s.commented:
            continue
        default = default_of(SECTIONS[s.section], s.key)
        if s.example:
            if default == s.value:
                wrong.append(f"line {s.line}: {s.key} is the default, not an example")
        elif default is msgspec.NODEFAULT:
            continue  # required: any value is an example
        elif default != s.value:
            wrong.append(f"line {s.line}: {s.section}.{s.key} = {s.value!r}, "
                         f"the default is {default!r} (or mark it # example)")
    assert not wrong, "\n".join(wrong)


def test_hub_example_shows_every_option() -> None:
    shown = {(s.section, s.key) for s in example_settings()}
    missing = [f"{section or 'top level'}.{f.name}" for section, struct in SECTIONS.items()
               for f in msgspec.structs.fields(struct)
               if (section, f.name) not in shown and f.name not in SECTIONS]
    assert not missing, missing
