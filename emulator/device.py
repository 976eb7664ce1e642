"""The emulator's runtime: one device thread that runs a personality on the line.

A *personality* is the firmware the emulated chip runs (the stm32ota bootloader, ST's AN4657 IAP menu).  It
is a plain object with three callbacks, all called from the device thread only:

* :meth:`Personality.boot` at every reset (power-on, ``reset()``, a watchdog, after a power cut),
* :meth:`Personality.on_bytes` with whatever the UART received since the last call,
* :meth:`Personality.on_idle` periodically (heartbeats, timeouts), at least every :data:`IDLE_TICK_S`.

A callback may block (a flash erase takes its datasheet time scaled by ``time_scale``); while it does, the
device is not reading its UART, so bytes the host sends meanwhile pile up in the bounded RX buffer and
overflow is lost, as on silicon.  The runtime owns the line and the flash; it catches
:class:`~emulator.flash.PowerCut`, persists what the flash holds (half-done operation included), and reboots
the personality.  ``stop()`` flushes the state folder; the CLI calls it on SIGINT/SIGTERM.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .faults import FaultPlan, PowerCutTrigger
from .line import Line

if TYPE_CHECKING:
    from .chips import ChipProfile
    from .flash import Flash

__all__ = [
    "IDLE_TICK_S",
    "Device",
    "DeviceContext",
    "Personality",
    "PersonalityFactory",
    "build_device",
    "default_trusted_keys",
]

log = logging.getLogger(__name__)

IDLE_TICK_S = 0.02  # longest the device thread waits for UART bytes before calling on_idle
RESET_SETTLE_S = 0.0  # time between a reset and boot() (the chip's reset pulse is far below any timeout)
STOP_JOIN_TIMEOUT_S = 10.0  # how long stop() waits for a personality callback to return
DRAIN_TIMEOUT_S = 5.0  # longest a software reset waits for the firmware's last prints to leave
AUTOSAVE_INTERVAL_S = 1.0  # the state folder lags the flash by at most this much


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
    counters, resume record, ...): mutate it in place; the runtime writes it with the flash on flush.
    """

    flash: Flash
    chip: ChipProfile
    state: dict[str, Any]
    time_scale: float
    trusted_keys: Sequence[Path]
    log: logging.Logger
    _device: Device = field(repr=False)

    def write(self, data: bytes) -> None:
        """Send ``data`` to the host (paced by the line; returns at once)."""
        self._device.line.write(data)

    def set_baud(self, baud: int) -> None:
        """Switch the UART to ``baud`` once pending output has drained (the host must follow: until it does,
        what crosses the line is noise, as on silicon)."""
        self._device.line.set_baud(baud)

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

    def reset(self) -> None:
        """Request a reboot: the runtime calls ``boot()`` again after the current callback returns."""
        self._device.request_reset("software reset", drain=True)

    def flush(self) -> None:
        """Persist flash and ``state`` now (a real chip's flash is persistent anyway; this only makes the
        state folder current, e.g. before a long operation)."""
        self._device.flush()


