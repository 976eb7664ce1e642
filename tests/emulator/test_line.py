"""The emulated UART: pty and socket:// endpoints, pacing, RX overrun, baud switches, line faults.

No timing assertions: pacing is checked through byte counts and order, and the arrival model with a fake
clock.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

import pytest
import serial

from emulator.endpoints import PtyEndpoint, SocketEndpoint, host_baud_of
from emulator.faults import parse_faults
from emulator.line import Line, _Chunk

DEADLINE_S = 10.0


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + DEADLINE_S
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def _device_read(line: Line, n: int) -> bytes:
    got = bytearray()
    end = time.monotonic() + DEADLINE_S
    while len(got) < n and time.monotonic() < end:
        got += line.read(0.05)
    return bytes(got)


def _host_read(port: serial.SerialBase, n: int) -> bytes:
    got = bytearray()
    end = time.monotonic() + DEADLINE_S
    while len(got) < n and time.monotonic() < end:
        got += port.read(n - len(got))
    return bytes(got)


@pytest.fixture
def make_line() -> Iterator[Callable[..., Line]]:
    lines: list[Line] = []

    def make(**kwargs: object) -> Line:
        line = Line(**kwargs)  # type: ignore[arg-type]
        line.start()
        lines.append(line)
        return line

    yield make
    for line in lines:
        line.stop()


def _open(line: Line, baud: int = 115200) -> serial.SerialBase:
    port = serial.serial_for_url(line.url, baudrate=baud, timeout=0.05)
    return port


def test_unthrottled_round_trip_keeps_every_byte_in_order(make_line: Callable[..., Line]) -> None:
    line = make_line(pacing=False, rx_buffer=64)
    data = random.Random(1).randbytes(200_000)
    with _open(line) as host:
        host.write(data)
        assert _device_read(line, len(data)) == data
        line.write(data)
        assert _host_read(host, len(data)) == data
        # The line's thread counts what the host took after the write returns, so the host may read the last
        # bytes a moment before they are counted: wait (bounded) for the count, then check it.
        for _ in range(200):
            if line.stats.tx_bytes >= len(data):
                break
            time.sleep(0.01)
    assert line.stats.rx_bytes == line.stats.tx_bytes == len(data)
    assert line.stats.overruns == 0


def test_paced_line_delivers_in_order(make_line: Callable[..., Line]) -> None:
    line = make_line(baud=921600, latency_s=0.002)
    data = bytes(range(256)) * 16
    with _open(line, 921600) as host:
        for i in range(0, len(data), 512):
            host.write(data[i : i + 512])
        assert _device_read(line, len(data)) == data
        for i in range(0, len(data), 100):
            line.write(data[i : i + 100])
        assert _host_read(host, len(data)) == data


def test_paced_bytes_arrive_one_character_time_apart() -> None:
    chunk = _Chunk(start=1.0, char_time=0.001, data=b"abcdefghij")
    assert chunk.arrived(0.5) == 0
    assert chunk.arrived(1.0005) == 0
    assert chunk.arrived(1.0031) == 3
    assert chunk.arrived(2.0) == 10
    assert _Chunk(start=1.0, char_time=0.0, data=b"abc").arrived(1.0) == 3


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_arrival_model_with_latency_and_bursts() -> None:
    clock = _Clock()
    line = Line(baud=10_000, latency_s=0.01, clock=clock)  # 1 ms per character
    try:
        line._enqueue_rx(100.0, b"abcd")  # idle line: the burst pays the latency
        assert line.read(0) == b""
        clock.now = 100.0115
        assert line.read(0) == b"a"
        line._enqueue_rx(100.012, b"ef")  # line still busy: continues the burst, no new latency
        clock.now = 100.0161
        assert line.read(0) == b"bcdef"
        clock.now = 101.0
        line._enqueue_rx(101.0, b"g")  # idle again: latency again
        clock.now = 101.0105
        assert line.read(0) == b""
        clock.now = 101.0111
        assert line.read(0) == b"g"
    finally:
        line.stop()


def test_rx_overrun_while_the_device_is_busy(make_line: Callable[..., Line]) -> None:
    line = make_line(pacing=False, rx_buffer=16)
    data = bytes(range(100))
    with _open(line) as host:
        host.write(b"early")
        _wait_for(lambda: line.stats.host_bytes == 5, "the host's bytes")
        with line.busy():  # say, erasing flash: the UART is not serviced
            host.write(data)
            # unthrottled, yet within a busy spell bytes come at the UART's rate (115200 here)
            _wait_for(lambda: line.rx_pending() >= 0 and line.stats.overruns == 84, "the overrun")
        # what came before the spell the firmware had taken; the ring kept what fitted, the rest overran
        assert line.read(0) == b"early" + data[:16]
        assert line.stats.overruns == 84
        host.write(b"next")
        assert _device_read(line, 4) == b"next"


def test_rx_ring_does_not_overrun_while_the_device_reads(make_line: Callable[..., Line]) -> None:
    line = make_line(baud=921600, rx_buffer=64)
    data = random.Random(2).randbytes(20_000)
    with _open(line, 921600) as host:
        host.write(data)
        assert _device_read(line, len(data)) == data
    assert line.stats.overruns == 0


def test_host_baud_is_read_from_the_pty() -> None:
    endpoint = PtyEndpoint()
    try:
        with serial.Serial(endpoint.url, 57600) as host:
            assert endpoint.host_baud() == 57600
            host.baudrate = 921600
            assert endpoint.host_baud() == 921600
            host.baudrate = 1_234_567  # a non-standard rate (termios2)
            assert endpoint.host_baud() == 1_234_567
            assert host_baud_of(host.fileno()) == 1_234_567
        endpoint.set_host_baud(250_000)
        assert endpoint.host_baud() == 250_000
    finally:
        endpoint.close()


def test_baud_mismatch_garbles_both_directions(make_line: Callable[..., Line]) -> None:
    line = make_line(pacing=False, baud=115200)
    text = b"hello, device" * 10
    with _open(line, 115200) as host:
        host.baudrate = 9600
        assert not line.rates_match()
        host.write(text)
        got = _device_read(line, len(text))
        assert len(got) == len(text) and got != text
        assert line.stats.rx_garbled == len(text)
        line.write(text)  # 115200 into a 9600 receiver: it catches one character in twelve
        expected = round(len(text) * 9600 / 115200)
        got = _host_read(host, expected)
        assert len(got) == expected and got != text[:expected]
        _wait_for(lambda: line.stats.tx_garbled == len(text), "the garbled output")
        assert host.read(100) == b""
        host.baudrate = 115200
        assert line.rates_match()
        host.write(text)
        assert _device_read(line, len(text)) == text


def test_set_baud_switches_after_pending_output(make_line: Callable[..., Line]) -> None:
    line = make_line(baud=115200)
    first = bytes(range(256)) * 4
    with _open(line, 115200) as host:
        line.write(first)
        line.set_baud(921600)  # returns once `first` has left at 115200
        assert line.baud == 921600
        assert _host_read(host, len(first)) == first  # arrived intact at the old rate
        host.baudrate = 921600
        line.write(b"fast now")
        assert _host_read(host, 8) == b"fast now"
        host.write(b"both at 921600")
        assert _device_read(line, 14) == b"both at 921600"
    assert line.stats.tx_garbled == 0 and line.stats.rx_garbled == 0


def test_without_baud_checks_rates_never_mismatch(make_line: Callable[..., Line]) -> None:
    line = make_line(pacing=False, check_baud=False)
    with _open(line, 9600) as host:
        host.write(b"any rate")
        assert _device_read(line, 8) == b"any rate"


def test_reset_device_side_loses_ring_and_rate(make_line: Callable[..., Line]) -> None:
    line = make_line(pacing=False)
    with _open(line) as host:
        host.write(b"stale")
        _wait_for(lambda: line.stats.host_bytes == 5, "the host's bytes")
        assert line.rx_pending() == 5
        line.set_baud(230400)
        line.reset_device_side()
        assert line.rx_pending() == 0
        assert line.baud == 115200


def test_flip_fault_on_the_line(make_line: Callable[..., Line]) -> None:
    line = make_line(pacing=False, faults=parse_faults("flip=1"))
    with _open(line) as host:
        host.write(b"\x00\xff")
        assert _device_read(line, 2) == b"\xff\x00"
        line.write(b"\x0f")
        assert _host_read(host, 1) == b"\xf0"


def test_mute_after_silences_the_device(make_line: Callable[..., Line]) -> None:
    line = make_line(pacing=False, faults=parse_faults("mute-after=10"))
    with _open(line) as host:
        line.write(bytes(range(30)))
        _wait_for(line.tx_idle, "the device's output")
        _wait_for(lambda: line.stats.tx_lost == 20, "the muted bytes")
        assert _host_read(host, 10) == bytes(range(10))
        assert host.read(100) == b""


def test_reset_after_calls_the_reset_hook_once(make_line: Callable[..., Line]) -> None:
    line = make_line(pacing=False, faults=parse_faults("reset-after=10"))
    resets: list[int] = []
    line.on_reset_fault = lambda: resets.append(line.stats.rx_bytes)
    with _open(line) as host:
        host.write(bytes(8))
        assert len(_device_read(line, 8)) == 8
        assert resets == []
        host.write(bytes(30))
        assert len(_device_read(line, 30)) == 30
    assert resets == [38]


def test_noise_bursts_reach_the_device(make_line: Callable[..., Line]) -> None:
    line = make_line(pacing=False, faults=parse_faults("noise=50ms:8"))
    got = _device_read(line, 16)
    assert len(got) >= 16
    assert line.rx_faults.noise_bytes >= 16


def test_socket_endpoint_serves_one_client_at_a_time(make_line: Callable[..., Line]) -> None:
    line = make_line(endpoint=SocketEndpoint(0), pacing=False)
    assert line.url.startswith("socket://127.0.0.1:")
    with serial.serial_for_url(line.url, timeout=0.05) as host:
        host.write(b"over tcp")
        assert _device_read(line, 8) == b"over tcp"
        line.write(b"back")
        assert _host_read(host, 4) == b"back"
    with serial.serial_for_url(line.url, timeout=0.05) as host:
        host.write(b"again")
        assert _device_read(line, 5) == b"again"
        line.write(b"ok")
        assert _host_read(host, 2) == b"ok"


def test_output_without_a_reader_is_lost_not_blocking(make_line: Callable[..., Line]) -> None:
    line = make_line(pacing=False)
    line.write(bytes(1_000_000))  # nobody has the pty open
    _wait_for(line.tx_idle, "the writer to give up")
    _wait_for(lambda: line.stats.tx_lost > 0, "lost bytes")
    assert line.stats.tx_bytes + line.stats.tx_lost == 1_000_000


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        Line(baud=0)
    with pytest.raises(ValueError):
        Line(rx_buffer=0)


def test_noise_bursts_reach_the_host_even_while_the_device_talks(make_line: Callable[..., Line]) -> None:
    line = make_line(baud=115200, faults=parse_faults("noise=20ms:8"))
    with _open(line) as host:
        line.write(bytes(2000))  # ~170 ms of output: bursts land between the device's bytes
        got = _host_read(host, 2000 + 8 * 3)
        assert len(got) == 2000 + 8 * 3
    assert line.tx_faults.noise_bytes >= 24
