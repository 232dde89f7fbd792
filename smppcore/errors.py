"""The errors smppcore raises, each carrying the command_status the peer should get."""

from __future__ import annotations

from .constants import CommandStatus, status_name

__all__ = ["SmppError", "PduError", "FramingError", "EncodeError"]


class SmppError(Exception):
    """Base of every smppcore error."""


class PduError(SmppError):
    """A PDU that cannot be decoded.

    ``command_status`` is what the peer should be answered with, and
    ``sequence_number``/``command_id`` say which request to answer (with its
    ``*_resp``, or generic_nack when the command id itself is unknown). ``fatal``
    is True when the byte stream cannot be trusted any further (a bad
    command_length), so the connection has to be closed after answering.
    """

    fatal: bool = False

    def __init__(
        self,
        command_status: int,
        sequence_number: int = 0,
        command_id: int = 0,
        message: str = "",
    ) -> None:
        self.command_status = int(command_status)
        self.sequence_number = sequence_number
        self.command_id = command_id
        self.message = message or status_name(command_status)
        super().__init__(f"{status_name(command_status)}: {self.message}")

    @property
    def status(self) -> CommandStatus | int:
        try:
            return CommandStatus(self.command_status)
        except ValueError:
            return self.command_status

    def __reduce__(self) -> tuple[type[PduError], tuple[int, int, int, str]]:  # keep the attributes when pickled
        return (type(self), (self.command_status, self.sequence_number, self.command_id, self.message))


class FramingError(PduError):
    """The stream is out of step (command_length too small or over the maximum)."""

    fatal = True


class EncodeError(SmppError, ValueError):
    """A PDU whose field values cannot be put on the wire (too long, out of range)."""
