"""The IAP terminal against an emulated AN4657 menu, and the batch view with four emulated boards."""

from __future__ import annotations

import csv
from pathlib import Path

from emulator.iap import IAP_APP_ADDRESS
from updater_gui.emulated import EmulatorSpec

from .conftest import FIRMWARE, TIMEOUT_MS, connect, make_window


def test_iap_terminal_menu_keys_and_ymodem_send(qtbot, tmp_path: Path, pool) -> None:
    window = make_window(qtbot, tmp_path, pool, EmulatorSpec(mode="iap", baud=0))
    try:
        connect(qtbot, window)
        assert window.device.kind == "iap"
        assert "IAP" in window.kind_value.text()
        assert window.tabs.currentWidget() is window.terminal
        terminal = window.terminal
        qtbot.waitUntil(terminal.send_button.isEnabled, timeout=TIMEOUT_MS)
        terminal.send_keys("x")  # any key: the menu prints itself again
        qtbot.waitUntil(lambda: "Main Menu" in terminal.text() or "Download" in terminal.text(), timeout=TIMEOUT_MS)
        window.open_file(FIRMWARE / "demo-1.0.0.bin")
        assert window.verdict is not None and window.verdict.ok, window.verdict_value.text()
        with qtbot.waitSignal(terminal.send_finished, timeout=TIMEOUT_MS) as blocker:
            assert terminal.send_file(FIRMWARE / "demo-1.0.0.bin") is not None
        assert blocker.args == [True], terminal.status.text()
        assert "Sent" in terminal.status.text()
        emu = window.emulators.handles[0]
        data = (FIRMWARE / "demo-1.0.0.bin").read_bytes()
        assert emu.device.flash.read(IAP_APP_ADDRESS["stm32f407vg"], len(data)) == data
        qtbot.waitUntil(terminal.send_button.isEnabled, timeout=TIMEOUT_MS)  # the terminal is back
    finally:
        window.shutdown()


def test_batch_of_four_with_summary_and_csv(qtbot, window, tmp_path: Path) -> None:
    window.open_file(FIRMWARE / "demo-1.1.0.signed.bin")
    batch = window.batch
    with qtbot.waitSignal(batch.batch_finished, timeout=TIMEOUT_MS * 2):
        assert batch.start(ports=[], emulated=4)
    assert len(batch.results) == 4
    assert all(r.ok for r in batch.results), [r.result for r in batch.results]
    assert len({r.port for r in batch.results}) == 4  # four boards on four ports
    assert all(len(r.device_id) == 24 for r in batch.results)  # the 96-bit unique id (one per emulated chip type)
    assert all(row.fraction == 1.0 and row.phase == "done" for row in batch.model.rows)
    assert batch.summary.text().startswith("4 flashed, 0 failed")
    report = tmp_path / "report.csv"
    batch.save_csv(report)
    rows = list(csv.DictReader(report.open()))
    assert [r["ok"] for r in rows] == ["yes"] * 4
    assert {r["version"] for r in rows} == {"1.1.0+0"}


def test_batch_refuses_a_bad_image_per_board(qtbot, window) -> None:
    from .conftest import BAD

    window.open_file(BAD / "wrong-chip.bin")
    batch = window.batch
    with qtbot.waitSignal(batch.batch_finished, timeout=TIMEOUT_MS * 2):
        assert batch.start(ports=[], emulated=2)
    assert [r.ok for r in batch.results] == [False, False]
    assert all(r.result for r in batch.results)
    assert batch.summary.text().startswith("0 flashed, 2 failed")


def test_batch_flashes_every_board_that_appears(qtbot, window, monkeypatch) -> None:
    """A board plugged in during the run (a port that appears in the port list) gets its own row."""
    from protocol.device_commands import PortInfo
    from updater_gui import ports
    from updater_gui.emulated import EmulatorSpec

    window.open_file(FIRMWARE / "demo-1.1.0.signed.bin")
    listed: list[PortInfo] = []
    monkeypatch.setattr(ports, "_list_ports", lambda: list(listed))
    window.refresh_ports()
    batch = window.batch
    batch.every_new.setChecked(True)
    assert batch.start(ports=[], emulated=0)  # nothing on the tray yet: waits
    assert batch.running
    port = window.emulators.start(EmulatorSpec(baud=0))
    listed.append(PortInfo(device=port, description="pseudo-terminal", hwid="n/a"))
    window.refresh_ports()  # what the plug/unplug timer does
    assert [r.port for r in batch.model.rows] == [port]
    qtbot.waitUntil(lambda: len(batch.results) == 1, timeout=TIMEOUT_MS)
    assert batch.results[0].ok, batch.results[0].result
    with qtbot.waitSignal(batch.batch_finished, timeout=TIMEOUT_MS):
        batch.stop()
    assert not batch.running


def test_drop_a_file_on_the_window(qtbot, window) -> None:
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(FIRMWARE / "demo-1.0.0.hex"))])
    event = QDropEvent(
        QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    window.dropEvent(event)
    assert window.summary is not None and window.summary.format == "hex"
    assert "HEX" in window.what_value.text()


def test_shortcuts(qtbot, window) -> None:
    assert set(window.shortcuts) == {"Ctrl+F", "Esc", "Ctrl+R", "Ctrl+K", "Ctrl+B"}
    assert window.open_action.shortcut().toString() == "Ctrl+O"
    window.shortcuts["Ctrl+F"].activated.emit()  # no device: the refusal is a sentence in the window
    assert "cannot flash: connect a device first" in window.result_value.text()


def test_batch_loop_mode_waits_for_the_next_board_and_never_flashes_one_twice(qtbot, window) -> None:
    window.open_file(FIRMWARE / "demo-1.1.0.signed.bin")
    batch = window.batch
    batch.loop.setChecked(True)
    assert batch.start(ports=[], emulated=1)
    qtbot.waitUntil(lambda: len(batch.results) == 1, timeout=TIMEOUT_MS)
    assert batch.results[0].ok
    # the same board stays on the port: the row waits for another one instead of flashing it again
    qtbot.waitUntil(lambda: batch.model.rows[0].phase in ("connect", "info"), timeout=TIMEOUT_MS)
    qtbot.wait(2500)  # two more looks at the port (NEXT_BOARD_POLL_S apart)
    assert len(batch.results) == 1 and batch.running
    with qtbot.waitSignal(batch.batch_finished, timeout=TIMEOUT_MS):
        batch.stop()
    assert len(batch.results) == 1 and not batch.running
    assert "1 flashed, 0 failed" in batch.summary.text()
