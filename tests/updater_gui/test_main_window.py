"""The main window's workflows against the in-process emulator (offscreen)."""

from __future__ import annotations

from pathlib import Path

from protocol.update.messages import SlotState
from updater_gui.emulated import EmulatorSpec

from .conftest import BAD, FIRMWARE, TIMEOUT_MS, connect, make_window, run


def test_connect_reads_the_device(qtbot, window) -> None:
    connect(qtbot, window)
    info = window.device.info
    assert window.device.kind == "ota" and info is not None
    assert window.chip_value.text().startswith("0x413")
    assert window.uid_value.text() == info.uid.hex()
    assert window.slot_model.rowCount() == 2
    assert window.layout_bar.region_names() == ["bootloader", "primary", "secondary", "free"]
    assert window.connect_button.text() == "Disconnect"


def test_inspect_an_image_and_flash_it_with_progress(qtbot, window) -> None:
    summary = window.open_file(FIRMWARE / "demo-1.1.0.signed.bin")
    assert summary.kind == "signed" and summary.version == "1.1.0+0"
    assert "1.1.0" in window.what_value.text()
    assert not window.flash_button.isEnabled()  # no device yet
    assert "connect a device" in window.verdict_value.text()
    connect(qtbot, window)
    assert window.flash_button.isEnabled(), window.verdict_value.text()
    snapshots = []
    window.progress_shown.connect(snapshots.append)  # what the bar showed (connected before the worker starts)
    run(qtbot, window, window.flash, "flash")
    assert window.last_result is not None and window.last_result.image_size == summary.size
    assert window.result_value.text().startswith("Done")
    assert window.progress.value() == 1000
    transfer = [s for s in snapshots if s.phase == "transfer" and s.total]
    assert transfer and transfer[-1].done == transfer[-1].total
    primary = window.device.info.slot(0)
    assert primary.version_text == "1.1.0+0" and primary.state is SlotState.CONFIRMED
    assert window.slot_model.data(window.slot_model.index(0, 2)) == "1.1.0+0"
    assert str(FIRMWARE / "demo-1.1.0.signed.bin") in window.recent_files()


def test_tampered_image_is_refused_with_a_reason_and_nothing_sent(qtbot, window) -> None:
    connect(qtbot, window)
    emu = window.emulators.handles[0]
    layout = window.device.info.flash
    before = [emu.device.flash.read(s.address, s.size) for s in layout.slots]
    window.open_file(BAD / "tampered.bin")
    assert not window.flash_button.isEnabled()
    assert window.verdict is not None and not window.verdict.ok
    shown = window.verdict_value.text()
    assert shown.startswith("✘ Refused (digest-mismatch):") and "altered after signing" in shown
    assert window.verdict.hint and window.verdict.hint in shown
    assert window.flash_button.toolTip() == window.verdict.reason.removeprefix("digest-mismatch: ")
    assert window.flash() is None  # a shortcut or a script gets the same refusal, in the window
    assert "cannot flash" in window.result_value.text()
    assert [emu.device.flash.read(s.address, s.size) for s in layout.slots] == before


def test_unreadable_file_is_a_sentence(qtbot, window, tmp_path: Path) -> None:
    missing = window.open_file(tmp_path / "nope.bin")
    assert missing.problem
    assert "cannot be used" in window.verdict_value.text()
    garbage = tmp_path / "notes.hex"
    garbage.write_text("this is not intel hex\n")
    window.open_file(garbage)
    assert not window.flash_button.isEnabled()
    assert window.verdict is not None and not window.verdict.ok


def test_cancel_mid_transfer_then_flash_again_resumes(qtbot, tmp_path: Path, pool) -> None:
    window = make_window(qtbot, tmp_path, pool, EmulatorSpec(baud=115200))
    try:
        connect(qtbot, window)
        window.open_file(FIRMWARE / "demo-big-1.2.0.signed.bin")
        assert window.flash_button.isEnabled(), window.verdict_value.text()
        worker = window.flash()
        assert worker is not None
        qtbot.waitUntil(
            lambda: window.progress.value() > 50 and "transfer" in window.progress.format(), timeout=TIMEOUT_MS
        )
        with qtbot.waitSignal(window.operation_finished, timeout=TIMEOUT_MS) as blocker:
            window.cancel()
        assert blocker.args == ["flash", False]
        qtbot.waitUntil(lambda: not window.busy, timeout=TIMEOUT_MS)
        assert window.last_error is not None and window.last_error.cancelled
        assert "Resume" in window.result_value.text()
        assert window.flash_button.text() == "Resume flash" and window.flash_button.isEnabled()
        run(qtbot, window, window.flash, "flash")
        assert window.last_result is not None and window.last_result.resumed_from > 0
        assert window.device.info.slot(0).version_text == "1.2.0+0"
    finally:
        window.shutdown()


