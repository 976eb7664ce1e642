"""The device never goes deaf, on a pty and on ``socket://``: a torn frame, a baud switch the host never
follows and a host that vanishes mid-transfer each leave a device that answers again within its documented
timeouts (one device-side driver loop, :mod:`emulator.driver`, drives the core's timeouts for every
personality and transport).  The assertions are on behaviour; the waits are bounded generously."""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path

import pytest

from emulator.demo import factory_program
from emulator.ota import OtaPersonality
from emulator.testing import EmulatorHandle
from protocol.drivers.link import SerialLink, open_port
from protocol.errors import DeviceError
from protocol.flow import FlashOptions, FlashResult, flash_image, read_info
from protocol.pump import IoRequest, PumpResult, Read, Write, pump
from protocol.update import BaudChanged, CommandComplete, HostConnection, Status
from protocol.update.constants import (
    BAUD_SYNC_WINDOW_S,
    DATA_IDLE_TIMEOUT_S,
    FRAME_HEADER_SIZE,
)
from protocol.update.events import BaudChangeFailed
from protocol.update.frames import FrameType, encode_frame
from protocol.update.messages import DeviceInfo, encode_data_block

from .conftest import EmulatorFactory

FIRMWARE = Path(__file__).resolve().parents[2] / "assets" / "firmware"
OLD = (FIRMWARE / "demo-1.0.0.signed.bin").read_bytes()
BIG = (FIRMWARE / "demo-big-1.2.0.signed.bin").read_bytes()
BAUD = 115200
GIVE_UP_S = 60.0  # a bound far above every documented timeout, so a loaded machine cannot fail the test


