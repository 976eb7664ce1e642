"""The asyncio driver on the event loop: many devices on one loop, no thread per read, socket:// on the loop,
the shared default executor never used."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from emulator.demo import demo_firmware, factory_program
from emulator.testing import running_emulator
from protocol.drivers.aio import AsyncSerialLink
from protocol.flow import FlashOptions, FlashResult, flash_image
from protocol.progress import ProgressSnapshot
from protocol.sansio import Event
from protocol.update.messages import SlotState

OLD = demo_firmware("demo-1.0.0.signed.bin").read_bytes()
NEW = demo_firmware("demo-1.1.0.signed.bin").read_bytes()
DEVICES = 16


class _CountingExecutor(ThreadPoolExecutor):
    """A default executor that counts what is handed to it: the driver must hand it nothing."""

    submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        type(self).submitted += 1
        return super().submit(fn, *args, **kwargs)


def _link_threads() -> int:
    """Link threads still alive, once those told to end have ended (a stopped thread finishes its last job
    and exits on its own schedule: wait for that, do not race it)."""
    threads = [t for t in threading.enumerate() if t.name.startswith("stm32ota link")]
    for thread in threads:
        thread.join(timeout=0.5)
    return sum(1 for t in threads if t.is_alive())


def test_sixteen_devices_flash_at_once_on_one_loop(tmp_path: Path) -> None:
    async def flash_all(ports: list[str]) -> list[FlashResult]:
        asyncio.get_running_loop().set_default_executor(_CountingExecutor())

        async def one(port: str) -> FlashResult:
            async with await AsyncSerialLink.open(port, 115200) as link:
                assert link.on_loop
                flow = flash_image(NEW, FlashOptions(), on_event=lambda e: None, clock=time.monotonic)
                return await link.execute(flow)

        tasks = [asyncio.create_task(one(port)) for port in ports]
        await asyncio.sleep(0)
        results = await asyncio.gather(*tasks)
        assert _link_threads() == 0  # each open's thread ended once the port had a descriptor
        return results

    with contextlib.ExitStack() as stack:
        emulators = []
        for n in range(DEVICES):
            state = tmp_path / f"dev{n}"
            factory_program(state, OLD)
            emulators.append(stack.enter_context(running_emulator("ota", baud=0, time_scale=0, state_dir=state)))
        results = asyncio.run(flash_all([emu.port for emu in emulators]))
    assert _CountingExecutor.submitted == 0
    assert len(results) == DEVICES
    for result in results:
        assert result.info_after is not None
        primary = result.info_after.slot(0)
        assert primary.version[:3] == (1, 1, 0) and primary.state is SlotState.CONFIRMED


def test_socket_url_is_served_on_the_loop(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    factory_program(tmp_path, OLD)

    async def go(url: str) -> FlashResult:
        async with await AsyncSerialLink.open(url, 115200) as link:
            assert link.on_loop
            return await link.execute(flash_image(NEW, FlashOptions(), on_event=lambda e: None, clock=time.monotonic))

    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path, socket_port=free) as emu:
        result = asyncio.run(go(emu.port))
    assert result.info_after is not None and result.info_after.slot(0).version[:3] == (1, 1, 0)


def test_a_baud_switch_drains_on_the_loop(tmp_path: Path) -> None:
    factory_program(tmp_path, OLD)

    steps: list[str] = []

    def on_event(event: Event) -> None:
        if isinstance(event, ProgressSnapshot) and event.message:
            steps.append(event.message)

    async def go(port: str) -> tuple[FlashResult, int]:
        async with await AsyncSerialLink.open(port, 115200) as link:
            flow = flash_image(NEW, FlashOptions(fast_baud=921600), on_event=on_event, clock=time.monotonic)
            result = await link.execute(flow)
            return result, link.baud

    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu:
        result, baud = asyncio.run(go(emu.port))
    assert "line rate now 921600 baud" in steps
    assert baud == 115200  # back at the start rate after the reboot
    assert result.info_after is not None and result.info_after.slot(0).version[:3] == (1, 1, 0)


def test_a_threaded_transport_uses_its_own_thread_not_the_default_executor() -> None:
    from .test_link import EchoCore, Echoed

    async def go() -> tuple[Event | None, int]:
        asyncio.get_running_loop().set_default_executor(_CountingExecutor())
        before = _CountingExecutor.submitted
        async with await AsyncSerialLink.open("loop://", 115200) as link:
            assert not link.on_loop
            await link.discard_input()
            result = await link.run(EchoCore(b"thread " * 50, baud=230400), until=lambda e: isinstance(e, Echoed))
            assert link.baud == 230400
        return result, _CountingExecutor.submitted - before

    result, submitted = asyncio.run(go())
    assert result == Echoed(data=b"thread " * 50)
    assert submitted == 0
    assert _link_threads() == 0  # the link's thread ended with close()


def test_opening_a_missing_port_fails_with_the_same_typed_error() -> None:
    import pytest

    from protocol.errors import PortError

    with pytest.raises(PortError) as err:
        asyncio.run(AsyncSerialLink.open("/dev/does-not-exist-stm32ota"))
    assert "no such port" in str(err.value) and err.value.hint
    assert _link_threads() == 0
