"""Faults between a real DDI server (gooseBit 0.2.12) and the gateway: each ends in an honest report and a
device that is either updated and confirmed or untouched.  The wire is made to misbehave by
:class:`~tests.relay.gateway.faulty.FaultyProxy`; the server and the devices are real (an emulated STM32 on a
pty)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulator.testing import EmulatorHandle
from tests.peers.goosebit import GooseBit
from tests.peers.swu import build_swu

from .conftest import NEW, cid_for, gateway_for, primary_version, wait_for
from .faulty import FaultyProxy

BOARD = {"hw_boardname": "stm32-gw", "hw_revision": "1.0"}


async def _device(server: GooseBit, cid: str, key: str) -> Any:
    return (await asyncio.to_thread(server.device, cid)).get(key)


async def _publish(server: GooseBit, *cids: str) -> bytes:
    bundle = build_swu("1.1.0", {"demo-1.1.0.signed.bin": NEW})
    software = await asyncio.to_thread(server.upload_software, bundle, "demo-1.1.0.swu")
    for cid in cids:
        await asyncio.to_thread(server.assign, cid, software)
    return bundle


def _details(proxy: FaultyProxy) -> list[str]:
    lines: list[str] = []
    for seen in proxy.posts():
        lines += json.loads(seen.body)["status"].get("details", [])
    return lines


async def _is(server: GooseBit, cid: str, key: str, value: object) -> bool:
    return bool(await _device(server, cid, key) == value)


async def _empty(gateway: Any) -> bool:
    return bool(await gateway.journal.backlog() == 0)


async def _registered(server: GooseBit, cid: str) -> bool:
    return await _device(server, cid, "sw_version") == "1.0.0"


async def test_a_cut_download_500s_429s_a_hang_and_a_power_cut_still_end_in_a_confirmed_update(
    goosebit: GooseBit, devices: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emu = devices(1, faults="powercut-op=2")
    cid = cid_for(1)
    token = goosebit.add_device(cid)
    async with FaultyProxy(goosebit.base_url) as proxy:
        proxy.faults.statuses = [500, 429, 503]
        gateway = gateway_for(
            proxy.url, [emu.port], tmp_path / "gw", target_tokens={cid: token}, request_timeout=1.0, **BOARD
        )
        async with gateway:
            await wait_for(lambda: _registered(goosebit, cid), "configData through 500, 429 and 503")
            assert not proxy.faults.statuses
            proxy.faults.cut_download_at = 1000
            proxy.faults.hang_s = 3.0  # longer than the gateway's 1 s request timeout
            bundle = await _publish(goosebit, cid)
            gateway.by_controller[cid].wake()
            await wait_for(lambda: _is(goosebit, cid, "last_state", "Finished"), "Finished", 120)
            assert await _device(goosebit, cid, "sw_version") == "1.1.0"
        downloads = [s for s in proxy.seen if s.path.endswith("/download")]
        assert [d.range for d in downloads] == [None, "bytes=1000-"]  # resumed, not restarted
        assert gateway.cache.downloaded_bytes == len(bundle)
        details = _details(proxy)
        assert any("attempt 1 failed" in line for line in details), details  # the power cut is reported
        assert any("running 1.1.0 confirmed" in line for line in details)
    assert primary_version(emu) == ("1.1.0+0", "confirmed")


async def test_a_tampered_artifact_is_refused_reported_and_nothing_is_flashed(
    goosebit: GooseBit, devices: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emu = devices(1)
    cid = cid_for(1)
    token = goosebit.add_device(cid)
    async with FaultyProxy(goosebit.base_url) as proxy:
        proxy.faults.tamper = True
        async with gateway_for(proxy.url, [emu.port], tmp_path / "gw", target_tokens={cid: token}, **BOARD) as gw:
            await wait_for(lambda: _registered(goosebit, cid), "configData")
            await _publish(goosebit, cid)
            gw.by_controller[cid].wake()
            await wait_for(lambda: _is(goosebit, cid, "last_state", "Error"), "Error at gooseBit")
            jobs = await gw.journal.jobs()
        assert [job.state for job in jobs] == ["failed"]
        details = _details(proxy)
        assert any("artifact refused" in line and "sha1" in line for line in details), details
    assert primary_version(emu) == ("1.0.0+0", "confirmed")


async def test_a_release_for_another_chip_skips_that_device_and_updates_the_other(
    goosebit: GooseBit, devices: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    f407, l476 = devices(1), devices(2, chip="stm32l476rg")
    cids = cid_for(1), cid_for(2)
    tokens = {cid: goosebit.add_device(cid) for cid in cids}
    # gooseBit 0.2.12 races on two first configData with the same hardware at once (get_or_create makes two
    # Hardware rows, then every upload answers 500): let its hardware row exist before both devices speak
    reply = goosebit.request(
        "PUT",
        f"/{goosebit.tenant}/controller/v1/{cids[0]}/configData",
        body=json.dumps({"mode": "merge", "data": {**BOARD, "sw_version": "0.0.0"}}).encode(),
        headers={"Authorization": f"TargetToken {tokens[cids[0]]}", "Content-Type": "application/json"},
    )
    assert reply.status == 200, reply
    async with FaultyProxy(goosebit.base_url) as proxy:
        async with gateway_for(proxy.url, [f407.port, l476.port], tmp_path / "gw", target_tokens=tokens, **BOARD) as gw:
            await wait_for(lambda: _registered(goosebit, cids[0]), "configData")
            await wait_for(lambda: _is(goosebit, cids[1], "last_state", "Registered"), "configData")
            await _publish(goosebit, *cids)
            for cid in cids:
                gw.by_controller[cid].wake()
            await wait_for(lambda: _is(goosebit, cids[0], "last_state", "Finished"), "Finished")
            await wait_for(lambda: _is(goosebit, cids[1], "last_state", "Error"), "Error")
            states = {job.controller_id: job.state for job in await gw.journal.jobs()}
        assert states == {cids[0]: "succeeded", cids[1]: "rejected"}
        refused = [line for line in _details(proxy) if "refused for" in line]
        assert refused and cids[1] in refused[0] and "chip" in refused[0], refused
    assert primary_version(f407) == ("1.1.0+0", "confirmed")


async def test_results_made_while_the_uplink_is_down_are_delivered_after_a_restart_in_order_once(
    goosebit: GooseBit, devices: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emu = devices(1)
    cid = cid_for(1)
    token = goosebit.add_device(cid)
    state = tmp_path / "gw"
    async with FaultyProxy(goosebit.base_url) as proxy:
        async with gateway_for(proxy.url, [emu.port], state, target_tokens={cid: token}, **BOARD) as gw:
            await wait_for(lambda: _registered(goosebit, cid), "configData")
            proxy.faults.down_for_feedback = True  # results are produced, none can be delivered
            await _publish(goosebit, cid)
            gw.by_controller[cid].wake()

            async def finished_locally() -> bool:
                return [job.state for job in await gw.journal.jobs()] == ["succeeded"]

            await wait_for(finished_locally, "the relay to finish on the gateway")
            queued = await gw.journal.pending()
            assert queued and queued[-1].body["status"]["execution"] == "closed"
            assert not proxy.posts()
        # the gateway is gone; the uplink comes back; a new gateway process starts on the same journal
        proxy.faults.down_for_feedback = False
        async with gateway_for(proxy.url, [emu.port], state, target_tokens={cid: token}, **BOARD) as again:
            await wait_for(lambda: _is(goosebit, cid, "last_state", "Finished"), "Finished")
            await wait_for(lambda: _empty(again), "an empty outbox")
        delivered = [json.loads(s.body) for s in proxy.posts()]
        expected = [  # log batches go out as feedback details: gooseBit has no log endpoint
            [line["message"] for line in e.body["lines"]] if e.kind == "logs" else e.body["status"].get("details")
            for e in queued
        ]
        assert [d["status"].get("details") for d in delivered] == expected  # every result, in order, none twice
        assert [d for d in delivered if d["status"]["execution"] == "closed"] == [queued[-1].body]
        assert not [s for s in proxy.seen if s.path.endswith("/download")][1:]  # and nothing downloaded again
    assert primary_version(emu) == ("1.1.0+0", "confirmed")
