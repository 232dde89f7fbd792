"""``GET /metrics``: the hub in Prometheus' text format, read when scraped.

Nothing here runs between scrapes. The hub keeps plain counts where it already
handles each message (:mod:`router.stats`: ints, ``Counter`` increments and a
``bisect`` per latency, no locks, no per-message label lookups), and its existing
state (pools, the message table, binds, outboxes); :func:`read_hub` reads them all
at once into a :class:`HubReading`, and :class:`HubCollector` turns that into metric
families for a registry of the hub's own (never prometheus-client's global one: two
hubs in one process, as in the tests, keep their numbers apart). prometheus-client's
Counter/Histogram objects on the hot path would cost a lock and a label lookup per
count, a few percent of a core at the hub's rates; a scrape costs one pass over the
messages held in memory (at most ``max_held``) for the per-account queue depths.

The dashboard (:mod:`.dashboard`) reads the same :class:`HubReading`.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator

import msgspec
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from smppcore import status_name

from ..stats import Histogram, HubStats
from ..upstream import NO_ANSWER
from .auth import require_operator
from .view import HubView

__all__ = ["AccountReading", "HubCollector", "HubReading", "UpstreamReading", "read_hub", "register"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AccountReading(msgspec.Struct, kw_only=True):
    """One account's totals since start, and its queues and binds now."""

    accepted: int = 0  # segments stored and answered
    rejected: dict[str, int] = {}  # submits refused, by command_status name
    sent: int = 0  # segments an upstream accepted
    finals: dict[str, int] = {}  # messages that reached a final state, by state
    held: int = 0  # messages in memory now (queued, waiting, in flight)
    pending: int = 0  # receipts and MO waiting for this account's receiver
    binds: int = 0  # bound connections now


class UpstreamReading(msgspec.Struct, kw_only=True):
    """One upstream SMSC: its state now, its queue, and its answers since start."""

    mode: str  # "running", "paused" or "draining" (what an operator set)
    available: bool  # takes messages: running or paused, at least one bind up
    binds_up: int
    binds: int
    queued: int
    in_flight: int
    answers: dict[str, int] = {}  # submits answered, by command_status name ("no_answer": timeout, lost)

    @property
    def accepted(self) -> int:
        return self.answers.get("ESME_ROK", 0)


class HubReading(msgspec.Struct, kw_only=True):
    """Everything :func:`read_hub` reads, at ``at`` (unix time)."""

    at: float
    accounts: dict[str, AccountReading]
    upstreams: dict[str, UpstreamReading]
    receipts_in: int
    receipts_unmatched: int
    receipts_duplicate: int
    mo_in: int
    mo_unroutable: int
    delivered: int  # receipts and MO acknowledged by ESMEs (or given up on)
    held_by_state: dict[str, int]
    backlog: int  # messages waiting in the store only


def _names(counts: collections.Counter[int]) -> dict[str, int]:
    return {("no_answer" if status == NO_ANSWER else status_name(status)): n for status, n in counts.items()}


def read_hub(hub: HubView) -> HubReading:
    """The hub's counts and state now, in one pass."""
    stats: HubStats = hub.dispatcher.stats
    dispatcher = hub.dispatcher
    accounts: dict[str, AccountReading] = {}

    def account(name: str) -> AccountReading:
        reading = accounts.get(name)
        if reading is None:
            reading = accounts[name] = AccountReading()
        return reading

    for acc in hub.config.accounts:
        account(acc.system_id).pending = hub.deliveries.pending(acc.system_id)
    for name, n in stats.accepted.items():
        account(name).accepted = n
    for name, n in stats.sent.items():
        account(name).sent = n
    for name, refused in stats.refused.items():
        account(name).rejected = {status_name(status): n for status, n in refused.items()}
    for name, finals in stats.finals.items():
        account(name).finals = dict(finals)
    held = collections.Counter(row.account for row in dispatcher.table.rows.values())
    for name, n in held.items():
        account(name).held = n
    for name, n in hub.binds_by_account().items():
        account(name).binds = n
    upstreams = {
        name: UpstreamReading(mode=pool.mode, available=pool.available, binds_up=pool.links_up,
                              binds=len(pool.links), queued=len(pool.queue), in_flight=pool.in_flight,
                              answers=_names(pool.answers))
        for name, pool in dispatcher.pools.items()
    }
    return HubReading(
        at=time.time(), accounts=accounts, upstreams=upstreams,
        receipts_in=stats.receipts_in, receipts_unmatched=stats.receipts_unmatched,
        receipts_duplicate=stats.receipts_duplicate, mo_in=stats.mo_in,
        mo_unroutable=stats.mo_unroutable, delivered=hub.deliveries.delivered,
        held_by_state=dispatcher.table.counts(), backlog=dispatcher.backlog.size,
    )


def _histogram(name: str, doc: str, histogram: Histogram) -> HistogramMetricFamily:
    bounds = [*(f"{b:g}" for b in histogram.bounds), "+Inf"]
    buckets = list(zip(bounds, (float(n) for n in histogram.cumulative()), strict=True))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=histogram.total)


