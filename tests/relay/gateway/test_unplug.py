"""A device unplugged in the middle of a transfer: the failed attempt is reported, the gateway waits for the
port to come back, and the relay finishes from the device's resume record (our server, a socket:// port that
disappears and comes back on the same address, as a USB serial adapter comes back on its by-id path)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from emulator.demo import demo_firmware

from .conftest import DEV_PUB, cid_for, emulated_device, gateway_for, primary_version, wait_for
from .ourserver import running_server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_device_unplugged_mid_transfer_is_reported_and_finished_when_it_comes_back(tmp_path: Path) -> None:
    big = demo_firmware("demo-big-1.2.0.signed.bin").read_bytes()
    cid, number, state = cid_for(1), _free_port(), tmp_path / "device"
    async with running_server(tmp_path / "server", DEV_PUB) as server:
        await server.api("POST", "/api/v1/devices", {"controller_id": cid, "chip": "0x413"})
        token = (await server.api("POST", "/api/v1/gateway-tokens", {"gateway": "gw", "devices": [cid]}))["token"]
        await server.api("POST", "/api/v1/releases?filename=demo-big.signed.bin", data=big)
        url = f"socket://127.0.0.1:{number}"
        with emulated_device(state, 1, baud=115200, socket_port=number):
            gateway = gateway_for(server.url, [url], tmp_path / "gw", gateway_token=token)
            await gateway.start()
            try:
                await wait_for(lambda: cid in gateway.by_controller, "the device")
                await server.api("POST", "/api/v1/actions", {"controller_id": cid, "release": "1.2.0", "forced": True})
                worker = gateway.by_controller[cid]
                worker.wake()
                await wait_for(lambda: worker.status.phase == "transfer" and worker.status.progress > 0.2, "transfer")
            except BaseException:
                await gateway.stop()
                raise
        try:  # unplugged: the emulator is gone for a moment
            await asyncio.sleep(1.0)
            with emulated_device(state, 1, baud=115200, socket_port=number) as emu:
                await wait_for(lambda: _final(gateway), "the relay to finish after the replug", 180)
                jobs = await gateway.journal.jobs()
                await wait_for(lambda: _empty(gateway), "every result delivered")
                await gateway.stop()  # frees the port
                after = primary_version(emu)
        finally:
            await gateway.stop()
        assert [job.state for job in jobs] == ["succeeded"]
        details = [
            line for e in gateway.delivered if e.kind == "feedback" for line in e.body["status"].get("details", [])
        ]
        assert any("attempt 1 failed" in line for line in details), details
        assert any("resumed at byte" in line for line in details), details
        assert after == ("1.2.0+0", "confirmed")


async def _final(gateway: object) -> bool:
    jobs = await gateway.journal.jobs()  # type: ignore[attr-defined]
    return bool(jobs and jobs[0].final)


async def _empty(gateway: object) -> bool:
    return bool(await gateway.journal.backlog() == 0)  # type: ignore[attr-defined]
