"""The asyncio driver: the same sans-I/O cores on the same pyserial ports, for the gateway.

Blocking port calls run in the default executor with a short timeout, so the event loop never blocks and a
task cancel takes effect within one poll interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from typing import TypeVar

import serial

from .link import CancelToken, SerialLink
from .pump import IoRequest, PumpResult, Read, Write, pump
from .sansio import Connection, Event

__all__ = ["AsyncSerialLink"]

T = TypeVar("T")


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
        """Same contract as :meth:`protocol.link.SerialLink.run`; a task cancel also stops it."""
        return await self.execute(pump(conn, time.monotonic(), until=until, on_event=on_event), cancel=cancel)

    async def execute(self, steps: Generator[IoRequest, PumpResult, T], *, cancel: CancelToken | None = None) -> T:
        """Async twin of :meth:`protocol.link.SerialLink.execute`."""
        link = self._link
        link.check_tracing()
        reply: PumpResult = None
        try:
            while True:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                request = steps.send(reply)
                reply = None
                if isinstance(request, Write):
                    await asyncio.to_thread(link.write, request.data)
                elif isinstance(request, Read):
                    data = await asyncio.to_thread(link.exchange, request.out, request.wait)  # one thread hop
                    reply = (data, time.monotonic())
                else:
                    await asyncio.to_thread(link.set_baud, request.baud)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            steps.close()
