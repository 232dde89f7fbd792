"""Carrier profiles: the habits of real SMSCs that break ESMEs, as named presets.

Appendix B of SMPP 3.4 only suggests what a receipt looks like, and carriers take
liberties an ESME written against a well-behaved simulator never meets: the receipt
gives the message id in hex when submit_sm_resp gave it in decimal, leaves out the
TLVs, writes its text in UCS-2, forgets to flag itself as a receipt, overtakes the
submit_sm_resp it reports on, never reports a final state, reports it twice; the
link throttles in bursts or never answers enquire_link. Each habit is one field of
:class:`Profile`; a preset is a profile with one habit switched on, so a failing
test names the bug. ``simulator.toml`` picks a profile for the whole simulator
(``profile``), per account (``[[accounts]] profile``) or per destination prefix
(``[[network]] profile``), and may define its own combinations (``[profiles.NAME]``).

What each habit catches is written in simulator/README.md, "Carrier profiles".
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = ["Profile", "PRESETS", "STANDARD", "BIND_HABITS", "other_base_id"]


class Profile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """One carrier's habits; the defaults are a well-behaved SMSC.

    ``throttle_every`` / ``throttle_burst``: of every ``throttle_every`` submits a bind
    sends, the last ``throttle_burst`` are answered ESME_RTHROTTLED (0: never).
    """

    receipt_id_base: Literal["same", "other"] = "same"  # other: hex in the receipt for a decimal id, and back
    receipt_tlvs: bool = True  # receipted_message_id and message_state; False: the text alone
    receipt_coding: Literal["ascii", "ucs2"] = "ascii"  # ucs2: the text in UCS-2, data_coding 8
    receipt_flagged: bool = True  # False: esm_class 0, a receipt told from an MO by its text alone
    receipt_before_response: bool = False  # the final receipt is sent before the submit_sm_resp
    final_receipt: bool = True  # False: intermediate receipts (ENROUTE, ACCEPTD), then nothing
    duplicate_final: bool = False  # the final receipt comes twice
    throttle_every: Annotated[int, msgspec.Meta(ge=0)] = 0
    throttle_burst: Annotated[int, msgspec.Meta(ge=0)] = 0
    answer_enquire_link: bool = True  # False: enquire_link is never answered

    def problem(self) -> str | None:
        """What is inconsistent in this profile (None: nothing); the config names the key."""
        if self.throttle_burst > self.throttle_every:
            return f"throttle_burst ({self.throttle_burst}) is above throttle_every ({self.throttle_every})"
        return None

    @property
    def is_standard(self) -> bool:
        return self == STANDARD


STANDARD = Profile()

#: The presets, by name: each switches one habit on.
PRESETS: dict[str, Profile] = {
    "standard": STANDARD,
    "other-base-ids": Profile(receipt_id_base="other"),
    "text-only-receipts": Profile(receipt_tlvs=False),
    "ucs2-receipts": Profile(receipt_coding="ucs2", receipt_tlvs=False),
    "unflagged-receipts": Profile(receipt_flagged=False),
    "receipt-before-response": Profile(receipt_before_response=True),
    "intermediate-only": Profile(final_receipt=False),
    "duplicate-final": Profile(duplicate_final=True),
    "throttle-bursts": Profile(throttle_every=50, throttle_burst=10),
    "silent-enquire-link": Profile(answer_enquire_link=False),
}

#: Habits of a bind rather than of a message: a per-prefix profile cannot have them.
BIND_HABITS = ("answer_enquire_link",)


def other_base_id(message_id: str, id_format: str) -> str:
    """``message_id`` (made in ``id_format``, decimal or hex) written in the other base."""
    if id_format == "decimal":
        return format(int(message_id), "x")
    if id_format == "hex":
        return str(int(message_id, 16))
    return message_id  # uuid: the config refuses other-base ids with it
