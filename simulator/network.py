"""The network behind the SMSC, per destination prefix: latency, errors, final states, delays.

Real traffic does not fail evenly: one operator's numbers deliver 98% within two
seconds, another's lose a fifth of them after half a minute. ``[[network]]`` rules in
``simulator.toml`` say so per destination prefix, the longest matching prefix
winning; a destination no rule matches meets the simulator's own settings
(``submit_latency``, ``errors.probabilities``, ``receipts``), which are the
:attr:`NetworkModel.default` route.

Every draw comes from the simulator's one seeded ``random.Random``, in a fixed order
per submit (status, then final state and receipt delay, then latency), so a run with
``seed`` replays. :meth:`NetworkModel.decide` makes the draws of one message without
any I/O: the engine makes the same calls one by one, and a test can draw 10,000
messages in a few milliseconds to check the figures.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import msgspec

from smppcore import MessageState
from smppcore.ratelimit import TokenBucket

from .behaviour import DelaySampler, WeightedChoice
from .config import Delay, NetworkRule, SimulatorConfig, parse_delay, parse_state, parse_status

__all__ = ["NetworkModel", "Route", "Outcome", "StatusChance", "normalise_destination"]


class StatusChance(msgspec.Struct, frozen=True):
    """Answer a submit with ``status`` with this ``probability``."""

    status: int
    probability: float


class Outcome(msgspec.Struct, frozen=True):
    """What the network does with one message: ``status`` 0 is accepted, then the rest applies."""

    prefix: str
    status: int
    latency: float = 0.0
    final: str = ""
    receipt_delay: float = 0.0


class Route:
    """One prefix's network (``prefix`` "" is the default one), drawing from the shared ``rng``."""

    __slots__ = ("prefix", "profile", "latency", "errors", "final_state", "final_states", "_delay", "_state_delays",
                 "bucket", "_rng")

    def __init__(self, prefix: str, *, profile: str | None, latency: DelaySampler, errors: list[StatusChance],
                 final_weights: dict[str, float], receipt_delay: DelaySampler, state_delays: dict[str, DelaySampler],
                 throttle: float, rng: random.Random, clock: Callable[[], float]) -> None:
        self.prefix = prefix
        self.profile = profile
        self.latency = latency
        self.errors = errors
        self.final_state = WeightedChoice(final_weights, rng)
        # the config checked every word; one it let through that names no state counts as a failure
        self.final_states = {word: parse_state(word) or MessageState.UNKNOWN for word in final_weights}
        self._delay = receipt_delay
        self._state_delays = state_delays
        self.bucket = TokenBucket(throttle, clock)
        self._rng = rng

    def refusal(self) -> int:
        """The status of the error mix for one submit (0: no error). Draws only when there is a mix."""
        if not self.errors:
            return 0
        r = self._rng.random()
        for chance in self.errors:
            if r < chance.probability:
                return chance.status
            r -= chance.probability
        return 0

    def receipt_delay(self, final: str) -> float:
        """Seconds from the submit to its final state ``final``."""
        sampler = self._state_delays.get(final)
        return (sampler or self._delay)()


def normalise_destination(destination: str) -> str:
    """The digits a prefix is matched against: a leading ``+`` dropped."""
    return destination[1:] if destination.startswith("+") else destination


class NetworkModel:
    """The routes of a :class:`SimulatorConfig`, and the longest-prefix lookup over them."""

    def __init__(self, config: SimulatorConfig, rng: random.Random,
                 clock: Callable[[], float] = time.monotonic) -> None:
        receipts = config.receipts
        weights: dict[str, float] = {}
        for word, weight in receipts.final_states.items():
            weights[word.upper()] = weights.get(word.upper(), 0.0) + weight
        errors = [StatusChance(_status(k), v) for k, v in config.errors.probabilities.items() if v > 0]
        self.default = Route("", profile=None, latency=DelaySampler(config.submit_latency, rng), errors=errors,
                             final_weights=weights, receipt_delay=DelaySampler(receipts.delay, rng), state_delays={},
                             throttle=0.0, rng=rng, clock=clock)
        self.routes = {rule.digits: self._route(rule, weights, rng, clock) for rule in config.network}
        self._lengths = sorted({len(p) for p in self.routes}, reverse=True)

    def _route(self, rule: NetworkRule, weights: dict[str, float], rng: random.Random,
               clock: Callable[[], float]) -> Route:
        default = self.default
        errors = default.errors
        if rule.errors:
            errors = [StatusChance(_status(k), v) for k, v in rule.errors.items() if v > 0]
        return Route(
            rule.digits, profile=rule.profile,
            latency=_sampler(rule.submit_latency, rng) or default.latency,
            errors=errors,
            final_weights=rule.final_weights() or weights,
            receipt_delay=_sampler(rule.receipt_delay, rng) or default._delay,
            state_delays={word.upper(): DelaySampler(parse_delay(spec), rng)
                          for word, spec in rule.receipt_delays.items()},
            throttle=rule.throttle, rng=rng, clock=clock,
        )

    @property
    def is_plain(self) -> bool:
        """No prefix rules and no error mix: every submit meets the same network and no draw for its status."""
        return not self.routes and not self.default.errors

    def route(self, destination: str) -> Route:
        """The route of the longest prefix ``destination`` starts with, else the default one."""
        if self._lengths:
            digits = normalise_destination(destination)
            routes = self.routes
            for n in self._lengths:
                route = routes.get(digits[:n])
                if route is not None:
                    return route
        return self.default

    def decide(self, destination: str) -> Outcome:
        """The draws for one message to ``destination``, in the engine's order (throttles aside)."""
        route = self.route(destination)
        status = route.refusal()
        if status:
            return Outcome(route.prefix, status)
        final = route.final_state()
        receipt_delay = route.receipt_delay(final)
        return Outcome(route.prefix, 0, route.latency(), final, receipt_delay)


def _sampler(spec: Delay | str | None, rng: random.Random) -> DelaySampler | None:
    return None if spec is None else DelaySampler(parse_delay(spec), rng)


def _status(name: str) -> int:
    status = parse_status(name)
    assert status is not None, name  # the config checked every name
    return status
