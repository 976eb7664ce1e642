"""The AN4657 IAP personality: menu, download, upload, execute, aborts, size check, and each quirk on/off.

The host side is our own YMODEM cores on a SerialLink (lrzsz and the CLI are in tests/interop and
test_cli_emulate.py); the wire-level quirks are checked with hand-made frames.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.device import Device, DeviceContext
from emulator.iap import (
    IAP_APP_ADDRESS,
    UPLOAD_FILE_NAME,
    IapPersonality,
    IapQuirkError,
    IapQuirks,
    parse_quirks,
)
from emulator.line import Line
from emulator.testing import EmulatorHandle, running_emulator
from protocol.crc import crc16_xmodem
from protocol.drivers.link import SerialLink
from protocol.errors import Stm32OtaError, TransferAborted
from protocol.ymodem import (
    ACK,
    CAN,
    EOT,
    NAK,
    BatchComplete,
    FileData,
    YmodemFile,
    YmodemReceiver,
    YmodemSender,
)

from .conftest import EmulatorFactory

MENU_END = b"==========================================================\r\n\n"
F407_APP = IAP_APP_ADDRESS["stm32f407vg"]
READ_DEADLINE_S = 10.0


def _firmware(size: int, seed: int = 1) -> bytes:
    """A plausible raw application: stack pointer in RAM, reset vector in the application area."""
    body = random.Random(seed).randbytes(max(0, size - 8))
    return ((0x2002_0000).to_bytes(4, "little") + (F407_APP + 0x1C1).to_bytes(4, "little") + body)[:size]


def _read_until(link: SerialLink, marker: bytes, already: bytes = b"") -> bytes:
    import time

    got = bytearray(already)
    end = time.monotonic() + READ_DEADLINE_S
    while marker not in got:
        if time.monotonic() > end:
            raise AssertionError(f"never saw {marker!r}; got {bytes(got[-300:])!r}")
        got += link.read(0.05)
    return bytes(got)


def _read_for(link: SerialLink, seconds: float) -> bytes:
    import time

    got = bytearray()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got += link.read(0.02)
    return bytes(got)


def _frame(seq: int, payload: bytes) -> bytes:
    size = 128 if len(payload) <= 128 else 1024
    payload = payload.ljust(size, b"\x1a")
    head = bytes((0x01 if size == 128 else 0x02, seq & 0xFF, 0xFF - (seq & 0xFF)))
    return head + payload + crc16_xmodem(payload).to_bytes(2, "big")


def _block0(name: str, size: int) -> bytes:
    return _frame(0, (name.encode() + b"\0" + str(size).encode()).ljust(128, b"\0"))


def _menu(link: SerialLink) -> bytes:
    """Press Enter, as a technician does to see the menu again ("Invalid Number", then the menu)."""
    link.write(b"\r")
    return _read_until(link, MENU_END)


def _download(link: SerialLink, image: bytes, name: str = "app.bin") -> bytes:
    link.write(b"1")
    sender = YmodemSender([YmodemFile(name, image)])
    link.run(sender, until=lambda e: isinstance(e, BatchComplete))
    return _read_until(link, MENU_END, sender.trailing_data)


def _upload(link: SerialLink) -> tuple[str, bytes]:
    link.write(b"2")
    _read_until(link, b"Select Receive File")
    receiver = YmodemReceiver()
    parts: list[bytes] = []
    link.run(receiver, on_event=lambda e: parts.append(e.data) if isinstance(e, FileData) else None)
    link.pending = receiver.trailing_data  # type: ignore[attr-defined]
    return UPLOAD_FILE_NAME, b"".join(parts)


@pytest.fixture
def iap(emulator_factory: EmulatorFactory) -> Iterator[Callable[..., tuple[EmulatorHandle, SerialLink]]]:
    links: list[SerialLink] = []

    def start(**kwargs: object) -> tuple[EmulatorHandle, SerialLink]:
        emu = emulator_factory("iap", **kwargs)
        link = SerialLink(emu.port, 115200)
        links.append(link)
        return emu, link

    yield start
    for link in links:
        link.close()


# -- quirk options ---------------------------------------------------------------------------------------------


def test_parse_quirks() -> None:
    assert parse_quirks("all") == IapQuirks()
    assert parse_quirks("none") == IapQuirks.none()
    only = parse_quirks("ack-first-eot, write-padding")
    assert only.ack_first_eot and only.write_padding
    assert not (only.erase_before_ack or only.nak_duplicates or only.five_errors)
    with pytest.raises(IapQuirkError) as info:
        parse_quirks("ack-first-eot,warp-drive")
    assert isinstance(info.value, Stm32OtaError) and info.value.hint


# -- menu --------------------------------------------------------------------------------------------------------


def test_banner_menu_and_invalid_key(iap: Callable[..., tuple[EmulatorHandle, SerialLink]]) -> None:
    emu, link = iap()
    emu.device.request_reset("test")  # the host is connected now: it sees the banner of the next boot
    banner = _read_until(link, MENU_END)
    assert b"STM32F4xx In-Application Programming Application" in banner
    for item in (b"Download image to the internal Flash", b"Upload image from", b"Execute the loaded"):
        assert item in banner
    link.write(b"9")
    assert b"Invalid Number !" in _read_until(link, MENU_END)
    assert b"Main Menu" in _menu(link)


# -- download and upload ----------------------------------------------------------------------------------------


def test_download_with_quirks_writes_padding_and_uploads_back(
    iap: Callable[..., tuple[EmulatorHandle, SerialLink]],
) -> None:
    emu, link = iap()
    image = _firmware(5000)
    text = _download(link, image, "firmware.bin")
    assert b"Programming Completed Successfully!" in text
    assert b"Name: firmware.bin" in text and b"Size: 5000 Bytes" in text
    flash = emu.device.flash
    assert bytes(flash.read(F407_APP, len(image))) == image
    # the last 1K block was padded with 0x1A, and the example writes the padding too
    assert bytes(flash.read(F407_APP + 5000, 120)) == b"\x1a" * 120
    name, data = _upload(link)
    assert name == UPLOAD_FILE_NAME
    assert data == image
    assert b"File uploaded successfully" in _read_until(link, MENU_END, link.pending)  # type: ignore[attr-defined]


def test_download_without_quirks_stops_at_the_size(iap: Callable[..., tuple[EmulatorHandle, SerialLink]]) -> None:
    emu, link = iap(iap_quirks="none")
    image = _firmware(3001)
    assert b"Programming Completed Successfully!" in _download(link, image)
    flash = emu.device.flash
    assert bytes(flash.read(F407_APP, len(image))) == image
    assert bytes(flash.read(F407_APP + 3004, 64)) == b"\xff" * 64  # nothing past the image's last word


def test_erase_before_ack_erases_the_whole_area_first(
    iap: Callable[..., tuple[EmulatorHandle, SerialLink]],
) -> None:
    emu, link = iap()
    flash = emu.device.flash
    link.write(b"1")
    _read_until(link, b"C")
    before = flash.ops
    link.write(_block0("a.bin", 10))
    assert _read_until(link, b"C").startswith(bytes((ACK,)))
    sectors = list(flash.sectors_in(F407_APP, emu.device.chip.flash_base + 0x100000 - F407_APP))
    assert flash.ops - before == len(sectors) == 11


def test_without_erase_before_ack_sectors_are_erased_as_data_arrives(
    iap: Callable[..., tuple[EmulatorHandle, SerialLink]],
) -> None:
    emu, link = iap(iap_quirks="none")
    flash = emu.device.flash
    link.write(b"1")
    _read_until(link, b"C")
    before = flash.ops
    link.write(_block0("a.bin", 10))
    _read_until(link, b"C")
    assert flash.ops == before
    link.write(_frame(1, b"0123456789"))
    assert _read_until(link, bytes((ACK,)))
    assert flash.ops - before == 2  # one sector erased, one program


@pytest.mark.parametrize(("quirks", "reply"), [("all", NAK), ("none", ACK)])
def test_duplicate_block(iap: Callable[..., tuple[EmulatorHandle, SerialLink]], quirks: str, reply: int) -> None:
    _, link = iap(iap_quirks=quirks)
    link.write(b"1")
    _read_until(link, b"C")
    link.write(_block0("a.bin", 2000))
    _read_until(link, b"C")
    block = _frame(1, bytes(1024))
    link.write(block)
    assert _read_until(link, bytes((ACK,)))
    link.write(block)
    assert _read_until(link, bytes((reply,)))


@pytest.mark.parametrize(("quirks", "first_reply"), [("all", ACK), ("none", NAK)])
def test_first_eot(iap: Callable[..., tuple[EmulatorHandle, SerialLink]], quirks: str, first_reply: int) -> None:
    _, link = iap(iap_quirks=quirks)
    link.write(b"1")
    _read_until(link, b"C")
    link.write(_block0("a.bin", 10))
    _read_until(link, b"C")
    link.write(_frame(1, b"0123456789"))
    _read_until(link, bytes((ACK,)))
    link.write(bytes((EOT,)))
    assert _read_until(link, bytes((first_reply,)))


def test_five_errors_in_a_row_abort(iap: Callable[..., tuple[EmulatorHandle, SerialLink]]) -> None:
    _, link = iap()
    link.write(b"1")
    _read_until(link, b"C")
    link.write(_block0("a.bin", 2000))
    _read_until(link, b"C")
    bad = bytearray(_frame(1, bytes(1024)))
    bad[-1] ^= 0xFF
    for _ in range(4):
        link.write(bytes(bad))
        assert _read_until(link, b"C").endswith(b"C")  # asks again
    link.write(bytes(bad))
    text = _read_until(link, MENU_END)
    assert bytes((CAN, CAN)) in text
    assert b"Failed to receive the file!" in text


@pytest.mark.parametrize(("quirks", "errors"), [("all", 5), ("none", 10)])
def test_error_limit_follows_the_quirk(
    iap: Callable[..., tuple[EmulatorHandle, SerialLink]], quirks: str, errors: int
) -> None:
    emu, link = iap(iap_quirks=quirks)
    link.write(b"1")
    _read_until(link, b"C")
    personality = emu.device.personality
    assert isinstance(personality, IapPersonality)
    run = personality._run
    assert run is not None and isinstance(run.core, YmodemReceiver)
    assert run.core.max_errors == errors


def test_too_big_is_refused_before_erasing(iap: Callable[..., tuple[EmulatorHandle, SerialLink]]) -> None:
    emu, link = iap()
    flash = emu.device.flash
    _download(link, _firmware(2048, seed=4))
    before = bytes(flash.read(F407_APP, 4096))
    ops = flash.ops
    link.write(b"1")
    _read_until(link, b"C")
    link.write(_block0("huge.bin", 0x100000))  # the whole flash: more than the application area
    text = _read_until(link, MENU_END)
    assert bytes((CAN, CAN)) in text
    assert b"higher than the allowed space memory" in text
    assert flash.ops == ops
    assert bytes(flash.read(F407_APP, 4096)) == before


def test_abort_with_a_key(iap: Callable[..., tuple[EmulatorHandle, SerialLink]]) -> None:
    _, link = iap()
    link.write(b"1")
    _read_until(link, b"press 'a' to abort")
    link.write(b"a")
    text = _read_until(link, MENU_END)
    assert bytes((CAN, CAN)) in text and b"Aborted by user." in text


def test_abort_by_the_sender(iap: Callable[..., tuple[EmulatorHandle, SerialLink]]) -> None:
    _, link = iap()
    link.write(b"1")
    _read_until(link, b"C")
    link.write(_block0("a.bin", 5000))
    _read_until(link, b"C")
    link.write(bytes((CAN, CAN)))
    assert b"Aborted by user." in _read_until(link, MENU_END)


def test_write_protection_makes_downloads_fail(iap: Callable[..., tuple[EmulatorHandle, SerialLink]]) -> None:
    emu, link = iap()
    link.write(b"4")
    text = _read_until(link, b"Disable the write protection")
    assert b"Write Protection enabled" in text and b"restart" in text
    assert emu.device.boots == 2
    link.write(b"1")
    _read_until(link, b"C")
    link.write(_block0("a.bin", 3000))
    _read_until(link, b"C")
    link.write(_frame(1, _firmware(1024)))
    text = _read_until(link, MENU_END)
    assert bytes((CAN, CAN)) in text
    assert b"Verification failed!" in text
    sender = YmodemSender([YmodemFile("a.bin", _firmware(3000))])
    link.write(b"1")
    with pytest.raises(TransferAborted) as info:  # our sender reports it as the device's abort
        link.run(sender)
    assert info.value.by_peer


def test_execute_an_empty_area_hard_faults(iap: Callable[..., tuple[EmulatorHandle, SerialLink]]) -> None:
    emu, link = iap()
    link.write(b"3")
    assert b"Start program execution" in _read_until(link, b"execution......\r\n\n")
    link.write(b"1")
    assert _read_for(link, 0.3) == b""  # hard fault: nobody answers until a reset
    personality = emu.device.personality
    assert isinstance(personality, IapPersonality) and personality.mode == "halted"


def test_execute_a_loaded_application(iap: Callable[..., tuple[EmulatorHandle, SerialLink]]) -> None:
    emu, link = iap()
    _download(link, _firmware(4096))
    link.write(b"3")
    _read_until(link, b"Start program execution")
    personality = emu.device.personality
    assert isinstance(personality, IapPersonality) and personality.mode == "app"
    link.write(b"r")  # an unknown raw application: nothing the emulator could say
    assert _read_for(link, 0.2) == b""


def test_execute_the_demo_firmware(iap: Callable[..., tuple[EmulatorHandle, SerialLink]]) -> None:
    demo = (Path(__file__).resolve().parents[2] / "assets" / "firmware" / "demo-1.0.0.bin").read_bytes()
    emu, link = iap()
    _download(link, demo, "demo-1.0.0.bin")
    link.write(b"3")
    banner = _read_until(link, b"for the version\n")
    assert b"1.0.0 running from 0x08004000" in banner
    link.write(b"v")
    assert b"1.0.0\n" in _read_until(link, b"1.0.0\n")
    link.write(b"r")  # back into the IAP
    assert b"In-Application Programming Application" in _read_until(link, MENU_END)
    assert emu.device.boots == 2


def test_image_survives_a_restart(tmp_path: Path) -> None:
    image = _firmware(7000, seed=9)
    with running_emulator("iap", baud=0, state_dir=tmp_path) as emu, SerialLink(emu.port) as link:
        _download(link, image)
    # the same state folder: the chip after a power cycle
    with running_emulator("iap", baud=0, state_dir=tmp_path) as emu, SerialLink(emu.port) as link:
        _, data = _upload(link)
        assert emu.device.boots == 1
    assert data == image


@pytest.mark.parametrize("chip", ["stm32f103c8", "stm32l476rg"])
def test_other_chips(iap: Callable[..., tuple[EmulatorHandle, SerialLink]], chip: str) -> None:
    emu, link = iap(chip=chip)
    image = _firmware(3333, seed=2)
    assert b"Programming Completed Successfully!" in _download(link, image)
    assert bytes(emu.device.flash.read(IAP_APP_ADDRESS[chip], len(image))) == image
    assert _upload(link)[1] == image


def test_paced_download_at_115200(iap: Callable[..., tuple[EmulatorHandle, SerialLink]]) -> None:
    emu, link = iap(baud=115200, latency_ms=2)
    image = _firmware(6000, seed=3)
    assert b"Programming Completed Successfully!" in _download(link, image)
    assert bytes(emu.device.flash.read(F407_APP, len(image))) == image
    assert emu.line.stats.overruns == 0


# -- robustness ------------------------------------------------------------------------------------------------

_INTERESTING = st.sampled_from(
    [
        *(b"1", b"2", b"3", b"4", b"a", b"C", b"\x18\x18", b"\x04", b"\x06", b"\x15"),
        *(_block0("x.bin", 300), _frame(1, bytes(100)), _frame(2, bytes(1024)), _frame(0, bytes(128))),
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=300), _INTERESTING), max_size=25))
def test_no_byte_stream_crashes_the_iap(chunks: list[bytes]) -> None:
    """Whatever arrives (and however long the silences), the personality answers or ignores it: no exception
    escapes, and it always ends in one of its modes."""
    line = Line(pacing=False)
    try:
        device = Device(IapPersonality, line, chip="stm32f103c8")
        personality = IapPersonality()
        device.personality = personality
        ctx = DeviceContext(
            flash=device.flash,
            chip=device.chip,
            state=device.state,
            time_scale=0.0,
            trusted_keys=(),
            log=device.log,
            _device=device,
        )
        personality.boot(ctx)
        for chunk in chunks:
            personality.on_bytes(chunk)
            personality.on_idle(ctx.now())
            personality.on_idle(ctx.now() + 30.0)  # every timeout in between
        assert personality.mode in {"menu", "download", "upload-wait", "upload", "app", "halted"}
    finally:
        line.stop()


class _Wire:
    """The device side of a back-to-back test: what the firmware writes is collected, no I/O, no threads."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.baud = 115200

    def write(self, data: bytes) -> None:
        self.out += data

    def set_baud(self, baud: int) -> None:
        self.baud = baud


