"""deploymentBase's modes against our server: a maintenance window that is closed (downloaded, checked, feedback
``scheduled``, nothing flashed) and one that is open (installed); a cancel before the relay starts (confirmed
on cancelAction, nothing downloaded or flashed); feedback in the states hawkBit defines, in order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulator.testing import EmulatorHandle

from .conftest import DEV_PUB, NEW, cid_for, gateway_for, primary_version, wait_for
from .ourserver import OurServer, running_server

HOUR = 3600


async def _setup(server: OurServer, cids: list[str]) -> str:
    for cid in cids:
        await server.api("POST", "/api/v1/devices", {"controller_id": cid, "chip": "0x413"})
    await server.api("POST", "/api/v1/releases?filename=demo-1.1.0.signed.bin", data=NEW)
    return str((await server.api("POST", "/api/v1/gateway-tokens", {"gateway": "gw", "devices": cids}))["token"])


def _window(open_now: bool) -> dict[str, Any]:
    """A daily window that is open now (it began a minute ago, for an hour) or closed (it opens in 12 hours)."""
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(minutes=1) if open_now else now + dt.timedelta(hours=12)
    return {"start": start.strftime("%H:%M"), "duration": HOUR}


def _executions(gateway: Any, cid: str) -> list[str]:
    return [
        e.body["status"]["execution"]
        for e in gateway.delivered
        if e.controller_id == cid and e.kind == "feedback" and e.path.startswith("deploymentBase/")
    ]


async def test_a_closed_maintenance_window_downloads_and_waits_an_open_one_installs(
    devices: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    closed, opened = devices(1), devices(2)
    cids = [cid_for(1), cid_for(2)]
    async with running_server(tmp_path / "server", DEV_PUB) as server:
        token = await _setup(server, cids)
        async with gateway_for(server.url, [closed.port, opened.port], tmp_path / "gw", gateway_token=token) as gw:
            await wait_for(lambda: len(gw.by_controller) == 2, "both devices")
            for cid, is_open in zip(cids, (False, True), strict=True):
                body = {"controller_id": cid, "release": "1.1.0", "forced": True, "maintenance": _window(is_open)}
                await server.api("POST", "/api/v1/actions", body)
                gw.by_controller[cid].wake()

            async def settled() -> bool:
                states = {job.controller_id: job.state for job in await gw.journal.jobs()}
                backlog = await gw.journal.backlog()
                return states == {cids[0]: "downloaded", cids[1]: "succeeded"} and backlog == 0

            await wait_for(settled, "one scheduled, one installed")
            shown = await server.api("GET", f"/api/v1/devices/{cids[0]}")
        waiting, installed = _executions(gw, cids[0]), _executions(gw, cids[1])
    assert waiting == ["proceeding", "download", "scheduled"], waiting
    assert installed[:3] == ["proceeding", "download", "downloaded"] and installed[-1] == "closed", installed
    assert "proceeding" in installed[3:-1]  # progress while relaying
    assert shown["actions"][0]["status"] not in ("finished", "error")  # still open: it waits for the window
    assert primary_version(closed) == ("1.0.0+0", "confirmed")
    assert primary_version(opened) == ("1.1.0+0", "confirmed")


async def test_a_cancel_before_the_relay_is_confirmed_and_nothing_is_flashed(
    devices: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emu, cid = devices(1), cid_for(1)
    async with running_server(tmp_path / "server", DEV_PUB, poll_interval=HOUR) as server:
        token = await _setup(server, [cid])
        gateway = gateway_for(server.url, [emu.port], tmp_path / "gw", gateway_token=token, events="off")
        async with gateway:
            await wait_for(lambda: gateway.by_controller.get(cid) is not None, "the device")
            worker = gateway.by_controller[cid]
            await wait_for(lambda: worker.status.state == "idle", "the first poll done")
            action = await server.api("POST", "/api/v1/actions", {"controller_id": cid, "release": "1.1.0"})
            await server.api("POST", f"/api/v1/actions/{action['id']}/cancel")
            worker.wake()  # the next poll (the server's sleep is an hour, the stream is off) sees cancelAction

            async def confirmed() -> bool:
                return any(e.path == f"cancelAction/{action['id']}/feedback" for e in gateway.delivered)

            await wait_for(confirmed, "the cancel confirmed")
            jobs = await gateway.journal.jobs()
            shown = await server.api("GET", f"/api/v1/devices/{cid}")
        assert jobs == [] and gateway.cache.downloaded_bytes == 0
        assert shown["actions"][0]["status"] == "canceled", shown["actions"]
    assert primary_version(emu) == ("1.0.0+0", "confirmed")
