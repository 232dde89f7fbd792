"""A transport that records what a connection writes, for tests that drive a connection without a socket."""

from __future__ import annotations

import asyncio


class RecordingTransport(asyncio.Transport):
    """Keeps every write; reading paused or not as the protocol asks; peer 127.0.0.1:9."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 9) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def close(self) -> None:
        pass
