"""Two ``stm32ota serve`` processes on one PostgreSQL database: one rollout, advanced through both at once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.relay.conftest import IMAGE_110, KEYS, ROOT, pg_database

STARTUP_TIMEOUT = 60.0


@contextlib.asynccontextmanager
async def serve(data: Path, database: str) -> AsyncIterator[str]:
    """A server process; yields its base URL (its first stdout line)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "protocol",
        "serve",
        "--data",
        str(data),
        "--listen",
        "127.0.0.1:0",
        "--database",
        database,
        "--trusted-key",
        str(KEYS),
        "--no-access-log",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), STARTUP_TIMEOUT)
        if not line:
            assert proc.stderr is not None
            raise AssertionError(f"serve exited: {(await proc.stderr.read()).decode()[-2000:]}")
        yield line.decode().strip()
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)


@contextlib.asynccontextmanager
async def serve_two(data: Path, database: str) -> AsyncIterator[tuple[str, str]]:
    """Two processes started at the same moment on an empty database: migrations and the first admin token
    are created once (advisory locks), whichever process gets there first."""
    async with contextlib.AsyncExitStack() as stack:
        url_a, url_b = await asyncio.gather(
            stack.enter_async_context(serve(data, database)), stack.enter_async_context(serve(data, database))
        )
        yield url_a, url_b


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str, admin: str) -> None:
        self.session, self.base, self.admin = session, base, {"Authorization": f"Bearer {admin}"}

    async def call(self, method: str, path: str, expect: int | tuple[int, ...] = 200, **kwargs: Any) -> Any:
        headers = {**self.admin, **kwargs.pop("headers", {})}
        async with self.session.request(method, self.base + path, headers=headers, **kwargs) as response:
            text = await response.text()
            wanted = expect if isinstance(expect, tuple) else (expect,)
            assert response.status in wanted, f"{method} {path}: {response.status} {text}"
            return (await response.json(content_type=None)) if text else response.status

    async def finish(self, controller_id: str, token: str, result: str = "success") -> None:
        ddi = f"/DEFAULT/controller/v1/{controller_id}"
        headers = {"Authorization": f"TargetToken {token}"}
        for _ in range(100):  # another process's change reaches this one's cache within about a second
            poll = await self.call("GET", ddi, headers=headers)
            if "deploymentBase" in poll.get("_links", {}):
                break
            await asyncio.sleep(0.05)
        href = poll["_links"]["deploymentBase"]["href"]
        action = href.split("/deploymentBase/")[1].split("?")[0]
        body = {"status": {"execution": "closed", "result": {"finished": result}}}
        await self.call("POST", f"{ddi}/deploymentBase/{action}/feedback", json=body, headers=headers)


async def test_two_processes_one_rollout(tmp_path: Path) -> None:
    data = tmp_path / "data"  # one data folder: the artifact store is shared, as on a network disk
    async with pg_database() as database, serve_two(data, database) as (url_a, url_b):
        admin = (data / "admin-token").read_text().strip()
        async with aiohttp.ClientSession() as session:
            a, b = Api(session, url_a, admin), Api(session, url_b, admin)
            tokens = {}
            for i in range(6):
                created = await (a if i % 2 else b).call(
                    "POST", "/api/v1/devices", 201, json={"controller_id": f"stm32-{i}", "chip": "0x413"}
                )
                tokens[created["controller_id"]] = created["token"]
            await b.call("POST", "/api/v1/releases", 201, data=IMAGE_110.read_bytes())
            rollout = await a.call(
                "POST", "/api/v1/rollouts", 201, json={"release": "1.1.0", "canary": 2, "percentages": [100]}
            )
            rid = rollout["id"]
            canary = [d["controller_id"] for d in rollout["groups"][0]["devices"]]
            # Both canaries report at the same moment, one to each process: the next group starts once.
            await asyncio.gather(a.finish(canary[0], tokens[canary[0]]), b.finish(canary[1], tokens[canary[1]]))
            state = await b.call("GET", f"/api/v1/rollouts/{rid}")
            assert [g["status"] for g in state["groups"]] == ["finished", "running"]
            for name in tokens:
                device = await a.call("GET", f"/api/v1/devices/{name}")
                assert len(device["actions"]) == 1, device
            # Two operators pause at once through different processes: exactly one wins.
            results = await asyncio.gather(
                a.call("POST", f"/api/v1/rollouts/{rid}/pause", (200, 409)),
                b.call("POST", f"/api/v1/rollouts/{rid}/pause", (200, 409)),
            )
            assert sorted(r.get("error") or r["status"] for r in results) == ["paused", "wrong-state"]
            await b.call("POST", f"/api/v1/rollouts/{rid}/resume")
            rest = [d["controller_id"] for d in state["groups"][1]["devices"]]
            await asyncio.gather(*((a if i % 2 else b).finish(n, tokens[n]) for i, n in enumerate(rest)))
            for api in (a, b):
                assert (await api.call("GET", f"/api/v1/rollouts/{rid}"))["status"] == "finished"


