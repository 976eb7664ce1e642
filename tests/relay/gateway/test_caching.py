"""The poll's ETag and the deploymentBase ``?c=`` hash, honoured against our server (which sends both), seen on
the wire through the recording proxy: a repeated poll sends ``If-None-Match`` and gets 304, and a deployment
whose ``?c=`` did not change is fetched once however often the poll shows it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulator.testing import EmulatorHandle

from .conftest import DEV_PUB, NEW, cid_for, gateway_for, primary_version, wait_for
from .faulty import FaultyProxy
from .ourserver import running_server

HOUR = 3600


async def test_polls_use_the_etag_and_a_deployment_is_fetched_once_per_change_hash(
    devices: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emu, cid = devices(1), cid_for(1)
    async with running_server(tmp_path / "server", DEV_PUB, poll_interval=HOUR) as server:
        await server.api("POST", "/api/v1/devices", {"controller_id": cid, "chip": "0x413"})
        token = (await server.api("POST", "/api/v1/gateway-tokens", {"gateway": "gw", "devices": [cid]}))["token"]
        async with FaultyProxy(server.url) as proxy:
            gateway = gateway_for(proxy.url, [emu.port], tmp_path / "gw", gateway_token=token, events="off")
            async with gateway:
                await wait_for(lambda: cid in gateway.by_controller, "the device")
                worker = gateway.by_controller[cid]
                polls = [s for s in proxy.seen if s.method == "GET" and s.path.endswith(cid)]
                for _ in range(3):  # nothing changed: each poll after the first is a 304
                    await _poll(worker, proxy)
                polls = [s for s in proxy.seen if s.method == "GET" and s.path.endswith(cid)]
                assert [p.status for p in polls][-3:] == [304, 304, 304]
                await server.api("POST", "/api/v1/releases?filename=demo-1.1.0.signed.bin", data=NEW)
                # a maintenance window that is closed: the poll keeps offering the same ?c= link
                body = {"controller_id": cid, "release": "1.1.0", "maintenance": {"start": "00:00", "duration": 1}}
                await server.api("POST", "/api/v1/actions", body)
                for _ in range(3):
                    await _poll(worker, proxy)
                await wait_for(lambda: worker.status.message.startswith("downloaded"), "the download, waiting")
                for _ in range(2):
                    await _poll(worker, proxy)
        fetched = [s for s in proxy.seen if "/deploymentBase/" in s.path and s.method == "GET"]
        assert len(fetched) == 1, [s.path for s in fetched]  # the same ?c=: answered from the client's cache
    assert primary_version(emu) == ("1.0.0+0", "confirmed")


async def _poll(worker: Any, proxy: FaultyProxy) -> None:
    """Wake the port and wait until its poll has been answered."""
    before = len([s for s in proxy.seen if s.status])
    worker.wake()
    await wait_for(lambda: len([s for s in proxy.seen if s.status]) > before, "a poll")
    await asyncio.sleep(0.1)  # the answer handled