def test_activate_reboot_confirm_and_roll_back(qtbot, tmp_path: Path, pool) -> None:
    window = make_window(qtbot, tmp_path, pool, EmulatorSpec(baud=0))
    try:
        connect(qtbot, window)
        window.open_file(FIRMWARE / "demo-1.0.0.signed.bin")
        run(qtbot, window, window.flash, "flash")
        assert window.device.info.slot(0).version_text == "1.0.0+0"
        # a second image, left in test: transfer only (no reboot), then the technician's buttons
        from protocol.flow import FlashOptions

        window.open_file(FIRMWARE / "demo-1.1.0.signed.bin")
        from updater_gui import operations as ops

        target, summary = window.target, window.summary
        options = FlashOptions(protocol="ota", reboot=False, confirm=False)
        run(
            qtbot,
            window,
            lambda: window._run(
                "flash",
                lambda c, a: ops.flash(target, summary.data, summary.name, options, cancel=c, adapter=a),
                lambda r: window._set_device(r[1]),
            ),
            "flash",
        )
        assert window.device.info.slot(1).state in (SlotState.PENDING_TEST, SlotState.INACTIVE)
        run(qtbot, window, window.activate_and_reboot, "activate")
        primary = window.device.info.slot(0)
        assert primary.version_text == "1.1.0+0"
        if primary.state is SlotState.ACTIVE:
            run(qtbot, window, window.confirm, "confirm")
        assert window.device.info.slot(0).state is SlotState.CONFIRMED
        run(qtbot, window, window.rollback, "rollback")
        assert window.device.info.slot(0).version_text == "1.0.0+0"
        assert "Rolled back" in window.result_value.text()
    finally:
        window.shutdown()


def test_errors_are_sentences(qtbot, window) -> None:
    run(qtbot, window, lambda: window.connect_device("/dev/does-not-exist"), "connect", ok=False)
    assert window.result_value.text().startswith("Error:")
    assert "Traceback" not in window.result_value.text()
    assert window.device is None and not window.flash_button.isEnabled()


def test_ports_are_named_by_bridge(qtbot, window, monkeypatch) -> None:
    from protocol.device_commands import PortInfo
    from updater_gui import ports

    fake = [
        PortInfo(device="/dev/ttyACM0", description="STM32 STLink", hwid="USB", vid=0x0483, pid=0x374B),
        PortInfo(device="/dev/ttyUSB0", description="n/a", hwid="USB", vid=0x1A86, pid=0x7523, serial_number="X1"),
        PortInfo(device="/dev/ttyUSB1", description="FT232R USB UART", hwid="USB", vid=0x0403, pid=0x6001),
        PortInfo(device="/dev/ttyUSB2", description="CP2102", hwid="USB", vid=0x10C4, pid=0xEA60),
    ]
    monkeypatch.setattr(ports, "_list_ports", lambda: fake)
    window.refresh_ports()
    labels = [window.port_combo.itemText(i) for i in range(window.port_combo.count())]
    assert labels[0].startswith("Emulated STM32")
    assert "ST-LINK" in labels[1] and "(0483:374B)" in labels[1]
    assert "CH340" in labels[2] and "CP210x" in labels[4] and "FT232R" in labels[3]
    monkeypatch.setattr(ports, "_list_ports", lambda: fake[:1])  # unplugged
    window.refresh_ports()
    assert window.port_combo.count() == 2


def test_a_free_text_pyserial_url_and_the_recent_files_menu(qtbot, window, tmp_path: Path) -> None:
    """socket:// to an emulator served over TCP (as ser2net would): the URL field wins over the port list."""
    import socket

    from emulator.testing import running_emulator

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with running_emulator(baud=0, pacing=False, socket_port=free) as emu:
        window.url_edit.setText(emu.port)
        assert window.selected_url().startswith("socket://")
        connect(qtbot, window, window.selected_url())
        assert window.target is not None and window.target.url.startswith("socket://")
        assert window.device is not None and window.device.kind == "ota"
        window.disconnect_device()
    window.open_file(FIRMWARE / "demo-1.0.0.signed.bin")
    window.open_file(FIRMWARE / "demo-1.1.0.signed.bin")
    actions = window.recent_menu.actions()
    assert [a.text() for a in actions[:2]] == [
        str(FIRMWARE / "demo-1.1.0.signed.bin"),
        str(FIRMWARE / "demo-1.0.0.signed.bin"),
    ]
    actions[1].trigger()  # the recent files menu opens the file again
    assert window.summary is not None and window.summary.name == "demo-1.0.0.signed.bin"
