"""Storage backends behind one interface (see base.py)."""
from .base import Delivery, MessageRecord, MessageState, Store

__all__ = ["Delivery", "MessageRecord", "MessageState", "Store"]
