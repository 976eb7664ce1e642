"""The emulator's runtime: one device thread that runs a personality on the line.

A *personality* is the firmware the emulated chip runs (the stm32ota bootloader, ST's AN4657 IAP menu).  It
is a plain object with three callbacks, all called from the device thread only:

* :meth:`Personality.boot` at every reset (power-on, ``reset()``, a watchdog, after a power cut),
* :meth:`Personality.on_bytes` with whatever the UART received since the last call,
* :meth:`Personality.on_idle` periodically (heartbeats, timeouts), at least every :data:`IDLE_TICK_S`.

A callback may block (a flash erase takes its datasheet time scaled by ``time_scale``); while it does, the
device is not reading its UART, so bytes the host sends meanwhile pile up in the bounded RX buffer and
overflow is lost, as on silicon.  The runtime owns the line and the flash; the state folder is the chip's
non-volatile memory, written through as the chip would commit it (every erase and program before it returns,
``state.json`` atomically whenever it changed), so killing the emulator is a power cut.  It catches
:class:`~emulator.flash.PowerCut` (the half-done operation is committed too) and reboots the personality.
A callback that raises anything else is a firmware crash: the chip stops and :attr:`Device.crash` says why
(as it does for a crashed line thread); :meth:`Device.raise_if_crashed` turns it into :class:`EmulatorCrash`.

The runtime knows no personality: :mod:`emulator.build` picks one by mode and builds the device.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from protocol.errors import Stm32OtaError

from .chips import CHIPS, ChipProfile
from .faults import FaultPlan, PowerCutTrigger
from .flash import Flash, PowerCut
from .line import Line
from .state import DeviceState

__all__ = [
    "IDLE_TICK_S",
    "Device",
    "DeviceContext",
    "EmulatorCrash",
    "Personality",
    "PersonalityFactory",
]

log = logging.getLogger(__name__)

IDLE_TICK_S = 0.02  # longest the device thread waits for UART bytes before calling on_idle
RESET_SETTLE_S = 0.0  # time between a reset and boot() (the chip's reset pulse is far below any timeout)
STOP_JOIN_TIMEOUT_S = 10.0  # how long stop() waits for a personality callback to return
DRAIN_TIMEOUT_S = 5.0  # longest a software reset waits for the firmware's last prints to leave


class EmulatorCrash(Stm32OtaError, RuntimeError):
    """The emulated chip stopped working: its firmware (a personality callback) or one of the line's threads
    raised.  The original exception is the ``__cause__``."""


@runtime_checkable
class Personality(Protocol):
    """The firmware the emulated chip runs.  All callbacks run in the device thread."""

    def boot(self, ctx: DeviceContext) -> None:
        """Called at every reset (power-on, ``ctx.reset()``, reset faults, after power cuts).

        Keep ``ctx``; drop everything else that was in RAM.  The flash and ``ctx.state`` survive."""

    def on_bytes(self, data: bytes) -> None:
        """Bytes the UART received (already through the line: paced, possibly corrupted or overrun)."""

    def on_idle(self, now: float) -> None:
        """Called periodically (``now`` = ``ctx.now()``), for heartbeats and timeouts."""


PersonalityFactory = Callable[[], Personality]


@dataclass
class DeviceContext:
    """What the runtime hands a personality at boot.

    ``state`` is the JSON-persisted part of the device (anything that is not flash: security counter, boot
    counters, resume record, ...): mutate it in place; the runtime commits it (atomically) before the next
    flash operation and after every callback.
    """

    flash: Flash
    chip: ChipProfile
    state: dict[str, Any]
    time_scale: float
    trusted_keys: Sequence[Path]
    log: logging.Logger
    _device: Device = field(repr=False)
    enc_key: Path | None = None  # the image-decryption private key the bootloader embeds (None: the stored one)

    def write(self, data: bytes) -> None:
        """Send ``data`` to the host (paced by the line; returns at once)."""
        self._device.line.write(data)

    def set_baud(self, baud: int) -> None:
        """Switch the UART to ``baud`` once pending output has drained (the host must follow: until it does,
        what crosses the line is noise, as on silicon)."""
        self._device.line.set_baud(baud)

    def input_waiting(self) -> bool:
        """True if the UART holds received bytes the firmware has not read yet (a timeout is only a timeout
        once the receiver is empty)."""
        return self._device.line.rx_pending() > 0

    def discard_input(self) -> int:
        """Drop what the UART received and the firmware has not read yet (returns how many bytes)."""
        return self._device.line.discard_input()

    @property
    def baud(self) -> int:
        """The device's current UART rate."""
        return self._device.line.baud

    @property
    def paced(self) -> bool:
        """False on an unthrottled line (``baud=0``): bytes leave at once, whatever the rate says."""
        return bool(self._device.line.pacing)

    def now(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Busy-wait ``seconds * time_scale`` (CPU work on the chip: the UART is not serviced meanwhile)."""
        if seconds > 0 and self.time_scale > 0:
            self._device._busy_sleep(seconds * self.time_scale)

    def deaf(self) -> contextlib.AbstractContextManager[None]:
        """Mark a stretch of firmware that does not look at its UART (a loop of flash operations): bytes
        arriving meanwhile fill the RX ring, and what does not fit is lost.  Flash operations and ``sleep()``
        are deaf on their own; this covers the gaps between them."""
        return self._device.deaf()

    def busy_ended_at(self) -> float:
        """When (``now()`` time) the firmware last came back from a busy spell in which it did not service
        its UART (0 if never): a timeout must not count that spell as silence."""
        return self._device.busy_ended_at

    def reset(self) -> None:
        """Request a reboot: the runtime calls ``boot()`` again after the current callback returns."""
        self._device.request_reset("software reset", drain=True)

    def flush(self) -> None:
        """Commit ``state`` now (flash is committed by every operation anyway; the runtime also commits
        ``state`` before each flash operation and after each callback)."""
        self._device.flush()


class Device:
    """The emulated chip: a personality, its flash and the line, run by one thread.

    ``state_dir`` (optional) is the persisted state folder, written through (:mod:`emulator.state`); ``None``
    keeps everything in memory.  ``durable=False`` skips the ``fsync`` of each commit.
    """

    def __init__(
        self,
        personality_factory: PersonalityFactory,
        line: Line,
        *,
        chip: ChipProfile | str = "stm32f407vg",
        state_dir: Path | str | None = None,
        faults: FaultPlan | None = None,
        time_scale: float = 0.0,
        trusted_keys: Sequence[Path | str] = (),
        name: str = "device",
        durable: bool = True,
        enc_key: Path | str | None = None,
    ) -> None:
        self.chip: ChipProfile = CHIPS[chip] if isinstance(chip, str) else chip
        self.line = line
        self.faults = faults if faults is not None else FaultPlan()
        self.time_scale = time_scale
        self.trusted_keys = tuple(Path(k) for k in trusted_keys)
        self.enc_key = Path(enc_key) if enc_key is not None else None
        self.log = logging.getLogger(f"emulator.{name}")
        self._factory = personality_factory
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self._store = (
            DeviceState.open(self.state_dir, self.chip, durable=durable) if self.state_dir is not None else None
        )
        if self._store is not None:
            data = self._store.flash
            self.state: dict[str, Any] = self._store.data
        else:
            data = None
            self.state = {}
        self._started_at = time.monotonic()
        self._cut = PowerCutTrigger(self.faults, start=self._started_at)
        self.flash: Flash = Flash(
            self.chip,
            data,
            time_scale=time_scale,
            sleep=self._busy_sleep,
            on_op=self._before_flash_op,
            on_store=self._commit_flash if self._store is not None else None,
        )
        if self._store is not None:
            self._store.attach_flash(bytes(self.flash.data))  # write-through from here on
        self.personality: Personality | None = None
        self.context: DeviceContext | None = None
        self.boots = 0
        self.power_cuts = 0
        self._reset_reason: str | None = None
        self._drain_before_reset = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self.busy_ended_at = 0.0
        self.line.on_reset_fault = lambda: self.request_reset("reset fault")

    @contextlib.contextmanager
    def deaf(self) -> Iterator[None]:
        """The firmware does not service its UART for the duration (see :meth:`DeviceContext.deaf`)."""
        try:
            with self.line.busy():
                yield
        finally:
            self.busy_ended_at = time.monotonic()

    def _busy_sleep(self, seconds: float) -> None:
        """Flash operations and CPU work: the firmware does not service its UART meanwhile."""
        if seconds > 0:
            with self.line.busy():
                deadline = self._cut.deadline
                if deadline is not None and deadline < time.monotonic() + seconds:
                    # a timed power cut falls inside this operation: it lands when the operation ends
                    self._stop.wait(max(0.0, deadline - time.monotonic()))
                    if self._cut.due_by_time(time.monotonic()):
                        raise PowerCut("timed power cut during a flash operation")
                try:
                    self._stop.wait(seconds)  # a stop (SIGTERM) does not wait for a long erase to finish
                finally:
                    self.busy_ended_at = time.monotonic()

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the line and the device thread (boots the personality)."""
        self.line.start()
        self._thread = threading.Thread(target=self._run, name="emulator-device", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the device thread and the line, then persist the state folder."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(STOP_JOIN_TIMEOUT_S)
        self.line.stop()
        self.flush()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Device:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def crash(self) -> BaseException | None:
        """What stopped the chip, if anything: a firmware crash (:attr:`error`) or a line thread's
        (``line.error``)."""
        return self.error if self.error is not None else self.line.error

    def raise_if_crashed(self) -> None:
        """Raise :class:`EmulatorCrash` (from the original error) if the firmware or the line crashed."""
        crash = self.crash
        if crash is None:
            return
        where = "the emulated firmware" if crash is self.error else "the emulated line"
        raise EmulatorCrash(
            f"{where} crashed: {crash!r}", hint="a bug in the emulator: the log above has the traceback"
        ) from crash

    def request_reset(self, reason: str, *, drain: bool = False) -> None:
        """Reboot the personality after the current callback.  ``drain`` lets queued output leave first (the
        firmware's prints before a software reset are blocking); a reset fault or power cut loses it."""
        self._drain_before_reset = drain
        self._reset_reason = reason

    def flush(self) -> None:
        """Make the state folder current (flash is written through as it is erased and programmed; this
        writes ``state.json`` if it changed).  No-op without a state folder."""
        self._sync_state()

    # -- non-volatile memory ---------------------------------------------------------------------------------
    def _commit_flash(self, offset: int, size: int) -> None:
        """A flash operation changed ``offset .. offset + size``: commit it before the firmware goes on."""
        assert self._store is not None
        self._store.write_flash(offset, bytes(self.flash.data[offset : offset + size]))

    def _sync_state(self) -> None:
        """Commit ``state.json`` if the personality changed it (atomically: the old or the new, never half)."""
        if self._store is not None:
            with self._lock:
                self._store.sync_data(self.state)

    def _before_flash_op(self, op: int) -> None:
        """What the firmware decided before a flash operation is committed before it (a resume record, a
        counter), then the power-cut trigger has its chance."""
        self._sync_state()
        self._cut.on_flash_op(op)

    # -- the device thread ---------------------------------------------------------------------------------
    def _boot(self, reason: str) -> None:
        self.line.reset_device_side()
        self.boots += 1
        self.log.info("boot #%d (%s)", self.boots, reason)
        self.personality = self._factory()
        self.context = DeviceContext(
            flash=self.flash,
            chip=self.chip,
            state=self.state,
            time_scale=self.time_scale,
            trusted_keys=self.trusted_keys,
            log=self.log,
            enc_key=self.enc_key,
            _device=self,
        )
        try:
            self.personality.boot(self.context)
            self._sync_state()
        except PowerCut:
            self._power_cut()

    def _wait_output_drained(self) -> None:
        end = time.monotonic() + DRAIN_TIMEOUT_S
        while not self.line.tx_idle() and time.monotonic() < end and not self._stop.is_set():
            time.sleep(IDLE_TICK_S / 4)

    def _power_cut(self) -> None:
        self.power_cuts += 1
        self.log.warning("power cut at flash operation %d: rebooting from what the flash holds", self.flash.ops)
        self.flush()
        self._reset_reason = "power cut"

    def _run(self) -> None:
        try:
            self._boot("power-on")
            while not self._stop.is_set():
                if self._reset_reason is not None:
                    if self._drain_before_reset:
                        self._wait_output_drained()
                    reason, self._reset_reason = self._reset_reason, None
                    self._boot(reason)
                    continue
                personality = self.personality
                assert personality is not None
                try:
                    if self._cut.due_by_time(time.monotonic()):
                        raise PowerCut("timed power cut")
                    data = self.line.read(IDLE_TICK_S)
                    if data:
                        personality.on_bytes(data)
                    personality.on_idle(time.monotonic())
                    self._sync_state()
                except PowerCut:
                    self._power_cut()
        except Exception as err:  # a crash of the emulated firmware: the chip stops, the CLI reports it
            self.error = err
            self.log.exception("the emulated firmware crashed")
