"""The MCUboot-style bootloader: trailers, swap types, test/confirm/revert, checks, security counter."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.boot import (
    BOOT_MAX_ALIGN,
    RECORD_SIZE,
    Bootloader,
    Flag,
    MagicState,
    SwapType,
)
from emulator.chips import CHIPS
from emulator.flash import Flash
from protocol.image import HardwareTag, load_private_key, load_public_key, parse_image, sign_image, trailer_size
from protocol.image.mcuboot import BOOT_MAGIC

from .chip_harness import BAD, DEV_KEY, DEV_PUB, FIRMWARE, Chip, make_image, update

F407 = CHIPS["stm32f407vg"]
KEYS = [load_public_key(DEV_PUB.read_bytes())]


def _flash(chip: str = "stm32f407vg", primary: bytes | None = None, secondary: bytes | None = None) -> Flash:
    profile = CHIPS[chip]
    flash = Flash(profile)
    for image, (start, _size) in ((primary, profile.layout.primary), (secondary, profile.layout.secondary)):
        if image is not None:
            offset = start - profile.flash_base
            flash.data[offset : offset + len(image)] = image
    return flash


def _boot(flash: Flash, state: dict[str, Any]) -> tuple[Bootloader, Any]:
    loader = Bootloader(flash, flash.chip, KEYS, state)
    return loader, loader.boot()


OLD = make_image(version="1.0.0", counter=1)
NEW = make_image(version="1.1.0", counter=2, size=4000)


def test_a_factory_image_without_trailer_boots_confirmed_and_sets_the_security_counter() -> None:
    state: dict[str, Any] = {}
    loader, result = _boot(_flash(primary=OLD), state)
    assert result.image is not None and result.image.digest == parse_image(OLD).digest
    assert result.swap is SwapType.NONE and not result.under_test
    assert loader.security_counter == 1
    assert state["boot"]["boots"] == 1


def test_an_empty_chip_boots_nothing_and_says_why() -> None:
    _, result = _boot(_flash(), {})
    assert result.image is None
    assert result.error == "bad-magic"
    assert any("no bootable image" in m for m in result.messages)


def test_trailer_offsets_are_mcuboots_and_imgtool_reads_them() -> None:
    flash = _flash(primary=OLD, secondary=NEW)
    loader, _ = _boot(flash, {})
    slot = loader.secondary
    assert slot.magic_addr == slot.end - 16
    assert slot.image_ok_addr == slot.magic_addr - BOOT_MAX_ALIGN
    assert slot.copy_done_addr == slot.image_ok_addr - BOOT_MAX_ALIGN
    assert slot.trailer_reserve == trailer_size(align=F407.write_width, max_align=BOOT_MAX_ALIGN)
    assert loader.set_pending(permanent=True)
    trailer = parse_image(flash.read(slot.start, slot.size)).trailer
    assert trailer is not None and trailer.magic == BOOT_MAGIC and trailer.confirmed


def test_test_swap_runs_the_new_image_once_and_reverts_unless_confirmed() -> None:
    flash = _flash(primary=OLD, secondary=NEW)
    state: dict[str, Any] = {}
    loader, _ = _boot(flash, state)
    assert loader.set_pending(permanent=False)
    assert loader.swap_type() is SwapType.TEST
    loader, result = _boot(flash, state)
    assert result.swap is SwapType.TEST and result.under_test
    assert result.image is not None and str(result.image.version) == "1.1.0+0"
    assert loader.security_counter == 1  # not raised for an unconfirmed image
    assert parse_image(flash.read(loader.secondary.start, loader.secondary.capacity)).digest == parse_image(OLD).digest
    trailer = loader.primary.trailer()
    assert (trailer.magic, trailer.copy_done, trailer.image_ok) == (MagicState.GOOD, Flag.SET, Flag.UNSET)
    loader, result = _boot(flash, state)  # not confirmed: revert
    assert result.swap is SwapType.REVERT
    assert result.image is not None and str(result.image.version) == "1.0.0+0" and not result.under_test
    assert loader.primary.trailer().image_ok is Flag.SET
    _, result = _boot(flash, state)
    assert result.swap is SwapType.NONE and str(result.image.version) == "1.0.0+0"


def test_a_confirmed_test_image_stays_and_raises_the_security_counter() -> None:
    flash = _flash(primary=OLD, secondary=NEW)
    state: dict[str, Any] = {}
    loader, _ = _boot(flash, state)
    loader.set_pending(permanent=False)
    loader, _ = _boot(flash, state)
    assert loader.set_confirmed()
    assert loader.set_confirmed()  # idempotent, as boot_set_confirmed()
    loader, result = _boot(flash, state)
    assert result.swap is SwapType.NONE and str(result.image.version) == "1.1.0+0"
    assert loader.security_counter == 2


def test_permanent_swap() -> None:
    flash = _flash(primary=OLD, secondary=NEW)
    state: dict[str, Any] = {}
    loader, _ = _boot(flash, state)
    loader.set_pending(permanent=True)
    assert loader.swap_type() is SwapType.PERM
    loader, result = _boot(flash, state)
    assert result.swap is SwapType.PERM and not result.under_test
    assert loader.security_counter == 2
    _, result = _boot(flash, state)
    assert result.swap is SwapType.NONE and str(result.image.version) == "1.1.0+0"


def test_an_imgtool_padded_confirmed_image_in_the_secondary_slot_is_a_permanent_update() -> None:
    key = load_private_key(DEV_KEY.read_bytes())
    parsed = parse_image(NEW)
    padded = sign_image(
        parsed.payload,
        key,
        version="1.1.0",
        header_size=0x200,
        pad_header=True,
        align=4,
        slot_size=F407.layout.secondary[1],
        pad=True,
        confirm=True,
        security_counter=2,
        hw_tag=HardwareTag(chip_id=0x413, board_id=1),
    )
    flash = _flash(primary=OLD, secondary=padded)
    loader = Bootloader(flash, F407, KEYS, {})
    assert loader.swap_type() is SwapType.PERM
    result = loader.boot()
    assert result.image is not None
    assert str(result.image.version) == "1.1.0+0" and not result.under_test


@pytest.mark.parametrize("bad", sorted(p.name for p in BAD.glob("*.bin")))
def test_a_bad_pending_image_is_erased_and_the_primary_stays_byte_identical(bad: str) -> None:
    old = (FIRMWARE / "demo-1.0.0.signed.bin").read_bytes()
    flash = _flash(primary=old, secondary=(BAD / bad).read_bytes())
    keys = [load_public_key(p.read_bytes()) for p in sorted(DEV_PUB.parent.glob("*pub*.pem"))]
    state: dict[str, Any] = {}
    loader = Bootloader(flash, F407, keys, state)
    loader.boot()
    assert loader.set_pending(permanent=True)
    start, size = F407.layout.primary
    before = flash.read(start, size)
    result = loader.boot()
    assert result.swap is SwapType.FAIL
    assert flash.read(start, size) == before
    assert flash.is_erased(*F407.layout.secondary)
    assert result.image is not None and str(result.image.version) == "1.0.0+0"


def test_a_downgrade_below_the_security_counter_is_refused() -> None:
    flash = _flash(primary=NEW, secondary=OLD)
    state: dict[str, Any] = {}
    loader, _ = _boot(flash, state)
    assert loader.security_counter == 2
    loader.set_pending(permanent=True)
    loader, result = _boot(flash, state)
    assert result.swap is SwapType.FAIL
    assert str(result.image.version) == "1.1.0+0"


def test_an_image_for_another_chip_is_refused() -> None:
    other = make_image("stm32f103c8", version="2.0.0", counter=5)
    flash = _flash(primary=OLD, secondary=other)
    state: dict[str, Any] = {}
    loader, _ = _boot(flash, state)
    loader.set_pending(permanent=True)
    _, result = _boot(flash, state)
    assert result.swap is SwapType.FAIL and str(result.image.version) == "1.0.0+0"


def test_the_status_log_skips_damaged_records_and_is_erased_when_full() -> None:
    flash = _flash(primary=OLD, secondary=NEW)
    state: dict[str, Any] = {}
    loader, _ = _boot(flash, state)
    log_start = loader.log.start
    flash.program(log_start, bytes(range(RECORD_SIZE)))  # garbage: fails its CRC
    assert loader.log.in_progress() is None
    # fill the log so that the next swap has no room left
    for n in range(1, loader.log.size // RECORD_SIZE - 3):
        flash.program(log_start + n * RECORD_SIZE, b"\x00" * RECORD_SIZE)
    loader.set_pending(permanent=True)
    erases = flash.erases
    loader, result = _boot(flash, state)
    assert result.swap is SwapType.PERM and flash.erases > erases
    assert loader.log.in_progress() is None
    records, _ = loader.log.records()
    assert records[0].kind.name == "BEGIN" and records[-1].kind.name == "DONE"


def test_a_scratch_area_smaller_than_a_slot_sector_is_refused() -> None:
    chip = dataclasses.replace(F407, layout=dataclasses.replace(F407.layout, scratch=(0x08010000, 0x10000)))
    with pytest.raises(ValueError, match="scratch"):
        Bootloader(Flash(chip), chip, KEYS, {})


def test_a_swap_whose_log_spans_several_pages_of_the_state_area() -> None:
    """L476: a 250 KB image swaps 123 pages, 2 + 3 x 123 log records: more than one 2 KiB page holds."""
    name = "stm32l476rg"
    chip = Chip(name, primary=make_image(name, version="1.0.0", counter=1))
    new = make_image(name, version="1.1.0", counter=2, size=250_000)
    update(chip, new)
    assert chip.running == parse_image(new).digest
    loader = chip.personality.bootloader
    assert loader is not None
    records, free = loader.log.records()
    assert len(records) > CHIPS[name].sectors[0].size // RECORD_SIZE
    assert free > loader.log.sectors[1].start
    assert loader.log.in_progress() is None


_FLAG = st.sampled_from([b"\xff", b"\x01", b"\x00", b"\x7f"]).map(lambda b: b + b"\xff" * 7)
_TRAILER = st.one_of(
    st.binary(min_size=48, max_size=48),
    st.builds(
        lambda size, info, copy_done, image_ok, magic: size + info + copy_done + image_ok + magic,
        st.binary(min_size=8, max_size=8),
        _FLAG,
        _FLAG,
        _FLAG,
        st.sampled_from([BOOT_MAGIC, b"\xff" * 16, BOOT_MAGIC[:8] + b"\x00" * 8]),
    ),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(primary_trailer=_TRAILER, secondary_trailer=_TRAILER, log=st.binary(min_size=0, max_size=256))
def test_no_trailer_or_log_content_stops_the_device_from_booting_a_signed_image(
    primary_trailer: bytes, secondary_trailer: bytes, log: bytes
) -> None:
    """Whatever a cut left in the trailers and the swap log, boot() ends running the old or the new image."""
    flash = _flash(primary=OLD, secondary=NEW)
    loader = Bootloader(flash, F407, KEYS, {})
    for slot, junk in ((loader.primary, primary_trailer), (loader.secondary, secondary_trailer)):
        offset = slot.end - len(junk) - flash.base
        flash.data[offset : offset + len(junk)] = junk
    offset = loader.log.start - flash.base
    flash.data[offset : offset + len(log)] = log
    for _ in range(3):  # and again at the next resets
        result = Bootloader(flash, F407, KEYS, {}).boot()
        assert result.image is not None
        assert result.image.digest in (parse_image(OLD).digest, parse_image(NEW).digest)
