"""Hub configuration, routing table and authentication."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from smpphub.router.auth import SourceFilter, compile_ip_allowlist, hash_password, ip_allowed, verify_password
from smpphub.router.config import ConfigError, config_from_dict, load_config
from smpphub.router.routing import Route, RouteTable, normalise_destination

ROOT = Path(__file__).resolve().parent.parent
UP = {"name": "a", "host": "h", "port": 1, "system_id": "x"}
ACC = {"system_id": "acme", "password": "pw"}


def test_example_config_is_valid():
    cfg = load_config(str(ROOT / "router" / "hub.example.toml"))
    assert [u.name for u in cfg.upstreams] == ["carrier-a", "carrier-b"]
    assert cfg.accounts[1].credential == "plain$beta1234"


BAD = [
    ({"bogus": 1}, "bogus: unknown key"),
    ({"upstreams": [{**UP, "port": 70000}]}, "upstreams[0].port: expected int <= 65535"),
    ({"upstreams": [{**UP, "prot": 1}]}, "upstreams[0].prot: unknown key"),
    ({"upstreams": [UP, UP]}, "upstreams[1].name: duplicate upstream 'a'"),
    ({"upstreams": [UP], "routes": [{"prefix": "44", "upstreams": ["b"]}]}, "routes[0].upstreams: unknown upstream 'b'"),
    ({"upstreams": [UP], "routes": [{"prefix": "4x", "upstreams": ["a"]}]}, "routes[0].prefix"),
    ({"upstreams": [UP], "routes": [{"prefix": "44"}]}, "routes[0]: give exactly one of upstreams"),
    ({"upstreams": [UP], "routes": [{"prefix": "44", "upstreams": ["a"], "weights": {"a": 1}}]}, "routes[0]: give exactly one"),
    ({"accounts": [{"system_id": "acme"}]}, "accounts[0].password_hash: required"),
    ({"accounts": [{"system_id": "acme", "password_hash": "md5$x"}]}, "accounts[0].password_hash: not a scrypt"),
    ({"accounts": [{**ACC, "allowed_ips": ["10.0.0.300"]}]}, "accounts[0].allowed_ips"),
    ({"accounts": [{**ACC, "password": "123456789"}]}, "accounts[0].password: SMPP passwords are at most 8"),
    ({"accounts": [ACC, ACC]}, "accounts[1].system_id: duplicate account"),
    ({"accounts": [{**ACC, "bind_types": ["tx", "xx"]}]}, "accounts[0].bind_types[1]"),
    ({"accounts": [{**ACC, "max_rate": -1}]}, "accounts[0].max_rate: expected float >= 0"),
    ({"mo_routes": [{"prefix": "123", "account": "ghost"}]}, "mo_routes[0].account: unknown account 'ghost'"),
    ({"mo_routes": [{"prefix": "123", "webhook": "ftp://x"}]}, "mo_routes[0].webhook"),
    ({"unroutable_status": "ESME_RNOPE"}, "unroutable_status: unknown command_status"),
    ({"listeners": []}, "listeners: at least one listener"),
    ({"listeners": [{"tls_cert": "/nonexistent"}]}, "listeners[0]: tls_cert and tls_key go together"),
    ({"store": {"backend": "mysql"}}, "store.backend"),
    ({"http": {"listen": "nohost"}}, "http.listen: expected HOST:PORT, got 'nohost'"),
    ({"upstreams": [{**UP, "port": 0}]}, "upstreams[0].port: an upstream needs the SMSC's real port"),
    ({"upstreams": [{**UP, "host": "10.0.0.1:2775"}]}, "upstreams[0].host: '10.0.0.1:2775' holds a port: write host = '10.0.0.1' and port = 2775"),
    ({"upstreams": [{**UP, "host": " "}]}, "upstreams[0].host: required"),
    ({"listeners": [{"host": "0.0.0.0:2775"}]}, "listeners[0].host: '0.0.0.0:2775' holds a port"),
    ({"listeners": [{"port": 2775}, {"port": 2775}]}, "listeners[1]: 127.0.0.1:2775 is already listeners[0]"),
]


@pytest.mark.parametrize("host", ["::1", "2001:db8::1", "smsc.example.com", "10.0.0.1"])
def test_hosts_without_a_port_are_fine(host):
    assert config_from_dict({"upstreams": [{**UP, "host": host}], "listeners": [{"host": host, "port": 0}, {"host": host, "port": 0}]})


def test_the_example_config_has_nothing_that_never_takes_effect():
    from smpphub.router.config import config_warnings

    assert config_warnings(load_config(str(ROOT / "router" / "hub.example.toml"))) == []


@pytest.mark.parametrize("data,fragment", BAD, ids=[f for _, f in BAD])
def test_config_errors_name_their_key(data, fragment):
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "content,fragment",
    [("window = [", "not valid TOML"), ("[[upstreams]]\nname = 1\n", "upstreams[0].name: expected str"), ("retry_max = -5\n", "retry_max")],
)
def test_serve_with_a_bad_config_exits_2_with_one_line(tmp_path, content, fragment):
    path = tmp_path / "hub.toml"
    path.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "smpphub", "serve", "--config", str(path)], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], proc.stderr


# --- routing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "addr,ton,expected",
    [("+44 7700-900123", 1, "447700900123"), ("00447700900123", 0, "447700900123"), ("447700900123", 1, "447700900123"),
     ("Acme", 5, "Acme"), ("(0)7700 900123", 0, "07700900123"), ("7700900123", 0, "7700900123"),
     ("0", 0, "0"), ("", 0, ""), ("12345", 5, "12345")],
)
def test_normalise_destination(addr, ton, expected):
    assert normalise_destination(addr, ton) == expected


@pytest.mark.parametrize(
    "addr,ton,expected",
    [("07700900123", 2, "447700900123"), ("7700900123", 2, "447700900123"),  # national: digits or not
     ("07700900123", 0, "447700900123"), ("7700900123", 0, "7700900123"), ("447700900123", 1, "447700900123"),
     ("+447700900123", 1, "447700900123")],
)
def test_national_numbers_get_the_country_code(addr, ton, expected):
    assert normalise_destination(addr, ton, country_code="44") == expected


def test_longest_prefix_and_conditions():
    table = RouteTable(
        [Route("44", ["a"]), Route("447700", ["b"]), Route("447700", ["c"], accounts=["vip"]), Route("4477009", ["d"], source_prefix="BANK")],
        default=Route("", ["z"]),
    )
    assert table.lookup("447800000000", account="x").upstreams == ["a"]
    assert table.lookup("447700900123", account="x").upstreams == ["b"]
    assert table.lookup("447700123456", account="vip").upstreams == ["b"]  # the first matching of equal prefixes
    assert table.lookup("447700900123", account="x", source_addr="BANKCO").upstreams == ["d"]
    assert table.lookup("33123", account="x").upstreams == ["z"]
    assert RouteTable([Route("44", ["a"])]).lookup("33123") is None


def test_first_matching_route_of_equal_prefixes():
    table = RouteTable([Route("447700", ["vip-route"], accounts=["vip"]), Route("447700", ["everyone"])])
    assert table.lookup("447700123456", account="vip").upstreams == ["vip-route"]
    assert table.lookup("447700123456", account="other").upstreams == ["everyone"]


def test_lookup_cost_does_not_grow_with_the_number_of_routes():
    def probes(n_routes: int) -> int:
        rng = random.Random(1)
        routes = [Route(str(rng.randrange(10**7, 10**8)), ["a"]) for _ in range(n_routes)] + [Route("44", ["a"]), Route("4477009001", ["b"])]
        table = RouteTable(routes)
        table.probes = 0
        for _ in range(100):
            table.lookup("447700900123")
        return table.probes

    assert probes(100) == probes(100_000)


def test_weighted_route_spreads_by_weight():
    route = Route("33", weights={"a": 3, "b": 1})
    rng = random.Random(42)
    firsts = [route.pick(rng)[0] for _ in range(4000)]
    share = firsts.count("a") / len(firsts)
    assert 0.70 < share < 0.80
    assert sorted(route.pick(rng)) == ["a", "b"]  # the others follow as failover
    assert route.fixed is None  # a weighted route's pick is drawn each time


def test_a_route_without_weights_picks_its_upstreams_and_says_so_without_the_call():
    route = Route("44", ["a", "b"])
    assert route.fixed == ["a", "b"] and route.pick() is route.fixed and route.pick(random.Random(1)) is route.fixed


# --- auth ------------------------------------------------------------------------------------


def test_password_hash_round_trip():
    stored = hash_password("s3cret")
    assert stored.startswith("scrypt$")
    assert verify_password("s3cret", stored)
    assert not verify_password("s3cre", stored)
    assert verify_password("dev", "plain$dev") and not verify_password("x", "plain$dev")
    assert not verify_password("x", "garbage")


def test_ip_allowlist():
    nets = compile_ip_allowlist(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"])
    assert ip_allowed("10.1.2.3", nets) and ip_allowed("192.0.2.7", nets) and ip_allowed("2001:db8::1", nets)
    assert not ip_allowed("192.0.2.8", nets) and not ip_allowed("not-an-ip", nets)
    assert ip_allowed("::ffff:10.0.0.1", nets)
    assert ip_allowed("203.0.113.1", [])


def test_source_filter():
    f = SourceFilter(["ACME", "re:4477009\\d{5}"])
    assert f.allows("ACME") and f.allows("447700900123")
    assert not f.allows("ACME2") and not f.allows("4477009001234")
    assert SourceFilter([]).allows("anything")
