"""What ``flash`` reports (issue 8, items 4, 6 and 7), each against a measured problem of the old flow:

the summary showed verify twice, erase after transfer although it ran first, a reboot row of ``0 B 0 B/s``, no
total and no word of compression; ``--json`` said ``baud: 115200`` after a switch to 921600 and
``wire_bytes: 0`` for YMODEM; ``--no-reboot``/``--no-confirm`` printed ``update complete``; ``info`` on an IAP
menu blamed the cable; a device busy with a swap got a cable hint; a power cut at the third flash operation
ended with "a bootloader bug or a missed erase: report it" although the device recovers at once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from emulator.demo import demo_firmware, factory_program
from emulator.device import DeviceContext
from emulator.ota import OtaPersonality
from emulator.testing import running_emulator
from protocol.cli import main
from protocol.drivers.link import SerialLink
from protocol.flow import FlashOptions, IapMenuError, NextStep, flash_image
from protocol.progress import Phase, PhaseStatus, ProgressSnapshot
from protocol.sansio import Event
from protocol.update.messages import DeviceInfo
from protocol.update.status import Status

OLD = demo_firmware("demo-1.0.0.signed.bin").read_bytes()
NEW = demo_firmware("demo-1.1.0.signed.bin").read_bytes()
RAW_APP = demo_firmware("demo-1.1.0.bin").read_bytes()
IN_ORDER = ["probe", "info", "check", "erase", "transfer", "verify", "activate", "reboot"]


def _flash_cli(tmp_path: Path, *extra: str, emulator: dict[str, object] | None = None) -> tuple[int, str, str]:
    factory_program(tmp_path, OLD)
    image = tmp_path / "new.bin"
    image.write_bytes(NEW)
    settings: dict[str, object] = {"baud": 0, "time_scale": 0, "state_dir": tmp_path, **(emulator or {})}
    with running_emulator("ota", **settings) as emu:  # type: ignore[arg-type]
        rc = main(["flash", "-p", emu.port, str(image), *extra])
        port = emu.port
    return rc, port, str(image)


def test_json_phases_run_in_order_each_once_with_total_and_compression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _port, _image = _flash_cli(tmp_path, "--json", "-q")
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert [p["phase"] for p in result["phases"]] == IN_ORDER  # erase before transfer, verify once
    assert result["complete"] is True and result["left_to_do"] == [] and result["next_commands"] == []
    assert result["compressed"] is True
    assert 0 < result["payload_bytes"] < result["sent_bytes"] == len(NEW)
    assert result["compression_ratio"] == pytest.approx(result["payload_bytes"] / len(NEW), abs=1e-3)
    assert result["wire_bytes"] > result["payload_bytes"]
    assert result["seconds"] >= sum(p["seconds"] for p in result["phases"]) - 0.05
    reboot = next(p for p in result["phases"] if p["phase"] == "reboot")
    assert reboot["bytes"] == 0 and reboot["rate"] == 0


def test_human_summary_has_no_empty_rate_rows_a_total_and_the_compression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _port, _image = _flash_cli(tmp_path)
    assert rc == 0
    err = capsys.readouterr().err
    table = err[err.index("phase ") :]
    rows = {line.split()[0]: line for line in table.splitlines()[1:] if line.split()}
    assert "B/s" not in rows["reboot"]  # no "0 B 0 B/s" row
    assert "B/s" in rows["transfer"]
    assert rows["total"].split()[1].replace(".", "").isdigit()
    order = [line.split()[0] for line in table.splitlines()[1 : 1 + len(IN_ORDER)]]
    assert order == IN_ORDER
    assert "deflated to" in err and "on the wire at 115200 baud" in err
    assert sum(line.startswith("verify ") for line in table.splitlines()) == 1
    assert sum(line.startswith("verify: ") for line in err.splitlines()) <= 2  # ACTIVATE's check is activate's
    assert err.rstrip().endswith("update complete: running 1.1.0+0 (confirmed)")


def test_json_baud_is_the_rate_the_data_phase_ran_at(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _port, _image = _flash_cli(tmp_path, "--json", "-q", "--fast-baud", "921600")
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["baud"] == 921600  # the old flow said 115200: the rate after the reboot
    assert [p["phase"] for p in result["phases"]][:4] == ["probe", "info", "check", "baud"]


def test_the_flow_sets_the_link_to_its_start_rate_and_reports_the_link_s_rate(tmp_path: Path) -> None:
    factory_program(tmp_path, OLD)
    emulator = running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path)
    with emulator as emu, SerialLink(emu.port, 57600) as link:  # opened at another rate than the device's
        result = link.execute(
            flash_image(NEW, FlashOptions(protocol="ota"), on_event=lambda e: None, clock=time.monotonic)
        )
        assert link.baud == 115200
    assert result.baud == 115200


def test_ymodem_reports_its_wire_bytes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    image = tmp_path / "app.bin"
    image.write_bytes(RAW_APP)
    with running_emulator("iap", baud=0, time_scale=0) as emu:
        assert main(["flash", "-p", emu.port, str(image), "--json", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["protocol"] == "ymodem"
    assert result["wire_bytes"] > len(RAW_APP)  # 1 KiB blocks with headers and CRCs; the old flow said 0
    assert result["sent_bytes"] == result["payload_bytes"] == len(RAW_APP)
    assert [p["phase"] for p in result["phases"]] == ["probe", "transfer"]


def test_no_reboot_ends_with_what_is_left_and_the_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, port, _image = _flash_cli(tmp_path, "--no-reboot")
    assert rc == 0
    err = capsys.readouterr().err
    assert "update complete" not in err
    assert "update not complete" in err
    assert f"next: stm32ota reset -p {port}" in err
    assert f"then: stm32ota confirm -p {port}" in err


def test_no_reboot_json_lists_the_steps_left(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, port, _image = _flash_cli(tmp_path, "--no-reboot", "--permanent", "--json", "-q")
    assert rc == 0
    out = capsys.readouterr()
    result = json.loads(out.out)
    assert result["complete"] is False
    assert result["left_to_do"] == ["reboot"]
    assert result["next_commands"] == [f"stm32ota reset -p {port}"]


def test_no_confirm_leaves_the_image_under_test_and_says_how_to_keep_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, port, _image = _flash_cli(tmp_path, "--no-confirm", "-q", emulator={"auto_confirm": False})
    assert rc == 0
    err = capsys.readouterr().err  # even with -q: the update is not done
    assert "update complete" not in err
    assert "under test" in err
    assert f"next: stm32ota confirm -p {port}" in err
    assert f"stm32ota rollback -p {port}" in err


def test_the_flow_reports_next_steps_in_its_result(tmp_path: Path) -> None:
    factory_program(tmp_path, OLD)
    options = FlashOptions(protocol="ota", confirm=False)
    emulator = running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path, auto_confirm=False)
    with emulator as emu, SerialLink(emu.port) as link:
        result = link.execute(flash_image(NEW, options, on_event=lambda e: None, clock=time.monotonic))
    assert result.left_to_do == (NextStep.CONFIRM,) and not result.complete


def test_info_on_an_iap_menu_names_it_and_does_not_blame_the_cable(capsys: pytest.CaptureFixture[str]) -> None:
    with running_emulator("iap", baud=0, time_scale=0) as emu:
        assert main(["info", "-p", emu.port]) == 1
        port = emu.port
    err = _error_lines(capsys.readouterr().err)
    assert "AN4657 IAP menu" in err
    assert "cable" not in err
    assert f"stm32ota flash -p {port} app.bin" in err


def _error_lines(err: str) -> str:
    """The CLI's error and hint lines (not whatever else a test run may write to stderr)."""
    return "\n".join(line for line in err.splitlines() if line.startswith(("stm32ota: error", "  hint:")))


