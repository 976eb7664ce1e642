"""The device commands (ports, reset, confirm, rollback, erase, read, terminal) against the emulator on a real
pty, through the command line: each success path and each error a technician can hit."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.demo import factory_program
from emulator.ota import OtaPersonality
from emulator.testing import EmulatorHandle, running_emulator
from protocol.cli import main
from protocol.drivers.link import SerialLink
from protocol.flow import FlashOptions, flash_image
from protocol.image import parse_image

from .chip_harness import FIRMWARE, make_image

OLD = (FIRMWARE / "demo-1.0.0.signed.bin").read_bytes()
NEW = (FIRMWARE / "demo-1.1.0.signed.bin").read_bytes()
REPO = Path(__file__).resolve().parents[2]
SLOT_SIZE = 384 * 1024


@pytest.fixture
def device(tmp_path: Path) -> Iterator[EmulatorHandle]:
    """An emulated F407 running demo 1.0.0 (confirmed) whose application does not confirm a test image."""
    state = tmp_path / "state"
    factory_program(state, OLD)
    with running_emulator("ota", baud=0, time_scale=0, state_dir=state, auto_confirm=False) as emu:
        yield emu


def _flash(emu: EmulatorHandle, image: bytes, **options: bool) -> None:
    """Put ``image`` on the device (these tests are about what comes after, not about version policy)."""
    options.setdefault("allow_downgrade", True)
    with SerialLink(emu.port, 115200) as link:
        link.execute(
            flash_image(image, FlashOptions(protocol="ota", **options), on_event=lambda e: None, clock=time.monotonic)
        )


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    code, out, err = _run(capsys, *argv, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def _slot(emu: EmulatorHandle, index: int) -> bytes:
    chip = emu.device.chip
    start, size = chip.layout.primary if index == 0 else chip.layout.secondary
    return emu.device.flash.read(start, size)


def _running_version(data: dict[str, object]) -> str:
    after = data["after"]
    assert isinstance(after, dict)
    running = after["running"]
    assert isinstance(running, dict)
    return str(running["version"])


# --- reset ---------------------------------------------------------------------------------------------------


def test_reset_reboots_and_says_what_runs(device: EmulatorHandle, capsys: pytest.CaptureFixture[str]) -> None:
    boots = device.device.boots
    code, out, err = _run(capsys, "reset", "-p", device.port)
    assert code == 0, err
    assert "running 1.0.0+0 (confirmed)" in out
    assert "device [INF] boot: stm32ota bootloader" in err  # the device's own log lines while it restarts
    assert device.device.boots == boots + 1


def test_reset_after_flash_no_reboot_swaps_in_the_test_image_then_confirm_keeps_it(
    device: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    _flash(device, NEW, reboot=False)
    data = _json(capsys, "reset", "-p", device.port)
    assert data["change"] == "swapped"
    assert _running_version(data) == "1.1.0+0"
    after = data["after"]
    assert isinstance(after, dict) and "under test" in str(after["summary"])

    code, out, err = _run(capsys, "confirm", "-p", device.port)
    assert code == 0, err
    assert "confirmed 1.1.0+0" in out
    data = _json(capsys, "reset", "-p", device.port)
    assert data["change"] is None and _running_version(data) == "1.1.0+0"  # it stays


def test_an_unconfirmed_test_image_is_reverted_by_reset(
    device: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    _flash(device, NEW, confirm=False)
    data = _json(capsys, "reset", "-p", device.port)
    assert data["change"] == "reverted" and _running_version(data) == "1.0.0+0"


# --- confirm -------------------------------------------------------------------------------------------------


def test_confirm_with_nothing_under_test(device: EmulatorHandle, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "confirm", "-p", device.port)
    assert code == 1 and out == ""
    assert "stm32ota: error: device: confirm: the running image is not under test" in err
    assert "NOT_CONFIRMABLE" in err and "hint: 1.0.0+0 is already confirmed" in err
    assert "--no-confirm" in err
    assert "Traceback" not in err


def test_confirm_of_an_image_still_waiting_for_its_test_boot_says_reset_first(
    device: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    _flash(device, NEW, reboot=False)
    code, _out, err = _run(capsys, "confirm", "-p", device.port)
    assert code == 1
    assert "slot 1 holds 1.1.0+0 waiting for its test boot: `stm32ota reset -p PORT` boots it" in err


def test_confirm_after_flash_no_confirm(device: EmulatorHandle, capsys: pytest.CaptureFixture[str]) -> None:
    _flash(device, NEW, confirm=False)
    data = _json(capsys, "confirm", "-p", device.port)
    image = data["image"]
    assert isinstance(image, dict) and image["version"] == "1.1.0+0" and image["state"] == "confirmed"


# --- rollback ------------------------------------------------------------------------------------------------


def test_rollback_with_no_previous_image(device: EmulatorHandle, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "rollback", "-p", device.port)
    assert code == 1 and out == ""
    assert "there is no previous image to roll back to [NO_ROLLBACK, 0x60]" in err
    assert "hint: slot 1 is empty" in err


def test_rollback_then_reset_later_or_with_reboot_now(
    device: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    old = make_image(version="1.0.0", counter=1)
    new = make_image(version="1.1.0", counter=1, size=4000)  # the same counter: going back is allowed
    _flash(device, old, permanent=True)
    _flash(device, new, permanent=True)
    code, out, err = _run(capsys, "rollback", "-p", device.port)
    assert code == 0, err
    assert "1.0.0+0 runs again after the next reset (stm32ota reset -p PORT)" in out
    data = _json(capsys, "reset", "-p", device.port)
    assert _running_version(data) == "1.0.0+0"

    data = _json(capsys, "rollback", "-p", device.port, "--reboot")  # and forth again, in one go
    assert data["rebooted"] is True and _running_version(data) == "1.1.0+0"


# --- erase ---------------------------------------------------------------------------------------------------


def test_erase_the_download_slot(device: EmulatorHandle, capsys: pytest.CaptureFixture[str]) -> None:
    _flash(device, NEW, reboot=False)
    code, out, err = _run(capsys, "erase", "-p", device.port, "--slot", "1")
    assert code == 0, err
    assert out.startswith("erased slot 1 (it held 1.1.0+0, pending_test): 393216 bytes, 3 sectors")
    assert "erase: 100.0%" in err
    assert _slot(device, 1) == b"\xff" * SLOT_SIZE
    data = _json(capsys, "reset", "-p", device.port)  # the pending update is gone with it
    assert data["change"] is None and _running_version(data) == "1.0.0+0"


def test_erase_of_the_running_slot_is_refused_unless_forced(
    device: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _slot(device, 0)
    code, out, err = _run(capsys, "erase", "-p", device.port, "--slot", "0")
    assert code == 1 and out == ""
    assert "the slot holds the image the device is running [SLOT_IN_USE, 0x62]" in err
    assert "hint: add --force" in err and "serial recovery" in err
    assert _slot(device, 0) == before

    data = _json(capsys, "erase", "-p", device.port, "--slot", "0", "--force")
    assert data["device_reset"] is True
    after = data["after"]
    assert isinstance(after, dict) and after["serial_recovery"] is True
    assert "serial recovery" in str(after["summary"])
    assert _slot(device, 0) == b"\xff" * SLOT_SIZE


def test_erase_of_a_slot_the_device_does_not_have(device: EmulatorHandle, capsys: pytest.CaptureFixture[str]) -> None:
    flash = bytes(device.device.flash.data)
    code, _out, err = _run(capsys, "erase", "-p", device.port, "--slot", "2")
    assert code == 1
    assert "stm32ota: error: the device has no slot 2" in err and "hint: its slots are 0, 1" in err
    assert bytes(device.device.flash.data) == flash


# --- read ----------------------------------------------------------------------------------------------------


def test_read_the_running_image_trimmed_and_the_whole_slot_raw(
    device: EmulatorHandle, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    image = tmp_path / "slot0.bin"
    code, out, err = _run(capsys, "read", "-p", device.port, str(image))
    assert code == 0, err
    assert image.read_bytes() == OLD[: parse_image(OLD).end]
    assert "read the image 1.0.0+0 from slot 0" in out and "the image digest in the slot table" in out
    assert "read: 100.0%" in err

    raw = tmp_path / "slot0-raw.bin"
    data = _json(capsys, "read", "-p", device.port, "--raw", str(raw))
    assert raw.read_bytes() == _slot(device, 0) and data["size"] == SLOT_SIZE
    assert data["verified"] == ["the device's SHA-256 of the range", "the image digest in the slot table"]


def test_read_of_an_empty_slot(device: EmulatorHandle, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "slot1.bin"
    code, out, err = _run(capsys, "read", "-p", device.port, "--slot", "1", str(out_file))
    assert code == 1 and out == ""
    assert "stm32ota: error: slot 1 holds no image: nothing to read" in err
    assert "--raw" in err
    assert not out_file.exists()
    data = _json(capsys, "read", "-p", device.port, "--slot", "1", "--raw", str(out_file))
    assert out_file.read_bytes() == b"\xff" * SLOT_SIZE and data["image"] is None


def test_read_into_a_missing_folder(device: EmulatorHandle, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _out, err = _run(capsys, "read", "-p", device.port, str(tmp_path / "nope" / "x.bin"))
    assert code == 1 and "does not exist" in err and "hint:" in err


# --- errors every command shares -----------------------------------------------------------------------------

COMMANDS = {
    "reset": [],
    "confirm": [],
    "rollback": [],
    "erase": ["--slot", "1"],
    "read": ["out.bin"],
}
IAP_REFUSES = {**COMMANDS, "read": ["--raw", "out.bin"]}  # reading its application area works (below)


@pytest.mark.parametrize("command", [*COMMANDS, "terminal"])
def test_a_wrong_port_is_one_line_with_a_hint(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, command, "-p", "/dev/no-such-tty-stm32ota", *COMMANDS.get(command, []))
    assert code == 1 and out == ""
    assert err.startswith("stm32ota: error: no such port: /dev/no-such-tty-stm32ota\n  hint: ")


@pytest.mark.parametrize("command", list(IAP_REFUSES))
def test_an_iap_device_has_none_of_these_commands(
    command: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with running_emulator("iap", baud=0, time_scale=0, state_dir=tmp_path / "iap") as emu:
        flash = bytes(emu.device.flash.data)
        args = [str(tmp_path / a) if a.endswith(".bin") else a for a in IAP_REFUSES[command]]
        code, out, err = _run(capsys, command, "-p", emu.port, *args)
        assert code == 1 and out == ""
        what = "slots" if command == "read" else command
        assert err.startswith(f"stm32ota: error: this device is an AN4657 IAP menu; it has no {what}\n  hint: ")
        assert bytes(emu.device.flash.data) == flash
        assert emu.device.boots == 1  # none of its menu options was picked


def test_read_of_an_iap_device_uploads_its_application_area(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    app = (FIRMWARE / "demo-1.0.0.bin").read_bytes()
    with running_emulator("iap", baud=0, time_scale=0, state_dir=tmp_path / "iap") as emu:
        code, _out, err = _run(capsys, "flash", "-q", "-p", emu.port, str(FIRMWARE / "demo-1.0.0.bin"))
        assert code == 0, err
        out_file = tmp_path / "app.bin"
        data = _json(capsys, "read", "-p", emu.port, str(out_file))
        assert out_file.read_bytes() == app
        assert data["source"] == "iap-upload" and data["verified"] == ["YMODEM block CRC-16s"]
        code, out, err = _run(capsys, "read", "-p", emu.port, str(out_file))  # the menu is back: again
        assert code == 0 and "with the IAP menu's upload" in out, err
        assert emu.device.boots == 1


# --- ports ---------------------------------------------------------------------------------------------------


def test_ports_describes_a_pty_and_the_emulator_s_port(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        name = os.ttyname(slave)
        link = tmp_path / "ttyBOARD"
        link.symlink_to(name)
        code, out, err = _run(capsys, "ports", name, str(link))
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0].split() == ["PORT", "VID:PID", "SERIAL", "DESCRIPTION"]
        row = next(line for line in lines if line.startswith(name + " "))
        assert "pseudo-terminal" in row
        assert any(line.startswith(str(link)) and "pseudo-terminal" in line for line in lines)

        data = json.loads(_run(capsys, "ports", name, "--json")[1])
        entry = next(p for p in data if p["device"] == name)
        assert entry["vid_pid"] is None and entry["serial_number"] is None and entry["bridge"] is None
        assert set(entry) >= {"device", "description", "vid", "pid", "vid_pid", "serial_number", "hwid"}
    finally:
        os.close(master)
        os.close(slave)


def test_ports_of_a_missing_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _run(capsys, "ports", "/dev/no-such-tty-stm32ota")
    assert code == 1 and "no such port" in err and "hint:" in err


# --- terminal ------------------------------------------------------------------------------------------------


class _Terminal:
    """``stm32ota terminal`` in a subprocess whose stdin and stdout are a pty, as on a technician's screen."""

    def __init__(self, port: str) -> None:
        self.master, slave = os.openpty()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "protocol", "terminal", "-p", port],
            stdin=slave,
            stdout=slave,
            stderr=subprocess.PIPE,
            env=env,
        )
        os.close(slave)
        self.seen = b""
        assert self.proc.stderr is not None
        banner = self.proc.stderr.readline()  # written once the keyboard is in raw mode
        assert b"Ctrl-] exits" in banner, banner
        self.banner = banner.decode()

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def expect(self, text: bytes, timeout: float = 20.0) -> bytes:
        end = time.monotonic() + timeout
        while text not in self.seen:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not seen in {self.seen[-2000:]!r}")
            ready, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if ready:
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:
                    continue
        return self.seen

    def close(self) -> tuple[int, str]:
        self.type(b"\x1d")  # Ctrl-]
        try:
            _out, err = self.proc.communicate(timeout=20)
        finally:
            os.close(self.master)
        return self.proc.returncode, self.banner + err.decode()


