"""The handshake is as robust as the data phase (issue 8, item 5).

At bit errors 3e-4 with 0.3 % dropped bytes, half of the flashes used to fail with ``no reply to info after 6
tries`` (a 300-byte INFO reply survives such a line ~17 % of the time), although every one that got past INFO
completed.  Protocol 1.1 reads INFO in pieces after a short PING: every seeded flash gets past INFO.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from emulator.chips import CHIPS
from emulator.demo import DEMO_CHIP, demo_firmware, factory_program
from emulator.testing import running_emulator
from protocol.drivers.link import SerialLink
from protocol.errors import Stm32OtaError
from protocol.flow import FlashOptions, flash_image, read_info
from protocol.progress import Phase, PhaseStatus, ProgressSnapshot
from protocol.sansio import Event
from protocol.update.host import HostConnection

FAULTS = "flip=3e-4,drop=0.003"
OLD = demo_firmware("demo-1.0.0.signed.bin").read_bytes()
NEW = demo_firmware("demo-1.1.0.signed.bin").read_bytes()


@pytest.mark.parametrize("seed", range(1, 5))
def test_info_gets_through_the_noise(tmp_path: Path, seed: int) -> None:
    factory_program(tmp_path, OLD)
    emulator = running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path, faults=FAULTS, seed=seed)
    with emulator as emu, SerialLink(emu.port) as link:
        for _ in range(2):  # the first INFO of a session, and one after it
            host = HostConnection()
            info = link.execute(read_info(host, time.monotonic))
            assert info.chip_id == CHIPS[DEMO_CHIP].dev_id
            assert info.slot(0).version == (1, 0, 0, 0)


def _flash_over_noise(state: Path, seed: int) -> tuple[bool, list[Phase], Stm32OtaError | None]:
    factory_program(state, OLD)
    ended: list[Phase] = []

    def on_event(event: Event) -> None:
        if isinstance(event, ProgressSnapshot) and event.status is PhaseStatus.ENDED:
            ended.append(event.phase)

    with running_emulator("ota", baud=0, time_scale=0, state_dir=state, faults=FAULTS, seed=seed) as emu:
        try:
            with SerialLink(emu.port) as link:
                result = link.execute(flash_image(NEW, FlashOptions(), on_event=on_event, clock=time.monotonic))
        except Stm32OtaError as err:
            return False, ended, err
    assert result.info_after is not None and result.info_after.slot(0).version == (1, 1, 0, 0)
    return True, ended, None


def test_a_flash_over_the_noise_gets_past_info_and_completes(tmp_path: Path) -> None:
    completed, ended, error = _flash_over_noise(tmp_path, seed=2)  # seed 2 failed at INFO before protocol 1.1
    assert Phase.INFO in ended, error
    assert completed, error


# 20 seeds keep the soak run under its 20 minutes (each flash at this noise takes ~12 s); 40 of 40 passed when
# run by hand (python -m pytest -m soak with range(1, 41)).
@pytest.mark.soak
@pytest.mark.parametrize("seed", range(1, 21))
def test_every_flash_over_the_noise_gets_past_info(tmp_path: Path, seed: int) -> None:
    completed, ended, error = _flash_over_noise(tmp_path, seed)
    assert Phase.INFO in ended, f"seed {seed} failed in the handshake: {error}"
    assert completed or error is not None
