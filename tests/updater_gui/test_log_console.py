"""The log console: a list model with batch inserts, level/text filter, pause, save; 100,000 lines."""

from __future__ import annotations

import time
from pathlib import Path

from updater_gui.log_console import LogConsole
from updater_gui.operations import DEVICE, HOST, LogRecord

from .conftest import FIRMWARE, connect, run


def _records(n: int) -> list[LogRecord]:
    levels = ("info", "debug", "warning", "error")
    return [
        LogRecord(time=time.time(), level=levels[i % 4], source=DEVICE if i % 2 else HOST, text=f"line {i}")
        for i in range(n)
    ]


def test_filter_by_level_and_text_and_save(qtbot, tmp_path: Path) -> None:
    console = LogConsole()
    qtbot.addWidget(console)
    console.add(_records(400))
    assert console.model.rowCount() == 400
    console.set_level("warning")
    assert console.shown().rowCount() == 200  # warnings and errors
    console.filter.setText("LINE 3")  # case-insensitive
    lines = console.visible_lines()
    assert lines and all("line 3" in line and ("WARNING" in line or "ERROR" in line) for line in lines)
    path = tmp_path / "device.log"
    with qtbot.waitSignal(console.saved, timeout=5000):
        written = console.save(path)
    assert written == len(lines)
    assert path.read_text(encoding="utf-8").splitlines() == lines


def test_pause_keeps_the_view_where_it_is(qtbot) -> None:
    console = LogConsole()
    qtbot.addWidget(console)
    console.resize(600, 300)
    console.show()
    console.add(_records(1000))
    bar = console.view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() > 0, timeout=5000)  # auto-scroll is coalesced
    console.pause.setChecked(True)
    bar.setValue(0)
    console.add(_records(1000))
    qtbot.wait(400)  # longer than the auto-scroll's coalescing
    assert bar.value() == 0
    console.pause.setChecked(False)
    console.add(_records(10))
    qtbot.waitUntil(lambda: bar.value() == bar.maximum(), timeout=5000)


def test_hundred_thousand_lines_in_batches(qtbot) -> None:
    console = LogConsole()
    qtbot.addWidget(console)
    console.show()
    batch = _records(1000)
    for _ in range(100):
        console.add(batch)
    assert console.model.rowCount() == 100_000
    assert console.shown().rowCount() == 100_000
    assert "100000" in console.count.text()
    assert console.shown() is console.model  # unfiltered, the view shows the log itself (no per-line filter)
    console.filter.setText("line 999")
    assert console.shown().rowCount() == 100
    console.filter.setText("")
    assert console.shown() is console.model and console.shown().rowCount() == 100_000


def test_device_logs_reach_the_console_during_a_flash(qtbot, window, tmp_path: Path) -> None:
    connect(qtbot, window)
    window.open_file(FIRMWARE / "demo-1.1.0.signed.bin")
    run(qtbot, window, window.flash, "flash")
    records = window.log_console.model.records()
    assert any(r.source == DEVICE and "ota:" in r.text for r in records)
    assert any(r.source == HOST and "update complete" in r.text for r in records)
    window.log_console.filter.setText("boot:")
    saved = tmp_path / "boot.log"
    assert window.log_console.save(saved) > 0
    assert all("boot:" in line for line in saved.read_text().splitlines())