class Device:
    """The emulated chip: a personality, its flash and the line, run by one thread.

    ``state_dir`` (optional) is the persisted state folder; ``None`` keeps everything in memory.
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
    ) -> None:
        from .chips import CHIPS
        from .flash import Flash
        from .state import DeviceState

        self.chip: ChipProfile = CHIPS[chip] if isinstance(chip, str) else chip
        self.line = line
        self.faults = faults if faults is not None else FaultPlan()
        self.time_scale = time_scale
        self.trusted_keys = tuple(Path(k) for k in trusted_keys)
        self.log = logging.getLogger(f"emulator.{name}")
        self._factory = personality_factory
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self._store = DeviceState.open(self.state_dir, self.chip) if self.state_dir is not None else None
        if self._store is not None:
            data = self._store.flash
            self.state: dict[str, Any] = self._store.data
        else:
            data = None
            self.state = {}
        self._started_at = time.monotonic()
        self._cut = PowerCutTrigger(self.faults, start=self._started_at)
        self.flash: Flash = Flash(
            self.chip, data, time_scale=time_scale, sleep=self._busy_sleep, on_op=self._cut.on_flash_op
        )
        self.personality: Personality | None = None
        self.context: DeviceContext | None = None
        self.boots = 0
        self.power_cuts = 0
        self._reset_reason: str | None = None
        self._drain_before_reset = False
        self._flushed_ops = -1
        self._last_flush = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self.line.on_reset_fault = lambda: self.request_reset("reset fault")

    def _busy_sleep(self, seconds: float) -> None:
        """Flash operations and CPU work: the firmware does not service its UART meanwhile."""
        if seconds > 0:
            from .flash import PowerCut

            with self.line.busy():
                deadline = self._cut.deadline
                if deadline is not None and deadline < time.monotonic() + seconds:
                    # a timed power cut falls inside this operation: it lands when the operation ends
                    self._stop.wait(max(0.0, deadline - time.monotonic()))
                    if self._cut.due_by_time(time.monotonic()):
                        raise PowerCut("timed power cut during a flash operation")
                self._stop.wait(seconds)  # a stop (SIGTERM) does not wait for a long erase to finish

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

    def __enter__(self) -> Device:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def request_reset(self, reason: str, *, drain: bool = False) -> None:
        """Reboot the personality after the current callback.  ``drain`` lets queued output leave first (the
        firmware's prints before a software reset are blocking); a reset fault or power cut loses it."""
        self._drain_before_reset = drain
        self._reset_reason = reason

    def flush(self) -> None:
        """Write flash.bin and state.json (no-op without a state folder)."""
        with self._lock:
            self._flushed_ops = self.flash.ops
            self._last_flush = time.monotonic()
            if self._store is not None:
                self._store.save(bytes(self.flash.data), self.state)

    # -- the device thread ---------------------------------------------------------------------------------
    def _boot(self, reason: str) -> None:
        from .flash import PowerCut

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
            _device=self,
        )
        try:
            self.personality.boot(self.context)
        except PowerCut:
            self._power_cut()

    def _wait_output_drained(self) -> None:
        end = time.monotonic() + DRAIN_TIMEOUT_S
        while not self.line.tx_idle() and time.monotonic() < end and not self._stop.is_set():
            time.sleep(IDLE_TICK_S / 4)

    def _autosave(self, now: float) -> None:
        """Keep the state folder close to the flash (a killed emulator loses at most a second of writes)."""
        if self.flash.ops != self._flushed_ops and now - self._last_flush >= AUTOSAVE_INTERVAL_S:
            self.flush()

    def _power_cut(self) -> None:
        self.power_cuts += 1
        self.log.warning("power cut at flash operation %d: rebooting from what the flash holds", self.flash.ops)
        self.flush()
        self._reset_reason = "power cut"

    def _run(self) -> None:
        from .flash import PowerCut

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
                    now = time.monotonic()
                    personality.on_idle(now)
                    self._autosave(now)
                except PowerCut:
                    self._power_cut()
        except Exception as err:  # a crash of the emulated firmware: the chip stops, the CLI reports it
            self.error = err
            self.log.exception("the emulated firmware crashed")


# -- building a device from command-line style options ------------------------------------------------

_REPO_KEYS = Path(__file__).resolve().parent.parent / "assets" / "keys"
_PACKAGED_KEYS = Path(__file__).resolve().parent / "assets"


def default_trusted_keys() -> list[Path]:
    """The dev public key(s): ``assets/keys/*.pub.pem`` in a checkout, else any packaged with the emulator."""
    for folder in (_REPO_KEYS, _PACKAGED_KEYS):
        if folder.is_dir():
            keys = sorted(p for p in folder.glob("*.pem") if "pub" in p.name.lower())
            if keys:
                return keys
    return []


