"""The one progress model: ProgressMeter's snapshots and timings, and how the console renders them."""

from __future__ import annotations

import io

import pytest

from protocol.console import ConsoleReporter, format_phase_report
from protocol.progress import (
    SNAPSHOT_INTERVAL_S,
    Phase,
    PhaseStatus,
    PhaseTiming,
    ProgressMeter,
    ProgressSnapshot,
)
from protocol.sansio import DeviceLog, Progress


def test_a_phase_starts_runs_and_ends_with_rate_and_eta() -> None:
    meter = ProgressMeter()
    started = meter.start(Phase.TRANSFER, 10.0, "sending", total=1000)
    assert (started.status, started.message, started.total) == (PhaseStatus.STARTED, "sending", 1000)
    first = meter.advance(0, 1000, 10.0)
    assert first is not None and first.status is PhaseStatus.RUNNING and first.eta is None
    half = meter.advance(500, 1000, 11.0)
    assert half is not None
    assert half.rate == pytest.approx(500.0) and half.eta == pytest.approx(1.0) and half.fraction == 0.5
    assert half.elapsed == pytest.approx(1.0)
    ended = meter.end(12.0, "done", amount=1000, wire_bytes=1100)
    assert (ended.status, ended.message, ended.done, ended.eta) == (PhaseStatus.ENDED, "done", 1000, None)
    (timing,) = meter.timings
    assert (timing.phase, timing.seconds, timing.amount, timing.wire_bytes) == (Phase.TRANSFER, 2.0, 1000, 1100)
    assert timing.rate == pytest.approx(500.0)
    assert timing.to_json() == {"phase": "transfer", "seconds": 2.0, "bytes": 1000, "wire_bytes": 1100, "rate": 500.0}


def test_snapshots_are_throttled_but_the_first_and_last_always_go_out() -> None:
    meter = ProgressMeter()
    meter.start(Phase.TRANSFER, 0.0, total=10_000_000)
    assert meter.advance(0, 10_000_000, 0.0) is not None
    assert meter.advance(1000, 10_000_000, 0.001) is None  # neither 1 % nor the interval
    assert meter.advance(200_000, 10_000_000, 0.002) is not None  # 2 % of the total
    assert meter.advance(201_000, 10_000_000, 0.003) is None
    assert meter.advance(202_000, 10_000_000, 0.003 + SNAPSHOT_INTERVAL_S) is not None  # the interval
    assert meter.advance(10_000_000, 10_000_000, 0.004 + SNAPSHOT_INTERVAL_S) is not None  # the last bytes


def test_phases_keep_the_order_they_ran_and_a_phase_entered_again_adds_to_its_row() -> None:
    meter = ProgressMeter()
    for phase, start, end in ((Phase.INFO, 0, 1), (Phase.ERASE, 1, 3), (Phase.TRANSFER, 3, 6), (Phase.INFO, 6, 7)):
        meter.start(phase, start)
        meter.end(end)
    assert [(t.phase, t.seconds) for t in meter.timings] == [
        (Phase.INFO, 2.0),
        (Phase.ERASE, 2.0),
        (Phase.TRANSFER, 3.0),
    ]


def test_raw_progress_belongs_to_the_phase_the_flow_is_in() -> None:
    meter = ProgressMeter()
    meter.start(Phase.ACTIVATE, 0.0)
    snapshot = meter.progress(Progress(phase="verify", done=10, total=100), 0.5)
    assert snapshot is not None and snapshot.phase is Phase.ACTIVATE  # not a second verify
    meter.end(1.0)
    meter.start(Phase.TRANSFER, 1.0, total=100)
    assert meter.progress(Progress(phase="erase", done=5, total=50), 1.1) is None  # the flow's to switch
    assert [t.phase for t in meter.timings] == [Phase.ACTIVATE, Phase.TRANSFER]


