"""One progress model for every front end: typed snapshots built by one meter.

Cores emit raw :class:`protocol.sansio.Progress` (no clock in a core).  The update flow owns one
:class:`ProgressMeter`; given the monotonic time it turns the flow's phases and the cores' progress into
:class:`ProgressSnapshot` events (phase, bytes, rate, ETA, the step's message) and records a
:class:`PhaseTiming` per phase, in the order the phases ran, for the result.  The command line's bar
(:mod:`protocol.console`), the desktop app and the gateway only render snapshots; none of them measures.

A snapshot's :attr:`~ProgressSnapshot.status` says where in its phase it stands: ``STARTED`` (what begins,
in ``message``), ``RUNNING`` (bytes moved; ``message`` empty unless something worth a line happened, such as
"resuming with smaller blocks"), ``ENDED`` (the outcome, in ``message``) or ``FAILED`` (the error the flow
then raises, in ``message``).  Every phase that starts ends, so a front end can draw one row per phase.

A snapshot *is* a :class:`~protocol.sansio.Progress` (its ``phase`` is a :class:`Phase`, a ``str`` enum that
compares equal to its name), so code written against raw progress events keeps working.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from .sansio import Progress

__all__ = ["Phase", "PhaseStatus", "PhaseTiming", "ProgressMeter", "ProgressSnapshot"]

RATE_WINDOW_S = 2.0  # the rate shown is averaged over this much recent history
SNAPSHOT_INTERVAL_S = 0.05  # a RUNNING snapshot goes out after this long, or after SNAPSHOT_STEP of the total,
SNAPSHOT_STEP = 0.01  # whichever comes first (the first and the last always go out)


class Phase(StrEnum):
    """The phases of an update, in the order they normally run."""

    PROBE = "probe"  # which protocol does the port speak (our bootloader, or an AN4657 IAP menu)
    INFO = "info"  # the handshake: PING, then INFO (in pieces)
    CHECK = "check"  # the host checks the image against the device's INFO before anything is erased
    BAUD = "baud"  # the switch to the fast line rate
    ERASE = "erase"  # the device erases the download slot before the data phase
    TRANSFER = "transfer"  # the data phase (YMODEM or our windowed blocks)
    VERIFY = "verify"  # the device checks digest, signature, chip and counter
    ACTIVATE = "activate"  # the device marks the slot for a test (or permanent) boot
    REBOOT = "reboot"  # the device restarts; the bootloader swaps; the host waits for it
    CONFIRM = "confirm"  # the host confirms the image running under test
    READ = "read"  # the host reads a slot back (``stm32ota read``)
    OTHER = "other"  # device work the flow does not name (a standalone command's progress)


class PhaseStatus(Enum):
    STARTED = "started"
    RUNNING = "running"
    ENDED = "ended"
    FAILED = "failed"  # the phase ended with an error (its text in ``message``); the flow raises it


@dataclass(frozen=True, kw_only=True)
class ProgressSnapshot(Progress):
    """Where the update stands.  ``done``/``total`` are bytes (``total`` 0 when the phase has no size);
    ``rate`` bytes per second over the last :data:`RATE_WINDOW_S`; ``eta`` seconds left (``None`` when
    unknown); ``elapsed`` seconds since the phase started."""

    phase: Phase
    status: PhaseStatus
    done: int = 0
    total: int = 0
    rate: float = 0.0
    eta: float | None = None
    elapsed: float = 0.0
    message: str = ""

    @property
    def fraction(self) -> float:
        """``done / total`` (0.0 when the total is unknown)."""
        return min(self.done / self.total, 1.0) if self.total else 0.0

    def to_json(self) -> dict[str, object]:
        """The snapshot as plain data (a gateway's progress report upstream, a GUI's signal payload)."""
        return {
            "phase": self.phase.value,
            "status": self.status.value,
            "done": self.done,
            "total": self.total,
            "rate": round(self.rate, 1),
            "eta": None if self.eta is None else round(self.eta, 1),
            "elapsed": round(self.elapsed, 3),
            "message": self.message,
        }


@dataclass(kw_only=True)
class PhaseTiming:
    """How one phase went: its time, the image bytes it moved (``amount``) and the bytes it put on the wire."""

    phase: Phase
    started: float
    ended: float
    amount: int = 0  # image bytes (or device units) the phase moved; 0 for a command
    wire_bytes: int = 0  # bytes the host wrote during the phase (framing and retransmissions included)

    @property
    def seconds(self) -> float:
        return max(self.ended - self.started, 0.0)

    @property
    def rate(self) -> float:
        """``amount`` per second (0.0 for a phase that moved no bytes)."""
        return self.amount / self.seconds if self.amount and self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "phase": self.phase.value,
            "seconds": round(self.seconds, 4),
            "bytes": self.amount,
            "wire_bytes": self.wire_bytes,
            "rate": round(self.rate, 1),
        }


_DATA_PHASES = (Phase.ERASE, Phase.TRANSFER)
_DATA_NAMES = frozenset(p.value for p in _DATA_PHASES)


def _phase_of(name: str) -> Phase:
    try:
        return Phase(name)
    except ValueError:
        return Phase.OTHER


@dataclass
class ProgressMeter:
    """The one meter: phases start and end, raw progress advances them, and each step yields a snapshot.

    ``start``/``note``/``end`` always return a snapshot; ``advance`` returns one per :data:`SNAPSHOT_STEP`
    of the total or :data:`SNAPSHOT_INTERVAL_S` (and always for a phase's first and last bytes), else
    ``None``, so a transfer that reports every block does not flood a GUI's event queue.  :attr:`timings`
    lists the phases in the order they first ran; a phase entered again (a transfer retried with smaller
    blocks) adds to its row rather than making a second one."""

    timings: list[PhaseTiming] = field(default_factory=list)
    _by_phase: dict[Phase, PhaseTiming] = field(default_factory=dict)
    _history: deque[tuple[float, int]] = field(default_factory=deque)
    _current: PhaseTiming | None = None
    _done: int = 0
    _total: int = 0
    _last_emit: float = float("-inf")
    _emitted_done: int = 0

    @property
    def phase(self) -> Phase | None:
        """The phase running now (``None`` between phases)."""
        return self._current.phase if self._current is not None else None

    def start(self, phase: Phase, now: float, message: str = "", *, total: int = 0) -> ProgressSnapshot:
        """``phase`` begins (an unfinished phase before it ends here, silently)."""
        if self._current is not None and self._current.phase is not phase:
            self._current.ended = now
        timing = self._by_phase.get(phase)
        if timing is None:
            timing = self._by_phase[phase] = PhaseTiming(phase=phase, started=now, ended=now)
            self.timings.append(timing)
        else:  # entered again: keep counting from where its time stopped
            timing.started = now - timing.seconds
            timing.ended = now
        self._current = timing
        self._history.clear()
        self._done, self._total = 0, total
        self._last_emit, self._emitted_done = now, 0
        return self._snapshot(PhaseStatus.STARTED, now, message)

    def advance(self, done: int, total: int, now: float) -> ProgressSnapshot | None:
        """Bytes moved in the current phase (``done`` of ``total``, absolute)."""
        timing = self._current
        if timing is None:
            return None
        first = not self._history
        self._done, self._total = done, total or self._total
        timing.ended = now
        timing.amount = max(timing.amount, done)
        history = self._history
        history.append((now, done))
        while len(history) > 2 and now - history[0][0] > RATE_WINDOW_S:
            history.popleft()
        last = bool(total) and done >= total
        step = done - self._emitted_done >= total * SNAPSHOT_STEP if total else False
        if not (first or last or step or now - self._last_emit >= SNAPSHOT_INTERVAL_S):
            return None
        self._last_emit, self._emitted_done = now, done
        return self._snapshot(PhaseStatus.RUNNING, now, "")

    def progress(self, event: Progress, now: float) -> ProgressSnapshot | None:
        """A core's raw progress advances the phase running now (a device checking the image during ACTIVATE
        is still activate; its copy during the reboot wait is reboot).  The one exception: raw progress of the
        other data phase (the device's erase while the flow transfers, or the reverse) is the flow's to
        switch, and is left out.  With no phase running (a bare core), its own phase starts."""
        current = self._current
        if current is None:
            self.start(_phase_of(event.phase), now, total=event.total)
        elif current.phase in _DATA_PHASES and event.phase != current.phase.value and event.phase in _DATA_NAMES:
            return None
        return self.advance(event.done, event.total, now)

    def note(self, message: str, now: float) -> ProgressSnapshot:
        """Something worth a line happened in the current phase (or, between phases, after the last one)."""
        return self._snapshot(PhaseStatus.RUNNING, now, message)

    def end(
        self, now: float, message: str = "", *, amount: int | None = None, wire_bytes: int = 0, failed: bool = False
    ) -> ProgressSnapshot:
        """The current phase ends with ``message`` (``failed``: with an error); ``amount`` overrides the bytes
        it moved."""
        timing = self._current
        if timing is None:
            raise RuntimeError("no phase is running")
        timing.ended = now
        if amount is not None:
            timing.amount = amount
            self._done = max(self._done, amount)
        timing.wire_bytes += wire_bytes
        snapshot = self._snapshot(PhaseStatus.FAILED if failed else PhaseStatus.ENDED, now, message)
        self._current = None
        return snapshot

    def _snapshot(self, status: PhaseStatus, now: float, message: str) -> ProgressSnapshot:
        timing = self._current
        if timing is None:  # a note between two phases belongs to the one that ended last
            timing = self.timings[-1] if self.timings else PhaseTiming(phase=Phase.OTHER, started=now, ended=now)
        rate = 0.0
        history = self._history
        if len(history) >= 2:
            (t0, d0), (t1, d1) = history[0], history[-1]
            if t1 > t0:
                rate = (d1 - d0) / (t1 - t0)
        if rate <= 0 and timing.seconds > 0 and timing.amount:
            rate = timing.amount / timing.seconds
        total = self._total
        eta = (total - self._done) / rate if rate > 0 and total and status is PhaseStatus.RUNNING else None
        return ProgressSnapshot(
            phase=timing.phase,
            status=status,
            done=self._done,
            total=total,
            rate=rate,
            eta=eta,
            elapsed=max(now - timing.started, 0.0),
            message=message,
        )