def _personality_factory(mode: str, iap_quirks: str | None, auto_confirm: bool = True) -> PersonalityFactory:
    from protocol.errors import Stm32OtaError

    if mode == "iap":
        from .iap import IapPersonality, parse_quirks

        quirks = parse_quirks(iap_quirks if iap_quirks is not None else "all")
        return lambda: IapPersonality(quirks=quirks)
    if mode == "ota":
        module = importlib.import_module("emulator.ota")
        ota_class = module.OtaPersonality

        def factory() -> Personality:
            personality: Personality = ota_class(auto_confirm=auto_confirm)
            return personality

        return factory
    raise Stm32OtaError(f"unknown emulator mode {mode!r}", hint="use --mode ota or --mode iap")


def build_device(
    *,
    mode: str = "ota",
    chip: str = "stm32f407vg",
    baud: int = 115200,
    pacing: bool = True,
    latency_s: float = 0.0,
    rx_buffer: int | None = None,
    state_dir: Path | str | None = None,
    trusted_keys: Sequence[Path | str] | None = None,
    faults: FaultPlan | None = None,
    time_scale: float = 1.0,
    socket_port: int | None = None,
    iap_quirks: str | None = None,
    auto_confirm: bool = True,
    personality_factory: PersonalityFactory | None = None,
) -> Device:
    """A ready-to-start :class:`Device` on a new pty (or ``socket://127.0.0.1:socket_port``).

    ``baud=0`` means an unthrottled line that ignores the host's rate.  ``state_dir=None`` makes a new temp
    folder (the device still persists there, so a power cut reboots from it).  ``trusted_keys=None`` trusts
    the dev key.  ``auto_confirm=False`` makes the OTA mode's application leave a test image unconfirmed
    (so the next reset reverts it)."""
    import tempfile

    from protocol.errors import PortError, Stm32OtaError

    from .chips import CHIPS
    from .line import DEFAULT_BAUD, DEFAULT_RX_BUFFER, Line, PtyEndpoint, SocketEndpoint

    if chip not in CHIPS:
        raise Stm32OtaError(f"unknown chip {chip!r}", hint=f"choose one of: {', '.join(sorted(CHIPS))}")
    if baud < 0:
        raise Stm32OtaError(f"invalid baud rate {baud}", hint="use a positive rate, or 0 for an unthrottled line")
    if time_scale < 0:
        raise Stm32OtaError(f"invalid time scale {time_scale}", hint="0 = instant flash, 1 = datasheet timing")
    factory = (
        personality_factory if personality_factory is not None else _personality_factory(mode, iap_quirks, auto_confirm)
    )
    if state_dir is None:
        state_dir = tempfile.mkdtemp(prefix="stm32ota-emu-")
    keys = default_trusted_keys() if trusted_keys is None else [Path(k) for k in trusted_keys]
    for key in keys:
        if not key.is_file():
            raise Stm32OtaError(f"trusted key not found: {key}", hint="pass --trust with a public key .pem")
    factory = (
        personality_factory if personality_factory is not None else _personality_factory(mode, iap_quirks, auto_confirm)
    )
    if rx_buffer is not None and rx_buffer <= 0:
        raise Stm32OtaError(f"invalid RX buffer size {rx_buffer}", hint="give a positive number of bytes")
    if latency_s < 0:
        raise Stm32OtaError(f"invalid latency {latency_s * 1000:g} ms", hint="use 0 or more milliseconds")
    try:
        endpoint = SocketEndpoint(socket_port) if socket_port is not None else PtyEndpoint()
    except (OSError, OverflowError) as err:
        where = f"socket 127.0.0.1:{socket_port}" if socket_port is not None else "a pty"
        raise PortError(
            f"cannot open {where}: {err}",
            hint="pick another --socket port (0 = any free one)" if socket_port is not None else None,
        ) from err
    try:
        line = Line(
            endpoint,
            baud=baud or DEFAULT_BAUD,
            pacing=pacing and baud > 0,
            check_baud=baud > 0,
            latency_s=latency_s,
            rx_buffer=rx_buffer or DEFAULT_RX_BUFFER,
            faults=faults,
        )
        return Device(
            factory,
            line,
            chip=chip,
            state_dir=state_dir,
            faults=faults,
            time_scale=time_scale,
            trusted_keys=keys,
            name=mode,
        )
    except BaseException:
        endpoint.close()
        raise