@pytest.fixture(params=["pty", "socket"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _start(factory: EmulatorFactory, transport: str, tmp_path: Path, baud: int) -> EmulatorHandle:
    factory_program(tmp_path, OLD)
    socket_port = 0 if transport == "socket" else None
    return factory("ota", baud=baud, state_dir=tmp_path, socket_port=socket_port)


@pytest.fixture
def device(emulator_factory: EmulatorFactory, transport: str, tmp_path: Path) -> EmulatorHandle:
    """Paced at 115200 baud (the rate checks are real on a pty)."""
    return _start(emulator_factory, transport, tmp_path, BAUD)


@pytest.fixture
def fast_device(emulator_factory: EmulatorFactory, transport: str, tmp_path: Path) -> EmulatorHandle:
    """Unthrottled, for whole transfers."""
    return _start(emulator_factory, transport, tmp_path, 0)


def _info(link: SerialLink) -> DeviceInfo:
    return link.execute(read_info(HostConnection(), time.monotonic))


def _torn_data_frame() -> bytes:
    frame = encode_frame(FrameType.DATA, 0, encode_data_block(0, bytes(4096)))
    return frame[: FRAME_HEADER_SIZE + 100]  # a sound header declaring 4 KiB, then the host died


def _dies_after(
    steps: Generator[IoRequest, PumpResult, FlashResult], nbytes: int, *, tear: bool
) -> Generator[IoRequest, PumpResult, None]:
    """Run a host flow until it has written ``nbytes``; then it dies: mid-frame (``tear``) or between two
    writes.  (A generator the driver executes, like the flow itself.)"""
    sent = 0
    reply: PumpResult = None
    while True:
        request = steps.send(reply)
        out = request.data if isinstance(request, Write) else request.out if isinstance(request, Read) else b""
        if sent + len(out) >= nbytes:
            if tear:
                yield Write(out[: max(FRAME_HEADER_SIZE + 1, nbytes - sent)])
            steps.close()
            return
        sent += len(out)
        reply = yield request


def _flash_steps(image: bytes) -> Generator[IoRequest, PumpResult, FlashResult]:
    options = FlashOptions(protocol="ota", compress=False)
    return flash_image(image, options, on_event=lambda e: None, clock=time.monotonic)


def test_a_torn_frame_then_silence_leaves_a_device_that_answers_the_next_host(device: EmulatorHandle) -> None:
    with open_port(device.port, BAUD) as raw:
        raw.write(_torn_data_frame())
        raw.flush()
    with SerialLink(device.port, BAUD) as link:
        info = _info(link)
    assert info.slot(0).version == (1, 0, 0, 0)


def test_a_command_sent_right_after_a_tear_is_answered(device: EmulatorHandle) -> None:
    with SerialLink(device.port, BAUD) as link:
        link.write(_torn_data_frame())
        info = _info(link)  # swallowed as payload at first; the stall timeout gives it back
    assert info.slot(0).version == (1, 0, 0, 0)


def test_a_host_killed_mid_data_frame_then_a_new_flash_resumes(fast_device: EmulatorHandle) -> None:
    with SerialLink(fast_device.port, BAUD) as link:
        link.execute(_dies_after(_flash_steps(BIG), 96 * 1024 + 500, tear=True))
    with SerialLink(fast_device.port, BAUD) as link:
        result = link.execute(_flash_steps(BIG))
    assert result.resumed_from > 0
    assert result.info_after is not None and result.info_after.slot(0).version == (1, 2, 0, 0)


class _FixedRateLink(SerialLink):
    """A port that cannot change its rate (ser2net's raw TCP mode, a fixed-rate adapter)."""

    def set_baud(self, baud: int) -> None:
        del baud


def _change_baud_unfollowed(link: SerialLink, new: int) -> None:
    """CHANGE_BAUD answered OK at the old rate; the host core asks for the switch, the port cannot follow."""
    host = HostConnection()
    host.change_baud(new)
    from protocol.sansio import ChangeBaud

    link.execute(pump(host, time.monotonic(), until=lambda e: isinstance(e, ChangeBaud)))


def test_an_unfollowed_baud_switch_reverts_while_the_host_keeps_asking(device: EmulatorHandle) -> None:
    with _FixedRateLink(device.port, BAUD) as link:
        _change_baud_unfollowed(link, 921600)
        info = _info(link)  # heard as garble on a pty until the device reverts; resent meanwhile
    assert info.slot(0).version == (1, 0, 0, 0)
    if device.port.startswith("socket://"):
        assert device.line.baud == 921600  # no rate on a socket: the INFO was a good frame at the new one
    else:
        assert device.line.baud == BAUD


def test_an_unfollowed_baud_switch_then_silence_reverts(device: EmulatorHandle) -> None:
    with _FixedRateLink(device.port, BAUD) as link:
        _change_baud_unfollowed(link, 460800)
        end = time.monotonic() + GIVE_UP_S
        while device.line.baud == BAUD and time.monotonic() < end:  # the REPLY's last byte is out: it switches
            time.sleep(0.001)
        while device.line.baud != BAUD and time.monotonic() < end:
            time.sleep(BAUD_SYNC_WINDOW_S / 10)
        assert device.line.baud == BAUD
        info = _info(link)
    assert info.slot(0).version == (1, 0, 0, 0)


def test_the_host_core_falls_back_when_its_port_cannot_follow() -> None:
    from emulator.testing import running_emulator

    with (
        running_emulator("ota", baud=BAUD) as emu,
        _FixedRateLink(emu.port, BAUD) as link,
    ):
        host = HostConnection()
        host.change_baud(921600)
        event = link.run(host, until=lambda e: isinstance(e, (BaudChanged, BaudChangeFailed)))
        assert isinstance(event, BaudChangeFailed)
        assert emu.line.baud == BAUD
        host.ping()
        assert isinstance(link.run(host, until=lambda e: isinstance(e, CommandComplete)), CommandComplete)


def _verify_status(link: SerialLink) -> int:
    host = HostConnection()
    host.verify(slot=1)
    try:
        link.run(host, until=lambda e: isinstance(e, CommandComplete))
    except DeviceError as err:
        return err.status
    return Status.OK


def test_a_host_gone_mid_transfer_lets_the_device_leave_the_data_phase(fast_device: EmulatorHandle) -> None:
    with SerialLink(fast_device.port, BAUD) as link:
        link.execute(_dies_after(_flash_steps(BIG), 64 * 1024, tear=False))
    with SerialLink(fast_device.port, BAUD) as link:
        assert _verify_status(link) == Status.NOT_ALLOWED  # still in the data phase: the host may come back
        # silence (any byte, a poll included, proves the host is there): watch the chip without the wire
        personality = fast_device.device.personality
        assert isinstance(personality, OtaPersonality) and personality.conn is not None
        end = time.monotonic() + DATA_IDLE_TIMEOUT_S + GIVE_UP_S
        while personality.conn.in_transfer and time.monotonic() < end:
            time.sleep(0.1)
        status = _verify_status(link)
        assert status not in (Status.NOT_ALLOWED, Status.OK)  # out of the data phase: the half image is refused
        result = link.execute(_flash_steps(BIG))  # the resume record survived the timeout
    assert result.resumed_from > 0


def test_the_iap_personality_recovers_from_a_torn_block(emulator_factory: EmulatorFactory, transport: str) -> None:
    """The same driver loop runs the IAP's YMODEM receiver: a block cut short, then silence, is given up after
    the receiver's own timeout and the next sender gets through."""
    from protocol.crc import crc16_xmodem
    from protocol.ymodem import BatchComplete, YmodemFile, YmodemSender

    emu = emulator_factory("iap", baud=0, socket_port=0 if transport == "socket" else None)
    image = bytes(range(256)) * 12
    header = (b"app.bin\0" + str(len(image)).encode()).ljust(128, b"\0")
    block0 = b"\x01\x00\xff" + header + crc16_xmodem(header).to_bytes(2, "big")
    with SerialLink(emu.port, BAUD) as link:
        link.write(b"1")
        got = bytearray()
        end = time.monotonic() + GIVE_UP_S
        while b"C" not in got and time.monotonic() < end:
            got += link.read(0.05)
        link.write(block0[:60])  # the sender died mid-block
        got.clear()
        while b"C" not in got and time.monotonic() < end:  # the IAP gave the block up and asks again
            got += link.read(0.05)
        assert b"C" in got
        sender = YmodemSender([YmodemFile("app.bin", image)])
        link.run(sender, until=lambda e: isinstance(e, BatchComplete))
        text = bytearray(sender.trailing_data)
        while b"Programming Completed Successfully!" not in text and time.monotonic() < end:
            text += link.read(0.05)
    assert b"Programming Completed Successfully!" in text
    assert emu.device.flash.read(0x0800_4000, len(image)) == image
