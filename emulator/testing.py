"""Run an emulator in-process, for tests, benchmarks and ``stm32ota demo``.

::

    from emulator.testing import running_emulator

    with running_emulator(mode="iap", baud=0, time_scale=0) as emu:
        link = SerialLink(emu.port)        # emu.port: the pty path (or socket:// URL) to open
        ...
        emu.device.flash.read(...)         # look inside the chip

The device runs in threads of this process; leaving the ``with`` block stops it, and raises
:class:`~emulator.device.EmulatorCrash` if its firmware or one of its line threads crashed meanwhile (a
crash is a failure of the test that ran it, not a log line).
The handle is yielded once the device has booted and its boot output has drained, so what the host reads
after opening the port is an answer to what it sent (send a key to see the IAP menu, as on a terminal).
``baud=0`` gives an unthrottled line (fast unit tests); any other rate is paced like the real wire.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .build import build_device
from .device import Device, PersonalityFactory
from .faults import FaultPlan, parse_faults
from .line import Line

__all__ = ["READY_TIMEOUT_S", "EmulatorHandle", "running_emulator"]

READY_TIMEOUT_S = 2.0  # longest running_emulator() waits for the boot output to drain
READY_POLL_S = 0.005


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

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> bool:
        """Wait until the device has booted and what it printed at boot has left the line (a host that
        opens the port afterwards starts with a clean slate, as pyserial flushes input on open).  Returns
        False if the device was still talking after ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.device.boots > 0 and self.device.personality is not None and self.line.tx_idle():
                return True
            time.sleep(READY_POLL_S)
        return False


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
    auto_confirm: bool = True,
    personality_factory: PersonalityFactory | None = None,
    durable: bool = True,
    enc_key: Path | str | None = None,
) -> Iterator[EmulatorHandle]:
    """Start an emulator (a new pty, or ``socket://`` with ``socket_port``), yield its handle, stop it.
    ``enc_key``: the image-decryption private key of the OTA bootloader (see :func:`~emulator.build.build_device`)."""
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
            auto_confirm=auto_confirm,
            personality_factory=personality_factory,
            durable=durable,
            enc_key=enc_key,
        )
        device.start()
        try:
            handle = EmulatorHandle(device=device, state_dir=Path(state_dir))
            handle.wait_ready()
            yield handle
        except BaseException as err:
            device.stop()
            if device.crash is not None:  # the test failed anyway; say why the chip had stopped
                err.add_note(f"the emulator had crashed: {device.crash!r}")
            raise
        device.stop()
        device.raise_if_crashed()  # a crashed firmware or line thread fails the test that ran it
