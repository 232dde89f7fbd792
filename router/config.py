"""The hub's configuration (hub.toml), typed and checked before anything starts.

Every problem is a :class:`ConfigError` naming its key, e.g.
``routes[0].upstreams: unknown upstream 'smsc9'``.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from smppcore.config import ConfigError, decode_config, load_toml_config, parse_host_port
from smppcore.constants import CommandStatus

from .auth import compile_ip_allowlist, is_valid_hash
from .http.tokens import is_valid_token_hash

if TYPE_CHECKING:
    import ssl

__all__ = [
    "server_tls_context",
    "ConfigError",
    "Listener",
    "Account",
    "Upstream",
    "Route",
    "MoRoute",
    "MO_ROUTE_OWNER",
    "StoreConfig",
    "LogConfig",
    "SecurityConfig",
    "HttpConfig",
    "HubConfig",
    "load_config",
    "config_from_dict",
    "check_environment",
    "config_warnings",
]

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
NonNeg = Annotated[float, msgspec.Meta(ge=0)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
Digits = Annotated[str, msgspec.Meta(pattern=r"^[0-9]*$")]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Listener(_Strict):
    """Where ESMEs connect."""

    host: str = "127.0.0.1"
    port: Port = 2775
    tls_cert: str | None = None
    tls_key: str | None = None
    max_pdu_size: Annotated[int, msgspec.Meta(ge=64, le=16 * 1024 * 1024)] = 65536
    bind_timeout: Positive = 30.0
    enquire_link_interval: NonNeg = 60.0
    max_connections: PositiveInt = 1000
    max_connections_per_ip: NonNegInt = 100  # 0: no limit
    max_unbound: NonNegInt = 100  # connections not bound yet; the oldest idle one makes room; 0: no limit
    max_unanswered: PositiveInt = 1000  # submits read, not answered yet, per connection: then it stops reading


class Account(_Strict):
    """An ESME customer."""

    system_id: Annotated[str, msgspec.Meta(min_length=1, max_length=15)]
    password_hash: str = ""  # scrypt$... from `smpphub hash-password`, or plain$... for development
    password: str | None = None  # development only: same as password_hash = "plain$<password>"
    bind_types: list[Literal["tx", "rx", "trx"]] = msgspec.field(default_factory=lambda: ["tx", "rx", "trx"])
    allowed_ips: list[str] = []
    max_binds: PositiveInt = 10
    max_rate: NonNeg = 0.0  # messages per second; 0: unlimited
    source_addrs: list[str] = []  # exact, or "re:<regex>"; empty: any
    route_group: str = "default"
    receipt_hold: Positive = 3 * 86400.0  # seconds a receipt/MO waits for a receiver bind
    window: PositiveInt = 100  # deliver_sm in flight towards this ESME
    # the HTTP API ([http]): tokens as `sha256$...` from `smpphub api-token`; receipts and MO of
    # this account are POSTed to webhook_url (when set), signed with webhook_secret
    api_tokens: list[str] = []
    webhook_url: str | None = None
    webhook_secret: str = ""

    @property
    def credential(self) -> str:
        """What the bind's password is checked against."""
        return f"plain${self.password}" if self.password is not None else self.password_hash


class Upstream(_Strict):
    """An SMSC the hub sends to."""

    name: Annotated[str, msgspec.Meta(min_length=1)]
    host: str
    port: Port
    system_id: str
    password: str = ""
    system_type: str = ""
    bind_type: Literal["tx", "trx"] = "trx"
    binds: PositiveInt = 1
    window: PositiveInt = 100
    max_rate: NonNeg = 0.0  # messages per second across its binds; 0: unlimited
    enquire_link_interval: NonNeg = 30.0
    response_timeout: Positive = 30.0
    reconnect_initial: Positive = 0.5
    reconnect_max: Positive = 30.0
    tls: bool = False
    max_attempts: PositiveInt = 3  # temporary failures on this upstream before failing over
    # How this SMSC writes message ids: 16 when submit_sm_resp gives hex and the
    # receipt decimal (or the reverse), so both are compared as numbers. 0: as text.
    submit_id_base: Literal[0, 10, 16] = 0
    receipt_id_base: Literal[0, 10, 16] = 0


