"""Waits that never swallow a cancel, so :meth:`Gateway.stop` always ends.

``asyncio.wait_for(event.wait(), timeout)`` is not used in the gateway: on Python 3.11 it runs the wait as a
task of its own, and when that task finishes in the same loop iteration as the caller is cancelled (an
``Event.set()`` next to a ``Task.cancel()``: a result queued as the gateway stops, a ``wake()`` as it stops),
``wait_for`` returns the result and the cancel is lost (CPython bpo-42130, fixed in 3.12 by rebuilding
``wait_for`` on :func:`asyncio.timeout`).  The task then runs on, and ``stop()``, which awaits it, never
returns.  :func:`asyncio.timeout` waits in the caller's own task and tells its own timeout from a cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

__all__ = ["cancel_and_wait", "wait_event"]

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0  # a cancelled task's own cleanup (a relay's ABORT to its device) gets this long, then again


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set (True) or ``timeout`` seconds have passed (False); a cancel is raised."""
    if event.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()


async def cancel_and_wait(tasks: Sequence[asyncio.Task[Any]], *, grace: float = STOP_GRACE_S) -> None:
    """Cancel ``tasks`` and wait until every one has ended.  A task still running ``grace`` seconds after
    its cancel (it caught the ``CancelledError`` and went on) is named in a warning and cancelled again: a
    stop must end whatever its tasks do.  Their results and exceptions are dropped (each task logs its own)."""
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    while pending:
        _done, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            log.warning("task %r still runs %.2g s after its cancel; cancelling it again", task.get_name(), grace)
            task.cancel()
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" at garbage collection
