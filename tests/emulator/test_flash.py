"""The flash model: erase/program rules, timings handed to sleep, power cuts, and the state folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.chips import CHIPS
from emulator.flash import (
    Flash,
    FlashAddressError,
    FlashAlignmentError,
    FlashProgramError,
    PowerCut,
)
from emulator.state import FLASH_FILE, STATE_FILE, DeviceState, StateError

F407 = CHIPS["stm32f407vg"]
F103 = CHIPS["stm32f103c8"]
L476 = CHIPS["stm32l476rg"]
BASE = 0x08000000


def test_a_new_flash_is_erased() -> None:
    flash = Flash(F103)
    assert flash.read(BASE, F103.flash_size) == b"\xff" * F103.flash_size
    assert flash.is_erased(BASE, 100)


def test_program_only_clears_bits_and_a_programmed_unit_cannot_be_programmed_again() -> None:
    flash = Flash(F407)
    flash.program(BASE, b"\x12\x34\x56\x78")
    assert flash.read(BASE, 4) == b"\x12\x34\x56\x78"
    with pytest.raises(FlashProgramError) as info:
        flash.program(BASE, b"\x00\x00\x00\x00")  # even clearing more bits: PGSERR, as on silicon
    assert info.value.status == "PGSERR"
    assert flash.read(BASE, 4) == b"\x12\x34\x56\x78"
    flash.program(BASE, b"\xff\xff\xff\xff")  # all-ones data changes nothing and is allowed
    flash.program(BASE + 4, b"\xff\x00\xff\x00")
    assert flash.read(BASE, 8) == b"\x12\x34\x56\x78\xff\x00\xff\x00"


@pytest.mark.parametrize(("chip", "width"), [(F407, 4), (F103, 2), (L476, 8)])
def test_write_width_and_alignment(chip: object, width: int) -> None:
    flash = Flash(CHIPS[chip.name])  # type: ignore[attr-defined]
    with pytest.raises(FlashAlignmentError):
        flash.program(BASE + 1, b"\x00" * width)
    if width > 1:
        with pytest.raises(FlashAlignmentError):
            flash.program(BASE, b"\x00" * (width - 1))
    flash.program(BASE + width, b"\x00" * width)
    assert flash.ops == 1
    flash.program_padded(BASE + 4 * width, b"\x01")
    assert flash.read(BASE + 4 * width, width) == b"\x01" + b"\xff" * (width - 1)


def test_erase_sets_the_whole_sector_and_nothing_else() -> None:
    flash = Flash(F407)
    flash.program(BASE + 0x3FFC, b"\x00" * 8)  # last word of sector 0, first of sector 1
    flash.erase_sector(0)
    assert flash.is_erased(BASE, 0x4000)
    assert flash.read(BASE + 0x4000, 4) == b"\x00" * 4
    assert flash.ops == 2 and flash.erases == 1 and flash.programs == 1


def test_addresses_outside_flash_are_refused() -> None:
    flash = Flash(F103)
    with pytest.raises(FlashAddressError):
        flash.read(BASE + F103.flash_size - 2, 4)
    with pytest.raises(FlashAddressError):
        flash.program(BASE - 2, b"\x00\x00")
    with pytest.raises(FlashAddressError):
        flash.erase_sector(64)
    with pytest.raises(FlashAddressError):
        flash.sector_at(0x20000000)
    with pytest.raises(ValueError):
        Flash(F103, bytearray(10))


def test_each_operation_sleeps_its_datasheet_time_times_the_scale() -> None:
    slept: list[float] = []
    flash = Flash(F407, time_scale=0.5, sleep=slept.append)
    flash.erase_sector(0)  # 16 KiB: 250 ms typical
    flash.erase_sector(4)  # 64 KiB: 550 ms
    flash.erase_sector(5)  # 128 KiB: 1 s
    flash.program(BASE, b"\x00" * 1024)  # 256 words at 16 us
    assert slept == pytest.approx([0.125, 0.275, 0.5, 256 * 16e-6 * 0.5])
    quiet = Flash(F407, time_scale=0.0, sleep=slept.append)
    quiet.erase_sector(0)
    assert len(slept) == 4


def test_a_background_erase_keeps_the_flash_busy_until_the_next_operation_waits() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    flash = Flash(L476, time_scale=1.0, sleep=sleep, clock=lambda: now[0])
    flash.program(BASE, b"\x00" * 8)
    flash.erase_sector(0, wait=False)
    assert flash.busy_remaining() > 0 and flash.is_erased(BASE, 8)
    now[0] += 0.01
    flash.program(BASE + 2048, b"\x00" * 8)  # waits for the rest of the erase first
    assert slept[-2] == pytest.approx(0.02202 - 0.01)
    assert flash.busy_remaining() == 0
    flash.program(BASE + 4096, b"\x00" * 1024, wait=False)  # 128 double words in the background
    assert flash.read(BASE + 4096, 4) == b"\x00" * 4
    assert flash.busy_remaining() == pytest.approx(128 * 81.69e-6)
    flash.wait_idle()
    assert flash.busy_remaining() == 0


def test_a_power_cut_leaves_a_program_half_done() -> None:
    flash = Flash(F407, on_op=lambda op: (_ for _ in ()).throw(PowerCut("cut")) if op == 2 else None)
    flash.program(BASE, b"\x00" * 4)
    data = bytes(range(40))
    with pytest.raises(PowerCut):
        flash.program(BASE + 0x100, data)
    got = flash.read(BASE + 0x100, 40)
    assert got[:20] == data[:20]  # the first 5 of 10 words made it
    assert got[24:] == b"\xff" * 16  # the last 4 never started
    assert flash.ops == 2


def test_a_power_cut_during_an_erase_leaves_the_sector_neither_old_nor_erased() -> None:
    flash = Flash(F103, on_op=lambda op: (_ for _ in ()).throw(PowerCut("cut")) if op == 2 else None)
    flash.program(BASE, b"\x00" * 1024)
    with pytest.raises(PowerCut):
        flash.erase_sector(0)
    page = flash.read(BASE, 1024)
    assert page != b"\x00" * 1024 and page != b"\xff" * 1024
    again = Flash(F103, on_op=lambda op: (_ for _ in ()).throw(PowerCut("cut")) if op == 2 else None)
    again.program(BASE, b"\x00" * 1024)
    with pytest.raises(PowerCut):
        again.erase_sector(0)
    assert again.read(BASE, 1024) == page  # reproducible: seeded by the operation number


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 63), st.binary(min_size=2, max_size=64)), max_size=20))
def test_flash_contents_are_always_the_and_of_what_was_programmed_since_the_erase(
    writes: list[tuple[int, bytes]],
) -> None:
    flash = Flash(F103)
    model = bytearray(b"\xff" * 4096)
    for slot, raw in writes:
        data = raw[: len(raw) - len(raw) % 2]
        offset = slot * 64
        try:
            flash.program(BASE + offset, data)
        except FlashProgramError:
            continue
        for i, b in enumerate(data):
            model[offset + i] &= b
    assert flash.read(BASE, 4096) == bytes(model)


def test_state_folder_round_trip(tmp_path: Path) -> None:
    store = DeviceState.open(tmp_path / "dev", F103)
    assert store.flash is None
    flash = Flash(F103)
    flash.program(BASE, b"\x00\x00")
    store.save(bytes(flash.data), {"boot": {"security_counter": 3}, "uid": bytes(12)})
    again = DeviceState.open(tmp_path / "dev", F103)
    assert again.flash is not None and again.flash[:4] == b"\x00\x00\xff\xff"
    assert again.data["boot"] == {"security_counter": 3}
    assert again.data["chip"] == "stm32f103c8"
    assert json.loads((tmp_path / "dev" / STATE_FILE).read_text())["uid"] == "00" * 12
    assert not list((tmp_path / "dev").glob("*.tmp"))


def test_state_folder_of_another_chip_is_refused(tmp_path: Path) -> None:
    DeviceState.open(tmp_path, F103).save(b"\xff" * F103.flash_size)
    with pytest.raises(StateError, match="stm32f103c8") as info:
        DeviceState.open(tmp_path, F407)
    assert info.value.hint and "--chip" in info.value.hint
    (tmp_path / STATE_FILE).unlink()
    with pytest.raises(StateError, match="bytes"):
        DeviceState.open(tmp_path, F407)


def test_unreadable_state_json_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(StateError, match="cannot read"):
        DeviceState.open(tmp_path, F407)
    (tmp_path / STATE_FILE).write_text("[1, 2]")
    with pytest.raises(StateError, match="JSON object"):
        DeviceState.open(tmp_path, F407)
    (tmp_path / STATE_FILE).unlink()
    (tmp_path / FLASH_FILE).write_bytes(b"\xff" * F407.flash_size)
    assert DeviceState.open(tmp_path, F407).flash is not None