class Route(_Strict):
    """Destination prefix -> upstreams, in failover order or weighted."""

    prefix: Digits
    upstreams: list[str] = []
    weights: dict[str, Positive] = {}
    accounts: list[str] = []  # only for these accounts (empty: all)
    route_group: str | None = None  # only for accounts of this group
    source_prefix: str | None = None


class DefaultRoute(_Strict):
    upstreams: list[str] = []
    weights: dict[str, Positive] = {}


class MoRoute(_Strict):
    """Mobile-originated messages to ``prefix`` (a short code or a prefix) go to ``account``, or to
    ``webhook``: POSTed as JSON signed with ``webhook_secret``, the way an account's ``webhook_url``
    gets them (router.http.webhooks), durable until the URL answers 2xx, retried as ``[http]``'s
    ``webhook_retry_*`` say (their defaults without an ``[http]`` listener) for three days."""

    prefix: Digits
    account: str | None = None
    webhook: str | None = None
    webhook_secret: str = ""  # without one (deprecated) the webhook goes unsigned

    @property
    def webhook_owner(self) -> str:
        """Whom this route's MO are stored for (``Delivery.account``) on their way to ``webhook``:
        longer than any system_id (15 characters at most), so never an account's."""
        return MO_ROUTE_OWNER + self.prefix


#: what :attr:`MoRoute.webhook_owner` starts with
MO_ROUTE_OWNER = "mo_routes.prefix="


class StoreConfig(_Strict):
    """``[store]``: where messages are kept, and for how long, in time and in bytes.

    Finished messages (no receipt still owed) stay ``keep_final`` seconds, for
    query_sm. ``max_size_mb`` also bounds the disk: when the store's pages in use
    plus its WAL pass it, housekeeping (every minute) forgets the oldest finished
    messages with no receipt owed, whatever their age, until it is under again;
    open messages and receipts owed are never given up, so a store full of those
    can stay over it. The default 0 is no cap: a cap silently shortens what query_sm
    can see, which an operator should choose, not find out. Measured (a 215-byte
    submit_sm and a 230-byte receipt per row, 20,000 and 100,000 rows): a finished
    message takes ~680 bytes of file, so 1,000 MB holds ~1.5 million of them.

    New store files return the pages purges free to the file system (SQLite's
    incremental auto_vacuum); a file made before that keeps its size and reuses them.
    """

    backend: Literal["sqlite", "memory"] = "sqlite"
    path: str = "smpphub.db"
    synchronous: Literal["full", "normal"] = "full"
    keep_final: NonNeg = 7 * 86400.0  # seconds to keep finished messages (for query_sm)
    max_size_mb: NonNeg = 0.0  # MB (10**6 bytes) of disk past which the oldest finished messages go; 0: no cap


class LogConfig(_Strict):
    """``[log]``: what the hub writes about itself and about each message.

    At ``level = "debug"`` every step of every message is an event of its own
    (``message_accepted``, ``message_routed``, ``message_submitted``,
    ``receipt_received``, ...; keys ``message_id``, ``account``, ``upstream``...), so an
    operator can follow one message; at ``info`` they cost nothing.

    ``access_log`` is one line per message outcome, like Kannel's access-log: ``""``
    (off), ``"-"`` (as ``access`` events with the other logs, on stderr), or a file
    path (its own file, appended to; the directory must exist). Set once at start.
    ``summary_interval``: seconds between ``hub_summary`` lines (rates, queues,
    binds, upstreams); 0 turns them off. ``trace_messages``: how many recent messages
    keep every step they took in memory, for ``smpphub admin trace`` (0: none).
    """

    format: Literal["json", "console"] = "console"
    level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: str = ""
    summary_interval: NonNeg = 60.0
    # recent messages whose every step is kept in memory for the admin API's trace (router/trace.py); 0: off
    trace_messages: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 10_000

    def __post_init__(self) -> None:
        path = self.access_log
        if path in ("", "-"):
            return
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            problem = f"{path!r} is a directory"
        elif not os.path.isdir(folder):
            problem = f"no such directory {folder!r}"
        elif not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
            problem = f"{path!r} is not writable"
        else:
            return
        # LogConfig only lives at [log]: name the key the way _fail does
        raise msgspec.ValidationError(f"{problem} - at `$.log.access_log`")


