"""Helpers for the gateway tests: emulated STM32F407s running demo 1.0.0 (each with its own UID), and a
gateway on the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from emulator.demo import demo_firmware, factory_program
from emulator.testing import EmulatorHandle, running_emulator
from relay.gateway import Gateway, PortConfig, load_config
from tests.peers.fixtures import goosebit  # noqa: F401  (re-exported fixture)

ROOT = Path(__file__).resolve().parents[3]
DEV_PUB = ROOT / "assets" / "keys" / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pub.pem"
OLD = demo_firmware("demo-1.0.0.signed.bin").read_bytes()
NEW = demo_firmware("demo-1.1.0.signed.bin").read_bytes()
WAIT_S = 60.0


def uid_for(index: int) -> str:
    return hashlib.sha256(f"gateway-test-device-{index}".encode()).hexdigest()[:24]


def cid_for(index: int) -> str:
    return f"stm32-{uid_for(index)}"


@contextlib.contextmanager
def emulated_device(state_dir: Path, index: int, **kwargs: Any) -> Iterator[EmulatorHandle]:
    """A fresh emulated STM32F407 (unthrottled line, instant flash) running demo 1.0.0 confirmed."""
    if not (state_dir / "state.json").exists():
        if kwargs.get("chip", "stm32f407vg") == "stm32f407vg":
            factory_program(state_dir, OLD)
        else:
            state_dir.mkdir(parents=True, exist_ok=True)  # another chip: blank, in its bootloader
        (state_dir / "state.json").write_text(json.dumps({"uid": uid_for(index)}))
    settings: dict[str, Any] = {"mode": "ota", "baud": 0, "time_scale": 0, **kwargs}
    with running_emulator(state_dir=state_dir, **settings) as emu:
        yield emu


@pytest.fixture
def devices(tmp_path: Path) -> Iterator[Callable[..., EmulatorHandle]]:
    with contextlib.ExitStack() as stack:

        def start(index: int, **kwargs: Any) -> EmulatorHandle:
            return stack.enter_context(emulated_device(tmp_path / f"device-{index}", index, **kwargs))

        yield start


def gateway_for(server: str, ports: Sequence[str | PortConfig], state: Path, **overrides: Any) -> Gateway:
    settings: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "trusted_keys": [DEV_PUB],
        "request_timeout": 10.0,
        "progress_interval": 0.2,
    }
    config = load_config(None, server=server, ports=ports, state_dir=state, **{**settings, **overrides})
    return Gateway(config, time_factor=0.05)


async def wait_for(predicate: Callable[[], Awaitable[bool] | bool], what: str, timeout: float = WAIT_S) -> None:
    """Poll ``predicate`` until it holds (a deadline for a hung test, never a speed assertion)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def primary_version(emu: EmulatorHandle, baud: int = 115200) -> tuple[str, str]:
    """(version, state) of the primary slot, as the device reports it over its port (gateway stopped)."""
    import time

    from protocol.drivers.link import SerialLink
    from protocol.flow import read_info
    from protocol.update.host import HostConnection

    with SerialLink(emu.port, baud) as link:
        info = link.execute(read_info(HostConnection(baud=baud), time.monotonic))
    slot = info.slot(0)
    return slot.version_text, slot.state.name.lower()