class _SwappingOta(OtaPersonality):
    """Our bootloader, busy with a swap for its first INFO requests after a boot: it answers them BUSY."""

    busy_answers = 3

    def boot(self, ctx: DeviceContext) -> None:
        super().boot(ctx)
        conn = self.conn
        assert conn is not None
        reply_info = conn.reply_info
        left = [self.busy_answers]

        def busy_while_swapping(info: DeviceInfo) -> None:
            if left[0] > 0:
                left[0] -= 1
                conn.reject(Status.BUSY)
            else:
                reply_info(info)

        conn.reply_info = busy_while_swapping  # type: ignore[method-assign]


def test_info_on_a_device_busy_with_a_swap_retries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    factory_program(tmp_path, OLD)
    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path, personality_factory=_SwappingOta) as emu:
        assert main(["info", "-p", emu.port]) == 0
    out = capsys.readouterr()
    assert "busy" in out.err and "retrying" in out.err
    assert "cable" not in _error_lines(out.err)
    assert "chip id      0x413" in out.out


def test_a_power_cut_at_the_third_flash_operation_is_repaired_in_the_same_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Operation 3 of this update is the trailer write of ACTIVATE: the device restarts at once with the
    trailer half-written.  The flow sends the image again (it resumes; BEGIN erases the trailer) and activates."""
    rc, _port, _image = _flash_cli(tmp_path, emulator={"faults": "powercut-op=3"})
    err = capsys.readouterr().err
    assert "report it" not in err
    assert rc == 0, err
    assert "half-written" in err
    assert "update complete: running 1.1.0+0" in err


def test_snapshots_start_and_end_every_phase_and_carry_messages(tmp_path: Path) -> None:
    factory_program(tmp_path, OLD)
    snapshots: list[ProgressSnapshot] = []

    def on_event(event: Event) -> None:
        if isinstance(event, ProgressSnapshot):
            snapshots.append(event)

    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu, SerialLink(emu.port) as link:
        link.execute(flash_image(NEW, FlashOptions(), on_event=on_event, clock=time.monotonic))
    started = [s.phase for s in snapshots if s.status is PhaseStatus.STARTED]
    ended = [s for s in snapshots if s.status is PhaseStatus.ENDED]
    assert started == [s.phase for s in ended] == [Phase(p) for p in IN_ORDER]
    assert all(s.message for s in ended)
    transfer = [s for s in snapshots if s.phase is Phase.TRANSFER and s.status is PhaseStatus.RUNNING]
    assert transfer and transfer[-1].done == transfer[-1].total == len(NEW)
    # the device's image check during ACTIVATE is activate's progress, not a second verify
    assert any(s.phase is Phase.ACTIVATE for s in snapshots if s.status is PhaseStatus.RUNNING)


def test_a_failing_phase_ends_failed_with_the_error() -> None:
    snapshots: list[ProgressSnapshot] = []

    def on_event(event: Event) -> None:
        if isinstance(event, ProgressSnapshot) and event.status is not PhaseStatus.RUNNING:
            snapshots.append(event)

    flow = flash_image(NEW, FlashOptions(protocol="ota"), on_event=on_event, clock=time.monotonic)
    with (
        running_emulator("iap", baud=0, time_scale=0) as emu,
        SerialLink(emu.port) as link,
        pytest.raises(IapMenuError),
    ):
        link.execute(flow)
    assert [(s.phase, s.status) for s in snapshots] == [
        (Phase.INFO, PhaseStatus.STARTED),
        (Phase.INFO, PhaseStatus.FAILED),
    ]
    assert "AN4657" in snapshots[-1].message