class SecurityConfig(_Strict):
    """``[security]``: how binds that fail are answered, so passwords cannot be guessed cheaply.

    A failed bind (wrong password or unknown system_id) is answered after a delay that
    starts at ``failed_bind_delay`` and doubles with each further failure of the same
    source IP or system_id, up to ``failed_bind_delay_max``. ``lockout_failures``
    failures within ``lockout_window`` seconds lock that IP (or system_id) out for
    ``lockout_duration`` seconds: its binds get ESME_RBINDFAIL without a password check
    (an IP that bound as the system_id before is not locked out by the system_id's
    lockout). ``tracked_failures`` bounds how many IPs, and system_ids, are remembered.

    An unknown system_id gets the same answer as a wrong password, ESME_RINVPASWD (what
    Jasmin answers for both), after the same scrypt work, unless
    ``reveal_unknown_system_id`` (then ESME_RINVSYSID, without the scrypt work).

    Password checks (scrypt, ~50 ms of a core each) run ``password_checks`` at a time
    beside the event loop; at most ``password_check_queue`` more wait, and beyond that a
    bind is answered ESME_RBINDFAIL at once, so guessing cannot take the CPU from bound clients.

    A submit over its account's ``max_rate`` gets ESME_RTHROTTLED after
    ``throttled_answer_delay`` seconds, not at once: the answer owed counts against the
    listener's ``max_unanswered``, so a client flooding past its rate has at most that many
    submits read per delay, instead of as many as the kernel's socket buffers hold
    (0: answer at once).
    """

    reveal_unknown_system_id: bool = False
    throttled_answer_delay: NonNeg = 1.0
    failed_bind_delay: NonNeg = 0.1
    failed_bind_delay_max: NonNeg = 3.0
    lockout_failures: PositiveInt = 10
    lockout_window: Positive = 300.0
    lockout_duration: Positive = 300.0
    tracked_failures: PositiveInt = 10_000
    password_checks: PositiveInt = 1
    password_check_queue: NonNegInt = 32

    def __post_init__(self) -> None:
        if self.failed_bind_delay_max < self.failed_bind_delay:
            raise msgspec.ValidationError("must be at least failed_bind_delay - at `$.security.failed_bind_delay_max`")


