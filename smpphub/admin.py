"""``smpphub admin``: the hub's admin API from a terminal.

Each subcommand is one request to a running hub's ``[http]`` listener with the admin
token (``--token``, or ``SMPPHUB_ADMIN_TOKEN``; ``--url``, or ``SMPPHUB_ADMIN_URL``,
default http://127.0.0.1:8080) and prints the answer for a person, or as it came with
``--json``. Failures are one line on stderr: exit 2 for a bad argument or file, 1 when
the hub cannot be reached or refuses (the line carries its status, field and message).
Plain ``urllib``: a command run by hand should start fast and needs no event loop.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from smppcore.config import ConfigError

__all__ = ["add_admin_arguments", "cmd_admin", "AdminError"]

DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN_VARIABLE = "SMPPHUB_ADMIN_TOKEN"
URL_VARIABLE = "SMPPHUB_ADMIN_URL"
#: seconds one request may take (an unbind waits for the ESME's answer up to 2 s)
TIMEOUT = 15.0


class AdminError(Exception):
    """The hub could not be reached or refused the request: one line, exit status 1."""


# --- arguments -----------------------------------------------------------------------------------


def add_admin_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help=f"the hub's [http] address (default: ${URL_VARIABLE} or {DEFAULT_URL})")
    p.add_argument("--token", help=f"the admin token (default: ${TOKEN_VARIABLE})")
    p.add_argument("--cafile", metavar="FILE", help="CA certificates to verify an https:// hub with (self-signed)")
    p.add_argument("--json", action="store_true", help="print the API's JSON answer as it came")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("binds", help="list ESME binds")
    sub.add_parser("kick", help="unbind one ESME").add_argument("id", help="the bind's id (from `binds`)")
    sub.add_parser("upstreams", help="list upstream SMSCs and their state")
    for action, what in (("pause", "write nothing more to an upstream; its queue waits"),
                         ("resume", "undo pause or drain"),
                         ("drain", "an upstream takes nothing new; its queue fails over now")):
        sub.add_parser(action, help=what).add_argument("name", help="the upstream's name")
    routes = sub.add_parser("routes", help="show the routes in force, or replace them")
    routes.add_argument("--set", metavar="FILE", dest="set_file",
                        help="replace them with FILE's routes and default_route (TOML as in hub.toml, or JSON)")
    route = sub.add_parser("route", help="which route a number takes for an account, and why")
    route.add_argument("--to", required=True, help="the destination number")
    route.add_argument("--account", required=True, help="the sending account's system_id")
    route.add_argument("--from", dest="source", default="", help="the source address (for source_prefix routes)")
    sub.add_parser("trace", help="every step of one message").add_argument("id", help="the hub's message id")


# --- the request -----------------------------------------------------------------------------------


class Client:
    def __init__(self, url: str, token: str, cafile: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.context: ssl.SSLContext | None = None
        if cafile is not None:
            try:
                self.context = ssl.create_default_context(cafile=cafile)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise ConfigError(f"--cafile {cafile}: {_reason(exc)}") from None

    def call(self, method: str, path: str, body: object | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=self.context) as resp:  # noqa: S310
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise AdminError(_refusal(exc)) from None
        except urllib.error.URLError as exc:
            raise AdminError(f"cannot reach the hub at {self.url}: {_reason(exc.reason)}") from None
        except (OSError, ValueError) as exc:  # a timeout, a reset, an answer that is not JSON
            raise AdminError(f"no usable answer from {self.url}: {_reason(exc)}") from None


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _refusal(exc: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(exc.read())["error"]
        message = error["message"]
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {exc.code} {exc.reason}"
    return f"HTTP {exc.code}: {message}"


# --- what is printed -------------------------------------------------------------------------------


def _kicked(answer: Any) -> str:
    return f"unbound bind {answer['unbound']} ({answer['account']})"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _binds(answer: Any) -> str:
    rows = [[str(b["id"]), b["account"], b["state"], b["peer"]] for b in answer["binds"]]
    return _table([["ID", "ACCOUNT", "STATE", "PEER"], *rows]) if rows else "no binds"


def _upstream_row(u: Any) -> list[str]:
    s = u["state"]
    return [u["name"], s["mode"], "up" if s["available"] else "down", f"{s['binds_up']}/{s['binds']}",
            str(s["queued"]), str(s["in_flight"]), str(s["answers"].get("ESME_ROK", 0)), u["address"]]


_UPSTREAM_HEAD = ["NAME", "MODE", "TAKING", "BINDS", "QUEUED", "IN_FLIGHT", "ACCEPTED", "ADDRESS"]


def _upstreams(answer: Any) -> str:
    return _table([_UPSTREAM_HEAD, *(_upstream_row(u) for u in answer["upstreams"])])


def _one_upstream(answer: Any) -> str:
    return _table([_UPSTREAM_HEAD, _upstream_row(answer)])


def _targets(route: Any) -> str:
    if route.get("weights"):
        return ", ".join(f"{name} (weight {w:g})" for name, w in route["weights"].items())
    return ", ".join(route["upstreams"])


def _route_line(route: Any) -> str:
    conditions = []
    if route.get("accounts"):
        conditions.append(f"accounts {', '.join(route['accounts'])}")
    if route.get("route_group") is not None:
        conditions.append(f"route_group {route['route_group']}")
    if route.get("source_prefix") is not None:
        conditions.append(f"source_prefix {route['source_prefix']}")
    when = f"  [{'; '.join(conditions)}]" if conditions else ""
    return f"{route['prefix'] or '(empty)'} -> {_targets(route)}{when}"


def _routes(answer: Any) -> str:
    lines = [_route_line(r) for r in answer["routes"]] or ["no routes"]
    if answer.get("default_route"):
        lines.append(f"default -> {_targets(answer['default_route'])}")
    return "\n".join(lines)


def _changed(answer: Any) -> str:
    lines = [f"routes replaced: {len(answer['added'])} added, {len(answer['removed'])} removed, "
             f"{answer['unchanged']} unchanged"]
    lines += [f"  + {_route_line(r)}" for r in answer["added"]]
    lines += [f"  - {_route_line(r)}" for r in answer["removed"]]
    if answer["default_route_before"] != answer["default_route_after"]:
        after = answer["default_route_after"]
        lines.append(f"  default -> {_targets(after) if after else '(none)'}")
    return "\n".join(lines)


def _explained(answer: Any) -> str:
    route = answer["route"]
    taken = f"{_targets(route)} by prefix {route['prefix'] or '(empty)'}" if route else "no route"
    lines = [f"{answer['to']} (as {answer['destination']}) for {answer['account']}: {taken}: {answer['why']}"]
    lines += [f"  {c['prefix']}: {c['reason']}" for c in answer["candidates"]]
    return "\n".join(lines)


def _trace(answer: Any) -> str:
    head = (f"message {answer['id']} of {answer['account']}: {answer['state']}, upstream {answer['upstream'] or '-'}"
            f" (its id {answer['upstream_id'] or '-'}), {answer['attempts']} attempt(s)")
    if answer["error"]:
        head += f", last error {answer['error']}"
    lines = [head]
    if not answer["steps_kept"]:
        lines.append("  its steps are no longer kept ([log] trace_messages): the above is its stored row")
    for s in answer["steps"]:
        what = s["step"] if "before" not in s else f"{s['before']} -> {s['step']}"
        extra = "".join(f" {key} {s[key]}" for key in ("upstream", "status") if key in s)
        lines.append(f"  +{s['after_s']:.3f}s  {what}{extra}")
    return "\n".join(lines)


# --- the subcommands -------------------------------------------------------------------------------


def _routes_file(path: str) -> dict[str, object]:
    """``routes`` and ``default_route`` from a TOML (hub.toml's own sections) or JSON file."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw) if path.endswith(".json") else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.endswith('.json') else 'TOML'}: {exc}") from None
    if not isinstance(data, dict) or "routes" not in data:
        raise ConfigError(f"{path}: no routes in it ([[routes]] tables, as in hub.toml)")
    return {key: data[key] for key in ("routes", "default_route") if key in data}


def _request(args: argparse.Namespace) -> tuple[str, str, object | None, Callable[[Any], str]]:
    """(method, path, body, how to print the answer) for the subcommand."""
    quote = urllib.parse.quote
    action = args.action
    if action == "binds":
        return "GET", "/v1/binds", None, _binds
    if action == "kick":
        return "DELETE", f"/v1/binds/{quote(args.id, safe='')}", None, _kicked
    if action == "upstreams":
        return "GET", "/v1/upstreams", None, _upstreams
    if action in ("pause", "resume", "drain"):
        return "POST", f"/v1/upstreams/{quote(args.name, safe='')}/{action}", None, _one_upstream
    if action == "routes":
        if args.set_file:
            return "PUT", "/v1/routes", _routes_file(args.set_file), _changed
        return "GET", "/v1/routes", None, _routes
    if action == "route":
        query = urllib.parse.urlencode({"to": args.to, "account": args.account, "from": args.source})
        return "GET", f"/v1/route?{query}", None, _explained
    return "GET", f"/v1/messages/{quote(args.id, safe='')}/trace", None, _trace


def cmd_admin(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get(TOKEN_VARIABLE, "")
    if not token:
        raise ConfigError(f"an admin token is needed: --token or ${TOKEN_VARIABLE}")
    url = args.url or os.environ.get(URL_VARIABLE) or DEFAULT_URL
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"--url must be an http:// or https:// address, got {url!r}")
    method, path, body, render = _request(args)
    try:
        answer = Client(url, token, args.cafile).call(method, path, body)
    except AdminError as exc:
        print(f"smpphub admin {args.action}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2) if args.json else render(answer))
    return 0
