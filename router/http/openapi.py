"""``GET /v1/openapi.json``: the API's OpenAPI 3.1 document, made from the msgspec types that validate it.

The schemas are :func:`msgspec.json.schema_components` of :mod:`.schema`'s classes,
so the document cannot drift from what the server accepts and answers; the paths
below only say which type goes where and which statuses each operation has. The
test suite runs schemathesis over it against a live hub (tests/test_http_openapi.py).
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from .errors import ErrorBody
from .schema import BatchIn, CancelResult, MessageIn, MessageOut, MessagePage, SendResult
from .view import HubView

__all__ = ["register", "document"]

_REF = "#/components/schemas/{name}"


def _ref(cls: type) -> dict[str, str]:
    return {"$ref": _REF.format(name=cls.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    words = {400: "the body is not JSON, or not an object", 401: "no API token, or an unknown one",
             403: "the token may not do this", 404: "no such message of this account",
             409: "the message can no longer be cancelled", 413: "the body is over max_body_bytes",
             422: "a field is invalid: error.field names it", 429: "over the account's max_rate",
             503: "the hub is stopping, its queue is full or its store failed"}
    return {str(s): _json(_ref(ErrorBody), words[s]) for s in statuses}


def document() -> dict[str, Any]:
    """The OpenAPI document (a dict, as JSON would have it)."""
    _, components = msgspec.json.schema_components(
        [MessageIn, BatchIn, SendResult, MessageOut, MessagePage, CancelResult, ErrorBody], ref_template=_REF)
    message_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    auth = ("401", "403")
    paths: dict[str, Any] = {
        "/v1/messages": {
            "post": {
                "summary": "Send one message, or a batch of up to 10,000",
                "operationId": "sendMessages",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                "schema": {"type": "string", "minLength": 1, "maxLength": 255}}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"oneOf": [_ref(MessageIn), _ref(BatchIn)]}}}},
                "responses": {"202": _json(_ref(SendResult), "accepted (a batch: each message accepted or "
                                           "rejected on its own)"),
                              **_errors(400, 401, 403, 413, 422, 429, 503)},
            },
            "get": {
                "summary": "The account's messages, newest first",
                "operationId": "listMessages",
                "parameters": [
                    {"name": "state", "in": "query", "schema": {"type": "string", "enum": [
                        "scheduled", "queued", "parked", "in_flight", "sent", "delivered", "undeliverable",
                        "expired", "rejected", "cancelled"]}},
                    {"name": "to", "in": "query", "schema": {"type": "string", "pattern": r"^\+?[0-9]{1,20}$"}},
                    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                    {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                ],
                "responses": {"200": _json(_ref(MessagePage), "a page of messages"), **_errors(401, 403, 422)},
            },
        },
        "/v1/messages/{id}": {
            "get": {
                "summary": "One message: state, route, upstream id, timestamps, receipts",
                "operationId": "getMessage",
                "parameters": [message_id],
                "responses": {"200": _json(_ref(MessageOut), "the message"), **_errors(401, 403, 404)},
            },
            "delete": {
                "summary": "Cancel a message that has not left",
                "operationId": "cancelMessage",
                "parameters": [message_id],
                "responses": {"200": _json(_ref(CancelResult), "cancelled"), **_errors(401, 403, 404, 409)},
            },
        },
    }
    for operations in paths.values():
        for operation in operations.values():
            assert all(s in operation["responses"] for s in auth)
    return {
        "openapi": "3.1.0",
        "info": {"title": "smpphub HTTP API", "version": "1"},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}],
    }


async def _openapi(request: web.Request) -> web.Response:
    return web.Response(body=msgspec.json.encode(document()), content_type="application/json")


def register(app: web.Application, hub: HubView) -> None:
    app.router.add_get("/v1/openapi.json", _openapi)
