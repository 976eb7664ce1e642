"""The emulator runtime: boots, resets, power cuts (persisted, rebooted), baud switches, RX overrun while the
firmware is busy, state flush, crashes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import serial

from emulator.device import Device, DeviceContext, Personality
from emulator.faults import PowerCutTrigger, parse_faults
from emulator.flash import PowerCut
from emulator.line import Line
from emulator.testing import running_emulator
from protocol.drivers.link import SerialLink
from protocol.errors import Stm32OtaError

DEADLINE_S = 10.0
SECTOR5 = 0x0802_0000  # F407: a 128 KiB sector


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + DEADLINE_S
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _read_until(port: serial.SerialBase, marker: bytes) -> bytes:
    got = bytearray()
    end = time.monotonic() + DEADLINE_S
    while marker not in got:
        assert time.monotonic() < end, bytes(got[-200:])
        got += port.read(4096)
    return bytes(got)


class Recorder:
    """A tiny firmware: says hello at boot; 'e' erases sector 5 and programs it, 'b' switches to 921600,
    'r' resets, 'x' crashes; echoes everything else."""

    instances: list[Recorder] = []

    def __init__(self) -> None:
        self.ctx: DeviceContext | None = None
        self.received = bytearray()
        self.idle_calls = 0
        Recorder.instances.append(self)

    def boot(self, ctx: DeviceContext) -> None:
        self.ctx = ctx
        ctx.state["boots"] = int(ctx.state.get("boots", 0)) + 1
        ctx.write(f"hello {ctx.state['boots']}\n".encode())

    def on_bytes(self, data: bytes) -> None:
        assert self.ctx is not None
        self.received += data
        for byte in data:
            key = bytes((byte,))
            if key == b"e":
                self.ctx.flash.erase_sector(5)
                self.ctx.flash.program(SECTOR5, b"\x00" * 16)
                self.ctx.write(b"erased\n")
            elif key == b"b":
                self.ctx.write(b"switching\n")
                self.ctx.set_baud(921600)
                self.ctx.write(b"now fast\n")
            elif key == b"r":
                self.ctx.write(b"bye\n")
                self.ctx.reset()
            elif key == b"x":
                raise RuntimeError("firmware bug")
            else:
                self.ctx.write(key)

    def on_idle(self, now: float) -> None:
        self.idle_calls += 1


def _device(tmp_path: Path, *, faults: str | None = None, **line_args: object) -> Device:
    Recorder.instances.clear()
    plan = parse_faults(faults)
    line = Line(faults=plan, **line_args)  # type: ignore[arg-type]
    return Device(Recorder, line, state_dir=tmp_path, faults=plan)


def test_recorder_is_a_personality() -> None:
    assert isinstance(Recorder(), Personality)


def test_boot_echo_idle_and_flush(tmp_path: Path) -> None:
    device = _device(tmp_path, pacing=False)
    with device, serial.Serial(device.line.url, 115200, timeout=0.05) as host:
        device.request_reset("test")  # the host is connected now
        assert b"hello 2" in _read_until(host, b"hello 2\n")
        host.write(b"ping")
        assert _read_until(host, b"ping").endswith(b"ping")
        _wait_for(lambda: Recorder.instances[-1].idle_calls > 3, "idle calls")
    assert device.boots == 2
    assert (tmp_path / "state.json").is_file() and (tmp_path / "flash.bin").is_file()
    again = _device(tmp_path, pacing=False)
    assert again.state["boots"] == 2
    again.line.stop()


def test_power_cut_at_a_flash_operation_reboots_from_the_persisted_flash(tmp_path: Path) -> None:
    device = _device(tmp_path, pacing=False, faults="powercut-op=2")
    with device, serial.Serial(device.line.url, 115200, timeout=0.05) as host:
        host.write(b"e")  # op 1: erase sector 5; op 2: program -> power cut halfway
        _wait_for(lambda: device.power_cuts == 1, "the power cut")
        _wait_for(lambda: device.boots == 2, "the reboot")
        assert b"hello 2" in _read_until(host, b"hello 2\n")
        host.write(b"z")
        assert _read_until(host, b"z")
    assert device.flash.ops == 2
    persisted = (tmp_path / "flash.bin").read_bytes()
    offset = SECTOR5 - device.chip.flash_base
    assert persisted[offset : offset + 16] != b"\xff" * 16  # half programmed: some bits cleared
    assert persisted[offset : offset + 16] != b"\x00" * 16  # ... but not all


def test_timed_power_cut_when_idle(tmp_path: Path) -> None:
    device = _device(tmp_path, pacing=False, faults="powercut-at=0")
    with device:
        _wait_for(lambda: device.power_cuts == 1 and device.boots == 2, "the timed power cut")


def test_reset_after_n_bytes(tmp_path: Path) -> None:
    device = _device(tmp_path, pacing=False, faults="reset-after=5")
    with device, serial.Serial(device.line.url, 115200, timeout=0.05) as host:
        host.write(b"abcdefgh")
        _wait_for(lambda: device.boots == 2, "the reset")
    assert device.power_cuts == 0


def test_software_reset_lets_the_last_words_out(tmp_path: Path) -> None:
    device = _device(tmp_path, baud=115200)
    with device, serial.Serial(device.line.url, 115200, timeout=0.05) as host:
        host.write(b"r")
        text = _read_until(host, b"hello 2\n")
        assert b"bye\n" in text


def test_baud_switch_from_the_firmware(tmp_path: Path) -> None:
    device = _device(tmp_path, baud=115200)
    with device, serial.Serial(device.line.url, 115200, timeout=0.05) as host:
        host.write(b"b")
        assert b"switching\n" in _read_until(host, b"switching\n")
        _wait_for(lambda: device.line.baud == 921600, "the switch")
        host.baudrate = 921600
        host.write(b"q")
        text = _read_until(host, b"q")
        assert text.endswith(b"q")
    assert device.line.stats.rx_garbled == 0


def test_a_reset_brings_the_uart_back_to_its_boot_rate(tmp_path: Path) -> None:
    device = _device(tmp_path, pacing=False)
    with device:
        _wait_for(lambda: device.boots == 1, "boot")
        device.line.set_baud(921600)
        device.request_reset("test")
        _wait_for(lambda: device.boots == 2, "reset")
        assert device.line.baud == 115200


def test_firmware_crash_is_reported(tmp_path: Path) -> None:
    device = _device(tmp_path, pacing=False)
    with device, serial.Serial(device.line.url, 115200, timeout=0.05) as host:
        host.write(b"x")
        _wait_for(lambda: not device.running, "the crash")
    assert isinstance(device.error, RuntimeError)


def test_power_cut_trigger_raises_at_the_nth_operation() -> None:
    trigger = PowerCutTrigger(parse_faults("powercut-op=3"), start=time.monotonic())
    trigger.on_flash_op(1)
    trigger.on_flash_op(2)
    with pytest.raises(PowerCut):
        trigger.on_flash_op(3)
    trigger.on_flash_op(4)  # once per run
    assert trigger.fired == 1


def test_iap_erase_overruns_bytes_sent_meanwhile(tmp_path: Path) -> None:
    """With real flash timing the IAP erases the whole F103 application area (52 pages) before it ACKs block 0;
    bytes the host sends meanwhile overflow the RX ring and are lost, as on silicon."""
    from tests.emulator.test_iap import _block0, _frame

    emulator = running_emulator("iap", chip="stm32f103c8", baud=0, time_scale=1.0, rx_buffer=32)
    with emulator as emu, SerialLink(emu.port) as link:
        link.write(b"1")
        got = bytearray()
        while b"C" not in got:
            got += link.read(0.1)
        link.write(_block0("a.bin", 3000))
        _wait_for(lambda: emu.device.flash.ops > 0, "the erase to start")
        link.write(_frame(1, bytes(1024)))  # does not wait for the ACK: it lands during the erase
        _wait_for(lambda: emu.line.stats.overruns > 0, "an overrun")
    assert emu.line.stats.overruns >= 1024 + 5 - 32


def test_bad_state_folder_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "flash.bin").write_bytes(b"\xff" * 100)
    with pytest.raises(Stm32OtaError):
        _device(tmp_path, pacing=False)


def test_build_device_rejects_unknown_mode(tmp_path: Path) -> None:
    from emulator.device import build_device

    with pytest.raises(Stm32OtaError, match="unknown emulator mode"):
        build_device(mode="dfu", state_dir=tmp_path)


def test_timed_power_cut_inside_a_long_erase() -> None:
    from tests.emulator.test_iap import _block0

    emulator = running_emulator("iap", chip="stm32l476rg", baud=0, time_scale=1.0, faults="powercut-at=1.5")
    with emulator as emu, SerialLink(emu.port) as link:
        link.write(b"1")
        got = bytearray()
        while b"C" not in got:
            got += link.read(0.1)
        link.write(_block0("a.bin", 3000))  # the IAP erases 496 pages (~11 s) before it ACKs
        _wait_for(lambda: emu.device.power_cuts == 1 and emu.device.boots == 2, "the cut and the reboot")
        erased = emu.device.flash.ops
        assert 0 < erased < 496  # the cut landed inside the erase
