"""Enum members on the hot path: why the modules name them by constants, and that they name the right ones.

smppcore/constants.py's docstring has the measurements: on Python 3.11 every read of an
enum class attribute goes through EnumType's ``__getattr__`` hook, members included, so the
functions that run per PDU or per message name members by module constants
(``_SENT = State.SENT``). These tests pin the facts that reasoning stands on, and that each
such constant is the member its name says.
"""

from __future__ import annotations

import enum
import importlib
import sys

import pytest

from smppcore import constants, session_states
from smpphub.router import lifecycle

ENUM_MODULES = [constants, session_states, lifecycle]
OUR_ENUMS = sorted(
    {obj for module in ENUM_MODULES for obj in vars(module).values()
     if isinstance(obj, enum.EnumType) and obj.__module__ == module.__name__},
    key=lambda cls: f"{cls.__module__}.{cls.__qualname__}",
)
ALIASING_MODULES = ["smpphub.router.lifecycle", "smpphub.router.dispatch", "smpphub.router.messages",
                    "smpphub.router.store.sqlite_schema", "smppcore.session", "smppcore.connection"]


def test_our_enums_are_all_found() -> None:
    names = {cls.__name__ for cls in OUR_ENUMS}
    assert {"CommandId", "CommandStatus", "Tag", "MessageState", "EsmClass", "RegisteredDelivery", "Role",
            "State"} <= names


@pytest.mark.parametrize("cls", OUR_ENUMS, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_members_are_plain_class_attributes_already(cls: enum.EnumType) -> None:
    """Every member, aliases too, sits in its class __dict__ as itself: putting it there again
    (``type.__setattr__``) changes nothing, and the cost is the metaclass hook, not a missing entry."""
    for name, member in cls.__members__.items():
        assert vars(cls)[name] is member, name


def test_the_hook_the_constants_avoid_is_there_on_this_python_only_before_3_12() -> None:
    """When this fails on a newer Python, the module constants for enum members can go."""
    assert ("__getattr__" in vars(enum.EnumType)) is (sys.version_info < (3, 12))


@pytest.mark.parametrize("module_name", ALIASING_MODULES)
def test_each_module_constant_is_the_member_its_name_says(module_name: str) -> None:
    module = importlib.import_module(module_name)
    aliases = {name: value for name, value in vars(module).items()
               if name.startswith("_") and name[1:].isupper() and isinstance(value, enum.Enum)}
    assert aliases, f"{module_name} names no member by a constant any more: drop it from this list"
    for alias, member in aliases.items():
        assert member.name == alias[1:] or member.name.endswith("_" + alias[1:]), (alias, member)
