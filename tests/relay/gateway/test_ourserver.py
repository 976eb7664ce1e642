"""End to end with our server: server + gateway + three emulated STM32F407s, a staged rollout (a canary of one,
then the rest), all on 1.1.0 and confirmed; one device loses power mid-update, recovers and is reported
honestly.  And a cancel from the server in the middle of a transfer: the device keeps its old image."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulator.demo import demo_firmware
from emulator.testing import EmulatorHandle

from .conftest import DEV_PUB, NEW, cid_for, gateway_for, primary_version, wait_for
from .ourserver import OurServer, running_server


async def _devices_with_gateway_token(server: OurServer, cids: list[str]) -> str:
    for cid in cids:
        await server.api("POST", "/api/v1/devices", {"controller_id": cid, "chip": "0x413"})  # an STM32F407
    token = await server.api("POST", "/api/v1/gateway-tokens", {"gateway": "gw-test", "devices": cids})
    return str(token["token"])


async def test_a_staged_rollout_through_our_server_reaches_three_devices_one_with_a_power_cut(
    devices: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emus = [devices(1), devices(2), devices(3, faults="powercut-op=2")]
    cids = [cid_for(i) for i in (1, 2, 3)]
    async with running_server(tmp_path / "server", DEV_PUB) as server:
        token = await _devices_with_gateway_token(server, cids)
        gateway = gateway_for(server.url, [e.port for e in emus], tmp_path / "gw", gateway_token=token)
        async with gateway:
            await wait_for(lambda: len(gateway.by_controller) == 3, "three devices found")
            await server.api("POST", "/api/v1/releases?filename=demo-1.1.0.signed.bin", data=NEW)
            rollout = await server.api(
                "POST", "/api/v1/rollouts", {"release": "1.1.0", "canary": 1, "percentages": [100]}
            )

            async def finished() -> bool:
                status = await server.api("GET", f"/api/v1/rollouts/{rollout['id']}")
                return bool(status.get("status") == "finished")

            await wait_for(finished, "the rollout to finish", 120)
            status = await server.api("GET", f"/api/v1/rollouts/{rollout['id']}")
        results = {
            e.controller_id: e.body["status"]
            for e in gateway.delivered
            if e.kind == "feedback" and e.body["status"]["execution"] == "closed"
        }
        assert {cid: r["result"]["finished"] for cid, r in results.items()} == dict.fromkeys(cids, "success"), status
        cut = [
            line
            for e in gateway.delivered
            if e.controller_id == cids[2] and e.kind == "feedback"
            for line in e.body["status"].get("details", [])
        ]
        assert any("attempt 1 failed" in line for line in cut), cut  # the power cut is in the report
        logs: Any = await server.api("GET", f"/api/v1/devices/{cids[0]}/logs")
        assert logs  # device log lines reached our server's log endpoint
    for emu in emus:
        assert primary_version(emu) == ("1.1.0+0", "confirmed")


async def test_a_cancel_from_our_server_mid_transfer_stops_the_relay_and_the_device_keeps_its_image(
    devices: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    big = demo_firmware("demo-big-1.2.0.signed.bin").read_bytes()
    emu = devices(1, baud=115200)  # paced like the real wire: the 252 KiB transfer takes long enough
    cid = cid_for(1)
    async with running_server(tmp_path / "server", DEV_PUB) as server:
        token = await _devices_with_gateway_token(server, [cid])
        async with gateway_for(server.url, [emu.port], tmp_path / "gw", gateway_token=token) as gateway:
            await wait_for(lambda: cid in gateway.by_controller, "the device")
            await server.api("POST", "/api/v1/releases?filename=demo-big.signed.bin", data=big)
            action = await server.api("POST", "/api/v1/actions", {"controller_id": cid, "release": "1.2.0"})
            worker = gateway.by_controller[cid]
            worker.wake()
            await wait_for(lambda: worker.status.phase == "transfer" and worker.status.progress > 0.05, "transfer")
            await server.api("POST", f"/api/v1/actions/{action['id']}/cancel")
            await wait_for(lambda: _delivered(gateway, "cancelAction"), "the cancel confirmed", 60)
            (job,) = await gateway.journal.jobs()
        assert job.state == "cancelled"
        assert [e.path for e in gateway.delivered if e.kind != "logs"][-1] == f"cancelAction/{action['id']}/feedback"
        shown = await server.api("GET", f"/api/v1/devices/{cid}")
        assert "cancel" in json.dumps(shown).lower()
    assert primary_version(emu) == ("1.0.0+0", "confirmed")


def _delivered(gateway: Any, what: str) -> bool:
    return any(what in e.path for e in gateway.delivered)


async def test_a_download_only_action_is_downloaded_reported_and_not_installed(
    devices: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emu = devices(1)
    cid = cid_for(1)
    async with running_server(tmp_path / "server", DEV_PUB) as server:
        token = await _devices_with_gateway_token(server, [cid])
        async with gateway_for(server.url, [emu.port], tmp_path / "gw", gateway_token=token) as gateway:
            await wait_for(lambda: cid in gateway.by_controller, "the device")
            await server.api("POST", "/api/v1/releases?filename=demo-1.1.0.signed.bin", data=NEW)
            await server.api(
                "POST", "/api/v1/actions", {"controller_id": cid, "release": "1.1.0", "download_only": True}
            )
            gateway.by_controller[cid].wake()

            async def downloaded() -> bool:
                jobs = await gateway.journal.jobs()
                return bool(jobs and jobs[0].state == "downloaded" and not await gateway.journal.backlog())

            await wait_for(downloaded, "the download-only action")
        executions = [e.body["status"]["execution"] for e in gateway.delivered if e.kind == "feedback"]
        assert executions[-1] == "downloaded" and "closed" not in executions
    assert primary_version(emu) == ("1.0.0+0", "confirmed")