class HttpConfig(_Strict):
    """``[http]``: the HTTP API's listener and its bounds (no ``[http]``: no HTTP listener).

    ``max_body_bytes`` bounds what one request may carry (a batch of 10,000 messages of
    160 characters is ~2.5 MB of JSON); ``max_connections`` the connections open at
    once (more are closed as they come); ``keepalive_timeout`` how long an idle
    keep-alive connection stays; ``request_timeout`` how long one request may take
    (answered 503 past it). ``max_batch`` bounds the messages of one POST (10,000 at
    most). An idempotent answer is kept ``idempotency_ttl`` seconds (in the store; the
    latest ``idempotency_keys`` in memory too). Webhooks: ``webhook_concurrency``
    POSTs at once, ``webhook_queue`` waiting in memory (the rest wait in the store),
    each given ``webhook_timeout`` seconds, retried with a back-off doubling from
    ``webhook_retry_initial`` to ``webhook_retry_max`` until a 2xx.
    ``admin_token`` (``sha256$...`` from ``smpphub api-token``) opens the admin sections.
    ``dashboard_clients``: live dashboards open at once (one more is answered 503).

    ``metrics_auth`` and ``dashboard_auth``: ``"none"`` (the default) serves ``/metrics``
    and the dashboard's page to anyone who reaches the listener; ``"token"`` asks for a
    token (``Authorization: Bearer``, or Basic with the token as password). ``/metrics``
    takes the admin token or ``metrics_token`` (``sha256$...``: a scrape-only token, so
    Prometheus' config holds no secret that could kick a bind); the page takes the admin
    token, as its event stream always did. The default stays "none" because turning it on
    by an upgrade would answer an existing scraper 401 and blind its monitoring without a
    word; the page holds no data (its events always need the admin token).
    """

    listen: str = "127.0.0.1:8080"
    tls_cert: str | None = None
    tls_key: str | None = None
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=256 * 1024 * 1024)] = 8 * 1024 * 1024
    max_connections: PositiveInt = 1000
    keepalive_timeout: Positive = 75.0
    request_timeout: Positive = 60.0
    max_batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 10_000
    idempotency_keys: PositiveInt = 100_000
    idempotency_ttl: Positive = 86400.0
    admin_token: str = ""
    webhook_concurrency: PositiveInt = 32
    webhook_queue: PositiveInt = 100_000
    webhook_timeout: Positive = 10.0
    webhook_retry_initial: Positive = 1.0
    webhook_retry_max: Positive = 600.0
    dashboard_clients: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 16
    metrics_auth: Literal["none", "token"] = "none"
    metrics_token: str = ""
    dashboard_auth: Literal["none", "token"] = "none"


class HubConfig(_Strict):
    listeners: list[Listener] = msgspec.field(default_factory=lambda: [Listener()])
    accounts: list[Account] = []
    upstreams: list[Upstream] = []
    routes: list[Route] = []
    default_route: DefaultRoute | None = None
    unroutable_status: str = "ESME_RINVDSTADR"
    mo_routes: list[MoRoute] = []
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    security: SecurityConfig = msgspec.field(default_factory=SecurityConfig)
    http: HttpConfig | None = None
    retry_initial: Positive = 1.0  # seconds before the first retry of a temporary failure
    retry_max: Positive = 300.0
    # memory: messages held (queued, waiting, in flight); beyond it, and for messages due
    # later than hold_horizon seconds, they wait in the store and come back as room frees
    max_held: PositiveInt = 100_000
    hold_horizon: Positive = 60.0
    # messages waiting in the store only; above it submits are refused with ESME_RMSGQFUL
    max_backlog: PositiveInt = 5_000_000
    # SENT messages kept in memory for their receipts (the rest are looked up in the store)
    max_awaiting_receipt: PositiveInt = 100_000
    # temporary failures of a segment on the upstream that took another segment of its
    # message, before it fails over after all (and the message is split between SMSCs)
    pinned_attempts: PositiveInt = 10
    default_validity: Positive = 2 * 86400.0  # seconds a message may wait when it names no validity
    # seconds SIGTERM's graceful drain may take in all (answers, in-flight submits, unbinds); then it exits
    drain_timeout: Positive = 10.0

    def __post_init__(self) -> None:
        _check(self)


def _fail(key: str, message: str) -> None:
    raise msgspec.ValidationError(f"{message} - at `$.{key}`")


def _check_host(key: str, host: str) -> None:
    """``host = "127.0.0.1:27761"`` would only fail when the hub resolves it: say so at load."""
    try:
        name, port = parse_host_port(host, allow_port_zero=True)
    except ConfigError:
        return  # not HOST:PORT (a plain name, an IPv4 or a bare IPv6 address): fine here
    _fail(key, f"{host!r} holds a port: write host = {name!r} and port = {port}")