def test_terminal_renders_log_frames_as_lines(tmp_path: Path) -> None:
    factory_program(tmp_path, OLD)

    def quick_heartbeat() -> OtaPersonality:
        return OtaPersonality(heartbeat_interval=0.2)

    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path, personality_factory=quick_heartbeat) as emu:
        term = _Terminal(emu.port)
        seen = term.expect(b"INF] app: heartbeat")
        code, err = term.close()
    assert code == 0, err
    line = next(x for x in seen.split(b"\r\n") if b"heartbeat" in x)
    assert line.startswith(b"[") and b"\xa5" not in seen  # frames were rendered, never shown raw
    assert "Ctrl-] exits" in err and "log lines" in err


def test_terminal_forwards_keys_to_an_iap_menu(tmp_path: Path) -> None:
    with running_emulator("iap", baud=0, time_scale=0, state_dir=tmp_path) as emu:
        term = _Terminal(emu.port)
        term.type(b"9")
        term.expect(b"Invalid Number")
        term.expect(b"Main Menu")
        code, err = term.close()
        assert code == 0, err
        assert emu.device.boots == 1
    assert "1 sent" in err


# --- the same commands on the asyncio driver ----------------------------------------------------------------


def test_the_commands_run_on_the_asyncio_driver_too(device: EmulatorHandle) -> None:
    import asyncio

    from protocol.device_commands import read_slot_steps, reset_steps
    from protocol.drivers.aio import AsyncSerialLink

    async def main_() -> tuple[bytes, str]:
        with SerialLink(device.port, 115200) as link:
            alink = AsyncSerialLink(link)
            read = await alink.execute(read_slot_steps(0, baud=115200, clock=time.monotonic))
            reset = await alink.execute(reset_steps(baud=115200, clock=time.monotonic))
            return read.data, reset.summary

    data, summary = asyncio.run(main_())
    assert data == OLD[: parse_image(OLD).end]
    assert "running 1.0.0+0 (confirmed)" in summary


