"""The issue's Done-when against gooseBit 0.2.12, a real DDI server we did not write: poll, configData,
deploymentBase, the bundle downloaded in ranges, relay to an emulated device, feedback closed/success, and
gooseBit's own API shows the device on the new version.  Runs in CI (the fixture fails there without gooseBit)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from emulator.testing import EmulatorHandle
from tests.peers.goosebit import GooseBit
from tests.peers.swu import build_swu

from .conftest import NEW, cid_for, gateway_for, primary_version, wait_for

BOARD = {"hw_boardname": "stm32-gw", "hw_revision": "1.0"}


async def _shown(server: GooseBit, cid: str, key: str, value: object) -> bool:
    """gooseBit's admin API, off the event loop (its client is urllib, and the gateway runs on this loop)."""
    device = await asyncio.to_thread(server.device, cid)
    return bool(device.get(key) == value)


async def test_an_emulated_device_is_updated_through_goosebit(
    goosebit: GooseBit, devices: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emu = devices(1)
    cid = cid_for(1)
    token = goosebit.add_device(cid)
    # a gateway token as well: the gateway asks gooseBit for our server's event stream, finds none, and polls
    gateway = gateway_for(
        goosebit.base_url,
        [emu.port],
        tmp_path / "gw",
        target_tokens={cid: token},
        gateway_token="x",
        max_poll_interval=2.0,  # gooseBit's sleep is 5 minutes in this setup: poll every 2 s instead
        **BOARD,
    )
    async with gateway:
        # the registration gate: configData first, then gooseBit knows the device's hardware and version
        await wait_for(lambda: _shown(goosebit, cid, "sw_version", "1.0.0"), "configData at gooseBit")
        bundle = build_swu("1.1.0", {"demo-1.1.0.signed.bin": NEW})
        software = await asyncio.to_thread(goosebit.upload_software, bundle, "demo-1.1.0.swu")
        await asyncio.to_thread(goosebit.assign, cid, software)
        # no wake(): the next poll finds the deployment
        await wait_for(lambda: _shown(goosebit, cid, "last_state", "Finished"), "gooseBit shows Finished", 120)
        assert gateway.events_state == "unavailable"
        shown = await asyncio.to_thread(goosebit.device, cid)
        assert shown["sw_version"] == "1.1.0"
        assert shown["progress"] == 100
        assert gateway.cache.downloaded_bytes == len(bundle)
        # gooseBit shows Finished as soon as it has the closed feedback; the gateway counts it delivered once the
        # answer is back and the journal has it, a moment later
        await wait_for(
            lambda: any(e.kind == "feedback" and e.body["status"]["execution"] == "closed" for e in gateway.delivered),
            "the closed feedback counted as delivered",
        )
        executions = [e.body["status"]["execution"] for e in gateway.delivered if e.kind == "feedback"]
        assert executions[0] == "proceeding" and executions[-1] == "closed"
        assert executions.count("closed") == 1
        assert gateway.delivered[-1].body["status"]["result"]["finished"] == "success"
    assert primary_version(emu) == ("1.1.0+0", "confirmed")