def _check(cfg: HubConfig) -> None:
    if not cfg.listeners:
        _fail("listeners", "at least one listener is needed")
    addresses: dict[tuple[str, int], int] = {}
    for i, lst in enumerate(cfg.listeners):
        _check_host(f"listeners[{i}].host", lst.host)
        if lst.port:  # port 0 asks for any free port: two of them never clash
            first = addresses.setdefault((lst.host, lst.port), i)
            if first != i:
                _fail(f"listeners[{i}]", f"{lst.host}:{lst.port} is already listeners[{first}]")
        if (lst.tls_cert is None) != (lst.tls_key is None):
            _fail(f"listeners[{i}]", "tls_cert and tls_key go together")
        for key in ("tls_cert", "tls_key"):
            path = getattr(lst, key)
            if path is not None and not os.path.isfile(path):
                _fail(f"listeners[{i}].{key}", f"no such file {path!r}")
    seen: set[str] = set()
    for i, acc in enumerate(cfg.accounts):
        if acc.system_id in seen:
            _fail(f"accounts[{i}].system_id", f"duplicate account {acc.system_id!r}")
        seen.add(acc.system_id)
        if acc.password is not None:
            if acc.password_hash:
                _fail(f"accounts[{i}]", "give password_hash or password, not both")
            if len(acc.password) > 8:
                _fail(f"accounts[{i}].password", "SMPP passwords are at most 8 characters")
        elif not acc.password_hash:
            _fail(f"accounts[{i}].password_hash", "required (see `smpphub hash-password`)")
        elif not is_valid_hash(acc.password_hash):
            _fail(f"accounts[{i}].password_hash", "not a scrypt$... or plain$... hash")
        try:
            compile_ip_allowlist(acc.allowed_ips)
        except ValueError as exc:
            _fail(f"accounts[{i}].allowed_ips", str(exc))
        for j, pattern in enumerate(acc.source_addrs):
            if pattern.startswith("re:"):
                try:
                    re.compile(pattern[3:])
                except re.error as exc:
                    _fail(f"accounts[{i}].source_addrs[{j}]", f"bad regex: {exc}")
        for j, token in enumerate(acc.api_tokens):
            if not is_valid_token_hash(token):
                _fail(f"accounts[{i}].api_tokens[{j}]", "not a sha256$... token hash (see `smpphub api-token`)")
        if acc.webhook_url is not None:
            if not re.match(r"^https?://[^/\s]+", acc.webhook_url):
                _fail(f"accounts[{i}].webhook_url", "must be an http:// or https:// URL")
            if not acc.webhook_secret:
                _fail(f"accounts[{i}].webhook_secret", "required with webhook_url (webhooks are signed with it)")
    if cfg.http is not None:
        _check_http(cfg.http, addresses)
    names: set[str] = set()
    for i, up in enumerate(cfg.upstreams):
        if up.name in names:
            _fail(f"upstreams[{i}].name", f"duplicate upstream {up.name!r}")
        names.add(up.name)
        if not up.host.strip():
            _fail(f"upstreams[{i}].host", "required: the SMSC's name or address")
        _check_host(f"upstreams[{i}].host", up.host)
        if up.port == 0:
            _fail(f"upstreams[{i}].port", "an upstream needs the SMSC's real port (1 to 65535), not 0")
        if up.reconnect_max < up.reconnect_initial:
            _fail(f"upstreams[{i}].reconnect_max", "must be at least reconnect_initial")
    for i, route in enumerate(cfg.routes):
        _check_targets(f"routes[{i}]", route.upstreams, route.weights, names)
        for system_id in route.accounts:
            if system_id not in seen:
                _fail(f"routes[{i}].accounts", f"unknown account {system_id!r}")
    if cfg.default_route is not None:
        _check_targets("default_route", cfg.default_route.upstreams, cfg.default_route.weights, names)
    if _status(cfg.unroutable_status) is None:
        _fail("unroutable_status", f"unknown command_status {cfg.unroutable_status!r}")
    for i, mo in enumerate(cfg.mo_routes):
        if (mo.account is None) == (mo.webhook is None):
            _fail(f"mo_routes[{i}]", "give exactly one of account and webhook")
        if mo.account is not None and mo.account not in seen:
            _fail(f"mo_routes[{i}].account", f"unknown account {mo.account!r}")
        if mo.webhook is not None and not re.match(r"^https?://[^/\s]+", mo.webhook):
            _fail(f"mo_routes[{i}].webhook", "must be an http:// or https:// URL")
        if mo.webhook_secret and mo.webhook is None:
            _fail(f"mo_routes[{i}].webhook_secret", "only with webhook")


