"""Serial work off the GUI thread, after superqt's ``_qthreading``: a worker is a QObject with no widgets whose
signals live on a separate :class:`WorkerSignals`; an exception in the work becomes ``errored`` (a sentence
and a hint, never a traceback); cancelling is cooperative through the :class:`~protocol.drivers.CancelToken` the
drivers check between I/O steps.

Progress and log lines are coalesced here (at most one emission per :data:`EMIT_INTERVAL_S`), so a device
that logs a thousand lines a second costs the GUI thread twenty slots a second, not a thousand.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from protocol.drivers import CancelToken
from protocol.errors import Cancelled, Stm32OtaError

from .operations import EventAdapter, LogRecord, Snapshot

__all__ = ["EMIT_INTERVAL_S", "ErrorInfo", "Worker", "WorkerSignals", "start_worker"]

log = logging.getLogger(__name__)

EMIT_INTERVAL_S = 0.05  # progress and log batches reach the GUI thread at most this often
# Workers are Python threads.  While Qt paints, every call into Python (a model's data(), a delegate's paint)
# takes the GIL, and while a worker runs a core the GUI thread waits for it up to the interpreter's switch
# interval each time (5 ms by default), so a repaint of a Python model costs hundreds of waits.  The batch table
# and the unfiltered log view no longer call Python while painting; 0.2 ms bounds the waits left (the batch of
# 8 stalled 123 ms at 5 ms, 45-120 ms at 1 ms; figures by load in benchmarks/README.md).
GIL_SWITCH_INTERVAL_S = 0.0002


def keep_gui_responsive() -> None:
    """Shorten the GIL switch interval for this process (called once by the main window)."""
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


@dataclass(frozen=True)
class ErrorInfo:
    """An error as the window shows it: one sentence, and what to do about it."""

    message: str  # the core's English (the log console shows it)
    hint: str | None = None
    cancelled: bool = False
    error: BaseException | None = None  # the typed error, rendered in the window's language by text()

    def text(self) -> str:
        """The sentence in the window's language (call it on the GUI thread, at display time)."""
        from .messages import error_hint, error_text, message_text

        message = error_text(self.error) if self.error is not None else message_text(self.message)
        hint = error_hint(self.hint)
        return f"{message} — {hint}" if hint else message

    def english(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class WorkerSignals(QObject):
    started = Signal()
    progress = Signal(object)  # Snapshot (the latest one)
    logs = Signal(object)  # list[LogRecord]
    errored = Signal(object)  # ErrorInfo
    returned = Signal(object)  # what the work returned
    finished = Signal()


class Worker(QObject):
    """Runs ``work(cancel, adapter)`` once on the thread it is moved to."""

    def __init__(self, work: Callable[[CancelToken, EventAdapter], Any], *, name: str = "work") -> None:
        super().__init__()
        self.signals = WorkerSignals()
        self.name = name
        self.cancel_token = CancelToken()
        self._work = work
        self._lock = threading.RLock()  # one emitter at a time (events may come from more than one thread)
        self._pending_logs: list[LogRecord] = []
        self._pending_snapshot: Snapshot | None = None
        self._last_emit = 0.0
        self.adapter: EventAdapter | None = None  # set while the work runs (benchmarks feed it extra events)

    def cancel(self) -> None:
        self.cancel_token.cancel()

    # -- coalescing ------------------------------------------------------------------------------------------
    def _snapshot(self, snapshot: Snapshot) -> None:
        with self._lock:
            pending = self._pending_snapshot
            if pending is not None and pending.phase != snapshot.phase:
                self._flush()  # a phase's last figures are shown before the next phase replaces them
            self._pending_snapshot = snapshot
        if snapshot.total == 0 or snapshot.done >= snapshot.total:  # a step starts or ends: show it at once
            self._flush()
        else:
            self._maybe_flush()

    def _log(self, record: LogRecord) -> None:
        with self._lock:
            self._pending_logs.append(record)
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_emit >= EMIT_INTERVAL_S:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            self._last_emit = time.monotonic()
            logs, self._pending_logs = self._pending_logs, []
            if logs:
                self.signals.logs.emit(logs)
            snapshot, self._pending_snapshot = self._pending_snapshot, None
            if snapshot is not None:
                self.signals.progress.emit(snapshot)

    @Slot()
    def work(self) -> None:
        self.signals.started.emit()
        adapter = self.adapter = EventAdapter(on_snapshot=self._snapshot, on_log=self._log)
        try:
            result = self._work(self.cancel_token, adapter)
        except Cancelled as err:
            self._flush()
            self.signals.errored.emit(ErrorInfo(str(err), cancelled=True, error=err))
        except Stm32OtaError as err:
            self._flush()
            self.signals.errored.emit(ErrorInfo(str(err), err.hint, error=err))
        except Exception as err:  # a bug must not take the window down: say it, log the traceback
            log.exception("%s failed", self.name)
            self._flush()
            self.signals.errored.emit(ErrorInfo(f"{self.name} failed unexpectedly: {err}", "see the log file"))
        else:
            self._flush()
            self.signals.returned.emit(result)
        finally:
            self.signals.finished.emit()


_RUNNING: set[tuple[QThread, Worker]] = set()  # keeps both alive until the thread has finished


def start_worker(worker: Worker) -> QThread:
    """Move ``worker`` to a new QThread and start it: ``thread.started → work``, ``finished → quit`` and
    ``deleteLater``."""
    thread = QThread()
    thread.setObjectName(worker.name)
    worker.moveToThread(thread)
    entry = (thread, worker)
    _RUNNING.add(entry)
    thread.started.connect(worker.work)
    worker.signals.finished.connect(thread.quit)
    worker.signals.finished.connect(worker.deleteLater)

    def done() -> None:
        _RUNNING.discard(entry)
        thread.deleteLater()

    thread.finished.connect(done)
    thread.start()
    return thread


def running_workers() -> list[Worker]:
    return [worker for _thread, worker in _RUNNING]


def wait_all(timeout_ms: int = 5000) -> None:
    """Cancel every worker and wait for its thread (at exit, and between tests)."""
    for thread, worker in list(_RUNNING):
        worker.cancel()
        thread.quit()
        thread.wait(timeout_ms)
