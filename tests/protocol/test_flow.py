"""The host update flow on both drivers, against the emulator: async use, cancel and resume, protocol
detection, and the info/monitor commands."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from emulator.demo import demo_firmware, factory_program
from emulator.testing import running_emulator
from protocol.cli import main
from protocol.drivers.aio import AsyncSerialLink
from protocol.drivers.link import CancelToken, SerialLink
from protocol.errors import Cancelled
from protocol.flow import FlashOptions, flash_image
from protocol.progress import Phase, PhaseStatus, ProgressSnapshot
from protocol.sansio import DeviceLog, Event, Progress
from protocol.update.messages import SlotState

OLD = demo_firmware("demo-1.0.0.signed.bin").read_bytes()
NEW = demo_firmware("demo-1.1.0.signed.bin").read_bytes()
BIG = demo_firmware("demo-big-1.2.0.signed.bin").read_bytes()
RAW_APP = demo_firmware("demo-1.1.0.bin").read_bytes()


def test_the_flow_runs_unchanged_on_the_asyncio_driver(tmp_path: Path) -> None:
    factory_program(tmp_path, OLD)
    steps: list[tuple[Phase, PhaseStatus]] = []

    def on_event(event: Event) -> None:
        if isinstance(event, ProgressSnapshot) and event.status is not PhaseStatus.RUNNING:
            steps.append((event.phase, event.status))

    async def go() -> object:
        link = await AsyncSerialLink.open(emu.port, 115200)
        async with link:
            return await link.execute(flash_image(NEW, FlashOptions(), on_event=on_event, clock=time.monotonic))

    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu:
        result = asyncio.run(go())
    assert getattr(result, "protocol", None) == "ota"
    info_after = getattr(result, "info_after", None)
    assert info_after is not None and info_after.slot(0).version == (1, 1, 0, 0)
    assert steps[0] == (Phase.PROBE, PhaseStatus.STARTED) and steps[-1] == (Phase.REBOOT, PhaseStatus.ENDED)
    ran = [phase for phase, status in steps if status is PhaseStatus.ENDED]
    assert ran == [
        Phase.PROBE,
        Phase.INFO,
        Phase.CHECK,
        Phase.ERASE,
        Phase.TRANSFER,
        Phase.VERIFY,
        Phase.ACTIVATE,
        Phase.REBOOT,
    ]


def test_a_cancelled_update_resumes_where_it_stopped(tmp_path: Path) -> None:
    factory_program(tmp_path, OLD)
    token = CancelToken()
    seen: list[Progress] = []

    def cancel_midway(event: Event) -> None:
        if isinstance(event, Progress) and event.phase == "transfer":
            seen.append(event)
            if event.done > len(BIG) // 3:
                token.cancel()

    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu:
        with SerialLink(emu.port, 115200) as link, pytest.raises(Cancelled):
            link.execute(
                flash_image(BIG, FlashOptions(compress=False), on_event=cancel_midway, clock=time.monotonic),
                cancel=token,
            )
        assert seen and seen[-1].done < len(BIG)
        with SerialLink(emu.port, 115200) as link:
            link.discard_input()
            result = link.execute(
                flash_image(BIG, FlashOptions(compress=False), on_event=lambda e: None, clock=time.monotonic)
            )
    assert result.resumed_from > 0
    assert result.info_after is not None
    assert result.info_after.slot(0).version[:3] == (1, 2, 0)
    assert result.info_after.slot(0).state is SlotState.CONFIRMED


def test_auto_detects_an_an4657_iap_menu_and_sends_with_ymodem() -> None:
    with running_emulator("iap", baud=0, time_scale=0) as emu:
        with SerialLink(emu.port, 115200) as link:
            result = link.execute(
                flash_image(RAW_APP, FlashOptions(), on_event=lambda e: None, clock=time.monotonic, name="app.bin")
            )
        personality = emu.device.personality
        address = personality.app_address  # type: ignore[attr-defined]
        flashed = emu.device.flash.read(address, len(RAW_APP))
    assert result.protocol == "ymodem"
    assert flashed == RAW_APP


def test_info_command_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    factory_program(tmp_path, OLD)
    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu:
        assert main(["info", "-p", emu.port, "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert main(["info", "-p", emu.port]) == 0
        text = capsys.readouterr().out
    assert info["chip_id"] == "0x413"
    assert info["slots"][0]["version"] == "1.0.0+0"
    assert info["slots"][0]["state"] == "confirmed"
    assert len(info["uid"]) == 24
    assert "slots" in text and "1.0.0+0" in text


def test_monitor_streams_device_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    factory_program(tmp_path, OLD)
    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu:
        # reset the device so it logs its boot while we listen
        emu.device.request_reset("test")
        assert main(["monitor", "-p", emu.port, "--duration", "1.5", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert lines, "no log lines"
    assert all({"t_ms", "level", "text"} <= set(line) for line in lines)


def test_flash_command_reports_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    factory_program(tmp_path, OLD)
    image = tmp_path / "new.bin"
    image.write_bytes(NEW)
    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu:
        assert main(["flash", "-p", emu.port, str(image), "--json", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["slots_after"][0]["version"] == "1.1.0+0"


def test_flash_of_a_missing_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flash", "-p", "loop://", "/no/such/image.bin"]) == 1
    assert "cannot read /no/such/image.bin" in capsys.readouterr().err


def test_device_logs_reach_the_reporter_during_an_update(tmp_path: Path) -> None:
    factory_program(tmp_path, OLD)
    logs: list[str] = []
    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu, SerialLink(emu.port) as link:
        link.execute(
            flash_image(
                NEW,
                FlashOptions(),
                on_event=lambda e: logs.append(e.text) if isinstance(e, DeviceLog) else None,
                clock=time.monotonic,
            )
        )
    assert any("demo firmware 1.1.0" in line for line in logs)


def test_trace_dumps_every_frame_both_ways(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    factory_program(tmp_path, OLD)
    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu:
        assert main(["--trace", "info", "-p", emu.port]) == 0
    err = capsys.readouterr().err
    assert "TX frame INFO seq=" in err
    assert "RX frame REPLY seq=" in err
    assert "00000000  a5" in err  # the raw bytes too, as a hexdump


def test_an_image_that_fails_its_own_self_test_is_never_confirmed_by_the_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The host waits for the test-booted image's own verdict: one that logs an error is not confirmed; the
    device is restarted, its bootloader reverts, and flash fails with the device's words (exit 1, no traceback)."""
    from emulator.app import FAIL_MARKER

    from ..emulator.chip_harness import make_image

    factory_program(tmp_path, OLD)
    image = tmp_path / "failing.bin"
    image.write_bytes(make_image(version="1.3.0", counter=2, fill=FAIL_MARKER))
    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu:
        assert main(["flash", "-p", emu.port, str(image)]) == 1
        err = capsys.readouterr().err
        assert main(["info", "-p", emu.port, "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
    assert "failed on the device and was not confirmed" in err and "self-test FAILED" in err, err
    assert "Traceback" not in err
    assert "runs 1.0.0+0 again" in err, err
    assert (info["slots"][0]["version"], info["slots"][0]["state"]) == ("1.0.0+0", "confirmed")
