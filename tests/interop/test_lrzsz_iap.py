"""lrzsz and our CLI against the emulated AN4657 IAP (quirks on), over a real pty.

Done-when of issue #4: ``sb --ymodem`` loads a .bin after the menu key '1'; ``stm32ota receive`` uploads it
back byte-identical after '2'; ``stm32ota send`` loads one too.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from emulator.iap import IAP_APP_ADDRESS, UPLOAD_FILE_NAME
from emulator.testing import EmulatorHandle, running_emulator
from tests.conftest import require_tool

pytestmark = pytest.mark.interop

MENU_END = b"==========================================================\r\n\n"
APP = IAP_APP_ADDRESS["stm32f407vg"]
TOOL_TIMEOUT_S = 120


def _image(size: int) -> bytes:
    body = random.Random(size).randbytes(size - 8)
    return (0x2002_0000).to_bytes(4, "little") + (APP + 0x1C1).to_bytes(4, "little") + body


def _menu_key(port: str, key: bytes, until: bytes) -> bytes:
    """Open the port like a terminal, press Enter to see the menu, press ``key``, read until ``until``."""
    got = bytearray()
    with serial.Serial(port, 115200, timeout=0.05, exclusive=False) as term:
        term.write(b"\r")
        end = time.monotonic() + 10
        while MENU_END not in got:
            assert time.monotonic() < end, bytes(got[-200:])
            got += term.read(4096)
        term.write(key)
        got.clear()
        while until not in got:
            assert time.monotonic() < end, bytes(got[-200:])
            got += term.read(1)
    return bytes(got)


def _stm32ota(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "protocol", *args],
        capture_output=True,
        timeout=TOOL_TIMEOUT_S,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )


def _check_flash(emu: EmulatorHandle, image: bytes) -> None:
    assert bytes(emu.device.flash.read(APP, len(image))) == image


@pytest.mark.parametrize("baud", [0, 115200])
def test_sb_loads_and_stm32ota_receive_uploads_back(tmp_path: Path, baud: int) -> None:
    sb = require_tool("sb")
    image = _image(9000 if baud else 40_000)
    source = tmp_path / "app.bin"
    source.write_bytes(image)
    with running_emulator("iap", baud=baud, time_scale=0) as emu:
        _menu_key(emu.port, b"1", b"press 'a' to abort")
        fd = os.open(emu.port, os.O_RDWR | os.O_NOCTTY)
        try:
            done = subprocess.run(
                [sb, "--ymodem", "-q", str(source)],
                stdin=fd,
                stdout=fd,
                stderr=subprocess.PIPE,
                timeout=TOOL_TIMEOUT_S,
                check=False,
            )
        finally:
            os.close(fd)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        _check_flash(emu, image)

        _menu_key(emu.port, b"2", b"Select Receive File")
        out = tmp_path / "up"
        out.mkdir()
        result = _stm32ota("receive", "-p", emu.port, "-b", "115200", "-d", str(out), "-q")
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        assert (out / UPLOAD_FILE_NAME).read_bytes() == image


def test_stm32ota_send_loads_into_iap_with_quirks(tmp_path: Path) -> None:
    image = _image(25_000)
    source = tmp_path / "fw.bin"
    source.write_bytes(image)
    with running_emulator("iap", baud=115200, latency_ms=2, time_scale=0) as emu:
        _menu_key(emu.port, b"1", b"press 'a' to abort")
        result = _stm32ota("send", "-p", emu.port, "-q", str(source))
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        _check_flash(emu, image)


def test_rb_receives_an_upload(tmp_path: Path) -> None:
    rb = require_tool("rb")
    image = _image(12_000)
    with running_emulator("iap", baud=0, time_scale=0) as emu:
        from protocol.drivers.link import SerialLink
        from protocol.ymodem import BatchComplete, YmodemFile, YmodemSender

        with SerialLink(emu.port) as link:
            link.write(b"1")
            link.run(YmodemSender([YmodemFile("x.bin", image)]), until=lambda e: isinstance(e, BatchComplete))
        _menu_key(emu.port, b"2", b"Select Receive File")
        fd = os.open(emu.port, os.O_RDWR | os.O_NOCTTY)
        try:
            done = subprocess.run(
                [rb, "--ymodem", "-q"],
                stdin=fd,
                stdout=fd,
                stderr=subprocess.PIPE,
                timeout=TOOL_TIMEOUT_S,
                check=False,
                cwd=tmp_path,
            )
        finally:
            os.close(fd)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert (tmp_path / UPLOAD_FILE_NAME).read_bytes() == image
