"""``stm32ota emulate`` as a user runs it: a subprocess that prints its port first and flushes on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from emulator.iap import IAP_APP_ADDRESS
from protocol.drivers.link import SerialLink
from protocol.ymodem import BatchComplete, FileData, YmodemFile, YmodemReceiver, YmodemSender

ROOT = Path(__file__).resolve().parents[2]
MENU_END = b"==========================================================\r\n\n"
START_TIMEOUT_S = 30
APP = IAP_APP_ADDRESS["stm32f407vg"]


@contextmanager
def _emulate(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "protocol", "emulate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert port, proc.stderr.read() if proc.stderr else ""
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _menu(link: SerialLink) -> bytes:
    """Press Enter, as on a terminal: the IAP answers with its menu (what it printed at boot, before we
    opened the port, is gone)."""
    link.write(b"\r")
    return _read_until(link, MENU_END)


def _read_until(link: SerialLink, marker: bytes, already: bytes = b"") -> bytes:
    got = bytearray(already)
    end = time.monotonic() + 10
    while marker not in got:
        assert time.monotonic() < end, bytes(got[-200:])
        got += link.read(0.05)
    return bytes(got)


def test_sigterm_flushes_state_and_a_restart_keeps_the_image(tmp_path: Path) -> None:
    state = tmp_path / "state"
    image = bytes(range(256)) * 20
    common = ("--mode", "iap", "--baud", "0", "--time-scale", "0", "--state", str(state))
    with _emulate(*common) as (proc, port):
        assert port.startswith("/dev/")
        with SerialLink(port) as link:
            _menu(link)
            link.write(b"1")
            sender = YmodemSender([YmodemFile("fw.bin", image)])
            link.run(sender, until=lambda e: isinstance(e, BatchComplete))
            text = _read_until(link, b"Bytes\r\n", sender.trailing_data)
            assert b"Programming Completed Successfully!" in text
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=START_TIMEOUT_S)
        assert proc.returncode == 0, err
        assert "state flushed" in err
    flash = (state / "flash.bin").read_bytes()
    offset = APP - 0x0800_0000
    assert flash[offset : offset + len(image)] == image

    with _emulate(*common) as (proc, port):
        with SerialLink(port) as link:
            _menu(link)
            link.write(b"2")
            _read_until(link, b"Select Receive File")
            parts: list[bytes] = []
            link.run(YmodemReceiver(), on_event=lambda e: parts.append(e.data) if isinstance(e, FileData) else None)
        assert b"".join(parts) == image
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=START_TIMEOUT_S)
        assert proc.returncode == 0


def test_socket_endpoint(tmp_path: Path) -> None:
    with _emulate("--mode", "iap", "--socket", "0", "--baud", "0", "--state", str(tmp_path)) as (proc, port):
        assert port.startswith("socket://127.0.0.1:")
        with SerialLink(port) as link:
            assert b"Main Menu" in _menu(link)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=START_TIMEOUT_S)
        assert proc.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--faults", "flip=2"), "rate must be between 0 and 1"),
        (("--faults", "warp=1"), "unknown fault"),
        (("--chip", "stm32h743"), "unknown chip"),
        (("--mode", "iap", "--iap-quirks", "bogus"), "unknown IAP quirk"),
        (("--mode", "iap", "--trust", "/nonexistent/key.pem"), "trusted key not found"),
        (("--baud", "-5"), "invalid baud rate"),
        (("--mode", "iap", "--rx-buffer", "0"), "invalid RX buffer size"),
        (("--mode", "iap", "--latency-ms", "-1"), "invalid latency"),
        (("--mode", "iap", "--socket", "70000"), "cannot open socket"),
        (("--mode", "iap", "--time-scale", "-1"), "invalid time scale"),
    ],
)
def test_bad_options_are_reported(args: tuple[str, ...], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "protocol", "emulate", *args],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert message in done.stderr
    assert "stm32ota: error:" in done.stderr
    assert done.stdout == ""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "protocol", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def _slot0(port: str) -> dict[str, object]:
    done = _cli("info", "-p", port, "--json")
    assert done.returncode == 0, done.stderr
    slot: dict[str, object] = json.loads(done.stdout)["slots"][0]
    return slot


def test_ota_mode_is_updated_by_the_host_flow_at_115200_and_921600(tmp_path: Path) -> None:
    firmware = ROOT / "assets" / "firmware"
    args = ("--mode", "ota", "--baud", "115200", "--latency-ms", "2", "--time-scale", "0", "--state", str(tmp_path))
    with _emulate(*args) as (proc, port):
        assert _slot0(port)["state"] == "empty"
        done = _cli("flash", "-p", port, "-q", str(firmware / "demo-1.0.0.signed.bin"))
        assert done.returncode == 0, done.stderr
        slot = _slot0(port)
        assert (slot["version"], slot["state"]) == ("1.0.0+0", "confirmed")
        done = _cli("flash", "-p", port, "-q", "--fast-baud", "921600", str(firmware / "demo-1.1.0.signed.bin"))
        assert done.returncode == 0, done.stderr
        slot = _slot0(port)
        assert (slot["version"], slot["state"]) == ("1.1.0+0", "confirmed")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=START_TIMEOUT_S)
        assert proc.returncode == 0, err


def test_no_auto_confirm_leaves_a_test_image_to_be_reverted() -> None:
    from emulator.testing import running_emulator

    firmware = ROOT / "assets" / "firmware"
    with running_emulator("ota", baud=0, auto_confirm=False) as emu:
        done = _cli("flash", "-p", emu.port, "-q", str(firmware / "demo-1.0.0.signed.bin"))
        assert done.returncode == 0, done.stderr
        done = _cli("flash", "-p", emu.port, "-q", "--no-confirm", str(firmware / "demo-1.1.0.signed.bin"))
        assert done.returncode == 0, done.stderr
        assert _slot0(emu.port)["version"] == "1.1.0+0"
        time.sleep(0.5)  # longer than the app's self-test delay: it would have confirmed by now
        assert _slot0(emu.port)["state"] != "confirmed"
        boots = emu.device.boots
        emu.device.request_reset("test")
        deadline = time.monotonic() + 10
        while emu.device.boots == boots and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _slot0(emu.port)["version"] == "1.0.0+0"


def test_socket_port_in_use_is_reported() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = _cli("emulate", "--mode", "iap", "--socket", str(port))
    assert done.returncode == 1
    assert "cannot open socket" in done.stderr and "hint:" in done.stderr