def test_a_bare_core_s_progress_starts_its_own_phase() -> None:
    meter = ProgressMeter()
    snapshot = meter.progress(Progress(phase="transfer", done=0, total=10), 0.0)
    assert snapshot is not None and snapshot.phase is Phase.TRANSFER
    odd = ProgressMeter().progress(Progress(phase="copy", done=0, total=10), 0.0)
    assert odd is not None and odd.phase is Phase.OTHER


def test_a_note_between_phases_belongs_to_the_last_one() -> None:
    meter = ProgressMeter()
    meter.start(Phase.ACTIVATE, 0.0)
    meter.end(1.0, "failed")
    note = meter.note("trying again", 1.5)
    assert (note.phase, note.status, note.message) == (Phase.ACTIVATE, PhaseStatus.RUNNING, "trying again")


def test_a_snapshot_is_a_progress_event_and_its_phase_compares_as_text() -> None:
    snapshot = ProgressSnapshot(phase=Phase.TRANSFER, status=PhaseStatus.RUNNING, done=1, total=2, rate=3.33)
    assert isinstance(snapshot, Progress)
    assert snapshot.phase == "transfer"
    assert snapshot.to_json() == {
        "phase": "transfer",
        "status": "running",
        "done": 1,
        "total": 2,
        "rate": 3.3,
        "eta": None,
        "elapsed": 0.0,
        "message": "",
    }


def test_the_phase_report_shows_bytes_only_where_bytes_moved_and_a_total() -> None:
    rows = format_phase_report(
        [
            PhaseTiming(phase=Phase.TRANSFER, started=0.0, ended=2.0, amount=2048),
            PhaseTiming(phase=Phase.REBOOT, started=2.0, ended=3.0),
        ],
        3.5,
    ).splitlines()
    assert rows[1].split() == ["transfer", "2.00", "s", "2.0", "KiB", "1.0", "KiB/s"]
    assert rows[2].split() == ["reboot", "1.00", "s"]
    assert rows[3].split() == ["total", "3.50", "s"]


def test_the_console_renders_snapshots_messages_and_logs() -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(out)
    meter = ProgressMeter()
    reporter(meter.start(Phase.TRANSFER, 0.0, "sending", total=100))
    for done in (0, 50, 100):
        snapshot = meter.advance(done, 100, done / 100)
        assert snapshot is not None
        reporter(snapshot)
    reporter(DeviceLog(level=2, text="hello"))
    reporter(meter.end(1.0, "100 bytes on the device"))
    lines = out.getvalue().splitlines()
    assert "sending" not in out.getvalue()  # a start is shown only as a terminal's transient line
    assert lines == [
        "transfer:   0.0% (0/100 bytes)",
        "transfer:  50.0% (50/100 bytes)",
        "transfer: 100.0% (100/100 bytes)",
        "device [INF] hello",
        "100 bytes on the device",
    ]


def test_the_console_can_show_only_notes() -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(out, messages=False)
    meter = ProgressMeter()
    reporter(meter.start(Phase.INFO, 0.0, "reading"))
    reporter(meter.note("the device is busy; retrying", 0.1))
    reporter(meter.end(0.2, "chip 0x413"))
    assert out.getvalue().splitlines() == ["the device is busy; retrying"]


def test_the_console_measures_raw_progress_with_the_same_meter() -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(out)
    reporter(Progress(phase="transfer", done=0, total=10))
    reporter(Progress(phase="transfer", done=10, total=10))
    assert out.getvalue().splitlines() == ["transfer:   0.0% (0/10 bytes)", "transfer: 100.0% (10/10 bytes)"]


def test_a_terminal_gets_a_bar() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    reporter = ConsoleReporter(out)
    meter = ProgressMeter()
    reporter(meter.start(Phase.TRANSFER, 0.0, "sending", total=100))
    reporter(meter.advance(100, 100, 1.0))
    text = out.getvalue()
    assert "transfer sending" in text  # the start, as a transient line
    assert "[##############################] 100.0%" in text and text.endswith("\n")