async def test_long_poll_sees_another_process_change(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with pg_database() as database, serve_two(data, database) as (url_a, url_b):
        admin = (data / "admin-token").read_text().strip()
        async with aiohttp.ClientSession() as session:
            a, b = Api(session, url_a, admin), Api(session, url_b, admin)
            created = await a.call("POST", "/api/v1/devices", 201, json={"controller_id": "d", "chip": "0x413"})
            headers = {"Authorization": f"TargetToken {created['token']}"}
            await a.call("POST", "/api/v1/releases", 201, data=IMAGE_110.read_bytes())
            async with session.get(url_a + "/DEFAULT/controller/v1/d", headers=headers) as first:
                etag = first.headers["ETag"]

            async def assign() -> None:
                await asyncio.sleep(0.3)
                await b.call("POST", "/api/v1/actions", 201, json={"controller_id": "d", "release": "1.1.0"})

            task = asyncio.create_task(assign())
            async with session.get(
                url_a + "/DEFAULT/controller/v1/d?wait=20", headers={**headers, "If-None-Match": etag}
            ) as response:
                assert response.status == 200
                assert "deploymentBase" in (await response.json(content_type=None))["_links"]
            await task
            # A token replaced or revoked through one process stops working in the other within seconds.
            gateway = await a.call("POST", "/api/v1/gateway-tokens", 201, json={"gateway": "gw", "devices": ["d"]})
            gw_headers = {"Authorization": f"GatewayToken {gateway['token']}"}
            assert await b.call("GET", "/DEFAULT/controller/v1/d", headers=gw_headers)
            fresh = await b.call("POST", "/api/v1/devices/d/token")
            await a.call("DELETE", f"/api/v1/gateway-tokens/{gateway['id']}")
            for _ in range(100):
                async with (
                    session.get(url_a + "/DEFAULT/controller/v1/d", headers=headers) as old,
                    session.get(url_b + "/DEFAULT/controller/v1/d", headers=gw_headers) as revoked,
                ):
                    if old.status == 401 and revoked.status == 401:
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the other process still accepts the old tokens")
            new_headers = {"Authorization": f"TargetToken {fresh['token']}"}
            assert (await a.call("GET", "/DEFAULT/controller/v1/d", headers=new_headers))["_links"]
            # A gateway's event stream on one process hears of an assignment made through the other.
            gw2 = await a.call("POST", "/api/v1/gateway-tokens", 201, json={"gateway": "gw2"})
            gw2_headers = {"Authorization": f"GatewayToken {gw2['token']}"}
            await a.call("GET", "/DEFAULT/controller/v1/stm32-e", headers=gw2_headers)  # self-registers
            await a.call("POST", "/api/v1/devices/stm32-e/accept")
            await a.call(
                "PUT",
                "/DEFAULT/controller/v1/stm32-e/configData",
                json={"data": {"chip": "0x413"}},
                headers=gw2_headers,
            )
            async with session.get(url_a + "/DEFAULT/gateway/v1/events", headers=gw2_headers) as stream:
                assert await stream.content.readuntil(b"\n\n") == b"event: hello\ndata: {}\n\n"
                await b.call("POST", "/api/v1/actions", 201, json={"controller_id": "stm32-e", "release": "1.1.0"})
                event = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 20)
                assert event == b'event: poll\ndata: {"controllerId": "stm32-e"}\n\n'
