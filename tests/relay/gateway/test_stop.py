"""The gateway always stops: a cancel that lands in the same loop iteration as a wake-up is not lost (on
Python 3.11, ``asyncio.wait_for(event.wait(), ...)`` returned the event's result then and swallowed the
cancel, so ``Gateway.stop()`` waited forever on an outbox deliverer that went on delivering)."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from relay.gateway.waiting import cancel_and_wait, wait_event

from .conftest import WAIT_S, gateway_for


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"socket://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens there once the socket is closed


async def test_a_cancel_in_the_iteration_that_sets_the_event_is_raised_not_swallowed() -> None:
    event = asyncio.Event()
    waiting = asyncio.create_task(wait_event(event, WAIT_S))
    await asyncio.sleep(0)  # parked in the wait
    event.set()  # the wait's wake-up and the cancel are now due in the same loop iteration
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await wait_event(event, WAIT_S) is True  # set already: at once
    event.clear()
    assert await wait_event(event, 0.0) is False


async def test_a_task_that_swallows_its_cancel_is_cancelled_again(caplog: pytest.LogCaptureFixture) -> None:
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()
        await asyncio.Event().wait()  # the second cancel ends it

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="relay.gateway.waiting"):
        async with asyncio.timeout(WAIT_S):  # a deadline for a hung test, not a speed assertion
            await cancel_and_wait([task], grace=0.01)
    assert swallowed.is_set() and task.cancelled()
    assert "'stubborn' still runs" in caplog.text


async def test_the_gateway_stops_when_a_result_is_queued_as_it_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = gateway_for("http://127.0.0.1:9", [_closed_port()], tmp_path / "gw")
    await gateway.start()
    try:
        journal, idle = gateway.journal, asyncio.Event()
        pending = journal.pending

        async def pending_then_idle(limit: int = 100) -> list:  # type: ignore[type-arg]
            entries = await pending(limit)
            idle.set()  # the deliverer goes on, in this same step, into its wait for journal.changed
            return entries

        journal.pending = pending_then_idle  # type: ignore[method-assign]
        await idle.wait()
        await asyncio.sleep(0)
    except BaseException:
        await gateway.stop()
        raise
    with caplog.at_level(logging.WARNING, logger="relay.gateway.waiting"):
        journal.changed.set()  # something queued ...
        async with asyncio.timeout(WAIT_S):  # ... as the gateway stops (a deadline for a hung test)
            await gateway.stop()
    assert "still runs" not in caplog.text  # every task ended at its first cancel
