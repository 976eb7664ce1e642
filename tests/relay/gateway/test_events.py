"""Our server's event stream (``/{tenant}/gateway/v1/events``): a deployment starts without waiting for the
poll interval (the server's sleep here is an hour, so only the stream can start it), and a cancel reaches a
running relay at once.  Against a server without a stream (gooseBit, in test_goosebit.py) the gateway polls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from emulator.testing import EmulatorHandle

from .conftest import DEV_PUB, NEW, cid_for, gateway_for, primary_version, wait_for
from .ourserver import running_server

HOUR = 3600


async def test_a_deployment_starts_at_once_through_the_event_stream_not_at_the_next_poll(
    devices: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emu, cid = devices(1), cid_for(1)
    async with running_server(tmp_path / "server", DEV_PUB, poll_interval=HOUR) as server:
        await server.api("POST", "/api/v1/devices", {"controller_id": cid, "chip": "0x413"})
        token = (await server.api("POST", "/api/v1/gateway-tokens", {"gateway": "gw", "devices": [cid]}))["token"]
        async with gateway_for(server.url, [emu.port], tmp_path / "gw", gateway_token=token) as gateway:
            await wait_for(lambda: cid in gateway.by_controller, "the device")
            await wait_for(lambda: gateway.events_state == "connected", "the event stream")
            polls_before = gateway.client.requests
            await server.api("POST", "/api/v1/releases?filename=demo-1.1.0.signed.bin", data=NEW)
            await server.api("POST", "/api/v1/actions", {"controller_id": cid, "release": "1.1.0", "forced": True})
            # no wake(): the next poll is an hour away; only the stream can start this
            await wait_for(lambda: _finished(gateway), "the deployment, started by the stream")
            assert gateway.events_received >= 2  # hello, then poll for this device
            assert gateway.client.requests > polls_before
            status = gateway.status()
        assert status["events"] == "connected"
    assert primary_version(emu) == ("1.1.0+0", "confirmed")


async def test_a_gateway_without_a_gateway_token_does_not_ask_for_the_stream(tmp_path: Path) -> None:
    gateway = gateway_for("http://127.0.0.1:9", [str(tmp_path / "ttyX")], tmp_path / "gw")
    async with gateway:
        assert gateway.events_state == "off"


async def _finished(gateway: object) -> bool:
    jobs = await gateway.journal.jobs()  # type: ignore[attr-defined]
    return bool(jobs and jobs[0].state == "succeeded" and await gateway.journal.backlog() == 0)  # type: ignore[attr-defined]
