"""Host and device cores joined back to back, with a small in-test bootloader and a simulated wire.

No I/O and no real clock: :class:`Wire` moves bytes between the cores, keeps a simulated clock (bytes take
``10 / baud`` seconds each), calls ``handle_timeout()`` on a side whose silence reached its ``timeout``, and
can drop or corrupt chunks (seeded) or garble bytes when the two ends disagree on the baud rate.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol.sansio import ChangeBaud, Event
from protocol.update import (
    AbortRequested,
    ActivateRequested,
    BaudChangeRequested,
    BlockReceived,
    ConfirmRequested,
    DeviceConnection,
    DeviceInfo,
    FlashLayout,
    HostConnection,
    InfoRequested,
    Option,
    PartialTransfer,
    RebootRequested,
    RollbackRequested,
    SectorRun,
    SlotInfo,
    SlotRegion,
    SlotState,
    Status,
    TransferEnded,
    TransferRequested,
    VerifyRequested,
)

SLOT_SIZE = 384 * 1024
BAUDS = (115200, 230400, 460800, 921600)


def make_info(dev: DeviceConnection, partial: PartialTransfer | None = None) -> DeviceInfo:
    return DeviceInfo(
        bootloader_version="1.0.0-test",
        chip_id=0x413,
        board_id=0,
        uid=bytes(range(12)),
        flash=FlashLayout(
            base=0x08000000,
            size=1024 * 1024,
            sectors=(
                SectorRun(count=4, size=16384),
                SectorRun(count=1, size=65536),
                SectorRun(count=7, size=131072),
            ),
            slots=(
                SlotRegion(index=0, address=0x08020000, size=SLOT_SIZE),
                SlotRegion(index=1, address=0x08080000, size=SLOT_SIZE),
            ),
        ),
        slots=(
            SlotInfo(index=0, state=SlotState.CONFIRMED, version=(1, 0, 0, 0), image_size=1000, digest=bytes(32)),
            SlotInfo(index=1, state=SlotState.EMPTY),
        ),
        max_block=dev.max_block,
        max_window=dev.max_window,
        ram_buffer=dev.max_block * dev.max_window,
        options=dev.options,
        deflate_wbits=dev.deflate_wbits,
        baud_rates=dev.baud_rates,
        key_hashes=(hashlib.sha256(b"key").digest(),),
        partial=partial,
    )


@dataclass
class Owner:
    """A tiny bootloader: a bytearray flash for slot 1, resume memory, and scripted failures."""

    dev: DeviceConnection
    flash: bytearray = field(default_factory=lambda: bytearray(b"\xff" * SLOT_SIZE))
    reject: dict[type[Event], int] = field(default_factory=dict)  # event type -> status to answer with
    erase_reports: int = 0  # PROGRESS frames sent before accepting BEGIN
    hold_credit: int = 0  # keep this many blocks unwritten (delayed block_written)
    fail_write_at: int | None = None  # reject(status) the data phase when this offset is written
    fail_write_status: int = Status.PROGRAM_FAILED
    log_every_block: bool = False
    partial: PartialTransfer | None = None
    events: list[Event] = field(default_factory=list)
    rebooted: int = 0
    _unwritten: list[tuple[int, bytes]] = field(default_factory=list)

    def service(self) -> None:
        dev = self.dev
        while (event := dev.next_event()) is not None:
            self.events.append(event)
            status = self.reject.get(type(event))
            if status is not None and not isinstance(event, (BlockReceived, AbortRequested)):
                dev.reject(status)
                continue
            if isinstance(event, InfoRequested):
                dev.reply_info(make_info(dev, self.partial))
            elif isinstance(event, TransferRequested):
                for i in range(self.erase_reports):
                    dev.report_progress("erase", i + 1, self.erase_reports)
                offset = 0
                p = self.partial
                if event.resume and p is not None and p.digest == event.digest and p.size == event.size:
                    offset = p.written
                else:
                    self.flash[:] = b"\xff" * SLOT_SIZE
                self.partial = PartialTransfer(slot=event.slot, size=event.size, written=offset, digest=event.digest)
                dev.accept_transfer(offset)
            elif isinstance(event, BlockReceived):
                if self.log_every_block:
                    dev.log(2, f"block at {event.offset}", event.offset)
                self._unwritten.append((event.offset, event.data))
                self._write(keep=self.hold_credit)
            elif isinstance(event, TransferEnded):
                self._write(keep=0)
                dev.complete()
            elif isinstance(event, (VerifyRequested, ActivateRequested, ConfirmRequested, RollbackRequested)):
                dev.complete()
            elif isinstance(event, RebootRequested):
                self.rebooted += 1
                dev.complete()
            elif isinstance(event, BaudChangeRequested):
                dev.complete()

    def _write(self, keep: int) -> None:
        while len(self._unwritten) > keep:
            offset, data = self._unwritten.pop(0)
            end = offset + len(data)
            if self.fail_write_at is not None and offset <= self.fail_write_at < end:
                self._unwritten.clear()
                self.dev.fail_transfer(self.fail_write_status)
                return
            self.flash[offset:end] = data
            assert self.partial is not None
            self.partial = PartialTransfer(
                slot=self.partial.slot, size=self.partial.size, written=end, digest=self.partial.digest
            )
            self.dev.block_written(end)

    def flush_held(self) -> None:
        """Write the held-back blocks (as a device does once its erase finished)."""
        self._write(keep=0)


def garble(data: bytes, rng: random.Random) -> bytes:
    """What a UART at the wrong rate makes of ``data``: roughly as many bytes, none of them meaningful."""
    return bytes(rng.randrange(256) for _ in range(max(1, len(data) // 2)))


@dataclass
class Wire:
    """Moves bytes between a host core and a device core (with an owner), on a simulated clock."""

    host: HostConnection
    dev: DeviceConnection
    owner: Owner
    seed: int = 0
    drop: float = 0.0  # probability that a chunk loses a random slice
    corrupt: float = 0.0  # probability that a chunk gets a bit flipped
    latency_s: float = 0.002
    chunk: int = 0  # split each write into pieces of this size (0: whole)
    dead_rate: int | None = None  # a baud rate at which nothing gets through (for the fall-back test)
    host_events: list[Event] = field(default_factory=list)
    now: float = 0.0
    host_baud: int = 115200
    dev_baud: int = 115200
    steps: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._host_last = 0.0
        self._dev_last = 0.0

    def _mangle(self, data: bytes) -> bytes:
        if self.host_baud != self.dev_baud or self.dead_rate in (self.host_baud, self.dev_baud):
            return garble(data, self.rng)
        if self.drop and self.rng.random() < self.drop:
            start = self.rng.randrange(len(data))
            data = data[:start] + data[start + self.rng.randrange(1, 64) :]
        if self.corrupt and data and self.rng.random() < self.corrupt:
            pos = self.rng.randrange(len(data))
            data = data[:pos] + bytes((data[pos] ^ (1 << self.rng.randrange(8)),)) + data[pos + 1 :]
        return data

    def _deliver(self, data: bytes, receive: Callable[[bytes], None]) -> None:
        # faults strike each piece of ``chunk`` bytes independently (a write of a whole window is many pieces)
        size = self.chunk or len(data)
        for i in range(0, len(data), size):
            piece = self._mangle(data[i : i + size])
            if piece:
                receive(piece)

    def _host_receive(self, data: bytes) -> None:
        # a driver hands the core one read at a time and drains its events in between; once the host has
        # failed (its error waits in next_event), it reads nothing more
        if not self.host.finished:
            self.host.receive_data(data)

    def step(self) -> tuple[bool, Event | None]:
        """One round: host output to device, owner, device output to host, host events."""
        moved = False
        out = self.host.data_to_send()
        if out:
            moved = True
            self.now += len(out) * 10 / self.host_baud
            self._host_last = self.now
            self._deliver(out, self.dev.receive_data)
            self._dev_last = self.now + self.latency_s
        self.owner.service()
        self._device_baud_events()
        out = self.dev.data_to_send()
        if out:
            moved = True
            self.now += len(out) * 10 / self.dev_baud
            self._dev_last = self.now
            self._deliver(out, self._host_receive)
            self._host_last = self.now + self.latency_s
        return moved, None

    def _device_baud_events(self) -> None:
        # ChangeBaud from the device core is for the driver: switch after draining output
        for event in [e for e in self.owner.events if isinstance(e, ChangeBaud)]:
            self.owner.events.remove(event)
            pending = self.dev.data_to_send()
            if pending:
                self.now += len(pending) * 10 / self.dev_baud
                self._deliver(pending, self.host.receive_data)
                self._host_last = self.now + self.latency_s
            self.dev_baud = event.baud
            self._dev_last = self.now

    def run(self, until: Callable[[Event], bool], max_steps: int = 200000) -> Event:
        """Run until a host event satisfies ``until`` (returned); other host events go to host_events."""
        for _ in range(max_steps):
            self.steps += 1
            moved, _ = self.step()
            while (event := self.host.next_event()) is not None:
                if isinstance(event, ChangeBaud):
                    pending = self.host.data_to_send()
                    if pending:
                        self.now += len(pending) * 10 / self.host_baud
                        self._deliver(pending, self.dev.receive_data)
                        self._dev_last = self.now + self.latency_s
                        self.owner.service()
                        self._device_baud_events()
                    self.host_baud = event.baud
                    self._host_last = self.now
                if until(event):
                    return event
                self.host_events.append(event)
                moved = True
            if moved:
                continue
            self._advance_clock()
        raise AssertionError(f"no matching event after {max_steps} steps")

    def _advance_clock(self) -> None:
        deadlines = []
        if self.host.timeout is not None:
            deadlines.append((self._host_last + self.host.timeout, "host"))
        if self.dev.timeout is not None:
            deadlines.append((self._dev_last + self.dev.timeout, "dev"))
        if not deadlines:
            raise AssertionError("both sides wait forever: the conversation is stuck")
        when, who = min(deadlines)
        self.now = max(self.now, when)
        if who == "host":
            self._host_last = self.now
            self.host.handle_timeout()
        else:
            self._dev_last = self.now
            self.dev.handle_timeout()
            self._device_baud_events_from_core()

    def _device_baud_events_from_core(self) -> None:
        self.owner.service()
        self._device_baud_events()


def pair(*, seed: int = 0, dev_kwargs: dict[str, object] | None = None, **wire_kwargs: object) -> Wire:
    dev = DeviceConnection(baud_rates=BAUDS, **(dev_kwargs or {}))  # type: ignore[arg-type]
    host = HostConnection(first_seq=seed % 256)  # deterministic (the default is random)
    return Wire(host=host, dev=dev, owner=Owner(dev=dev), seed=seed, **wire_kwargs)  # type: ignore[arg-type]


def image_bytes(size: int, seed: int = 1, *, compressible: bool = False) -> bytes:
    rng = random.Random(seed)
    if compressible:
        words = [b"reset_handler ", b"\x00\x00\x00\x00", b"ldr r0, [pc, #4] ", b"\xff\xff", b"SystemInit "]
        out = bytearray()
        while len(out) < size:
            out += rng.choice(words) if rng.random() < 0.8 else rng.randbytes(6)
        return bytes(out[:size])
    return rng.randbytes(size)


__all__ = ["BAUDS", "Option", "Owner", "Wire", "image_bytes", "make_info", "pair"]
