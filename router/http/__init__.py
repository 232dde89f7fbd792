"""The hub's HTTP side: the application API, Kannel's sendsms, webhooks, and the
operator's sections (metrics, admin, dashboard) on one aiohttp server (:mod:`.server`)."""
