"""What the HTTP sections see of the hub: a Protocol, so no section holds ``Hub`` itself.

Sections are registered with this view (see :mod:`.server`) and read it at request
time, so a reload (``Hub.reload``) is seen by the next request. The hub is the one
implementation; a test may give a section a smaller fake.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from ..config import HttpConfig

if TYPE_CHECKING:
    from smppcore.server import SmscConnection

    from ..acceptor import Acceptor
    from ..config import HubConfig
    from ..delivery import Deliveries
    from ..dispatch import Dispatcher
    from ..esme import EsmeHandler
    from ..hub import Traffic
    from ..routing import RouteTable
    from ..store import Store
    from .webhooks import WebhookSender

__all__ = ["HubView", "HUB", "HTTP_CONFIG"]


class HubView(Protocol):
    """The parts of a running hub the HTTP sections use."""

    @property
    def config(self) -> HubConfig: ...

    @property
    def store(self) -> Store: ...

    @property
    def handler(self) -> EsmeHandler: ...

    @property
    def acceptor(self) -> Acceptor: ...

    @property
    def dispatcher(self) -> Dispatcher: ...

    @property
    def deliveries(self) -> Deliveries: ...

    @property
    def routes(self) -> RouteTable: ...

    @property
    def webhooks(self) -> WebhookSender | None: ...

    def status(self) -> dict[str, object]: ...

    def traffic(self) -> Traffic: ...

    def binds_by_account(self) -> dict[str, int]: ...

    def esme_connections(self) -> list[SmscConnection]: ...

    def reload(self, config: HubConfig) -> None: ...


#: the application key under which every section finds the hub
HUB: web.AppKey[HubView] = web.AppKey("smpphub.hub", HubView)
#: the application key of the server's own settings ([http])
HTTP_CONFIG: web.AppKey[HttpConfig] = web.AppKey("smpphub.http_config", HttpConfig)
