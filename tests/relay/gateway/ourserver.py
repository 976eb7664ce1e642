"""Our OTA server (``stm32ota serve``) as a subprocess for the gateway's end-to-end tests, with a small async
admin client.  The tree it runs from is this checkout, or ``STM32OTA_SERVER_TREE``; a tree without
``relay/server`` skips the test with that reason."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 60.0


def server_tree() -> Path:
    tree = Path(os.environ.get("STM32OTA_SERVER_TREE", str(ROOT)))
    if not (tree / "relay" / "server" / "__init__.py").exists():
        pytest.skip(f"our OTA server (relay/server) is not in {tree} yet; STM32OTA_SERVER_TREE names another tree")
    return tree


@dataclass
class OurServer:
    url: str
    token: str
    session: aiohttp.ClientSession

    async def api(self, method: str, path: str, payload: Any = None, *, data: bytes | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        if data is not None:
            headers["Content-Type"] = "application/octet-stream"
        async with self.session.request(
            method, f"{self.url}{path}", json=payload if data is None else None, data=data, headers=headers
        ) as response:
            body = await response.json(content_type=None)
            if response.status >= 400:
                raise AssertionError(f"{method} {path}: {response.status} {body}")
            return body


@asynccontextmanager
async def running_server(data: Path, *keys: Path, poll_interval: int = 1) -> AsyncIterator[OurServer]:
    tree = server_tree()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [
        sys.executable,
        "-m",
        "protocol",
        "serve",
        "--data",
        str(data),
        "--listen",
        "127.0.0.1:0",
        "--poll-interval",
        str(poll_interval),
        "--no-access-log",
    ]
    for key in keys:
        command += ["--trusted-key", str(key)]
    data.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        *command, cwd=data, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_S)
        url = line.decode().strip()
        assert url.startswith("http://"), f"stm32ota serve printed {line!r}"
        token = (data / "admin-token").read_text().strip()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            yield OurServer(url, token, session)
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
