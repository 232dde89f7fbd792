"""An alert_notification from an upstream SMSC is not an MO.

smppcore's client hands deliver_sm, data_sm and alert_notification alike to the
hub's on_message handler. The dispatcher took every one of them for a receipt or an
MO, so an alert_notification (no destination_addr) raised AttributeError in the MO
path, logged as a handler failure for each alert. Narrowing the dispatcher's PDU
types found it: alerts are now acknowledged as nothing to route.
"""

from __future__ import annotations

from hubkit import hub_config, running_hub
from structlog.testing import capture_logs

from smppcore.pdus import AlertNotification


async def test_alert_notification_from_an_upstream_is_ignored_not_routed_as_mo(smsc):
    config = hub_config({"uk": smsc}, [{"prefix": "44", "upstreams": ["uk"]}],
                        mo_routes=[{"prefix": "", "account": "acme"}])
    async with running_hub(config) as hub:
        pool = hub.dispatcher.pools["uk"]
        alert = AlertNotification(source_addr="447700900001", esme_addr="hub")
        with capture_logs() as logs:
            status = pool.on_deliver_pdu(alert)  # what the upstream client calls for every incoming message
        assert status == 0
        assert [e["event"] for e in logs] == ["upstream_alert_ignored"]
        assert logs[0]["upstream"] == "uk" and logs[0]["command"] == "alert_notification"
        stats = hub.dispatcher.stats
        assert stats.mo_in == 0 and stats.mo_unroutable == 0 and stats.receipts_in == 0
        assert hub.deliveries.pending() == 0