class HubCollector(Collector):
    """The hub's metric families, read at each scrape (see the module docstring)."""

    def __init__(self, hub: HubView) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        r = read_hub(hub)
        stats: HubStats = hub.dispatcher.stats
        accepted = CounterMetricFamily("smpphub_messages_accepted", "Segments stored and answered with a message_id",
                                       labels=["account"])
        rejected = CounterMetricFamily("smpphub_messages_rejected", "Submits refused, by command_status",
                                       labels=["account", "status"])
        sent = CounterMetricFamily("smpphub_messages_sent", "Segments an upstream SMSC accepted", labels=["account"])
        finals = CounterMetricFamily("smpphub_messages_final", "Messages that reached a final state",
                                     labels=["account", "state"])
        held = GaugeMetricFamily("smpphub_account_queue_depth", "Messages held in memory (queued, waiting, in flight)",
                                 labels=["account"])
        pending = GaugeMetricFamily("smpphub_account_deliveries_pending",
                                    "Receipts and MO waiting for the account's receiver", labels=["account"])
        binds = GaugeMetricFamily("smpphub_binds", "Bound ESME connections", labels=["account"])
        for name, a in sorted(r.accounts.items()):
            accepted.add_metric([name], a.accepted)
            sent.add_metric([name], a.sent)
            for status, n in sorted(a.rejected.items()):
                rejected.add_metric([name, status], n)
            for state, n in sorted(a.finals.items()):
                finals.add_metric([name, state], n)
            held.add_metric([name], a.held)
            pending.add_metric([name], a.pending)
            binds.add_metric([name], a.binds)
        yield from (accepted, rejected, sent, finals, held, pending, binds)

        answers = CounterMetricFamily("smpphub_upstream_answers", "Submit answers from upstream SMSCs, by status "
                                      "(no_answer: timeout or connection lost)", labels=["upstream", "status"])
        queue = GaugeMetricFamily("smpphub_upstream_queue_depth", "Messages waiting for the upstream's window or rate",
                                  labels=["upstream"])
        in_flight = GaugeMetricFamily("smpphub_upstream_in_flight", "Submits written, not answered yet",
                                      labels=["upstream"])
        up = GaugeMetricFamily("smpphub_upstream_binds_up", "Binds to the upstream that are up", labels=["upstream"])
        available = GaugeMetricFamily("smpphub_upstream_available", "1 when the upstream takes messages",
                                      labels=["upstream"])
        mode = GaugeMetricFamily("smpphub_upstream_mode", "What an operator set (1 for the current one)",
                                 labels=["upstream", "mode"])
        for name, u in sorted(r.upstreams.items()):
            for status, n in sorted(u.answers.items()):
                answers.add_metric([name, status], n)
            queue.add_metric([name], u.queued)
            in_flight.add_metric([name], u.in_flight)
            up.add_metric([name], u.binds_up)
            available.add_metric([name], 1 if u.available else 0)
            for m in ("running", "paused", "draining"):
                mode.add_metric([name, m], 1 if u.mode == m else 0)
        yield from (answers, queue, in_flight, up, available, mode)

        yield CounterMetricFamily("smpphub_receipts_in", "Receipts from upstreams matched to a message",
                                  value=r.receipts_in)
        yield CounterMetricFamily("smpphub_receipts_unmatched", "Receipts from upstreams matching no message",
                                  value=r.receipts_unmatched)
        yield CounterMetricFamily("smpphub_receipts_duplicate", "Receipts for a message already final",
                                  value=r.receipts_duplicate)
        yield CounterMetricFamily("smpphub_mo_in", "MO messages from upstreams routed to an account or webhook",
                                  value=r.mo_in)
        yield CounterMetricFamily("smpphub_mo_unroutable", "MO messages with no MO route", value=r.mo_unroutable)
        yield CounterMetricFamily("smpphub_delivered_to_esme", "Receipts and MO acknowledged by ESMEs",
                                  value=r.delivered)
        by_state = GaugeMetricFamily("smpphub_messages_held", "Messages in memory by lifecycle state",
                                     labels=["state"])
        for state, n in sorted(r.held_by_state.items()):
            by_state.add_metric([state], n)
        yield by_state
        yield GaugeMetricFamily("smpphub_backlog", "Messages waiting in the store only", value=r.backlog)

        yield _histogram("smpphub_submit_latency_seconds", "From accepted to accepted by an upstream",
                         stats.submit_latency)
        yield _histogram("smpphub_receipt_latency_seconds", "From accepted to its final receipt",
                         stats.receipt_latency)
        yield _histogram("smpphub_store_commit_seconds", "One group commit of accepted messages", stats.store_commit)
        yield _histogram("smpphub_store_commit_messages", "Messages per group commit", stats.store_batch)

        hooks = hub.webhooks  # router/http/webhooks.py counts its own; None: no [http], no webhooks
        if hooks is not None:
            yield CounterMetricFamily("smpphub_webhook_delivered", "Webhooks answered 2xx", value=hooks.sent)
            yield CounterMetricFamily("smpphub_webhook_retries", "Webhook attempts that failed and are tried again",
                                      value=hooks.retries)
            yield CounterMetricFamily("smpphub_webhook_dropped", "Webhooks given up (past the account's receipt_hold)",
                                      value=hooks.dropped)
            yield CounterMetricFamily("smpphub_webhook_overflow", "Webhooks left in the store for the next start "
                                      "(the queue in memory was full)", value=hooks.overflow)


def register(app: web.Application, hub: HubView) -> None:
    """``GET /metrics``: with ``[http] metrics_auth = "none"`` (the default) for anyone who reaches
    the listener, with ``"token"`` for the admin token or ``metrics_token`` (:func:`.auth.require_operator`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(hub))

    async def metrics(request: web.Request) -> web.Response:
        require_operator(request, "metrics")
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/metrics", metrics)
