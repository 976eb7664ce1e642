"""MCUboot's own image rules in the emulated bootloader and in the update agent's VERIFY.

Each rule with an image made by our ``sign`` and one made by the real ``imgtool``: a non-bootable image is
never swapped in, the trailer counts only at this slot's end (an image padded for another slot size is
refused, one padded to this slot's size accepted), ``ROM_FIXED`` must name the primary slot, the security
counter is held to the running confirmed image's, and it rises at the first boot of a serially recovered
image.  The host's checks are bypassed here (a bare host core talks to the device).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from emulator.boot import Bootloader, SwapType
from emulator.chips import CHIPS
from emulator.flash import Flash
from protocol.errors import DeviceError
from protocol.image import HardwareTag, load_private_key, load_public_key, parse_image, sign_image
from protocol.update import SlotState, Status
from tests.conftest import require_tool

from .chip_harness import DEV_KEY, DEV_PUB, FIRMWARE, Chip, command, info, transfer, update

F407 = CHIPS["stm32f407vg"]
SLOT = F407.layout.secondary[1]
RAW = (FIRMWARE / "demo-1.1.0.bin").read_bytes()
OLD = (FIRMWARE / "demo-1.0.0.signed.bin").read_bytes()  # 1.0.0, counter 1
TAG = HardwareTag(chip_id=0x413, board_id=1)
KEYS = [load_public_key(DEV_PUB.read_bytes())]


def ours(**options: Any) -> bytes:
    opts: dict[str, Any] = {
        "version": "1.2.0",
        "security_counter": 2,
        "header_size": 0x200,
        "pad_header": True,
        "align": 4,
        "slot_size": SLOT,
        "hw_tag": TAG,
        **options,
    }
    return sign_image(RAW, load_private_key(DEV_KEY.read_bytes()), **opts)


def imgtool(tmp: Path, *extra: str, version: str = "1.2.0", counter: int = 2) -> bytes:
    exe = require_tool("imgtool", "pip install imgtool")
    raw, out = tmp / "app.bin", tmp / "app.signed.bin"
    raw.write_bytes(RAW)
    args = [exe, "sign", "-k", str(DEV_KEY), "-H", "0x200", "--pad-header", "--align", "4", "-v", version]
    args += ["-s", str(counter), "--custom-tlv", "0xa0", "0x13040100"]
    if "-S" not in extra:
        args += ["-S", hex(SLOT)]
    subprocess.run([*args, *extra, str(raw), str(out)], check=True, capture_output=True)
    return out.read_bytes()


MAKERS = {
    "non-bootable": (lambda: ours(non_bootable=True), ("--non-bootable",)),
    "padded-128k": (lambda: ours(pad=True, slot_size=0x20000), ("--pad", "-S", "0x20000")),
    "rom-fixed-bootloader": (lambda: ours(rom_fixed=0x0800_0000), ("--rom-fixed", "0x08000000")),
}
STATUS = {
    "non-bootable": Status.NON_BOOTABLE,
    "padded-128k": Status.BAD_TRAILER,
    "rom-fixed-bootloader": Status.WRONG_ADDRESS,
}


def _image(kind: str, maker: str, tmp: Path) -> bytes:
    ours_make, imgtool_args = MAKERS[kind]
    return ours_make() if maker == "ours" else imgtool(tmp, *imgtool_args)


def _verify_status(chip: Chip, image: bytes) -> int:
    transfer(chip, image)
    with pytest.raises(DeviceError) as err:
        command(chip, "verify", 1)
    return err.value.status


@pytest.mark.parametrize("maker", ["ours", "imgtool"])
@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_verify_and_activate_refuse_what_mcuboot_would_not_boot(kind: str, maker: str, tmp_path: Path) -> None:
    chip = Chip(primary=OLD)
    image = _image(kind, maker, tmp_path)
    assert _verify_status(chip, image) == STATUS[kind]
    with pytest.raises(DeviceError) as err:
        command(chip, "activate", False)
    assert err.value.status == STATUS[kind]
    command(chip, "reboot")
    chip.settle()
    assert chip.running == parse_image(OLD).digest


@pytest.mark.parametrize("maker", ["ours", "imgtool"])
def test_an_image_padded_to_this_slots_size_is_accepted_and_installs(maker: str, tmp_path: Path) -> None:
    image = ours(pad=True) if maker == "ours" else imgtool(tmp_path, "--pad")
    assert len(image) == SLOT
    chip = Chip(primary=OLD)
    update(chip, image)
    assert chip.running == parse_image(image).digest
    assert info(chip).slot(0).version == (1, 2, 0, 0)


def _flash(primary: bytes | None = None, secondary: bytes | None = None) -> Flash:
    flash = Flash(F407)
    for image, (start, _size) in ((primary, F407.layout.primary), (secondary, F407.layout.secondary)):
        if image is not None:
            offset = start - F407.flash_base
            flash.data[offset : offset + len(image)] = image
    return flash


@pytest.mark.parametrize("maker", ["ours", "imgtool"])
def test_the_bootloader_never_swaps_in_a_non_bootable_image_and_keeps_it(maker: str, tmp_path: Path) -> None:
    image = _image("non-bootable", maker, tmp_path)
    flash = _flash(primary=OLD, secondary=image)
    loader = Bootloader(flash, F407, KEYS, {})
    assert loader.set_pending(permanent=True)
    start, size = F407.layout.primary
    before = flash.read(start, size)
    result = loader.boot()
    assert result.swap is SwapType.NONE  # MCUboot: no bootable image in the slot, carry on with the primary
    assert flash.read(start, size) == before
    assert parse_image(flash.read(F407.layout.secondary[0], len(image))).digest == parse_image(image).digest
    assert result.image is not None and str(result.image.version) == "1.0.0+0"
    assert any("non-bootable" in m for m in result.messages)


@pytest.mark.parametrize("maker", ["ours", "imgtool"])
def test_a_rom_fixed_image_for_another_address_is_not_booted(maker: str, tmp_path: Path) -> None:
    image = _image("rom-fixed-bootloader", maker, tmp_path)
    flash = _flash(primary=OLD, secondary=image)
    loader = Bootloader(flash, F407, KEYS, {})
    assert loader.set_pending(permanent=True)
    result = loader.boot()
    assert result.swap is SwapType.FAIL and "rom-fixed" in " ".join(result.messages)
    assert result.image is not None and str(result.image.version) == "1.0.0+0"


def test_a_rom_fixed_image_for_the_primary_slot_boots() -> None:
    for fixed in (F407.layout.primary[0], F407.layout.primary[0] - F407.flash_base):  # address or offset
        chip = Chip(primary=OLD)
        image = ours(rom_fixed=fixed)
        update(chip, image)
        assert chip.running == parse_image(image).digest


def test_a_trailer_only_counts_at_the_slots_end() -> None:
    """An image padded for 128 KiB written into the 384 KiB slot (by a debugger, say): its trailer sits in the
    middle of the slot, so the bootloader sees no pending image and does not swap."""
    image = ours(pad=True, slot_size=0x20000, confirm=True)
    loader = Bootloader(_flash(primary=OLD, secondary=image), F407, KEYS, {})
    assert loader.swap_type() is SwapType.NONE
    result = loader.boot()
    assert result.swap is SwapType.NONE and result.image is not None and str(result.image.version) == "1.0.0+0"


@pytest.mark.parametrize("maker", ["ours", "imgtool"])
def test_verify_holds_an_update_to_the_running_confirmed_images_counter(maker: str, tmp_path: Path) -> None:
    """Back to back: 1.1.0 (counter 2) is installed and confirmed; the stored counter only rises at the next
    normal boot, yet an image with counter 0 is refused at once."""
    chip = Chip(primary=OLD)
    update(chip, (FIRMWARE / "demo-1.1.0.signed.bin").read_bytes())
    assert info(chip).slot(0).state is SlotState.CONFIRMED
    low = ours(security_counter=0) if maker == "ours" else imgtool(tmp_path, counter=0)
    assert _verify_status(chip, low) == Status.SECURITY_COUNTER


def test_the_security_counter_rises_at_the_first_boot_of_a_serially_recovered_image() -> None:
    chip = Chip()  # blank: the bootloader serves the protocol itself (serial recovery)
    assert chip.running is None
    first = ours(security_counter=3)
    update(chip, first)
    assert chip.running == parse_image(first).digest
    state = chip.ctx.state["boot"]
    assert state["security_counter"] == 3
    assert info(chip).slot(0).state is SlotState.CONFIRMED
    assert _verify_status(chip, ours(version="1.3.0", security_counter=1)) == Status.SECURITY_COUNTER
