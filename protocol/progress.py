"""Progress reports for people: phase, bytes, total, rate and ETA.

Cores emit :class:`protocol.sansio.Progress` (no clock in a core).  A :class:`ProgressMeter` owned by a driver
or a flow turns them into :class:`ProgressReport` values, given the current monotonic time, and records
per-phase timing for the end-of-transfer report.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .sansio import Progress

__all__ = ["PhaseTiming", "ProgressMeter", "ProgressReport"]

_RATE_WINDOW_S = 2.0  # the rate shown is averaged over this much recent history


@dataclass(frozen=True, kw_only=True)
class ProgressReport:
    phase: str
    done: int
    total: int
    rate: float  # units (bytes) per second, smoothed
    eta: float | None  # seconds, None when unknown

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(kw_only=True)
class PhaseTiming:
    phase: str
    started: float
    ended: float
    amount: int  # bytes (or units) the phase moved

    @property
    def seconds(self) -> float:
        return max(self.ended - self.started, 0.0)

    @property
    def rate(self) -> float:
        return self.amount / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ProgressMeter:
    """Turns raw progress into reports and keeps one :class:`PhaseTiming` per phase.

    :meth:`record` is what runs per event (a transfer sends one per block); :meth:`report` builds the
    rate and ETA only when something is shown.  :meth:`update` does both."""

    phases: dict[str, PhaseTiming] = field(default_factory=dict)
    _history: deque[tuple[float, int]] = field(default_factory=deque)
    _phase: str | None = None
    _timing: PhaseTiming | None = None

    def record(self, event: Progress, now: float) -> None:
        timing = self._timing
        if event.phase != self._phase or timing is None:
            self._phase = event.phase
            self._history.clear()
            timing = self._timing = self.phases.get(event.phase)
            if timing is None:
                timing = self._timing = self.phases[event.phase] = PhaseTiming(
                    phase=event.phase, started=now, ended=now, amount=0
                )
        timing.ended = now
        timing.amount = max(timing.amount, event.done)
        history = self._history
        history.append((now, event.done))
        while len(history) > 2 and now - history[0][0] > _RATE_WINDOW_S:
            history.popleft()

    def report(self, event: Progress) -> ProgressReport:
        """Rate (over the last :data:`_RATE_WINDOW_S`) and ETA as of the last :meth:`record` of ``event``."""
        timing = self.phases.get(event.phase)
        rate = 0.0
        if self._history and event.phase == self._phase:
            (t0, d0), (t1, _) = self._history[0], self._history[-1]
            rate = (event.done - d0) / (t1 - t0) if t1 > t0 else 0.0
        if rate <= 0 and timing is not None and timing.seconds > 0:
            rate = timing.amount / timing.seconds
        eta = (event.total - event.done) / rate if rate > 0 and event.total else None
        return ProgressReport(phase=event.phase, done=event.done, total=event.total, rate=rate, eta=eta)

    def update(self, event: Progress, now: float) -> ProgressReport:
        self.record(event, now)
        return self.report(event)

    def start_phase(self, phase: str, now: float) -> None:
        """Mark a phase as started before its first progress event (so its time includes the wait)."""
        self.phases.setdefault(phase, PhaseTiming(phase=phase, started=now, ended=now, amount=0))

    def end_phase(self, phase: str, now: float, amount: int | None = None) -> None:
        timing = self.phases.setdefault(phase, PhaseTiming(phase=phase, started=now, ended=now, amount=0))
        timing.ended = now
        if amount is not None:
            timing.amount = amount