# --- a noisy line ---------------------------------------------------------------------------------------------


def _read_over_noise(tmp_path: Path, image: bytes, seed: int) -> None:
    from protocol.device_commands import read_slot
    from protocol.errors import Stm32OtaError
    from protocol.progress import ProgressSnapshot
    from protocol.sansio import Event

    state = tmp_path / "state"
    factory_program(state, image)
    steps: list[str] = []

    def on_event(event: Event) -> None:
        if isinstance(event, ProgressSnapshot) and event.message:
            steps.append(event.message)

    with running_emulator(
        "ota", baud=0, time_scale=0, state_dir=state, faults="flip=1e-4,drop=0.001", seed=seed
    ) as emu:
        try:
            with SerialLink(emu.port, 115200) as link:
                result = read_slot(link, 0, on_event=on_event)
        except Stm32OtaError as err:
            assert str(err) and err.hint, "a failure says what went wrong and what to do"
            return
    assert result.data == image[: parse_image(image).end]
    assert any("going on in" in step for step in steps)  # 2 KiB replies rarely survive this line


def test_read_over_a_noisy_line_shrinks_its_reads_and_verifies(tmp_path: Path) -> None:
    _read_over_noise(tmp_path, NEW, seed=1)


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(1, 6))
def test_read_of_20_kib_over_a_noisy_line(tmp_path: Path, seed: int) -> None:
    _read_over_noise(tmp_path, make_image(version="1.2.0", size=20000), seed)


