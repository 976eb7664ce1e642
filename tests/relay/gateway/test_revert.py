"""A release that boots but fails the device's own self-test: the device never confirms it and goes back to the
image it ran before.  The gateway reports that as a failure (never a success), with the device's last log lines in
the feedback's details, and the device is left running its old image."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from emulator.app import FAIL_MARKER
from emulator.testing import EmulatorHandle

from ...emulator.chip_harness import make_image
from .conftest import DEV_PUB, cid_for, gateway_for, primary_version, wait_for
from .ourserver import running_server


async def test_a_release_that_fails_its_self_test_is_reported_as_a_failure_and_the_device_reverts(
    devices: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emu = devices(1)
    cid = cid_for(1)
    before = primary_version(emu)
    failing = make_image(version="1.3.0", counter=2, fill=FAIL_MARKER)
    async with running_server(tmp_path / "server", DEV_PUB) as server:
        await server.api("POST", "/api/v1/devices", {"controller_id": cid, "chip": "0x413"})
        token = (await server.api("POST", "/api/v1/gateway-tokens", {"gateway": "gw", "devices": [cid]}))["token"]
        await server.api("POST", "/api/v1/releases?filename=failing-1.3.0.signed.bin", data=failing)
        async with gateway_for(server.url, [emu.port], tmp_path / "gw", gateway_token=token) as gateway:
            await wait_for(lambda: cid in gateway.by_controller, "the device")

            async def board_known() -> bool:  # the server checks the release's board against configData
                return bool((await server.api("GET", f"/api/v1/devices/{cid}")).get("attributes"))

            await wait_for(board_known, "the device's configData on the server")
            await server.api("POST", "/api/v1/actions", {"controller_id": cid, "release": "1.3.0", "forced": True})
            gateway.by_controller[cid].wake()

            async def closed() -> bool:
                return any(
                    e.kind == "feedback" and e.body["status"]["execution"] == "closed" for e in gateway.delivered
                )

            await wait_for(closed, "the result", 120)
            jobs = await gateway.journal.jobs()
            device = await server.api("GET", f"/api/v1/devices/{cid}")
    final = [e.body["status"] for e in gateway.delivered if e.kind == "feedback"][-1]
    assert final["execution"] == "closed"
    assert final["result"]["finished"] == "failure", final
    details = "\n".join(final.get("details", []))
    assert "self-test FAILED" in details, details  # the device's own last words travel with the result
    assert [job.state for job in jobs] == ["failed"]
    assert device.get("version") != "1.3.0+0", device
    assert primary_version(emu) == before  # back on what it ran before, confirmed
