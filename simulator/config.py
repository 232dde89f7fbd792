"""The simulator's configuration: typed, validated once at the edge.

A TOML file (or a dict, from the pytest fixture) decodes into
:class:`SimulatorConfig`; an unknown key, a wrong type or an out-of-range value is
a :class:`ConfigError` whose one-line message names the key, e.g.
``latency.mean_ms: expected a number >= 0, got -5``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from smppcore.config import ConfigError, decode_config, load_toml_config, parse_host_port
from smppcore.constants import CommandStatus, MessageState

__all__ = [
    "ConfigError",
    "Account",
    "Delay",
    "Throttle",
    "ErrorRule",
    "Errors",
    "Receipts",
    "MoTemplate",
    "Mo",
    "Chaos",
    "SimulatorConfig",
    "load_config",
    "config_from_dict",
    "parse_status",
    "parse_state",
]

NonNeg = Annotated[float, msgspec.Meta(ge=0)]
Probability = Annotated[float, msgspec.Meta(ge=0, le=1)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
# C-octet strings of SMPP 3.4 (5.2), without the terminating NUL: a longer value can never
# be matched by a bind, nor put on the wire
SystemId = Annotated[str, msgspec.Meta(min_length=1, max_length=15)]
Password = Annotated[str, msgspec.Meta(max_length=8)]
Address = Annotated[str, msgspec.Meta(max_length=20)]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Account(_Strict):
    """One ESME account. ``bind_types``: any of "tx", "rx", "trx"."""

    system_id: SystemId
    password: Password
    bind_types: list[Literal["tx", "rx", "trx"]] = msgspec.field(default_factory=lambda: ["tx", "rx", "trx"])
    max_binds: PositiveInt | None = None


class Delay(_Strict):
    """A delay distribution in milliseconds.

    ``fixed`` waits ``ms``; ``uniform`` draws between ``min_ms`` and ``max_ms``;
    ``exponential`` has mean ``mean_ms`` (capped at ``max_ms`` when that is set).
    """

    kind: Literal["fixed", "uniform", "exponential"] = "fixed"
    ms: NonNeg = 0.0
    min_ms: NonNeg = 0.0
    max_ms: NonNeg = 0.0
    mean_ms: NonNeg = 0.0

    def __post_init__(self) -> None:
        if self.kind == "uniform" and self.min_ms > self.max_ms:
            raise ValueError(f"min_ms ({self.min_ms:g}) is above max_ms ({self.max_ms:g})")

    @property
    def is_zero(self) -> bool:
        if self.kind == "fixed":
            return self.ms == 0
        if self.kind == "uniform":
            return self.max_ms == 0
        return self.mean_ms == 0


class Throttle(_Strict):
    """Messages per second allowed per bind and in total (0: unlimited)."""

    per_bind: NonNeg = 0.0
    total: NonNeg = 0.0
    status: Literal["ESME_RTHROTTLED", "ESME_RMSGQFUL"] = "ESME_RTHROTTLED"


class ErrorRule(_Strict):
    """Answer submits whose destination matches ``destination`` (a regex) with ``status``.

    ``probability`` below 1 makes the rule fire only sometimes.
    """

    destination: str
    status: str
    probability: Probability = 1.0


class Errors(_Strict):
    """Error injection: ``probabilities`` maps a status name to the chance of answering with it."""

    probabilities: dict[str, float] = {}  # each 0..1 (checked with the key's name in the message)
    rules: list[ErrorRule] = []


class Receipts(_Strict):
    """Delivery receipts, sent when a submit's registered_delivery asks for one.

    ``final_states`` maps stat words (DELIVRD, UNDELIV, EXPIRED, REJECTD, DELETED,
    UNKNOWN) to weights; ``intermediate`` lists states sent first (ENROUTE,
    ACCEPTD), each as its own receipt when the ESME asked for intermediate
    notifications (or always with ``intermediate_always``).
    """

    enabled: bool = True
    delay: Delay = msgspec.field(default_factory=Delay)
    final_states: dict[str, float] = msgspec.field(default_factory=lambda: {"DELIVRD": 1.0})  # weights >= 0
    intermediate: list[str] = []
    intermediate_always: bool = False
    message_id_format: Literal["decimal", "hex", "uuid"] = "decimal"
    hold_limit: PositiveInt = 100_000


class MoTemplate(_Strict):
    source_addr: Address = "447700900001"
    destination_addr: Address = "12345"
    text: Annotated[str, msgspec.Meta(min_length=1)] = "Hello from the network"
    system_id: str | None = None  # which account gets it (None: any bound receiver)

    def __post_init__(self) -> None:
        from smppcore.text import split_text

        try:
            split_text(self.text)
        except ValueError as exc:  # more than 255 segments
            raise ValueError(f"text: {exc}") from None


class Mo(_Strict):
    """Mobile-originated traffic: generated at ``rate`` per second from ``templates``, or echoed."""

    rate: NonNeg = 0.0
    templates: list[MoTemplate] = []
    echo: bool = False


class Chaos(_Strict):
    """Failures on purpose."""

    drop_after: PositiveInt | None = None  # close a connection after it submitted this many
    drop_probability: Probability = 0.0  # chance, per submit, of closing the connection
    ignore_enquire_link: bool = False
    bind_delay_ms: NonNeg = 0.0


class SimulatorConfig(_Strict):
    listen: str = "127.0.0.1:2775"
    http_listen: str | None = None
    system_id: SystemId = "smpphub-sim"
    accounts: list[Account] = []  # empty: accept any bind
    max_binds_per_account: PositiveInt = 100
    max_connections: PositiveInt = 1000
    # 0: no limit (a test's clients all come from 127.0.0.1)
    max_connections_per_ip: Annotated[int, msgspec.Meta(ge=0)] = 0
    # connections not bound yet (0: no limit); a newcomer pushes out the oldest idle one
    max_unbound: Annotated[int, msgspec.Meta(ge=0)] = 100
    max_unanswered: PositiveInt = 1000  # requests read, not answered yet, per connection: then it stops reading
    window: PositiveInt = 100
    submit_latency: Delay = msgspec.field(default_factory=Delay)
    throttle: Throttle = msgspec.field(default_factory=Throttle)
    errors: Errors = msgspec.field(default_factory=Errors)
    receipts: Receipts = msgspec.field(default_factory=Receipts)
    mo: Mo = msgspec.field(default_factory=Mo)
    chaos: Chaos = msgspec.field(default_factory=Chaos)
    record_limit: Annotated[int, msgspec.Meta(ge=0)] = 100_000  # 0: keep no record, count only
    seed: int | None = None

    def __post_init__(self) -> None:
        _check_listen("listen", self.listen)
        if self.http_listen is not None:
            _check_listen("http_listen", self.http_listen)
        names = [a.system_id for a in self.accounts]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise msgspec.ValidationError(f"system_id {name!r} appears twice - at `$.accounts[{i}].system_id`")
        for name, p in self.errors.probabilities.items():
            _status(f"errors.probabilities.{name}", name)
            if not 0 <= p <= 1:
                raise msgspec.ValidationError(f"expected a probability between 0 and 1, got {p:g} - at `$.errors.probabilities.{name}`")
        if sum(self.errors.probabilities.values()) > 1:
            raise msgspec.ValidationError("the probabilities add up to more than 1 - at `$.errors.probabilities`")
        for i, rule in enumerate(self.errors.rules):
            _status(f"errors.rules[{i}].status", rule.status)
            try:
                re.compile(rule.destination)
            except re.error as exc:
                raise msgspec.ValidationError(f"not a regular expression ({exc}) - at `$.errors.rules[{i}].destination`") from None
        for word, weight in self.receipts.final_states.items():
            if weight < 0:
                raise msgspec.ValidationError(f"expected a weight >= 0, got {weight:g} - at `$.receipts.final_states.{word}`")
            if word.upper() not in FINAL_WORDS:
                raise msgspec.ValidationError(
                    f"{word!r} is not a final state (one of {', '.join(sorted(FINAL_WORDS))}) - at `$.receipts.final_states`")
        for i, word in enumerate(self.receipts.intermediate):
            if word.upper() not in INTERMEDIATE_WORDS:
                raise msgspec.ValidationError(
                    f"{word!r} is not an intermediate state (ENROUTE or ACCEPTD) - at `$.receipts.intermediate[{i}]`")
        if self.receipts.enabled and not any(self.receipts.final_states.values()):
            raise msgspec.ValidationError("needs at least one state with a weight above 0 - at `$.receipts.final_states`")
        if self.mo.rate > 0 and not self.mo.templates:
            raise msgspec.ValidationError("a rate needs at least one template - at `$.mo.templates`")
        for i, template in enumerate(self.mo.templates):
            if self.accounts and template.system_id is not None and template.system_id not in names:
                raise msgspec.ValidationError(f"unknown account {template.system_id!r} - at `$.mo.templates[{i}].system_id`")


def _check_listen(key: str, value: str) -> None:
    """A listening address: HOST:PORT as :func:`smppcore.config.parse_host_port` reads it (port 0: any free port)."""
    try:
        parse_host_port(value, allow_port_zero=True)
    except ConfigError as exc:
        raise msgspec.ValidationError(f"{exc} - at `$.{key}`") from None


def _status(key: str, name: str) -> int:
    status = parse_status(name)
    if status is None:
        raise msgspec.ValidationError(f"unknown command_status {name!r} - at `$.{key}`")
    if status == 0:
        raise msgspec.ValidationError(f"{name!r} is success, not an error status - at `$.{key}`")
    return status


def parse_status(name: str) -> int | None:
    """``ESME_RTHROTTLED`` (or ``0x58``, or ``88``) -> 0x58; None if it is none of those."""
    try:
        return int(CommandStatus[name.upper()])
    except KeyError:
        pass
    try:
        value = int(name, 0)
    except ValueError:
        return None
    return value if 0 <= value <= 0xFFFFFFFF else None


_STATE_WORDS = {
    "ENROUTE": MessageState.ENROUTE,
    "DELIVRD": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED,
    "DELETED": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "ACCEPTD": MessageState.ACCEPTED,
    "UNKNOWN": MessageState.UNKNOWN,
    "REJECTD": MessageState.REJECTED,
}


#: Stat words a message can end in (receipts.final_states), and those sent before it.
FINAL_WORDS = frozenset({"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD"})
INTERMEDIATE_WORDS = frozenset({"ENROUTE", "ACCEPTD"})


def parse_state(word: str) -> MessageState | None:
    return _STATE_WORDS.get(word.upper())


def config_from_dict(data: dict[str, Any]) -> SimulatorConfig:
    return decode_config(data, SimulatorConfig)


def load_config(path: str) -> SimulatorConfig:
    return load_toml_config(path, SimulatorConfig)
