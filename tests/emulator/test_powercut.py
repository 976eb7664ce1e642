"""Power-cut sweep: cut power at every flash operation of a full update-and-swap.

For each cut point the scenario is: a device running the old image (factory-programmed, confirmed) gets the
new image over the update protocol (erase, transfer, verify, activate), reboots into a test swap, the app
confirms it, and a last reset raises the security counter.  Power goes at flash operation N of that run.
After the cut the device must boot a valid signed image -- the old or the new one, never nothing -- and a
further update (to a third image) must go through and end confirmed.
"""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

import pytest

from emulator.demo import factory_program
from emulator.flash import PowerCut
from emulator.testing import running_emulator
from protocol.drivers.link import SerialLink
from protocol.errors import ProtocolError, Stm32OtaError
from protocol.flow import FlashOptions, flash_image
from protocol.image import parse_image
from protocol.update import SlotState

from .chip_harness import FIRMWARE, Chip, command, info, make_image, update

SAMPLE = 300  # cut points tested when a scenario has more flash operations than this


def _digest(image: bytes) -> bytes:
    return parse_image(image).digest


def _images(chip: str, size: int) -> tuple[bytes, bytes, bytes]:
    return (
        make_image(chip, version="1.0.0", counter=1, size=size),
        make_image(chip, version="1.1.0", counter=2, size=size + 700),
        make_image(chip, version="1.2.0", counter=3, size=size // 2),
    )


def _scenario(chip: Chip, new: bytes) -> None:
    update(chip, new)
    command(chip, "reboot")
    chip.settle()


def _ops_of_full_run(name: str, old: bytes, new: bytes) -> int:
    chip = Chip(name, primary=old)
    start = chip.flash.ops
    _scenario(chip, new)
    assert chip.running == _digest(new)
    return chip.flash.ops - start


def _cut_and_check(name: str, old: bytes, new: bytes, third: bytes, cut: int) -> None:
    chip = Chip(name, primary=old)
    chip.cut_at = chip.flash.ops + cut
    try:
        _scenario(chip, new)
    except PowerCut:
        pass
    except ProtocolError:
        pass  # the host conversation broke when the device lost power
    assert chip.cuts == 1, f"cut {cut} never happened"
    running = chip.running
    assert running in (_digest(old), _digest(new)), f"cut at op {cut}: the device runs nothing valid"
    assert info(chip).slot(0).state in (SlotState.CONFIRMED, SlotState.ACTIVE)
    update(chip, third)
    assert chip.running == _digest(third), f"cut at op {cut}: the next update did not take"
    assert info(chip).slot(0).state is SlotState.CONFIRMED


def _cut_points(total: int, seed: int) -> list[int]:
    points = list(range(1, total + 1))
    if len(points) > SAMPLE:
        points = sorted(random.Random(seed).sample(points, SAMPLE))
    return points


@pytest.mark.parametrize(("name", "size"), [("stm32f407vg", 2500), ("stm32l476rg", 2500), ("stm32f103c8", 11000)])
def test_power_cut_at_every_flash_operation_of_an_update(name: str, size: int) -> None:
    """Every cut point.  The F103 image spans 12 pages, so cuts land inside a many-sector swap, where only
    the swap status log can tell the bootloader which copy to redo."""
    old, new, third = _images(name, size)
    total = _ops_of_full_run(name, old, new)
    assert total > 20
    for cut in _cut_points(total, seed=1):
        _cut_and_check(name, old, new, third, cut)


@pytest.mark.soak
@pytest.mark.parametrize(("name", "size"), [("stm32l476rg", 60000), ("stm32f407vg", 200_000)])
def test_power_cut_sweep_over_a_multi_sector_update(name: str, size: int) -> None:
    """Images over many pages: every cut point, or a seeded sample of 300 where there are more."""
    old, new, third = _images(name, size)
    total = _ops_of_full_run(name, old, new)
    assert total > 100
    points = _cut_points(total, seed=hashlib.sha256(name.encode()).digest()[0])
    assert len(points) == min(total, SAMPLE)
    for cut in points:
        _cut_and_check(name, old, new, third, cut)


@pytest.mark.parametrize("op", [3, 12, 40])
def test_a_power_cut_in_the_running_emulator_then_a_second_flash(tmp_path: Path, op: int) -> None:
    """Through the runtime and a pty: ``--faults powercut-op=N`` cuts one flash operation (transfer or swap);
    the host's first attempt may fail with a clear error, the second one installs the image."""
    old = (FIRMWARE / "demo-1.0.0.signed.bin").read_bytes()
    new = make_image(version="1.1.0", counter=2, size=20_000)
    factory_program(tmp_path, old)
    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path, faults=f"powercut-op={op}") as emu:
        options = FlashOptions(protocol="ota", reboot_timeout=5.0)
        results = []
        for _ in range(2):
            try:
                with SerialLink(emu.port, 115200) as link:
                    flow = flash_image(new, options, on_event=lambda e: None, clock=time.monotonic)
                    results.append(link.execute(flow))
                break
            except Stm32OtaError:
                continue
        assert emu.device.power_cuts == 1
        assert results, "no attempt succeeded"
        after = results[-1].info_after
        assert after is not None and after.slot(0).version == (1, 1, 0, 0)
        assert after.slot(0).state is SlotState.CONFIRMED
