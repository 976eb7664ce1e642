"""ERASE and READ on the OTA personality, through the host core (in memory, see chip_harness)."""

from __future__ import annotations

import hashlib

import pytest

from emulator.chips import CHIPS
from protocol.errors import DeviceError, LocalProtocolError
from protocol.image import parse_image
from protocol.sansio import Event, Progress
from protocol.update import HostConnection, InfoReceived, SlotDigest, SlotErased, SlotRead, SlotState, Status
from protocol.update.frames import FrameType, encode_frame
from protocol.update.messages import EraseRequest, ReadRequest

from .chip_harness import FIRMWARE, Chip, info, run, transfer

OLD = (FIRMWARE / "demo-1.0.0.signed.bin").read_bytes()
NEW = (FIRMWARE / "demo-1.1.0.signed.bin").read_bytes()
SLOT_SIZE = 384 * 1024


def _host(chip: Chip) -> HostConnection:
    host = HostConnection()
    host.request_info()
    run(chip, host, lambda e: isinstance(e, InfoReceived))
    return host


def _erase(chip: Chip, slot: int, *, force: bool = False, events: list[Event] | None = None) -> SlotErased:
    host = _host(chip)
    host.erase(slot, force=force)
    event = run(chip, host, lambda e: isinstance(e, SlotErased), events=events)
    assert isinstance(event, SlotErased)
    return event


def _read(chip: Chip, slot: int, offset: int, length: int) -> bytes:
    host = _host(chip)
    host.read(slot, offset, length)
    event = run(chip, host, lambda e: isinstance(e, SlotRead))
    assert isinstance(event, SlotRead)
    return event.data


def test_erase_the_secondary_slot_with_progress_and_the_resume_record_goes() -> None:
    chip = Chip(primary=OLD)
    transfer(chip, NEW)
    assert info(chip).slot(1).state is not SlotState.EMPTY
    events: list[Event] = []
    done = _erase(chip, 1, events=events)
    assert (done.slot, done.erased, done.resetting) == (1, SLOT_SIZE, False)
    start, size = chip.profile.layout.secondary
    assert chip.flash.is_erased(start, size)
    erase = [e for e in events if isinstance(e, Progress) and e.phase == "erase"]
    assert erase and erase[-1].done == erase[-1].total == SLOT_SIZE
    got = info(chip)
    assert got.slot(1).state is SlotState.EMPTY and got.partial is None
    assert chip.running == parse_image(OLD).digest  # the primary is untouched


def test_erasing_the_running_primary_is_refused_unless_forced_then_the_device_resets_to_recovery() -> None:
    chip = Chip(primary=OLD)
    start, size = chip.profile.layout.primary
    before = chip.flash.read(start, size)
    with pytest.raises(DeviceError) as err:
        _erase(chip, 0)
    assert err.value.status == Status.SLOT_IN_USE
    assert chip.flash.read(start, size) == before
    done = _erase(chip, 0, force=True)
    assert done.resetting and done.erased == size
    chip.settle()
    assert chip.boots == 2 and chip.running is None  # serial recovery
    assert chip.flash.is_erased(start, size)
    assert info(chip).slot(0).state is SlotState.EMPTY
    assert _erase(chip, 0).resetting is False  # nothing runs from it now: no force needed


@pytest.mark.parametrize("slot", [2, 3, 0xFF])
def test_erase_and_read_refuse_anything_but_a_slot(slot: int) -> None:
    chip = Chip(primary=OLD)
    before = bytes(chip.flash.data)
    with pytest.raises(DeviceError) as err:
        _erase(chip, slot)
    assert err.value.status == Status.BAD_SLOT
    with pytest.raises(DeviceError) as err:
        _read(chip, slot, 0, 16)
    assert err.value.status == Status.BAD_SLOT
    assert bytes(chip.flash.data) == before


def test_read_returns_the_slot_s_bytes_and_refuses_a_range_past_its_end() -> None:
    chip = Chip(primary=OLD)
    assert _read(chip, 0, 0, 4096) == (OLD + b"\xff" * 4096)[:4096]
    assert _read(chip, 0, 1000, 100) == OLD[1000:1100]
    assert _read(chip, 1, SLOT_SIZE - 16, 16) == b"\xff" * 16
    with pytest.raises(DeviceError) as err:
        _read(chip, 0, SLOT_SIZE - 15, 16)
    assert err.value.status == Status.BAD_ARGUMENT


def test_a_read_longer_than_the_device_s_block_is_refused_by_host_and_device() -> None:
    chip = Chip(primary=OLD)
    host = _host(chip)
    assert host.info is not None
    with pytest.raises(LocalProtocolError):
        host.read(0, 0, host.info.max_block + 1)
    # a host that ignores the limit gets BAD_ARGUMENT from the device core
    frame = encode_frame(FrameType.READ, 7, ReadRequest(slot=0, offset=0, length=host.info.max_block + 1).encode())
    reply = chip.step(frame)
    assert reply[7:10] == bytes((FrameType.READ,)) + int(Status.BAD_ARGUMENT).to_bytes(2, "little")


def test_read_digest_covers_the_whole_slot() -> None:
    chip = Chip(primary=OLD)
    host = _host(chip)
    host.read_digest(0, 0, SLOT_SIZE)
    event = run(chip, host, lambda e: isinstance(e, SlotDigest))
    assert isinstance(event, SlotDigest)
    start, size = chip.profile.layout.primary
    assert event.digest == hashlib.sha256(chip.flash.read(start, size)).digest()


def test_erase_and_read_during_a_data_phase_get_not_allowed() -> None:
    chip = Chip(primary=OLD)
    host = _host(chip)
    host.begin_transfer(NEW, slot=1)
    run(chip, host, lambda e: type(e).__name__ == "TransferStarted")
    for ftype, payload in (
        (FrameType.ERASE, EraseRequest(slot=1).encode()),
        (FrameType.READ, ReadRequest(slot=0, offset=0, length=16).encode()),
    ):
        reply = chip.step(encode_frame(ftype, 200, payload))
        at = reply.index(bytes((0xA5, FrameType.REPLY, 200)))
        assert reply[at + 7 : at + 10] == bytes((ftype,)) + int(Status.NOT_ALLOWED).to_bytes(2, "little")


def test_erase_takes_the_chip_s_erase_time_for_each_sector_that_is_not_blank() -> None:
    chip = Chip(primary=OLD, time_scale=1.0)
    transfer(chip, NEW)
    f407 = CHIPS["stm32f407vg"]
    start, size = f407.layout.secondary
    chip.flash.data[size - 1 + start - f407.flash_base] = 0x00  # the last sector holds something too
    dirty = [s for s in f407.sectors_in(start, size) if not chip.flash.is_erased(s.start, s.size)]
    assert len(dirty) == 2
    chip.busy_time = 0.0
    _erase(chip, 1)
    assert chip.busy_time == pytest.approx(sum(f407.erase_time(s) for s in dirty))
