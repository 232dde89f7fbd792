"""The simulator's configuration: typed, validated once at the edge.

A TOML file (or a dict, from the pytest fixture) decodes into
:class:`SimulatorConfig`; an unknown key, a wrong type or an out-of-range value is
a :class:`ConfigError` whose one-line message names the key, e.g.
``latency.mean_ms: expected a number >= 0, got -5``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

from smppcore.config import ConfigError, decode_config, load_toml_config, parse_host_port
from smppcore.constants import CommandStatus, MessageState
from smppcore.ratelimit import TokenBucket

from .profiles import BIND_HABITS, PRESETS, STANDARD, Profile

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
    "Tls",
    "OutbindTarget",
    "NetworkRule",
    "SimulatorConfig",
    "load_config",
    "parse_delay",
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
    profile: str | None = None  # a carrier profile (simulator/profiles.py) for this account's messages and binds


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
    """Messages per second allowed per bind and in total (0: unlimited).

    ``burst``: seconds' worth of messages let through at once after a quiet spell (at
    least one message). A second is what carriers commonly allow; a small value makes the
    cap hold over short intervals too (a rate search over steps of a second or two would
    otherwise find the burst, not the cap).
    """

    per_bind: NonNeg = 0.0
    total: NonNeg = 0.0
    status: Literal["ESME_RTHROTTLED", "ESME_RMSGQFUL"] = "ESME_RTHROTTLED"
    burst: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 1.0

    def total_bucket(self, clock: Callable[[], float]) -> TokenBucket:
        return TokenBucket(self.total, clock, burst=self.burst)

    def bind_bucket(self, clock: Callable[[], float]) -> TokenBucket:
        return TokenBucket(self.per_bind, clock, burst=self.burst)


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


class Tls(_Strict):
    """A second SMPP listener speaking TLS (the plain one stays), with its certificate and key (PEM files)."""

    cert: Annotated[str, msgspec.Meta(min_length=1)]
    key: Annotated[str, msgspec.Meta(min_length=1)]
    listen: str = "127.0.0.1:3550"


class OutbindTarget(_Strict):
    """An ESME that waits for the SMSC to call (SMPP 3.4, 2.2.1): the simulator connects to
    ``address``, sends outbind with ``system_id`` / ``password``, and the ESME binds on that
    connection. When the connection ends it calls again after ``retry_s``."""

    address: str
    system_id: SystemId
    password: Password = ""
    retry_s: Annotated[float, msgspec.Meta(ge=0.05, le=3600)] = 5.0


#: A delay written "30s", "150ms", "0-2s" (uniform between the two), or a [Delay] table.
DelaySpec = Delay | str
#: the final-state shares a [[network]] rule may name, and the stat word of each
STATE_SHARES = {"delivered": "DELIVRD", "undeliverable": "UNDELIV", "expired": "EXPIRED", "rejected": "REJECTD",
                "deleted": "DELETED", "unknown": "UNKNOWN", "accepted": "ACCEPTD"}


class NetworkRule(_Strict):
    """How the network behind one destination prefix behaves (the longest matching prefix wins).

    A key left out keeps the simulator's own setting. The final-state shares
    (``delivered``, ``undeliverable``, ...) are probabilities; what they leave over is
    DELIVRD, or UNDELIV when ``delivered`` is one of them. ``receipt_delays`` gives some
    states a delay of their own (``{UNDELIV = "30s"}``); ``throttle`` caps the
    messages per second to the prefix (0: no cap), answered with ``throttle.status``.
    """

    prefix: Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9]{1,20}$")]
    profile: str | None = None
    submit_latency: DelaySpec | None = None
    errors: dict[str, float] = {}  # command_status name -> probability (sum <= 1)
    delivered: Probability | None = None
    undeliverable: Probability | None = None
    expired: Probability | None = None
    rejected: Probability | None = None
    deleted: Probability | None = None
    unknown: Probability | None = None
    accepted: Probability | None = None
    receipt_delay: DelaySpec | None = None
    receipt_delays: dict[str, DelaySpec] = {}
    throttle: NonNeg = 0.0

    @property
    def digits(self) -> str:
        return self.prefix.lstrip("+")

    def final_weights(self) -> dict[str, float] | None:
        """The final-state mix this rule names (stat word -> probability), None if it names none."""
        shares = {word: getattr(self, key) for key, word in STATE_SHARES.items() if getattr(self, key) is not None}
        if not shares:
            return None
        rest = max(0.0, 1.0 - sum(shares.values()))
        other = "UNDELIV" if "DELIVRD" in shares else "DELIVRD"
        shares[other] = shares.get(other, 0.0) + rest
        return shares


class SimulatorConfig(_Strict):
    listen: str = "127.0.0.1:2775"
    http_listen: str | None = None
    tls: Tls | None = None
    outbind: list[OutbindTarget] = []
    pcap: str | None = None  # write every PDU read or sent to this pcap file
    pcap_max_mb: PositiveInt = 100  # the file stops growing here
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
    profile: str = "standard"  # the carrier profile of every account and prefix that names none
    profiles: dict[str, Profile] = {}  # profiles of your own, by name, beside the presets
    network: list[NetworkRule] = []  # per destination prefix, longest first (simulator/network.py)

    def __post_init__(self) -> None:
        _check_carriers(self)
        _check_listen("listen", self.listen)
        if self.http_listen is not None:
            _check_listen("http_listen", self.http_listen)
        if self.tls is not None:
            _check_listen("tls.listen", self.tls.listen)
        for i, target in enumerate(self.outbind):
            try:
                parse_host_port(target.address)
            except ConfigError as exc:
                raise msgspec.ValidationError(f"{exc} - at `$.outbind[{i}].address`") from None
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


_DELAY_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:-\s*(\d+(?:\.\d+)?)\s*)?(ms|s)\s*")


def parse_delay(spec: Delay | str) -> Delay:
    """``"30s"``, ``"150ms"``, ``"0-2s"`` (uniform) as a :class:`Delay`; a Delay as it is.

    Raises ValueError with a line saying what is accepted.
    """
    if isinstance(spec, Delay):
        return spec
    m = _DELAY_RE.fullmatch(spec)
    if m is None:
        raise ValueError(f"expected a delay such as \"30s\", \"150ms\" or \"0-2s\", got {spec!r}")
    scale = 1000.0 if m.group(3) == "s" else 1.0
    low = float(m.group(1)) * scale
    if m.group(2) is None:
        return Delay(kind="fixed", ms=low)
    high = float(m.group(2)) * scale
    if low > high:
        raise ValueError(f"the range {spec!r} runs backwards")
    return Delay(kind="uniform", min_ms=low, max_ms=high)


def _invalid(key: str, message: str) -> msgspec.ValidationError:
    return msgspec.ValidationError(f"{message} - at `$.{key}`")


def _known_profiles(config: SimulatorConfig) -> list[str]:
    return sorted({*PRESETS, *config.profiles})


def _profile(config: SimulatorConfig, key: str, name: str) -> Profile:
    """The profile ``name`` (one of the presets or of ``profiles``), or one line naming the known ones."""
    profile = config.profiles.get(name) or PRESETS.get(name)
    if profile is None:
        raise _invalid(key, f"unknown profile {name!r} (known: {', '.join(_known_profiles(config))})")
    if profile.receipt_id_base == "other" and config.receipts.message_id_format == "uuid":
        raise _invalid(key, f"profile {name!r} writes receipt ids in the other base: "
                            "receipts.message_id_format must be decimal or hex")
    return profile


def _check_carriers(config: SimulatorConfig) -> None:
    """The carrier profiles and the network rules, checked once with the key of what is wrong."""
    for name, own in config.profiles.items():
        if name in PRESETS:
            raise _invalid(f"profiles.{name}", f"{name!r} is a preset; give your profile another name")
        problem = own.problem()
        if problem is not None:
            raise _invalid(f"profiles.{name}", problem)
    _profile(config, "profile", config.profile)
    for i, account in enumerate(config.accounts):
        if account.profile is not None:
            _profile(config, f"accounts[{i}].profile", account.profile)
    seen: set[str] = set()
    for i, rule in enumerate(config.network):
        where = f"network[{i}]"
        if rule.digits in seen:
            raise _invalid(f"{where}.prefix", f"prefix {rule.prefix!r} appears twice")
        seen.add(rule.digits)
        if rule.profile is not None:
            profile = _profile(config, f"{where}.profile", rule.profile)
            for habit in BIND_HABITS:
                if getattr(profile, habit) != getattr(STANDARD, habit):
                    raise _invalid(f"{where}.profile", f"profile {rule.profile!r} acts on binds ({habit}), not on "
                                                       "messages: choose it per account or for the whole simulator")
        for name, p in rule.errors.items():
            _status(f"{where}.errors.{name}", name)
            if not 0 <= p <= 1:
                raise _invalid(f"{where}.errors.{name}", f"expected a probability between 0 and 1, got {p:g}")
        if sum(rule.errors.values()) > 1:
            raise _invalid(f"{where}.errors", "the probabilities add up to more than 1")
        weights = rule.final_weights()
        if weights is not None and sum(w for word, w in weights.items()) > 1 + 1e-9:
            raise _invalid(where, "the final-state shares add up to more than 1")
        for key in ("submit_latency", "receipt_delay"):
            spec = getattr(rule, key)
            if spec is not None:
                _delay(f"{where}.{key}", spec)
        for word, spec in rule.receipt_delays.items():
            if word.upper() not in FINAL_WORDS:
                raise _invalid(f"{where}.receipt_delays",
                               f"{word!r} is not a final state (one of {', '.join(sorted(FINAL_WORDS))})")
            _delay(f"{where}.receipt_delays.{word}", spec)


def _delay(key: str, spec: Delay | str) -> Delay:
    try:
        return parse_delay(spec)
    except ValueError as exc:
        raise _invalid(key, str(exc)) from None
