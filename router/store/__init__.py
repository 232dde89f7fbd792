"""Storage backends behind one interface (see base.py)."""
from .base import FINAL_STATES, OPEN_STATES, Delivery, MessageRow, State, Store

__all__ = ["Delivery", "FINAL_STATES", "MessageRow", "OPEN_STATES", "State", "Store"]