def _check_http(http: HttpConfig, smpp: dict[tuple[str, int], int]) -> None:
    try:
        host, port = parse_host_port(http.listen, allow_port_zero=True)
    except ConfigError as exc:
        _fail("http.listen", str(exc))
        return
    if port and (host, port) in smpp:
        _fail("http.listen", f"{http.listen} is already listeners[{smpp[(host, port)]}]")
    if (http.tls_cert is None) != (http.tls_key is None):
        _fail("http", "tls_cert and tls_key go together")
    for key in ("tls_cert", "tls_key"):
        path = getattr(http, key)
        if path is not None and not os.path.isfile(path):
            _fail(f"http.{key}", f"no such file {path!r}")
    for key in ("admin_token", "metrics_token"):
        if getattr(http, key) and not is_valid_token_hash(getattr(http, key)):
            _fail(f"http.{key}", "not a sha256$... token hash (see `smpphub api-token`)")
    if http.metrics_token and http.metrics_auth != "token":
        _fail("http.metrics_token", 'only with metrics_auth = "token" (else /metrics asks for no token)')
    if http.metrics_auth == "token" and not (http.admin_token or http.metrics_token):
        _fail("http.metrics_auth", '"token" needs metrics_token or admin_token (no token would open /metrics)')
    if http.dashboard_auth == "token" and not http.admin_token:
        _fail("http.dashboard_auth", '"token" needs admin_token (the token that opens the dashboard)')


def _check_targets(key: str, upstreams: list[str], weights: dict[str, float], names: set[str]) -> None:
    if bool(upstreams) == bool(weights):
        _fail(key, "give exactly one of upstreams (failover order) and weights (load balancing)")
    for name in [*upstreams, *weights]:
        if name not in names:
            _fail(f"{key}.{'upstreams' if upstreams else 'weights'}", f"unknown upstream {name!r}")


def check_environment(cfg: HubConfig) -> None:
    """What starting the hub would fail on outside the file itself: raises ConfigError.

    ``serve --check`` and ``serve`` both call it before anything starts: the SQLite
    store's folder must exist and be writable (and the path must not be a directory),
    and each listener's TLS certificate and key must load. Listener ports are not
    tried: ``--check`` is also run beside a hub that holds them, before a reload.
    """
    if cfg.store.backend == "sqlite":
        from .store.sqlite import path_problem

        problem = path_problem(cfg.store.path)
        if problem is not None:
            raise ConfigError(f"store.path: cannot open the store {cfg.store.path}: {problem}")
    tls = [(f"listeners[{i}]", lst.tls_cert, lst.tls_key) for i, lst in enumerate(cfg.listeners)]
    if cfg.http is not None:
        tls.append(("http", cfg.http.tls_cert, cfg.http.tls_key))
    for key, cert, private in tls:
        if cert is not None and private is not None:
            import ssl

            try:
                server_tls_context(cert, private)
            except OSError as exc:  # ssl.SSLError is one
                reason = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else (exc.strerror or str(exc))
                raise ConfigError(f"{key}: tls_cert and tls_key do not load as a certificate and its key "
                                  f"({reason})") from None


