"""Run an emulator in-process, for tests, benchmarks and ``stm32ota demo``.

::

    from emulator.testing import running_emulator

    with running_emulator(mode="iap", baud=0, time_scale=0) as emu:
        link = SerialLink(emu.port)        # emu.port: the pty path (or socket:// URL) to open
        ...
        emu.device.flash.read(...)         # look inside the chip

The device runs in threads of this process; leaving the ``with`` block stops it and flushes its state folder.
``baud=0`` gives an unthrottled line (fast unit tests); any other rate is paced like the real wire.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .device import Device, PersonalityFactory, build_device
from .faults import FaultPlan, parse_faults
from .line import Line

__all__ = ["EmulatorHandle", "running_emulator"]


@dataclass
class EmulatorHandle:
    """A running emulator: :attr:`port` is what the host opens."""

    device: Device
    state_dir: Path

    @property
    def port(self) -> str:
        return self.device.line.url

    @property
    def line(self) -> Line:
        return self.device.line

    def stop(self) -> None:
        self.device.stop()


@contextlib.contextmanager
def running_emulator(
    mode: str = "ota",
    *,
    chip: str = "stm32f407vg",
    baud: int = 115200,
    pacing: bool = True,
    latency_ms: float = 0.0,
    rx_buffer: int | None = None,
    faults: str | FaultPlan | None = None,
    seed: int = 0,
    time_scale: float = 0.0,
    state_dir: Path | str | None = None,
    trusted_keys: Sequence[Path | str] | None = None,
    socket_port: int | None = None,
    iap_quirks: str | None = None,
    personality_factory: PersonalityFactory | None = None,
) -> Iterator[EmulatorHandle]:
    """Start an emulator (a new pty, or ``socket://`` with ``socket_port``), yield its handle, stop it."""
    plan = faults if isinstance(faults, FaultPlan) else parse_faults(faults, seed=seed)
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            state_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="stm32ota-emu-"))
        device = build_device(
            mode=mode,
            chip=chip,
            baud=baud,
            pacing=pacing,
            latency_s=latency_ms / 1000.0,
            rx_buffer=rx_buffer,
            state_dir=state_dir,
            trusted_keys=trusted_keys,
            faults=plan,
            time_scale=time_scale,
            socket_port=socket_port,
            iap_quirks=iap_quirks,
            personality_factory=personality_factory,
        )
        device.start()
        try:
            yield EmulatorHandle(device=device, state_dir=Path(state_dir))
        finally:
            device.stop()