class _Board:
    def __init__(self, chip: str) -> None:
        from emulator.chips import CHIPS
        from emulator.flash import Flash

        self.line = _Wire()
        self.chip = CHIPS[chip]
        self.flash = Flash(self.chip)
        self.resets: list[str] = []

    def request_reset(self, reason: str, *, drain: bool = False) -> None:
        self.resets.append(reason)


def _back_to_back(image: bytes, chunk: int, quirks: IapQuirks) -> tuple[bytes, bytes]:
    """Our sender core against the IAP personality with no port: ``chunk`` bytes at a time each way."""
    import logging
    from typing import cast

    board = _Board("stm32f103c8")
    ctx = DeviceContext(
        flash=board.flash,
        chip=board.chip,
        state={},
        time_scale=0.0,
        trusted_keys=(),
        log=logging.getLogger("test.iap"),
        _device=cast(Device, board),
    )
    iap = IapPersonality(quirks=quirks)
    iap.boot(ctx)
    iap.on_bytes(b"1")
    sender = YmodemSender([YmodemFile("b2b.bin", image)])
    done = False
    for _ in range(100_000):
        to_host, board.line.out = bytes(board.line.out), bytearray()
        for i in range(0, len(to_host), chunk):
            sender.receive_data(to_host[i : i + chunk])
        while (event := sender.next_event()) is not None:
            done = done or isinstance(event, BatchComplete)
        to_device = sender.data_to_send()
        if done and not to_device:
            break
        for i in range(0, len(to_device), chunk):
            iap.on_bytes(to_device[i : i + chunk])
        if not to_device and not board.line.out:
            # the line is quiet: the sender's timeout fires first (it answers a start request once the line
            # has settled); the device's fires if that did not get things moving
            sender.handle_timeout()
            late = sender.data_to_send()
            for i in range(0, len(late), chunk):
                iap.on_bytes(late[i : i + chunk])
            if not late:
                iap.on_idle(ctx.now() + 60.0)
    assert done
    iap.on_bytes(b"\r")  # trailing bytes after the session: a key for the menu
    text = bytes(board.line.out)
    app = IAP_APP_ADDRESS["stm32f103c8"]
    return board.flash.read(app, len(image) + 200), text


