"""``--baud 0`` (an unthrottled line) with datasheet flash timings: a fault-free 252 KiB transfer resends no
block and loses no byte.  The line is infinitely fast only while the firmware services its UART; during a busy
spell it carries what a line at the UART's rate would, so the firmware's RX budget (sized for its rate) holds."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from emulator.demo import factory_program
from emulator.line import BITS_PER_CHAR, DEFAULT_BAUD, Line
from protocol.drivers.link import SerialLink
from protocol.flow import read_info
from protocol.update import HostConnection, TransferComplete

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "assets" / "firmware"
OLD = (FIRMWARE / "demo-1.0.0.signed.bin").read_bytes()
BIG = (FIRMWARE / "demo-big-1.2.0.signed.bin").read_bytes()
GIVE_UP_S = 30.0


def test_a_busy_spell_on_an_unthrottled_line_receives_at_the_uart_rate() -> None:
    clock = [100.0]
    line = Line(pacing=False, rx_buffer=64, clock=lambda: clock[0])
    try:
        with line.busy():
            line._enqueue_rx(clock[0], bytes(1000))  # the host writes 1000 bytes at once
            per_byte = BITS_PER_CHAR / DEFAULT_BAUD
            clock[0] += 50 * per_byte
            assert line.rx_pending() == 50  # what a 115200-baud line carried meanwhile
            clock[0] += 100 * per_byte
            line.rx_pending()
            assert line.stats.overruns == 150 - 64  # a real overrun: more than the ring within the spell
        assert line.read(0) == bytes(64) + bytes(1000 - 150)  # the rest was still on the wire
        assert line.stats.overruns == 150 - 64
    finally:
        line.stop()


def test_bytes_the_firmware_took_before_a_busy_spell_do_not_fill_its_ring() -> None:
    clock = [100.0]
    line = Line(pacing=False, rx_buffer=64, clock=lambda: clock[0])
    try:
        line._enqueue_rx(clock[0], bytes(5000))  # an infinitely fast line: all there at once
        assert line.rx_pending() == 5000
        with line.busy():  # the firmware starts a flash operation before it read them
            line._enqueue_rx(clock[0], b"x" * 10)
            clock[0] += 1.0
            assert line.rx_pending() == 5010
        assert line.stats.overruns == 0  # (counted as 4946+ overruns, and mangled, before)
        assert line.read(0) == bytes(5000) + b"x" * 10
    finally:
        line.stop()


def test_a_252_kib_transfer_at_baud_0_with_datasheet_timings_resends_nothing(tmp_path: Path) -> None:
    """Against ``stm32ota emulate`` in its own process (as the issue measured it): 1 to 5 resends and up to
    28 kB overrun per run before the fix."""
    state = tmp_path / "state"
    factory_program(state, OLD)
    with (tmp_path / "emulator.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "protocol", "emulate", "--baud", "0", "--time-scale", "1", "--state", str(state)],
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=ROOT,
        )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().decode().strip()
        with SerialLink(port) as link:
            host = HostConnection()
            link.execute(read_info(host, time.monotonic))
            host.begin_transfer(BIG, slot=1, compress=False)
            done = link.run(host, until=lambda e: isinstance(e, TransferComplete))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(GIVE_UP_S)
    assert isinstance(done, TransferComplete)
    assert done.retransmits == 0
    summary = (tmp_path / "emulator.log").read_text()
    assert " 0 overrun" in summary, summary[-500:]
