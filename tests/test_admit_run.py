"""EsmeHandler.admit_run judges a run of submits as the general path judges each one.

admit_run asks the hub's own refusal (not accepting, backlog full) once for a run, asks
the account's limits (rate, sources) only when it has some, and gives a submit that
names no time the default times without calling _times. Checked here against the
general path (``_check``, then the route, then ``_times``, for each submit) over
generated runs of submit_sm and data_sm, with and without times (valid, invalid,
past), from accounts with and without limits, while the hub accepts and while it does not.
"""

from __future__ import annotations

import time
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smppcore import DataSm, SubmitSm
from smpphub.router.acceptor import Acceptor
from smpphub.router.config import Account, HubConfig, Route, Upstream
from smpphub.router.delivery import Deliveries
from smpphub.router.dispatch import Dispatcher
from smpphub.router.esme import EsmeHandler
from smpphub.router.routing import RouteTable, normalise_destination
from smpphub.router.store.memory import MemoryStore
from smpphub.router.upstream import Outgoing

NOW = 1_800_000_000.0


class NoReceivers:
    def receiver_bound(self, conn: object) -> None: ...
    def receiver_gone(self, conn: object) -> None: ...
    def receivers(self, account: str) -> list[object]:
        return []


def handler(max_rate: float, sources: list[str], accepting: bool) -> EsmeHandler:
    config = HubConfig(
        upstreams=[Upstream(name="u", host="127.0.0.1", port=1, system_id="hub")],
        accounts=[Account(system_id="acme", password="pw", max_rate=max_rate, source_addrs=sources)],
        routes=[Route(prefix="44", upstreams=["u"])],
    )
    store = MemoryStore()
    dispatcher = Dispatcher(config, store, Deliveries(store, NoReceivers()))  # type: ignore[arg-type]
    made = EsmeHandler(config, store, Acceptor(store, dispatcher), RouteTable.build(config), binds=None)  # type: ignore[arg-type]
    made.accepting = accepting
    return made


TIMES = ["", "", "", "000001000000000R", "991231235959000+", "010101000000000+", "garbage", "000000000000000R"]
submits = st.one_of(
    st.builds(lambda d, s, sched, valid: SubmitSm(destination_addr=d, source_addr=s, schedule_delivery_time=sched,
                                                 validity_period=valid, short_message=b"hi"),
              st.sampled_from(["447700900123", "33612345678", "+447700900123"]), st.sampled_from(["123", "999"]),
              st.sampled_from(TIMES), st.sampled_from(TIMES)),
    st.builds(lambda d: DataSm(destination_addr=d), st.sampled_from(["447700900123", "1"])),
)


def general(made: EsmeHandler, pdu: SubmitSm | DataSm) -> tuple[float, float] | int:
    """What the general path says of one submit: its refusal, or its (due, expires_at)."""
    account = made.accounts["acme"]
    status = made._check(pdu, account)
    if status:
        return status
    dest = normalise_destination(pdu.destination_addr, pdu.dest_addr_ton)
    if made.routes.lookup(dest, account="acme", source_addr=pdu.source_addr, group=account.cfg.route_group) is None:
        return made.unroutable
    return made._times(pdu, NOW)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(submits, min_size=1, max_size=8), st.sampled_from([0.0, 2.0]),
       st.sampled_from([[], ["123"]]), st.booleans())
def test_a_run_is_judged_as_each_submit_alone(run: list[SubmitSm | DataSm], max_rate: float, sources: list[str],
                                              accepting: bool) -> None:
    with mock.patch.object(time, "time", return_value=NOW):
        reference = handler(max_rate, sources, accepting)
        expected = [general(reference, pdu) for pdu in run]
        got = handler(max_rate, sources, accepting).admit_run("acme", run, [None] * len(run))
    assert [out if isinstance(out, int) else (out.row.due, out.row.expires_at) for out in got] == expected
    assert all(isinstance(out, int) or isinstance(out, Outgoing) for out in got)
