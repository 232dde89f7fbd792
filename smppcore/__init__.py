"""smppcore: the SMPP 3.4 protocol library (sans-IO core, thin asyncio edge)."""
from .constants import *  # noqa: F401,F403
from .pdus import *  # noqa: F401,F403
