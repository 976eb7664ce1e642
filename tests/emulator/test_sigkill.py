"""Killing the emulator is a power cut: ``kill -9`` of the ``stm32ota emulate`` process at seeded moments of a
whole update and swap (datasheet flash timings, scaled to keep the run bounded), then a restart on the same
state folder, finds a bootable signed image every time, the confirmed new image whenever ``flash`` had
reported it confirmed, and a device that takes the next update.

The default run kills at a few moments; ``-m soak`` sweeps many more."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulator.demo import factory_program
from protocol.drivers.link import SerialLink
from protocol.errors import Stm32OtaError
from protocol.flow import FlashOptions, FlashResult, flash_image, read_info
from protocol.image import parse_image
from protocol.update import HostConnection, SlotState
from protocol.update.messages import DeviceInfo

from .chip_harness import make_image

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "assets" / "firmware"
OLD = (FIRMWARE / "demo-1.0.0.signed.bin").read_bytes()
NEW = (FIRMWARE / "demo-1.1.0.signed.bin").read_bytes()
NEXT = make_image(version="2.0.0", counter=9, size=6000)  # the update after: newer than both
DIGESTS = {parse_image(OLD).digest: "old", parse_image(NEW).digest: "new", parse_image(NEXT).digest: "next"}
TIME_SCALE = "0.2"  # datasheet erase/program times x 0.2: a F407 swap of two 128 KiB sectors takes ~1.5 s
BAUD = 115200
START_TIMEOUT_S = 30.0
HOST_GIVE_UP_S = 60.0
_TIMING = ("--time-scale", TIME_SCALE, "--state")
log = logging.getLogger(__name__)


@dataclass
class _Emulator:
    proc: subprocess.Popen[bytes]
    port: str

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # no clean stop: a power cut
        self.proc.wait(START_TIMEOUT_S)


def _start(state: Path, log: Path) -> _Emulator:
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "protocol", "emulate", "--mode", "ota", "--baud", str(BAUD), *_TIMING, str(state)],
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    assert proc.stdout is not None
    port = proc.stdout.readline().decode().strip()
    assert port, log.read_text()
    return _Emulator(proc, port)


def _flash(port: str, image: bytes) -> FlashResult:
    with SerialLink(port, BAUD) as link:
        options = FlashOptions(protocol="ota", compress=False)
        return link.execute(flash_image(image, options, on_event=lambda e: None, clock=time.monotonic))


def _info(port: str) -> DeviceInfo:
    end = time.monotonic() + START_TIMEOUT_S
    while True:  # the restarted bootloader may be finishing a swap before it answers
        try:
            with SerialLink(port, BAUD) as link:
                return link.execute(read_info(HostConnection(), time.monotonic))
        except Stm32OtaError:
            if time.monotonic() > end:
                raise


def _confirmed_new(result: FlashResult | None) -> bool:
    if result is None or result.info_after is None:
        return False
    primary = result.info_after.slot(0)
    return primary.state is SlotState.CONFIRMED and DIGESTS.get(primary.digest) == "new"


def _cycle(tmp: Path, kill_after: float) -> str:
    """One update killed after ``kill_after`` s; returns what the restarted device ran."""
    state, log = tmp / "state", tmp / "emulator.log"
    factory_program(state, OLD)
    emu = _start(state, log)
    outcome: list[FlashResult | BaseException] = []

    def host() -> None:
        try:
            outcome.append(_flash(emu.port, NEW))
        except BaseException as err:  # the port vanishing under the host is the point
            outcome.append(err)

    thread = threading.Thread(target=host, daemon=True)
    thread.start()
    thread.join(kill_after)
    emu.kill()
    thread.join(HOST_GIVE_UP_S)
    assert not thread.is_alive(), "the host never noticed that the device died"
    result = outcome[0] if outcome and isinstance(outcome[0], FlashResult) else None

    emu = _start(state, log)
    try:
        info = _info(emu.port)
        primary = info.slot(0)
        running = DIGESTS.get(primary.digest)
        assert running is not None and primary.state in (SlotState.ACTIVE, SlotState.CONFIRMED), (
            f"killed after {kill_after:.2f} s: no bootable signed image ({primary})\n{log.read_text()[-3000:]}"
        )
        if _confirmed_new(result):
            assert running == "new" and primary.state is SlotState.CONFIRMED, (
                f"flash reported the new image confirmed, the restarted device runs {running} ({primary.state})"
            )
        again = _flash(emu.port, NEXT)  # and it takes the next update
        assert again.info_after is not None and DIGESTS.get(again.info_after.slot(0).digest) == "next"
    finally:
        emu.kill()
    return f"{running}{' (confirmed by flash)' if _confirmed_new(result) else ''}"


def _reference_duration(tmp: Path) -> float:
    """How long an uncut update takes here (kill moments are spread over it and a little beyond)."""
    state = tmp / "reference"
    factory_program(state, OLD)
    emu = _start(state, tmp / "reference.log")
    try:
        started = time.monotonic()
        assert _confirmed_new(_flash(emu.port, NEW))
        return time.monotonic() - started
    finally:
        emu.kill()


def _sweep(tmp_path: Path, seed: int, kills: int) -> None:
    total = _reference_duration(tmp_path)
    rng = random.Random(seed)
    seen = []
    for n in range(kills):
        moment = (n + rng.random()) / kills * total * 1.1  # one moment in each slice of the update
        folder = tmp_path / f"cut-{n}"
        folder.mkdir()
        seen.append((round(moment, 2), _cycle(folder, moment)))
    log.info("update of %.2f s killed at: %s", total, seen)


def test_sigkill_at_seeded_moments_is_a_power_cut(tmp_path: Path) -> None:
    _sweep(tmp_path, seed=9, kills=3)


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(4))
def test_sigkill_sweep(tmp_path: Path, seed: int) -> None:
    _sweep(tmp_path, seed=seed, kills=12)