# --- what flash leaves to do -----------------------------------------------------------------------------------


def test_flash_no_reboot_and_no_confirm_end_with_what_is_left_and_its_command(
    device: EmulatorHandle, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    image = tmp_path / "new.bin"
    image.write_bytes(NEW)
    code, _out, err = _run(capsys, "flash", "-p", device.port, str(image), "--no-reboot")
    assert code == 0, err
    assert f"next: stm32ota reset -p {device.port}" in err and "update complete" not in err
    code, _out, err = _run(capsys, "reset", "-p", device.port)
    assert code == 0, err
    code, _out, err = _run(capsys, "confirm", "-p", device.port)
    assert code == 0, err

    newer = tmp_path / "newer.bin"
    newer.write_bytes(make_image(version="2.0.0", counter=5))
    code, out, err = _run(capsys, "flash", "-p", device.port, str(newer), "--no-confirm", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["left_to_do"] == ["confirm"]
    assert result["next_commands"] == [f"stm32ota confirm -p {device.port}"]


# --- real flash timings ---------------------------------------------------------------------------------------


def test_erase_with_datasheet_erase_times_on_a_paced_line(tmp_path: Path) -> None:
    """Three 128 KiB sectors take the F407's 1 s each: the device reports before each one and the host waits
    through them (BUSY_TIMEOUT_S per report) instead of resending or giving up."""
    from emulator.chips import CHIPS
    from protocol.device_commands import erase
    from protocol.sansio import Event, Progress

    state = tmp_path / "state"
    factory_program(state, OLD)
    chip = CHIPS["stm32f407vg"]
    raw = bytearray((state / "flash.bin").read_bytes())
    start, size = chip.layout.secondary
    for sector in chip.sectors_in(start, size):
        raw[sector.start - chip.flash_base] = 0x00  # every sector of the download slot holds something
    (state / "flash.bin").write_bytes(bytes(raw))
    events: list[Event] = []
    with running_emulator("ota", baud=115200, time_scale=1.0, state_dir=state) as emu:
        with SerialLink(emu.port, 115200) as link:
            result = erase(link, 1, on_event=events.append)
        assert emu.device.flash.is_erased(start, size)
        assert emu.device.flash.erases >= 3
    assert result.erased == size and result.sectors == 3 and not result.resetting
    erase_reports = [e for e in events if isinstance(e, Progress) and e.phase == "erase"]
    assert [e.done for e in erase_reports][-4:] == [0, 131072, 262144, 393216]


@pytest.mark.parametrize("argv", [["reset", "--timeout", "-3"], ["terminal", "--duration", "soon"]])
def test_a_bad_duration_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([argv[0], "-p", "/dev/null", *argv[1:]])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"stm32ota {argv[0]}: error: argument" in err and "seconds" in err


def _leave_in_data_phase(emu: EmulatorHandle) -> None:
    """A flash cut off after BEGIN: the device stays in its data phase, refusing other commands."""
    from protocol.pump import pump
    from protocol.update import HostConnection, TransferStarted

    with SerialLink(emu.port, 115200) as link:
        host = HostConnection()
        host.begin_transfer(make_image(version="3.0.0", size=30000), slot=1)
        link.execute(pump(host, time.monotonic(), until=lambda e: isinstance(e, TransferStarted)))


@pytest.mark.parametrize("command", ["reset", "read"])
def test_a_transfer_left_in_its_data_phase_is_ended_first(
    command: str, device: EmulatorHandle, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _leave_in_data_phase(device)
    args = [str(tmp_path / "slot0.bin")] if command == "read" else []
    code, out, err = _run(capsys, command, "-p", device.port, *args)
    assert code == 0, err
    assert "the device was in the middle of a transfer: ending it first" in err
    assert "1.0.0+0" in out
