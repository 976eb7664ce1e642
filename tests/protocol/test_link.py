"""The drivers: the shared pump generator, the blocking SerialLink and the asyncio AsyncSerialLink."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import pytest

from protocol.drivers.aio import AsyncSerialLink
from protocol.drivers.link import CancelToken, SerialLink
from protocol.errors import Cancelled, PortError, ProtocolTimeoutError
from protocol.pump import IoRequest, PumpResult, Read, SetBaud, Write, pump
from protocol.sansio import ChangeBaud, Event


@dataclass(frozen=True, kw_only=True)
class Echoed(Event):
    data: bytes


class EchoCore:
    """Sends a message, expects it back (a loop:// port echoes), gives up after ``retries`` timeouts."""

    def __init__(self, message: bytes, *, timeout: float = 0.2, retries: int = 2, baud: int | None = None) -> None:
        self._out = bytearray(message)
        self._expect = message
        self._got = bytearray()
        self._events: list[Event] = [ChangeBaud(baud=baud)] if baud else []
        self._timeout = timeout
        self._retries = retries
        self.timeouts = 0
        self._finished = False

    def receive_data(self, data: bytes) -> None:
        assert data, "drivers never feed b''"
        self._got += data
        if bytes(self._got) == self._expect:
            self._events.append(Echoed(data=bytes(self._got)))
            self._finished = True

    def handle_timeout(self) -> None:
        self.timeouts += 1
        if self.timeouts > self._retries:
            self._finished = True
            raise ProtocolTimeoutError("no echo")

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def next_event(self) -> Event | None:
        return self._events.pop(0) if self._events else None

    @property
    def timeout(self) -> float | None:
        return self._timeout

    @property
    def finished(self) -> bool:
        return self._finished


def test_pump_yields_io_requests_and_returns_matching_event() -> None:
    core = EchoCore(b"hello", baud=9600)
    steps = pump(core, 0.0, until=lambda e: isinstance(e, Echoed))
    assert next(steps) == Write(b"hello")
    assert steps.send(None) == SetBaud(9600)
    request = steps.send(None)
    assert isinstance(request, Read)
    with pytest.raises(StopIteration) as stop:
        steps.send((b"hello", 0.01))
    assert stop.value.value == Echoed(data=b"hello")


class PingCore(EchoCore):
    """Answers every byte it receives with a pong, as a YMODEM sender answers an ACK with the next block."""

    def receive_data(self, data: bytes) -> None:
        self._got += data
        self._events.append(Echoed(data=data))

    def next_event(self) -> Event | None:
        event = super().next_event()
        if event is not None:
            self._out += b"pong"  # the answer appears while the event is handled, as in the cores
        return event


def test_an_answer_to_input_rides_on_the_next_read() -> None:
    core = PingCore(b"")
    steps = pump(core, 0.0, on_event=lambda e: None)
    assert next(steps) == Read(0.1)
    request = steps.send((b"ping", 0.05))
    assert request == Read(0.1, out=b"pong")  # one trip through the generators per exchange, not two
    core._finished = True
    with pytest.raises(StopIteration):
        steps.send((b"", 0.1))


def test_without_a_poll_interval_reads_wait_for_the_core_s_own_timeout() -> None:
    from protocol.pump import IDLE_WAIT_S

    core = EchoCore(b"x", timeout=7.0)
    steps = pump(core, 0.0, poll=None)
    assert next(steps) == Write(b"x")
    assert steps.send(None) == Read(7.0)  # one wake-up when the timeout is due, not 70
    assert steps.send((b"", 2.5)) == Read(4.5)
    idle = EchoCore(b"")
    idle._timeout = None  # type: ignore[assignment]
    assert next(pump(idle, 0.0, poll=None)) == Read(IDLE_WAIT_S)


def test_output_queued_while_parsing_goes_out_before_the_next_wait_even_without_an_event() -> None:
    class Nak(EchoCore):
        def receive_data(self, data: bytes) -> None:
            self._got += data

        def next_event(self) -> Event | None:
            if self._got:
                self._got.clear()
                self._out += b"NAK"  # a YMODEM receiver answering a first EOT: bytes, no event
            return None

    steps = pump(Nak(b""), 0.0, poll=None)
    next(steps)
    request = steps.send((b"EOT", 1.0))
    assert isinstance(request, Read)
    assert request.out == b"NAK"  # written before the wait, not held back until the core's timeout
    assert request.wait == pytest.approx(0.2)


def test_output_after_a_timeout_is_written_once() -> None:
    core = EchoCore(b"x", timeout=1.0, retries=5)
    steps = pump(core, 0.0)
    assert next(steps) == Write(b"x")
    assert steps.send(None) == Read(0.1)
    core._out += b"again"  # what a core queues on handle_timeout() (a retransmission)
    assert steps.send((b"", 1.0)) == Write(b"again")
    assert steps.send(None) == Read(0.1)  # and not a second time riding on the read


def test_a_finishing_core_still_gets_its_last_answer_written() -> None:
    core = PingCore(b"")
    steps = pump(core, 0.0, on_event=lambda e: setattr(core, "_finished", True))
    next(steps)
    assert steps.send((b"bye", 0.01)) == Write(b"pong")
    with pytest.raises(StopIteration):
        steps.send(None)


def test_pump_calls_handle_timeout_after_silence_measured_from_last_write() -> None:
    core = EchoCore(b"x", timeout=1.0, retries=5)
    steps = pump(core, 10.0)
    assert next(steps) == Write(b"x")
    request = steps.send(None)
    assert isinstance(request, Read)
    request = steps.send((b"", 10.5))  # silence, but not yet the timeout
    assert core.timeouts == 0
    steps.send((b"", 11.0))
    assert core.timeouts == 1


def test_serial_link_over_loop_url() -> None:
    events: list[Event] = []
    with SerialLink("loop://", 115200) as link:
        result = link.run(EchoCore(b"\x00\x01abc" * 100), until=lambda e: isinstance(e, Echoed), on_event=events.append)
    assert isinstance(result, Echoed)
    assert result.data == b"\x00\x01abc" * 100


def test_serial_link_switches_baud_on_change_baud() -> None:
    with SerialLink("loop://", 115200) as link:
        link.run(EchoCore(b"ok", baud=921600))
        assert link.baud == 921600


def test_serial_link_times_out_through_the_core() -> None:
    class Deaf(EchoCore):
        def receive_data(self, data: bytes) -> None:  # ignores the echo: only silence follows
            pass

    with SerialLink("loop://", 115200) as link, pytest.raises(ProtocolTimeoutError):
        link.run(Deaf(b"?", timeout=0.05, retries=1))


def test_cancel_token_stops_the_loop() -> None:
    token = CancelToken()
    token.cancel()
    with SerialLink("loop://", 115200) as link, pytest.raises(Cancelled):
        link.run(EchoCore(b"x"), cancel=token)


def test_missing_port_is_a_port_error_with_hint() -> None:
    with pytest.raises(PortError) as err:
        SerialLink("/dev/does-not-exist-stm32ota")
    assert "no such port" in str(err.value)
    assert err.value.hint
    assert isinstance(err.value, OSError)


def test_refused_socket_is_a_port_error_with_hint() -> None:
    import socket

    with socket.socket() as s:  # find a free port, then close it so nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PortError) as err:
        SerialLink(f"socket://127.0.0.1:{port}")
    assert err.value.hint


def test_async_link_runs_the_same_core() -> None:
    async def go() -> Event | None:
        link = await AsyncSerialLink.open("loop://", 115200)
        async with link:
            return await link.run(EchoCore(b"async"), until=lambda e: isinstance(e, Echoed))

    result = asyncio.run(go())
    assert result == Echoed(data=b"async")


def test_with_deadline_stops_a_pump_that_would_run_forever() -> None:
    from protocol.pump import with_deadline

    class Idle(EchoCore):
        @property
        def timeout(self) -> float | None:
            return None

    steps = with_deadline(pump(Idle(b""), 0.0), 5.0)
    request = next(steps)
    assert isinstance(request, Read)
    assert isinstance(steps.send((b"", 1.0)), Read)
    with pytest.raises(StopIteration) as stop:
        steps.send((b"", 5.0))
    assert stop.value.value is None


def test_waiting_for_an_event_from_an_idle_core_fails_instead_of_hanging() -> None:
    from protocol.errors import LocalProtocolError

    class Idle(EchoCore):
        @property
        def timeout(self) -> float | None:
            return None

    steps = pump(Idle(b""), 0.0, until=lambda e: isinstance(e, Echoed))
    with pytest.raises(LocalProtocolError, match="idle"):
        next(steps)


@pytest.mark.parametrize("baud", [0, -1, 12345678901])
def test_an_unsupported_baud_rate_is_refused_before_the_port_is_touched(baud: int) -> None:
    from protocol.errors import BaudRateError

    with pytest.raises(BaudRateError) as err:
        SerialLink("loop://", baud)
    assert err.value.hint and isinstance(err.value, ValueError)
    with pytest.raises(BaudRateError):
        asyncio.run(AsyncSerialLink.open("loop://", baud))
    with SerialLink("loop://", 115200) as link, pytest.raises(BaudRateError):
        link.set_baud(baud)  # a core asking for it mid-conversation is refused the same way


def test_a_file_or_dev_null_given_as_a_port_is_refused_with_a_hint(tmp_path: Path) -> None:
    image = tmp_path / "app.bin"
    image.write_bytes(b"\x00" * 16)
    for path, what in ((str(image), "a regular file"), ("/dev/null", "not a terminal"), (str(tmp_path), "directory")):
        with pytest.raises(PortError) as err:
            SerialLink(path)
        assert f"{path} is not a serial port" in str(err.value)
        assert what in str(err.value)
        assert err.value.hint and "/dev/tty" in err.value.hint


class _Rfc2217Server:
    """A minimal RFC 2217 server (pyserial's PortManager) in front of a loop:// port, in a thread."""

    def __init__(self) -> None:
        import socket
        import threading

        import serial
        import serial.rfc2217

        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"rfc2217://127.0.0.1:{self._listener.getsockname()[1]}"
        self._serial = serial.serial_for_url("loop://", timeout=0.02)
        self._rfc2217 = serial.rfc2217
        self.conn: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:

        conn, _ = self._listener.accept()
        self.conn = conn

        class Writer:
            def write(self, data: bytes) -> None:
                conn.sendall(data)

        manager = self._rfc2217.PortManager(self._serial, Writer())
        conn.settimeout(0.02)
        while True:
            try:
                data = conn.recv(4096)
            except TimeoutError:
                data = None
            except OSError:
                return
            if data == b"":
                return
            if data:
                self._serial.write(b"".join(manager.filter(data)))
            out = self._serial.read(self._serial.in_waiting)
            if out:
                try:
                    conn.sendall(b"".join(manager.escape(out)))
                except OSError:
                    return

    def hang_up(self) -> None:
        import socket

        assert self.conn is not None
        self.conn.shutdown(socket.SHUT_RDWR)
        self.conn.close()
        self._listener.close()


def test_an_rfc2217_server_that_hangs_up_is_a_port_error_with_a_hint() -> None:
    server = _Rfc2217Server()
    with SerialLink(server.url, 115200) as link:
        assert link.run(EchoCore(b"over rfc2217"), until=lambda e: isinstance(e, Echoed)) == Echoed(
            data=b"over rfc2217"
        )
        server.hang_up()
        with pytest.raises(PortError) as err:
            for _ in range(20):  # the client notices on its next write or read
                link.run(EchoCore(b"again", timeout=0.05, retries=0))
    assert "closed by the other end" in str(err.value)
    assert err.value.hint and "server" in err.value.hint


def test_the_asyncio_driver_serves_rfc2217_on_its_own_thread() -> None:
    server = _Rfc2217Server()

    async def go() -> Event | None:
        async with await AsyncSerialLink.open(server.url, 115200) as link:
            assert not link.on_loop
            return await link.run(EchoCore(b"threaded"), until=lambda e: isinstance(e, Echoed))

    assert asyncio.run(go()) == Echoed(data=b"threaded")
    server.hang_up()


def _pty_with_the_far_end_gone() -> tuple[str, int]:
    """A pty slave whose master is closed once the caller has opened it (the other end hung up)."""
    import os
    import pty
    import tty

    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    return os.ttyname(slave), master


def test_writing_to_a_line_the_other_end_hung_up_says_unplugged() -> None:
    # before: EIO from os.write fell through to "cannot use /dev/pts/N: [Errno 5] Input/output error", so `send`
    # into a receiver that hung up said "unplugged" or not depending on whether its last reply was read first
    import os

    path, master = _pty_with_the_far_end_gone()
    with SerialLink(path) as link:
        os.close(master)
        with pytest.raises(PortError, match="unplugged") as err:
            link.write(b"\x02" + bytes(1028))
        assert err.value.hint and "Errno" not in str(err.value)

    def one_block() -> Generator[IoRequest, PumpResult, None]:
        yield Write(b"\x02" + bytes(1028))

    async def through_the_loop() -> None:
        path, master = _pty_with_the_far_end_gone()
        async with await AsyncSerialLink.open(path) as link:
            os.close(master)
            with pytest.raises(PortError, match="unplugged"):
                await link.execute(one_block())

    asyncio.run(through_the_loop())


def test_a_task_cancel_while_a_write_waits_finishes_the_frame_first() -> None:
    # before: a cancel while the tty's output queue was full left half a frame on the wire, and the device read
    # the ABORT sent next as the rest of that frame (test_cancel's transfer/task-cancel case failed 6 runs in 7)
    import os
    import threading

    path, master = _pty_with_the_far_end_gone()  # the far end stays open here, it just does not read yet
    frame = bytes(range(256)) * 1024  # far more than a pty buffers

    def one_frame() -> Generator[IoRequest, PumpResult, None]:
        yield Write(frame)

    received = bytearray()

    def drain() -> None:
        while len(received) < len(frame):
            chunk = os.read(master, 65536)
            if not chunk:
                return
            received.extend(chunk)

    async def go() -> None:
        async with await AsyncSerialLink.open(path) as link:
            assert link.on_loop
            task = asyncio.create_task(link.execute(one_frame()))
            while link._waiter is None and not task.done():  # the write waits for room in the output queue
                await asyncio.sleep(0.001)
            task.cancel()
            reader = threading.Thread(target=drain)
            reader.start()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.to_thread(reader.join, 30)

    try:
        asyncio.run(go())
    finally:
        os.close(master)
    assert bytes(received) == frame


def test_ctrl_c_while_a_write_waits_finishes_the_frame_first() -> None:
    # before: the KeyboardInterrupt left the rest of the frame unwritten (the blocking twin of the case above)
    import fcntl
    import os
    import signal
    import struct
    import termios
    import threading

    path, master = _pty_with_the_far_end_gone()  # the far end stays open, it just does not read yet
    frame = bytes(range(256)) * 1024
    received = bytearray()

    def interrupt_then_drain() -> None:
        while struct.unpack("i", fcntl.ioctl(master, termios.FIONREAD, b"\0\0\0\0"))[0] == 0:
            threading.Event().wait(0.001)  # until the pty holds what the writer managed to put in it
        threading.Event().wait(0.05)  # the writer now waits for room (a frame this big never fits)
        os.kill(os.getpid(), signal.SIGINT)
        while len(received) < len(frame):
            chunk = os.read(master, 65536)
            if not chunk:
                return
            received.extend(chunk)

    helper = threading.Thread(target=interrupt_then_drain)
    try:
        with SerialLink(path) as link:
            helper.start()
            with pytest.raises(KeyboardInterrupt):
                link.write(frame)
        helper.join(30)
    finally:
        os.close(master)
    assert bytes(received) == frame