@pytest.mark.parametrize("quirks", [IapQuirks(), IapQuirks.none()], ids=["quirks", "no-quirks"])
def test_back_to_back_whole_and_byte_by_byte(quirks: IapQuirks) -> None:
    image = _firmware(2100, seed=11)
    results = [_back_to_back(image, chunk, quirks) for chunk in (1, 7, 1 << 20)]
    flash, text = results[0]
    assert all(r[0] == flash for r in results)
    assert flash[: len(image)] == image
    tail = flash[len(image) :]
    pad = -len(image) % 128  # the last 52 bytes went in a 128-byte block
    assert tail == (b"\x1a" * pad + b"\xff" * (200 - pad) if quirks.write_padding else b"\xff" * 200)
    assert b"Invalid Number" in text and b"Main Menu" in text


@pytest.mark.parametrize("seed", [0, *(pytest.param(seed, marks=pytest.mark.soak) for seed in range(1, 16))])
def test_noisy_line_download_is_right_or_fails_clearly(
    iap: Callable[..., tuple[EmulatorHandle, SerialLink]], seed: int
) -> None:
    """Bit errors and dropped bytes both ways: the download either completes with the right bytes in flash
    or ends with one of our typed errors; never a success with wrong flash contents."""
    emu, link = iap(faults="flip=2e-5,drop=2e-4", seed=seed)
    image = _firmware(16_000, seed=seed)
    link.write(b"1")
    sender = YmodemSender([YmodemFile("noisy.bin", image)], ack_timeout=2.5, header_ack_timeout=2.5)
    try:
        link.run(sender, until=lambda e: isinstance(e, BatchComplete))
    except Stm32OtaError:
        return
    assert bytes(emu.device.flash.read(F407_APP, len(image))) == image
