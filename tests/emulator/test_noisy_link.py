"""Updates over a noisy line (issue: bit errors at 1e-4 and 0.1 % dropped bytes): each seeded transfer either
completes with the right image running or fails with a clear, typed error, and none activates a wrong image.

The host shrinks its blocks when the link corrupts them faster than retries help, resuming each time, so a
256 KiB image gets through too."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from emulator.chips import CHIPS
from emulator.demo import DEMO_CHIP, demo_firmware, factory_program
from emulator.testing import running_emulator
from protocol.drivers.link import SerialLink
from protocol.errors import Stm32OtaError
from protocol.flow import FlashOptions, flash_image
from protocol.image import parse_image
from protocol.progress import ProgressSnapshot
from protocol.sansio import Event

FAULTS = "flip=1e-4,drop=0.001"
OLD = demo_firmware("demo-1.0.0.signed.bin").read_bytes()
NEW = demo_firmware("demo-1.1.0.signed.bin").read_bytes()
BIG = demo_firmware("demo-big-1.2.0.signed.bin").read_bytes()


def _image_end(image: bytes) -> int:
    return parse_image(image).end


def _update_over_noise(state: Path, image: bytes, seed: int) -> tuple[bool, bytes, list[str]]:
    """Run one update; return (completed, primary slot contents after, flow steps)."""
    factory_program(state, OLD)
    steps: list[str] = []

    def on_event(event: Event) -> None:
        if isinstance(event, ProgressSnapshot) and event.message:
            steps.append(event.message)

    chip = CHIPS[DEMO_CHIP]
    start, _size = chip.layout.primary
    completed = True
    with running_emulator("ota", baud=0, time_scale=0, state_dir=state, faults=FAULTS, seed=seed) as emu:
        try:
            with SerialLink(emu.port) as link:
                link.execute(flash_image(image, FlashOptions(), on_event=on_event, clock=time.monotonic))
        except Stm32OtaError as err:
            completed = False
            assert str(err), "a failure must say what went wrong"
        primary = emu.device.flash.read(start, max(len(image), len(OLD)))
    return completed, primary, steps


def _check_outcome(completed: bool, primary: bytes, image: bytes) -> None:
    new_end, old_end = _image_end(image), _image_end(OLD)
    runs_new = primary[:new_end] == image[:new_end]
    runs_old = primary[:old_end] == OLD[:old_end]
    assert runs_new or runs_old, "the primary slot holds neither the old nor the new signed image"
    if completed:
        assert runs_new, "the flow reported success but the new image is not running"


@pytest.mark.parametrize("seed", range(1, 11))
def test_small_update_over_a_noisy_line(tmp_path: Path, seed: int) -> None:
    completed, primary, _steps = _update_over_noise(tmp_path, NEW, seed)
    _check_outcome(completed, primary, NEW)


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(11, 51))
def test_small_update_over_a_noisy_line_soak(tmp_path: Path, seed: int) -> None:
    completed, primary, _steps = _update_over_noise(tmp_path, NEW, seed)
    _check_outcome(completed, primary, NEW)


def test_a_big_image_gets_through_by_shrinking_the_blocks(tmp_path: Path) -> None:
    completed, primary, steps = _update_over_noise(tmp_path, BIG, seed=1)
    _check_outcome(completed, primary, BIG)
    assert completed
    assert any("resuming with" in step for step in steps), steps
