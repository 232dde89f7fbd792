"""/v1/openapi.json: generated from the msgspec types, served by the hub, and held to by schemathesis.

schemathesis reads the document and throws requests made from it (and from its
edges) at a live hub; every answer must be documented, match its schema and never
be a 5xx. The run is short and deterministic: a fixed number of examples per
operation, derandomized, no example database.
"""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from httpkit import ACME_TOKEN, http_client, http_hub_config, running_hub
from hubkit import simulator
from hypothesis import HealthCheck, Phase, given, settings

ROUTES = [{"prefix": "", "upstreams": ["uk"]}]
EXAMPLES = 15
#: what every answer must be: never a 5xx, a documented status, a body matching its schema, with its
#: content type; and a request outside the schema must be refused. (A request the schema allows may
#: still be refused by the hub's own rules, a route or a time, so "positive data accepted" is not asked.)
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.negative_data_rejection,
]


@pytest.fixture
async def hub():
    sim = await simulator()
    try:
        async with running_hub(http_hub_config({"uk": sim}, ROUTES)) as hub:
            yield hub
    finally:
        await sim.close()


async def test_the_document_is_served_and_names_every_operation(hub):
    async with http_client(hub, token=None) as http:
        async with http.get("/v1/openapi.json") as resp:
            assert resp.status == 200
            doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {"/v1/messages", "/v1/messages/{id}"}
    assert doc["components"]["schemas"]["MessageIn"]["required"] == ["to", "text"]


def _run(doc: dict, base_url: str) -> list[str]:
    """schemathesis over every operation (in a thread: its client is blocking); the failures, as lines."""
    schema = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            try:
                case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {ACME_TOKEN}"},
                                       checks=CHECKS)
            except Exception as exc:  # noqa: BLE001 - collected, reported together
                failures.append(f"{case.operation.label}: {type(exc).__name__}: {str(exc)[:400]}")

        check()
    return failures


async def test_schemathesis_finds_nothing(hub):
    async with http_client(hub, token=None) as http:
        async with http.get("/v1/openapi.json") as resp:
            doc = await resp.json()
    failures = await asyncio.to_thread(_run, doc, hub.http.url)
    assert not failures, "\n".join(failures[:10])
