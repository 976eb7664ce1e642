"""Fixtures for the desktop app: offscreen Qt, a window with its own settings file, emulators stopped after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

if not IN_CI:  # under CI a missing PySide6 is an import error here, never a skip
    pytest.importorskip("PySide6", reason="the desktop app needs PySide6 (pip install 'stm32ota[gui]')")

from PySide6.QtCore import QSettings

from updater_gui.emulated import EmulatorPool, EmulatorSpec
from updater_gui.main_window import MainWindow

TIMEOUT_MS = 30_000
FIRMWARE = Path(__file__).resolve().parents[2] / "assets" / "firmware"
BAD = Path(__file__).resolve().parents[2] / "assets" / "bad"


@pytest.fixture
def pool() -> Iterator[EmulatorPool]:
    emulators = EmulatorPool()
    yield emulators
    emulators.close()


def make_window(qtbot, tmp_path: Path, pool: EmulatorPool, spec: EmulatorSpec) -> MainWindow:  # type: ignore[no-untyped-def]
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings, emulators=pool, emulator_spec=spec, poll_ports=False)
    qtbot.addWidget(window)
    window.show()
    return window


@pytest.fixture
def window(qtbot, tmp_path: Path, pool: EmulatorPool) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    win = make_window(qtbot, tmp_path, pool, EmulatorSpec(baud=0))
    yield win
    win.shutdown()


def connect(qtbot, window: MainWindow, url: str | None = None) -> None:  # type: ignore[no-untyped-def]
    from updater_gui.ports import EMULATED

    with qtbot.waitSignal(window.operation_finished, timeout=TIMEOUT_MS) as blocker:
        window.connect_device(url or EMULATED)
    assert blocker.args == ["connect", True], window.result_value.text()
    qtbot.waitUntil(lambda: not window.busy, timeout=TIMEOUT_MS)


def run(qtbot, window: MainWindow, action, name: str, ok: bool = True) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.operation_finished, timeout=TIMEOUT_MS) as blocker:
        assert action() is not None
    assert blocker.args == [name, ok], window.result_value.text()
    qtbot.waitUntil(lambda: not window.busy, timeout=TIMEOUT_MS)
