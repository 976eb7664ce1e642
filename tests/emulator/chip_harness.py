"""An emulated chip without a line: flash + state + OTA personality, driven by a host core in memory.

:class:`Chip` does what the runtime (``emulator.device.Device``) does around a personality -- boot it, hand
it bytes, call ``on_idle``, catch :class:`~emulator.flash.PowerCut` and reboot from what the flash holds --
with a manual clock, so a whole update (and hundreds of them, cut at every flash operation) runs in
milliseconds.  :func:`make_image` builds signed test images with the dev key.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.chips import CHIPS, SRAM_BASE, ChipProfile
from emulator.flash import Flash, PowerCut
from emulator.ota import OtaPersonality
from protocol.errors import ProtocolTimeoutError
from protocol.image import HardwareTag, load_private_key, sign_image
from protocol.sansio import Event
from protocol.update import CommandComplete, HostConnection, InfoReceived, TransferComplete
from protocol.update.messages import DeviceInfo

REPO = Path(__file__).resolve().parents[2]
KEYS = REPO / "assets" / "keys"
DEV_KEY = KEYS / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pem"
DEV_PUB = KEYS / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pub.pem"
BAD = REPO / "assets" / "bad"
FIRMWARE = REPO / "assets" / "firmware"
TICK_S = 0.05  # simulated time per idle step
MAX_STEPS = 200_000


def make_image(
    chip: ChipProfile | str = "stm32f407vg",
    *,
    version: str = "1.0.0",
    counter: int = 1,
    size: int = 3000,
    fill: bytes = b"",
    board: int = 1,
    key_path: Path = DEV_KEY,
) -> bytes:
    """A signed image whose payload starts with a valid Cortex-M vector table for ``chip``."""
    profile = CHIPS[chip] if isinstance(chip, str) else chip
    start = profile.layout.primary[0]
    vectors = struct.pack("<II", SRAM_BASE + 0x1000, start + 0x200 + 0x101)
    seed = hashlib.sha256(f"{version}/{size}".encode()).digest()
    body = (fill + seed * (size // 32 + 1))[: max(0, size - 8)]
    key = load_private_key(key_path.read_bytes())
    return sign_image(
        vectors + body,
        key,
        version=version,
        header_size=0x200,
        pad_header=True,
        align=profile.write_width,
        security_counter=counter,
        hw_tag=HardwareTag(chip_id=profile.dev_id, board_id=board),
    )


@dataclass
class Ctx:
    """What ``emulator.device.DeviceContext`` gives a personality, in memory with a manual clock."""

    flash: Flash
    chip: ChipProfile
    state: dict[str, Any]
    trusted_keys: list[Path]
    clock: list[float]
    time_scale: float = 0.0
    baud: int = 115200
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("test.chip"))
    out: bytearray = field(default_factory=bytearray)
    enc_key: Path | None = None
    reset_requested: bool = False
    busy_end: float = 0.0

    def busy_ended_at(self) -> float:
        return self.busy_end

    def write(self, data: bytes) -> None:
        self.out += data

    def set_baud(self, baud: int) -> None:
        self.baud = baud

    def discard_input(self) -> int:
        return 0

    def input_waiting(self) -> bool:
        return False

    def deaf(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def now(self) -> float:
        return self.clock[0]

    def sleep(self, seconds: float) -> None:
        del seconds

    def reset(self) -> None:
        self.reset_requested = True

    def flush(self) -> None:
        pass


class Chip:
    """A chip with the OTA personality; ``cut_at`` (an absolute flash operation number) cuts power once."""

    def __init__(
        self,
        chip: str = "stm32f407vg",
        *,
        primary: bytes | None = None,
        flash_data: bytearray | None = None,
        state: dict[str, Any] | None = None,
        keys: list[Path] | None = None,
        auto_confirm: bool = True,
        personality: Callable[[], OtaPersonality] | None = None,
        time_scale: float = 0.0,
        enc_key: Path | None = None,
    ) -> None:
        self.profile = CHIPS[chip]
        self.cut_at: int | None = None
        self.cuts = 0
        self.clock = [0.0]
        self.busy_time = 0.0  # simulated seconds the firmware spent waiting on the flash
        self.flash = Flash(
            self.profile,
            flash_data,
            on_op=self._on_op,
            time_scale=time_scale,
            sleep=self._sleep,
            clock=lambda: self.clock[0],
        )
        if primary is not None:
            start = self.profile.layout.primary[0] - self.profile.flash_base
            self.flash.data[start : start + len(primary)] = primary
        self.ctx = Ctx(
            flash=self.flash,
            chip=self.profile,
            state=state if state is not None else {},
            trusted_keys=keys if keys is not None else [DEV_PUB],
            clock=self.clock,
            time_scale=time_scale,
            enc_key=enc_key,
        )
        self._factory = personality or (lambda: OtaPersonality(auto_confirm=auto_confirm, self_test_delay=0.1))
        self.personality: OtaPersonality = self._factory()
        self.boots = 0
        self.power_on()

    def _sleep(self, seconds: float) -> None:
        """Flash busy time passes on the simulated clock."""
        self.clock[0] += seconds
        self.busy_time += seconds
        self.ctx.busy_end = self.clock[0]

    def _on_op(self, op: int) -> None:
        if self.cut_at is not None and op >= self.cut_at:
            self.cut_at = None
            self.cuts += 1
            raise PowerCut(f"power cut at flash operation {op}")

    def power_on(self) -> None:
        """Reset and boot (after a cut during boot, boot again, as the runtime does)."""
        while True:
            self.boots += 1
            self.ctx.out.clear()
            self.ctx.reset_requested = False
            self.ctx.baud = 115200
            self.personality = self._factory()
            try:
                self.personality.boot(self.ctx)  # type: ignore[arg-type]
                return
            except PowerCut:
                continue

    def step(self, data: bytes = b"") -> bytes:
        """Feed ``data``, run one idle tick; returns what the device sent.  A power cut reboots."""
        try:
            if data:
                self.personality.on_bytes(data)
            self.clock[0] += TICK_S
            self.personality.on_idle(self.clock[0])
        except PowerCut:
            self.power_on()
            raise
        out = bytes(self.ctx.out)
        self.ctx.out.clear()
        if self.ctx.reset_requested:
            self.power_on()
            out += bytes(self.ctx.out)
            self.ctx.out.clear()
        return out

    def settle(self, seconds: float = 1.0) -> None:
        """Let the app run (self-test, confirm, heartbeats)."""
        for _ in range(int(seconds / TICK_S) + 1):
            self.step()

    @property
    def running(self) -> bytes | None:
        """Digest of the running image (``None``: serial recovery)."""
        result = self.personality.result
        if result is None or result.image is None:
            return None
        return result.image.digest


class HostError(Exception):
    pass


def run(
    chip: Chip, host: HostConnection, until: Callable[[Event], bool], *, events: list[Event] | None = None
) -> Event:
    """Pump host and device until ``until(event)``; device errors raise from the host core."""
    pending = b""
    silent = 0.0
    for _ in range(MAX_STEPS):
        event = host.next_event()
        while event is not None:
            if events is not None:
                events.append(event)
            if until(event):
                return event
            event = host.next_event()
        out = host.data_to_send()
        reply = chip.step(pending + out)
        pending = b""
        if reply:
            silent = 0.0
            host.receive_data(reply)
        else:
            silent += TICK_S
            timeout = host.timeout
            if timeout is not None and silent >= timeout:
                silent = 0.0
                host.handle_timeout()
    raise ProtocolTimeoutError("harness: no progress")


def info(chip: Chip) -> DeviceInfo:
    host = HostConnection()
    host.request_info()
    event = run(chip, host, lambda e: isinstance(e, InfoReceived))
    assert isinstance(event, InfoReceived)
    return event.info


def command(chip: Chip, name: str, *args: Any, **kwargs: Any) -> None:
    host = HostConnection()
    getattr(host, name)(*args, **kwargs)
    run(chip, host, lambda e: isinstance(e, CommandComplete))


def transfer(chip: Chip, image: bytes, *, compress: bool = False, resume: bool = True) -> TransferComplete:
    host = HostConnection()
    host.request_info()
    run(chip, host, lambda e: isinstance(e, InfoReceived))
    host.begin_transfer(image, slot=1, compress=compress, resume=resume)
    event = run(chip, host, lambda e: isinstance(e, TransferComplete))
    assert isinstance(event, TransferComplete)
    return event


def update(chip: Chip, image: bytes, *, permanent: bool = False, compress: bool = False) -> None:
    """The host flow: transfer, verify, activate, reboot (the bootloader swaps), let the app confirm."""
    transfer(chip, image, compress=compress)
    command(chip, "verify", 1)
    command(chip, "activate", permanent)
    command(chip, "reboot")
    chip.settle()