def config_warnings(cfg: HubConfig) -> list[str]:
    """Parts of a valid configuration that can never take effect, one line each.

    Routes are tried longest prefix first and, among equal prefixes, in file order;
    the first whose conditions hold wins. So:

    - a route whose ``accounts`` and ``route_group`` leave no configured account
      (``route_group = "premium"`` that no account has, or listed accounts all in
      other groups) never matches;
    - a route after one with the same prefix that accepts every account it accepts
      and every source it accepts (no ``source_prefix``, or a shorter one it starts
      with) never matches: the earlier one always wins;
    - ``default_route`` is never used when a route with the empty prefix accepts
      every account and source;
    - an MO route after one with the same prefix is never used;
    - an MO route's webhook without a webhook_secret goes unsigned (deprecated: kept so
      configurations from before signing still load);
    - with no accounts at all no ESME can bind, so no route is used.
    """
    found: list[str] = []
    if not cfg.accounts and cfg.routes:
        found.append("accounts: none configured, so no ESME can bind and no route is used")
    groups = {a.system_id: a.route_group for a in cfg.accounts}

    def users(route: Route) -> frozenset[str]:
        return frozenset(
            name for name, group in groups.items()
            if (not route.accounts or name in route.accounts)
            and (route.route_group is None or route.route_group == group)
        )

    def covers_source(first: Route, later: Route) -> bool:
        if first.source_prefix is None:
            return True
        return later.source_prefix is not None and later.source_prefix.startswith(first.source_prefix)

    seen: dict[str, list[int]] = {}
    for j, route in enumerate(cfg.routes):
        earlier = seen.setdefault(route.prefix, [])
        earlier.append(j)
        mine = users(route)
        if cfg.accounts and not mine:
            found.append(f"routes[{j}]: never matches: no account has route_group {route.route_group!r}"
                         f"{' among ' + ', '.join(route.accounts) if route.accounts else ''}")
            continue
        for i in earlier[:-1]:
            first = cfg.routes[i]
            if mine <= users(first) and covers_source(first, route):
                found.append(f"routes[{j}]: never matches: routes[{i}] has the same prefix {route.prefix!r}, "
                             "comes first and accepts every account and source this one does")
                break
    if cfg.default_route is not None:
        everyone = frozenset(groups)
        for i, route in enumerate(cfg.routes):
            if route.prefix == "" and route.source_prefix is None and users(route) >= everyone:
                found.append(f"default_route: never used: routes[{i}] has the empty prefix and accepts every account")
                break
    mo_first: dict[str, int] = {}
    for j, mo in enumerate(cfg.mo_routes):
        i = mo_first.setdefault(mo.prefix, j)
        if i != j:
            found.append(f"mo_routes[{j}]: never used: mo_routes[{i}] has the same prefix {mo.prefix!r}")
        if mo.webhook is not None and not mo.webhook_secret:
            found.append(f"mo_routes[{j}].webhook_secret: not set (deprecated): its MO webhooks go unsigned; "
                         "set one to have them signed (Smpphub-Signature)")
    return found


def _status(name: str) -> int | None:
    try:
        return int(CommandStatus[name.upper()])
    except KeyError:
        try:
            return int(name, 0)
        except ValueError:
            return None


def unroutable_status(cfg: HubConfig) -> int:
    status = _status(cfg.unroutable_status)
    assert status is not None  # checked at load
    return status


def config_from_dict(data: dict[str, object]) -> HubConfig:
    return decode_config(data, HubConfig)


def load_config(path: str) -> HubConfig:
    return load_toml_config(path, HubConfig)


def server_tls_context(cert: str, key: str | None) -> ssl.SSLContext:
    """The TLS context a listener (SMPP or HTTP) serves with: its certificate and key, loaded
    (``check`` loads it the same way, so a listener that passed the check starts)."""
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
