"""A cancel the device hears: cancelling a flash at each point (erase, transfer, verify, activate, reboot
wait) on both drivers, by a cancel token, by Ctrl-C and by ``task.cancel()``, runs the flow's cleanup (ABORT,
and back to the start rate), and the next ``flash`` in the same process starts or resumes at once with no
``discard_input`` -- against the emulator over a real pty."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from emulator.demo import demo_firmware, factory_program
from emulator.ota import OtaPersonality
from emulator.testing import EmulatorHandle, running_emulator
from protocol.drivers.aio import AsyncSerialLink
from protocol.drivers.link import CancelToken, SerialLink
from protocol.errors import Cancelled, Interrupted
from protocol.flow import FlashOptions, FlashResult, flash_image
from protocol.progress import Phase, PhaseStatus, ProgressSnapshot
from protocol.sansio import Event, Progress
from protocol.update.messages import SlotState

OLD = demo_firmware("demo-1.0.0.signed.bin").read_bytes()
NEW = demo_firmware("demo-1.1.0.signed.bin").read_bytes()
BIG = demo_firmware("demo-big-1.2.0.signed.bin").read_bytes()


def _at_erase(event: Event) -> bool:
    return isinstance(event, Progress) and event.phase == "erase"


def _mid_transfer(event: Event) -> bool:
    return isinstance(event, Progress) and event.phase == "transfer" and event.done > event.total // 3


def _after(phase: Phase) -> Callable[[Event], bool]:
    return lambda event: (
        isinstance(event, ProgressSnapshot) and event.phase is phase and event.status is PhaseStatus.ENDED
    )


def _rebooting(event: Event) -> bool:
    """The device answered REBOOT and restarts: the flow waits for it."""
    return (
        isinstance(event, ProgressSnapshot)
        and event.phase is Phase.REBOOT
        and event.status is PhaseStatus.RUNNING
        and bool(event.message)
    )


# cancel point -> (when to cancel, the image the cancelled flash sends)
POINTS: dict[str, tuple[Callable[[Event], bool], bytes]] = {
    "erase": (_at_erase, NEW),
    "transfer": (_mid_transfer, BIG),
    "verify": (_after(Phase.TRANSFER), NEW),  # VERIFY is on the wire when the cancel lands
    "activate": (_after(Phase.VERIFY), NEW),
    "reboot-wait": (_rebooting, NEW),
}


class _CtrlCLink(SerialLink):
    """A Ctrl-C arriving while the driver waits on the port (where the user's Ctrl-C lands)."""

    armed = False

    def read(self, timeout: float) -> bytes:
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt
        return super().read(timeout)


def _cancel_blocking(emu: EmulatorHandle, image: bytes, when: Callable[[Event], bool], how: str) -> None:
    token = CancelToken()
    with _CtrlCLink(emu.port, 115200) as link:

        def on_event(event: Event) -> None:
            if when(event):
                if how == "token":
                    token.cancel()
                else:
                    link.armed = True

        expected = Interrupted if how == "ctrl-c" else Cancelled
        with pytest.raises(expected):
            link.execute(
                flash_image(image, FlashOptions(compress=False), on_event=on_event, clock=time.monotonic),
                cancel=token if how == "token" else None,
            )


def _cancel_async(emu: EmulatorHandle, image: bytes, when: Callable[[Event], bool], how: str) -> None:
    async def go() -> None:
        token = CancelToken()
        link = await AsyncSerialLink.open(emu.port, 115200)
        assert link.on_loop  # a pty: served by readiness callbacks, no thread
        async with link:
            task: asyncio.Task[FlashResult] | None = None

            def on_event(event: Event) -> None:
                if when(event):
                    if how == "token":
                        token.cancel()
                    else:
                        assert task is not None
                        task.cancel()

            flow = flash_image(image, FlashOptions(compress=False), on_event=on_event, clock=time.monotonic)
            task = asyncio.create_task(link.execute(flow, cancel=token if how == "token" else None))
            if how == "token":
                with pytest.raises(Cancelled):
                    await task
            else:
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert task.cancelled()

    asyncio.run(go())


CASES = [
    (point, driver, how)
    for point in POINTS
    for driver, how in (("blocking", "token"), ("blocking", "ctrl-c"), ("asyncio", "token"), ("asyncio", "task-cancel"))
    if how != "ctrl-c" or point in ("transfer", "reboot-wait")  # Ctrl-C is a token cancel at another place
]


@pytest.mark.parametrize("point, driver, how", CASES)
def test_a_cancel_is_heard_and_the_next_flash_goes_straight_on(
    tmp_path: Path, point: str, driver: str, how: str
) -> None:
    when, image = POINTS[point]
    factory_program(tmp_path, OLD)
    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu:
        if driver == "blocking":
            _cancel_blocking(emu, image, when, how)
        else:
            _cancel_async(emu, image, when, how)
        # the device heard it: no transfer or command is left running on its side
        personality = emu.device.personality
        assert isinstance(personality, OtaPersonality)
        assert not personality._conn.in_transfer
        # the next flash in the same process: no discard_input, no stale replies, at the start rate
        again = BIG if point == "reboot-wait" else image  # after the reboot the device runs NEW already
        with SerialLink(emu.port, 115200) as link:
            result = link.execute(flash_image(again, FlashOptions(), on_event=lambda e: None, clock=time.monotonic))
    if point == "transfer":
        assert result.resumed_from > 0  # ABORT kept the device's resume record
    assert result.info_after is not None
    primary = result.info_after.slot(0)
    assert primary.version[:3] == ((1, 2, 0) if again is BIG else (1, 1, 0))
    assert primary.state is SlotState.CONFIRMED


def test_a_cancel_after_a_baud_switch_brings_the_device_back_to_the_start_rate(tmp_path: Path) -> None:
    factory_program(tmp_path, OLD)
    token = CancelToken()

    def on_event(event: Event) -> None:
        if _mid_transfer(event):
            token.cancel()

    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu:
        with SerialLink(emu.port, 115200) as link:
            with pytest.raises(Cancelled):
                link.execute(
                    flash_image(BIG, FlashOptions(fast_baud=921600), on_event=on_event, clock=time.monotonic),
                    cancel=token,
                )
            assert link.baud == 115200
        with SerialLink(emu.port, 115200) as link:
            result = link.execute(flash_image(BIG, FlashOptions(), on_event=lambda e: None, clock=time.monotonic))
    assert result.resumed_from > 0
    assert result.info_after is not None and result.info_after.slot(0).version[:3] == (1, 2, 0)


def test_a_second_cancel_stops_the_cleanup_at_once() -> None:
    """The device never answers (a loop:// port only echoes our own frames): the first cancel starts the
    cleanup, which waits for the ABORT's answer; a second cancel ends that wait at once."""
    token = CancelToken()

    class Silent(SerialLink):
        reads = 0
        after_second = 0

        def read(self, timeout: float) -> bytes:
            self.reads += 1
            if self.reads in (3, 6):  # first while INFO waits for its answer, then while the ABORT does
                token.cancel()
            if token.count >= 2:
                self.after_second += 1
            return super().read(timeout)

    with Silent("loop://", 115200) as link:
        flow = flash_image(NEW, FlashOptions(protocol="ota"), on_event=lambda e: None, clock=time.monotonic)
        with pytest.raises(Cancelled):
            link.execute(flow, cancel=token)
    assert token.count == 2
    assert link.after_second == 1  # the read the second cancel came in, and not one more


def test_a_cancelled_async_read_on_a_threaded_transport_ends_before_close() -> None:
    """loop:// has no descriptor: its link gets its own thread.  A task cancelled while that thread reads
    leaves no read running when close() closes the port (close runs on the same thread, after it)."""

    async def go() -> tuple[bool, bool]:
        link = await AsyncSerialLink.open("loop://", 115200)
        assert not link.on_loop
        flow = flash_image(NEW, FlashOptions(protocol="ota"), on_event=lambda e: None, clock=time.monotonic)
        task = asyncio.create_task(link.execute(flow))
        await asyncio.sleep(0.05)  # the INFO is out, its answer awaited on the link's thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await link.close()
        return link.link.port.is_open, task.cancelled()

    still_open, cancelled = asyncio.run(go())
    assert not still_open and cancelled


def test_a_ctrl_c_inside_the_flow_s_own_code_is_heard_too(tmp_path: Path) -> None:
    """Ctrl-C lands where Python runs: mostly in the driver's wait, but it may hit the flow's code (here: its
    event callback, mid-transfer).  The flow tells the device before the interrupt goes on."""
    factory_program(tmp_path, OLD)

    def on_event(event: Event) -> None:
        if _mid_transfer(event):
            raise KeyboardInterrupt

    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu:
        with SerialLink(emu.port, 115200) as link, pytest.raises(KeyboardInterrupt):
            link.execute(flash_image(BIG, FlashOptions(compress=False), on_event=on_event, clock=time.monotonic))
        personality = emu.device.personality
        assert isinstance(personality, OtaPersonality)
        assert not personality._conn.in_transfer
        with SerialLink(emu.port, 115200) as link:
            result = link.execute(
                flash_image(BIG, FlashOptions(compress=False), on_event=lambda e: None, clock=time.monotonic)
            )
    assert result.resumed_from > 0
