"""The OTA personality: INFO, transfers (erase ahead, resume, deflate), VERIFY/ACTIVATE statuses, CONFIRM,
ROLLBACK, and the whole host flow over a pty."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.chips import CHIPS
from emulator.demo import factory_program
from emulator.flash import PowerCut
from emulator.ota import BAUD_RATES, OtaPersonality, device_limits, status_for_image_error
from emulator.testing import running_emulator
from protocol.drivers.link import SerialLink
from protocol.errors import DeviceError, ImageError
from protocol.flow import FlashOptions, flash_image
from protocol.image import key_hash, load_public_key, parse_image
from protocol.sansio import Event
from protocol.update import HostConnection, InfoReceived, Option, SlotState, Status, TransferComplete
from protocol.update.frames import FrameType, encode_frame

from .chip_harness import BAD, DEV_PUB, FIRMWARE, KEYS, Chip, command, info, make_image, run, transfer, update

OLD = (FIRMWARE / "demo-1.0.0.signed.bin").read_bytes()
NEW = (FIRMWARE / "demo-1.1.0.signed.bin").read_bytes()
ALL_KEYS = sorted(KEYS.glob("*pub*.pem"))

# what each bad asset must be refused with (assets/bad/README.md gives the reason slugs)
BAD_STATUS = {
    "tampered.bin": Status.DIGEST_MISMATCH,
    "wrong-key.bin": Status.UNKNOWN_KEY,
    "wrong-chip.bin": Status.WRONG_CHIP,
    "wrong-board.bin": Status.WRONG_CHIP,
    "security-counter-0.bin": Status.SECURITY_COUNTER,
    "truncated.bin": Status.TRUNCATED,
    "bad-magic.bin": Status.BAD_MAGIC,
    "tlv-overrun.bin": Status.BAD_TLV,
    "huge-size.bin": Status.TOO_BIG,
    "bad-signature.bin": Status.BAD_SIGNATURE,
    "unsigned.bin": Status.BAD_SIGNATURE,
    "no-hw-tag.bin": Status.WRONG_CHIP,
    "wrong-key-type.bin": Status.BAD_SIGNATURE,
    "unprotected-tlv.bin": Status.BAD_TLV,
}


def test_every_bad_asset_has_an_expected_status() -> None:
    assert set(BAD_STATUS) == {p.name for p in BAD.glob("*.bin")}


def test_info_describes_chip_layout_slots_and_keys() -> None:
    chip = Chip(primary=OLD)
    got = info(chip)
    f407 = CHIPS["stm32f407vg"]
    assert (got.chip_id, got.board_id, got.uid) == (0x413, 1, f407.uid)
    assert [(r.count, r.size) for r in got.flash.sectors] == [(4, 16384), (1, 65536), (7, 131072)]
    assert got.flash.slot(0).address == 0x08020000 and got.flash.slot(1).address == 0x08080000
    primary = got.slot(0)
    assert primary.state is SlotState.CONFIRMED and primary.version == (1, 0, 0, 0)
    assert primary.digest == parse_image(OLD).digest and primary.image_size == len(OLD)
    assert primary.security_counter == 1
    assert got.slot(1).state is SlotState.EMPTY
    assert got.key_hashes == (key_hash(load_public_key(DEV_PUB.read_bytes())),)
    assert Option.DEFLATE in got.options and Option.RESUME in got.options and Option.BAUD_SWITCH in got.options
    assert got.baud_rates == BAUD_RATES
    assert got.partial is None
    limits = device_limits(f407)
    assert (got.max_block, got.max_window) == (limits.max_block, limits.max_window)


def test_limits_fit_the_chips_ram() -> None:
    for chip in CHIPS.values():
        limits = device_limits(chip)
        assert limits.ram_buffer <= chip.ram_size // 2


@pytest.mark.parametrize("bad", sorted(BAD_STATUS))
def test_a_bad_image_is_refused_with_its_status_and_the_primary_is_untouched(bad: str) -> None:
    chip = Chip(primary=OLD, keys=ALL_KEYS)
    start, size = chip.profile.layout.primary
    before = chip.flash.read(start, size)
    transfer(chip, (BAD / bad).read_bytes())
    for name, args in (("verify", (1,)), ("activate", (True,))):
        with pytest.raises(DeviceError) as err:
            command(chip, name, *args)
        assert err.value.status == BAD_STATUS[bad], name
    command(chip, "reboot")
    chip.settle()
    assert chip.flash.read(start, size) == before
    assert chip.running == parse_image(OLD).digest


def test_update_with_deflate_then_confirm_state() -> None:
    chip = Chip(primary=OLD)
    update(chip, NEW, compress=True)
    got = info(chip)
    assert got.slot(0).version == (1, 1, 0, 0) and got.slot(0).state is SlotState.CONFIRMED
    assert got.slot(1).version == (1, 0, 0, 0) and got.slot(1).state is SlotState.INACTIVE


def test_without_auto_confirm_the_host_confirms_or_the_next_reset_reverts() -> None:
    chip = Chip(primary=OLD, auto_confirm=False)
    update(chip, NEW)
    assert info(chip).slot(0).state is SlotState.ACTIVE
    command(chip, "confirm")
    assert info(chip).slot(0).state is SlotState.CONFIRMED
    command(chip, "confirm")  # again: still fine (boot_set_confirmed is idempotent)
    command(chip, "reboot")
    chip.settle()
    assert chip.running == parse_image(NEW).digest

    other = Chip(primary=OLD, auto_confirm=False)
    update(other, NEW)
    command(other, "reboot")
    other.settle()
    assert other.running == parse_image(OLD).digest


def test_confirm_with_nothing_under_test_and_rollback_with_nothing_to_go_back_to() -> None:
    chip = Chip(primary=OLD)
    with pytest.raises(DeviceError) as err:
        command(chip, "confirm")
    assert err.value.status == Status.NOT_CONFIRMABLE
    with pytest.raises(DeviceError) as err:
        command(chip, "rollback")
    assert err.value.status == Status.NO_ROLLBACK


def test_rollback_to_the_previous_image() -> None:
    old = make_image(version="1.0.0", counter=1)
    new = make_image(version="1.1.0", counter=1, size=4000)  # same counter: going back is allowed
    chip = Chip(primary=old)
    update(chip, new)
    command(chip, "reboot")
    chip.settle()
    command(chip, "rollback")
    assert info(chip).slot(1).state is SlotState.PENDING_PERMANENT
    command(chip, "reboot")
    chip.settle()
    assert chip.running == parse_image(old).digest


def test_rollback_below_the_security_counter_is_refused() -> None:
    chip = Chip(primary=OLD)
    update(chip, NEW)
    command(chip, "reboot")
    chip.settle()  # counter is now 2; the old image has 1
    with pytest.raises(DeviceError) as err:
        command(chip, "rollback")
    assert err.value.status == Status.NO_ROLLBACK


def test_a_rollback_during_a_test_boot_stops_the_app_from_confirming() -> None:
    chip = Chip(primary=OLD, personality=lambda: OtaPersonality(self_test_delay=5.0))
    update(chip, NEW)  # settle() runs 1 s: the self-test has not run yet
    assert info(chip).slot(0).state is SlotState.ACTIVE
    command(chip, "rollback")
    chip.settle(6.0)
    command(chip, "reboot")
    chip.settle()
    assert chip.running == parse_image(OLD).digest


def test_begin_refuses_the_primary_slot_and_an_image_larger_than_the_slot() -> None:
    chip = Chip(primary=OLD)
    host = HostConnection()
    host.begin_transfer(NEW, slot=0)
    with pytest.raises(DeviceError) as err:
        run(chip, host, lambda e: isinstance(e, TransferComplete))
    assert err.value.status == Status.BAD_SLOT
    # larger than the slot, and between the image room (slot minus trailer) and the slot size: only an image
    # padded to exactly the slot's size (imgtool --pad) may be bigger than the room before the trailer
    for size in (384 * 1024 + 8, 384 * 1024 - 8):
        host = HostConnection()
        host.begin_transfer(b"\xaa" * size, slot=1)
        with pytest.raises(DeviceError) as err:
            run(chip, host, lambda e: isinstance(e, TransferComplete))
        assert err.value.status == Status.TOO_BIG
    with pytest.raises(DeviceError) as err:
        command(chip, "verify", 1)
    assert err.value.status == Status.NO_IMAGE
    with pytest.raises(DeviceError) as err:
        command(chip, "verify", 7)
    assert err.value.status == Status.BAD_SLOT
    with pytest.raises(DeviceError) as err:
        command(chip, "activate", False, slot=0)
    assert err.value.status == Status.BAD_SLOT


def _interrupted_transfer(chip: Chip, image: bytes, stop_after: int) -> None:
    """Start a transfer and give up (host restart) once ``stop_after`` bytes are written."""
    host = HostConnection()
    host.request_info()
    run(chip, host, lambda e: isinstance(e, InfoReceived))
    host.begin_transfer(image, slot=1)
    run(chip, host, lambda e: getattr(e, "phase", "") == "transfer" and getattr(e, "done", 0) >= stop_after)


def test_a_restarted_host_resumes_where_the_device_stopped() -> None:
    image = make_image(version="1.1.0", counter=2, size=60_000)
    chip = Chip(primary=OLD)
    _interrupted_transfer(chip, image, 20_000)
    partial = info(chip).partial
    assert partial is not None and partial.written >= 20_000
    assert partial.digest == hashlib.sha256(image).digest()
    event = transfer(chip, image)
    assert event.resumed_from == partial.written
    command(chip, "verify", 1)
    assert info(chip).partial is None


def test_a_transfer_cut_by_a_power_loss_resumes_after_the_reboot() -> None:
    """The half-programmed block after ``written`` is not erased, so the device resumes from the start of its
    page (F103: 1 KiB pages; an F407 would go back to the start of its 128 KiB sector)."""
    name = "stm32f103c8"
    image = make_image(name, version="1.1.0", counter=2, size=18_000)
    chip = Chip(name, primary=make_image(name, version="1.0.0", counter=1))
    chip.cut_at = chip.flash.ops + 12  # in the middle of programming
    with pytest.raises(PowerCut):
        transfer(chip, image)
    partial = info(chip).partial
    assert partial is not None and 0 < partial.written < len(image)
    event = transfer(chip, image)
    page = CHIPS[name].sectors[0].size
    assert event.resumed_from == partial.written - partial.written % page > 0
    update(chip, image)  # resumes with nothing left to send, then verify, activate, swap
    assert chip.running == parse_image(image).digest


def test_a_new_image_does_not_resume_an_old_partial_transfer() -> None:
    chip = Chip(primary=OLD)
    _interrupted_transfer(chip, make_image(version="1.1.0", counter=2, size=60_000), 10_000)
    event = transfer(chip, NEW)
    assert event.resumed_from == 0
    command(chip, "verify", 1)


@pytest.mark.parametrize("name", ["stm32f103c8", "stm32l476rg"])
def test_updates_on_the_page_chips(name: str) -> None:
    old = make_image(name, version="1.0.0", counter=1, size=3000)
    new = make_image(name, version="1.1.0", counter=2, size=9000)
    chip = Chip(name, primary=old)
    update(chip, new, compress=True)
    got = info(chip)
    assert got.chip_id == CHIPS[name].dev_id
    assert got.slot(0).version == (1, 1, 0, 0) and got.slot(0).state is SlotState.CONFIRMED


def test_a_recovery_bootloader_takes_a_first_image() -> None:
    chip = Chip()
    assert chip.running is None
    assert info(chip).slot(0).state is SlotState.EMPTY
    update(chip, NEW, permanent=True)
    assert chip.running == parse_image(NEW).digest


def test_status_mapping_of_an_unknown_reason() -> None:
    assert status_for_image_error(ImageError("something new")) == Status.BAD_MAGIC


def test_the_host_flow_updates_the_emulator_over_a_pty(tmp_path: Path) -> None:
    factory_program(tmp_path, OLD)
    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu:
        with SerialLink(emu.port, 115200) as link:
            result = link.execute(
                flash_image(NEW, FlashOptions(protocol="ota"), on_event=lambda e: None, clock=time.monotonic)
            )
        assert result.info_before is not None and result.info_after is not None
        assert result.info_before.slot(0).version == (1, 0, 0, 0)
        assert result.info_after.slot(0).version == (1, 1, 0, 0)
        assert result.info_after.slot(0).state is SlotState.CONFIRMED


def test_the_host_flow_at_a_paced_921600_baud_with_a_baud_switch(tmp_path: Path) -> None:
    factory_program(tmp_path, OLD)
    logs: list[str] = []
    with (
        running_emulator("ota", baud=115200, time_scale=0, state_dir=tmp_path) as emu,
        SerialLink(emu.port, 115200) as link,
    ):
        result = link.execute(
            flash_image(
                NEW,
                FlashOptions(protocol="ota", fast_baud=921600),
                on_event=lambda e: logs.append(getattr(e, "text", "")),
                clock=time.monotonic,
            )
        )
    assert result.info_after is not None and result.info_after.slot(0).version == (1, 1, 0, 0)
    assert any("app: demo firmware 1.1.0" in line for line in logs)
    assert any("swap complete" in line for line in logs)


def test_info_reports_a_received_event_type() -> None:
    chip = Chip(primary=OLD)
    host = HostConnection()
    host.request_info()
    assert isinstance(run(chip, host, lambda e: isinstance(e, InfoReceived)), InfoReceived)


def _dirty_secondary(chip: Chip, size: int) -> None:
    offset = chip.profile.layout.secondary[0] - chip.profile.flash_base
    chip.flash.data[offset : offset + size] = b"\x00" * size


def test_single_bank_chips_erase_before_answering_begin_with_progress() -> None:
    """F407 at datasheet timing (on a simulated clock): BEGIN is answered after the erase, PROGRESS meanwhile."""
    chip = Chip(primary=OLD, time_scale=1.0)
    _dirty_secondary(chip, 150_000)  # two 128 KiB sectors to erase
    image = make_image(version="1.1.0", counter=2, size=150_000)
    host = HostConnection()
    host.begin_transfer(image, slot=1)
    events: list[Event] = []
    run(chip, host, lambda e: isinstance(e, TransferComplete), events=events)
    names = [type(e).__name__ + ":" + str(getattr(e, "phase", "")) for e in events]
    started = names.index("TransferStarted:")
    assert "Progress:erase" in names[:started]
    assert chip.busy_time >= 2 * 1.0  # two sector erases, 1 s each
    command(chip, "verify", 1)


def test_the_dual_bank_l476_erases_ahead_in_the_background_while_blocks_arrive() -> None:
    name = "stm32l476rg"
    chip = Chip(name, primary=make_image(name, version="1.0.0", counter=1), time_scale=1.0)
    _dirty_secondary(chip, 40_000)
    image = make_image(name, version="1.1.0", counter=2, size=40_000)
    host = HostConnection()
    host.begin_transfer(image, slot=1, compress=True)
    events: list[Event] = []
    run(chip, host, lambda e: isinstance(e, TransferComplete), events=events)
    names = [type(e).__name__ + ":" + str(getattr(e, "phase", "")) for e in events]
    started = names.index("TransferStarted:")
    assert "Progress:erase" not in names[:started]  # answered at once
    assert chip.flash.erases >= 20  # ~20 pages erased during the data phase
    assert chip.busy_time < 20 * 0.02202 + 40_000 / 8 * 81.69e-6  # erase time partly hidden behind reception
    update(chip, image)
    assert chip.running == parse_image(image).digest


_COMMANDS = [t for t in FrameType if t not in (FrameType.REBOOT, FrameType.CHANGE_BAUD)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.builds(
                encode_frame,
                st.sampled_from(_COMMANDS),
                st.integers(0, 255),
                st.binary(max_size=60),
            ),
        ),
        max_size=25,
    )
)
def test_no_input_makes_the_ota_personality_raise_or_touch_the_primary(chunks: list[bytes]) -> None:
    """Random bytes and well-framed commands with random payloads (BEGIN, DATA, ACTIVATE, ROLLBACK...)."""
    chip = Chip(primary=OLD)
    start, size = chip.profile.layout.primary
    before = chip.flash.read(start, size)
    for chunk in chunks:
        chip.step(chunk)
    assert chip.flash.read(start, size) == before
    assert info(chip).slot(0).version == (1, 0, 0, 0)
