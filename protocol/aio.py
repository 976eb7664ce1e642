"""The asyncio driver: the same sans-I/O cores on the same pyserial ports, for the gateway.

Blocking port calls run in the default executor with a short timeout, so the event loop never blocks and a
task cancel takes effect within one poll interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import serial

from .link import POLL_INTERVAL_S, CancelToken, SerialLink
from .sansio import ChangeBaud, Connection, Event

__all__ = ["AsyncSerialLink"]


class AsyncSerialLink:
    """Async twin of :class:`protocol.link.SerialLink`; same ``run`` contract."""

    def __init__(self, link: SerialLink) -> None:
        self._link = link

    @classmethod
    async def open(cls, url: str, baud: int = 115200, *, port: serial.SerialBase | None = None) -> AsyncSerialLink:
        link = await asyncio.to_thread(SerialLink, url, baud, port=port)
        return cls(link)

    @property
    def link(self) -> SerialLink:
        return self._link

    async def close(self) -> None:
        await asyncio.to_thread(self._link.close)

    async def __aenter__(self) -> AsyncSerialLink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(
        self,
        conn: Connection,
        *,
        until: Callable[[Event], bool] | None = None,
        on_event: Callable[[Event], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> Event | None:
        link = self._link
        last_activity = time.monotonic()
        while True:
            if cancel is not None:
                cancel.raise_if_cancelled()
            out = conn.data_to_send()
            if out:
                await asyncio.to_thread(link.write, out)
                last_activity = time.monotonic()
            while (event := conn.next_event()) is not None:
                if isinstance(event, ChangeBaud):
                    await asyncio.to_thread(link.set_baud, event.baud)
                if until is not None and until(event):
                    return event
                if on_event is not None:
                    on_event(event)
            out = conn.data_to_send()
            if out:
                await asyncio.to_thread(link.write, out)
                last_activity = time.monotonic()
            if conn.finished:
                return None
            timeout = conn.timeout
            wait = POLL_INTERVAL_S
            if timeout is not None:
                wait = max(0.0, min(wait, last_activity + timeout - time.monotonic()))
            data = await asyncio.to_thread(link.read, wait) if wait > 0 else b""
            now = time.monotonic()
            if data:
                conn.receive_data(data)
                last_activity = now
            elif timeout is not None and now - last_activity >= timeout:
                conn.handle_timeout()
                last_activity = now
