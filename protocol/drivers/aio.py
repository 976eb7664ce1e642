"""The asyncio driver: the same sans-I/O cores on the same pyserial ports, for the gateway.

A port with a file descriptor (a tty, a pty, ``socket://``) is served on the event loop itself: a read waits
for a readiness callback (``loop.add_reader``) or its timer, a write that finds the output buffer full waits
for ``loop.add_writer``, so a link waiting on an idle device costs no thread and no wake-up.  A transport
without a usable descriptor (``rfc2217://``, ``loop://``) gets one dedicated thread for its whole life (never
the loop's shared default executor, which ``asyncio.to_thread`` and aiohttp's DNS lookups need); its reads
wait in slices of :data:`~protocol.pump.POLL_INTERVAL_S`, so an abandoned read ends within one slice, and
``close()`` runs on that same thread after it: a port is never closed under a read.

Why not pyserial-asyncio (or its -fast fork): it is a byte-stream Transport with no read timeouts (the cores
need exact silences), ``socket://`` and ``rfc2217://`` have no ``fd`` it can watch, and the drain before a
baud switch would be ``Serial.flush()`` (a ``tcdrain`` that blocks the loop for as long as the queued bytes
take on the wire).  Reading and writing a non-blocking descriptor is the small part; the rest is ours anyway.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import serial

from ..errors import Cancelled, PortError
from ..pump import CANCEL_CLEANUP_S, POLL_INTERVAL_S, IoRequest, PumpResult, Read, SetBaud, Write, pump
from ..sansio import Connection, Event
from .link import (
    _READ_CHUNK,
    DEFAULT_BAUD,
    CancelToken,
    SerialLink,
    check_baud,
    cleanup_after_cancel,
    end_of_line_error,
    port_error,
)
from .trace import log_wire

__all__ = ["AsyncSerialLink"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_DRAIN_POLL_MIN_S = 0.001  # shortest sleep while the tty sends what is queued before a baud switch


class _Worker:
    """One dedicated thread for one link: jobs run in order, results come back to the loop as futures."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_abandoned: Callable[[Any], None] | None = None,
    ) -> asyncio.Future[Any]:
        """Run ``fn(*args)`` on the thread.  If the future was cancelled by the time it returns, the result
        goes to ``on_abandoned`` (on the thread) instead: e.g. a port opened for a task that was cancelled."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def job() -> None:
            try:
                result = fn(*args)
            except BaseException as err:  # handed to the awaiting task
                _deliver(loop, future, None, err)
                return
            if future.cancelled() and on_abandoned is not None:
                on_abandoned(result)
                return
            _deliver(loop, future, result, None)

        self._jobs.put(job)
        return future

    def stop(self) -> None:
        """Let the thread end after the jobs already queued."""
        self._jobs.put(None)


def _deliver(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, error: BaseException | None
) -> None:
    def settle() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody waits any more
        pass


def _wake(future: asyncio.Future[bool], ready: bool) -> None:
    if not future.done():
        future.set_result(ready)


class AsyncSerialLink:
    """Async twin of :class:`protocol.drivers.link.SerialLink`: same ``run``/``execute`` contract, same generators.

    Open it with :meth:`open` (which never blocks the loop) and use it as an async context manager."""

    def __init__(self, link: SerialLink, *, _worker: _Worker | None = None) -> None:
        self._link = link
        self._fd = link.fd
        if self._fd is None and _worker is None:
            _worker = _Worker(f"stm32ota link {link.url}")
        elif self._fd is not None and _worker is not None:
            _worker.stop()
            _worker = None
        self._worker = _worker
        self._waiter: asyncio.Future[bool] | None = None
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        baud: int = DEFAULT_BAUD,
        *,
        port: serial.SerialBase | None = None,
        exclusive: bool = True,
    ) -> AsyncSerialLink:
        """Open ``url`` on the link's own thread (``rfc2217://`` negotiates, ``socket://`` connects: either may
        take a while), so the loop never blocks.  A cancelled open closes the port it opened."""
        check_baud(baud)
        worker = _Worker(f"stm32ota link {url}")
        try:
            link = await worker.call(
                functools.partial(SerialLink, url, baud, port=port, exclusive=exclusive),
                on_abandoned=lambda opened: opened.close(),
            )
        except BaseException:
            worker.stop()
            raise
        return cls(link, _worker=worker)

    @property
    def link(self) -> SerialLink:
        return self._link

    @property
    def url(self) -> str:
        return self._link.url

    @property
    def baud(self) -> int:
        return self._link.baud

    @property
    def on_loop(self) -> bool:
        """True when the port is served by readiness callbacks on the loop (no thread)."""
        return self._fd is not None

    async def close(self) -> None:
        """Close the port.  A transport with a thread is closed on that thread after whatever it still
        reads (at most one poll slice), never under it."""
        if self._closed:
            return
        self._closed = True
        waiter = self._waiter
        if self._fd is not None:
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._fd)
            loop.remove_writer(self._fd)
            if waiter is not None and not waiter.done():
                waiter.set_exception(PortError(f"{self.url} was closed while in use"))
            self._link.close()
            return
        assert self._worker is not None
        done = self._worker.call(self._link.close)
        self._worker.stop()
        await asyncio.shield(done)

    async def __aenter__(self) -> AsyncSerialLink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def discard_input(self) -> None:
        if self._worker is None:
            self._link.discard_input()  # a tcflush: does not block
        else:
            await self._worker.call(self._link.discard_input)

    # -- I/O on the loop (ports with a descriptor) ----------------------------------------------------------
    async def _ready(self, add: Callable[..., None], remove: Callable[[int], bool], wait: float | None) -> bool:
        """Wait until the descriptor is ready (True) or ``wait`` seconds pass (False)."""
        fd = self._fd
        assert fd is not None
        if self._closed:
            raise PortError(f"{self.url} is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        add(fd, _wake, future, True)
        timer = loop.call_later(wait, _wake, future, False) if wait is not None else None
        self._waiter = future
        try:
            return await future
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
            if not self._closed:
                remove(fd)

    def _read_now(self, after_ready: bool) -> bytes:
        fd = self._fd
        assert fd is not None
        try:
            data = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return b""
        except OSError as err:
            raise port_error(err, self.url) from err
        if not data and after_ready:
            raise end_of_line_error(self.url)
        return data

    async def _read_fd(self, wait: float) -> bytes:
        data = self._read_now(False)
        if not data and wait > 0:
            loop = asyncio.get_running_loop()
            if await self._ready(loop.add_reader, loop.remove_reader, wait):
                data = self._read_now(True)
        if data and self._link.tracing:
            log_wire("rx", data)
        return data

    async def _write_fd(self, data: bytes) -> None:
        fd = self._fd
        assert fd is not None
        if self._link.tracing:
            log_wire("tx", data)
        view = memoryview(data)
        loop = asyncio.get_running_loop()
        cancelled: asyncio.CancelledError | None = None
        deadline = 0.0
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                pass
            except OSError as err:
                raise port_error(err, self.url) from err
            if not view:
                break
            if cancelled is None:
                try:
                    await self._ready(loop.add_writer, loop.remove_writer, None)
                except asyncio.CancelledError as err:
                    # A cancel while the tty's output queue is full: half a frame on the wire would swallow the
                    # ABORT the cleanup sends next (the device reads it as the rest of that frame), so the
                    # frame is finished first, for at most CANCEL_CLEANUP_S (a second cancel stops at once).
                    cancelled, deadline = err, time.monotonic() + CANCEL_CLEANUP_S
            elif not await self._ready(loop.add_writer, loop.remove_writer, deadline - time.monotonic()):
                break  # the device reads nothing: leave the rest unsent
        if cancelled is not None:
            raise cancelled

    async def _set_baud_fd(self, baud: int) -> None:
        """Drain, then switch: the bytes before a ChangeBaud must leave at the old rate.  The drain is awaited
        on the loop (the tty's output queue polled), not a ``tcdrain`` that would block it."""
        check_baud(baud)
        port = self._link.port
        old = max(self._link.baud, 1)
        while True:
            try:
                pending = int(port.out_waiting)
            except (NotImplementedError, AttributeError, OSError, serial.SerialException):
                pending = 0  # a socket: the kernel sends it, there is no line rate to keep
            if pending <= 0:
                break
            await asyncio.sleep(max(pending * 10 / old, _DRAIN_POLL_MIN_S))
        self._link.set_baud(baud)  # the tcdrain in it now waits for the UART's last few bytes at most

    # -- requests -------------------------------------------------------------------------------------------
    async def _perform(self, request: IoRequest, deadline: float | None = None) -> PumpResult:
        if self._worker is None:
            if type(request) is Read:
                if request.out:
                    await self._write_fd(request.out)
                wait = request.wait if deadline is None else min(request.wait, deadline - time.monotonic())
                return (await self._read_fd(wait) if wait > 0 else b"", time.monotonic())
            if type(request) is Write:
                await self._write_fd(request.data)
                return None
            assert isinstance(request, SetBaud)
            await self._set_baud_fd(request.baud)
            return None
        worker = self._worker
        if type(request) is Read:
            wait = request.wait if deadline is None else min(request.wait, deadline - time.monotonic())
            abandoned = threading.Event()
            try:
                data = await worker.call(self._exchange_in_thread, request.out, wait, abandoned)
            except asyncio.CancelledError:
                abandoned.set()  # the thread's read ends within one slice; close() queues behind it
                raise
            return (data, time.monotonic())
        if type(request) is Write:
            await worker.call(self._link.write, request.data)
            return None
        assert isinstance(request, SetBaud)
        check_baud(request.baud)
        await worker.call(self._link.set_baud, request.baud)
        return None

    def _exchange_in_thread(self, out: bytes, wait: float, abandoned: threading.Event) -> bytes:
        """On the link's thread: write, then read in slices until data, ``wait`` is over, or the awaiting
        task is gone."""
        link = self._link
        if out:
            link.write(out)
        end = time.monotonic() + wait
        while not abandoned.is_set():
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            data = link.read(min(remaining, POLL_INTERVAL_S))
            if data:
                return data
        return b""

    # -- the driver loop ----------------------------------------------------------------------------------
    async def run(
        self,
        conn: Connection,
        *,
        until: Callable[[Event], bool] | None = None,
        on_event: Callable[[Event], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> Event | None:
        """Same contract as :meth:`protocol.drivers.link.SerialLink.run`; a task cancel also stops it (at any await,
        so without a ``cancel`` token an idle link does not wake up at all)."""
        poll = POLL_INTERVAL_S if cancel is not None else None
        return await self.execute(
            pump(conn, time.monotonic(), until=until, on_event=on_event, poll=poll), cancel=cancel
        )

    async def execute(self, steps: Generator[IoRequest, PumpResult, T], *, cancel: CancelToken | None = None) -> T:
        """Async twin of :meth:`protocol.drivers.link.SerialLink.execute`, with the same cancel contract: a set
        ``cancel`` token (checked before each step) or a cancel of the task while it awaits I/O throws
        :class:`~protocol.errors.Cancelled` into ``steps``, whose cleanup requests are then performed for at
        most :data:`~protocol.pump.CANCEL_CLEANUP_S` (a second cancel stops them at once); then the token's
        ``Cancelled`` is raised, or the task's ``CancelledError`` re-raised: the cancel is never swallowed."""
        self._link.check_tracing()
        perform = self._perform
        reply: PumpResult = None
        try:
            while True:
                if cancel is not None and cancel.cancelled:
                    break
                request = steps.send(reply)
                reply = await perform(request)
        except StopIteration as stop:
            steps.close()
            result: T = stop.value
            return result
        except asyncio.CancelledError:
            await self._clean_up(steps, Cancelled("cancelled (the task was cancelled)"), lambda: False)
            raise
        except BaseException:
            steps.close()
            raise
        assert cancel is not None
        error = Cancelled("cancelled by the user")
        seen = cancel.count
        await self._clean_up(steps, error, lambda: cancel.count > seen)
        raise error

    async def _clean_up(
        self, steps: Generator[IoRequest, PumpResult, object], error: Cancelled, stop: Callable[[], bool]
    ) -> None:
        cleanup = cleanup_after_cancel(
            steps,
            error,
            stop=stop,
            again=asyncio.CancelledError,
            again_note="cancelled again: cleanup stopped",
            logger=log,
        )
        try:
            request, deadline = next(cleanup)
            while True:
                try:
                    reply = await self._perform(request, deadline)
                except BaseException as err:  # judged by the cleanup's rules, as if its steps had raised it
                    request, deadline = cleanup.throw(err)
                else:
                    request, deadline = cleanup.send(reply)
        except StopIteration:
            return
