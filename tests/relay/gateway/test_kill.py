"""The gateway killed (SIGKILL) in the middle of a relay and started again: the relay resumes from the device's
resume record (not from byte 0), and every result reaches our server once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp

from emulator.demo import demo_firmware
from emulator.testing import EmulatorHandle
from relay.gateway.journal import Journal

from .conftest import DEV_PUB, cid_for, primary_version, wait_for
from .ourserver import ROOT, running_server

_RUN = (
    "import argparse, sys\n"
    "from relay.gateway_cli import register\n"
    "parser = argparse.ArgumentParser()\n"
    "register(parser.add_subparsers())\n"
    "from relay.gateway.commands import cmd_gateway\n"
    "sys.exit(cmd_gateway(parser.parse_args(sys.argv[1:])))\n"
)


async def _start(server: str, token: str, port: str, state: Path) -> tuple[asyncio.subprocess.Process, str]:
    state.mkdir(parents=True, exist_ok=True)
    errors = state / "gateway-stderr.txt"  # a gateway that ends at start-up says why there
    with errors.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _RUN,
            "gateway",
            "--server",
            server,
            "--gateway-token",
            token,
            "-p",
            port,
            "--trusted-key",
            str(DEV_PUB),
            "--state",
            str(state),
            "--listen",
            "127.0.0.1:0",
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    assert process.stdout is not None
    status_url = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()
    assert status_url.startswith("http://"), errors.read_text(errors="replace")[-3000:]
    return process, status_url


async def test_a_gateway_killed_mid_relay_resumes_after_a_restart_and_reports_once(
    devices: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    big = demo_firmware("demo-big-1.2.0.signed.bin").read_bytes()
    emu = devices(1, baud=115200)  # paced: the 252 KiB transfer takes long enough to kill the gateway in it
    cid = cid_for(1)
    state = tmp_path / "gw"
    async with running_server(tmp_path / "server", DEV_PUB) as server, aiohttp.ClientSession() as http:
        await server.api("POST", "/api/v1/devices", {"controller_id": cid, "chip": "0x413"})
        token = (await server.api("POST", "/api/v1/gateway-tokens", {"gateway": "gw", "devices": [cid]}))["token"]
        await server.api("POST", "/api/v1/releases?filename=demo-big.signed.bin", data=big)
        process, status_url = await _start(server.url, token, emu.port, state)

        async def transferring() -> bool:
            async with http.get(f"{status_url}/status") as response:
                (port,) = (await response.json())["ports"]
            return bool(port["phase"] == "transfer" and port["progress"] > 0.3)

        await server.api("POST", "/api/v1/actions", {"controller_id": cid, "release": "1.2.0", "forced": True})
        await wait_for(transferring, "a third of the transfer", 120)
        process.send_signal(signal.SIGKILL)
        await process.wait()

        process, status_url = await _start(server.url, token, emu.port, state)
        try:

            async def done() -> bool:
                journal = await Journal.open(state / "journal.sqlite3")
                try:
                    jobs, backlog = await journal.jobs(), await journal.backlog()
                finally:
                    await journal.close()
                return bool(jobs and jobs[0].final and backlog == 0)

            await wait_for(done, "the resumed relay and its report", 180)
        finally:
            process.terminate()
            await process.wait()
        shown = await server.api("GET", f"/api/v1/devices/{cid}")
    journal = await Journal.open(state / "journal.sqlite3")
    try:
        (job,) = await journal.jobs()
    finally:
        await journal.close()
    assert job.state == "succeeded", job
    assert [a["status"] for a in shown["actions"]] == ["finished"]
    with sqlite3.connect(state / "journal.sqlite3") as db:
        bodies = [json.loads(row[0]) for row in db.execute("SELECT body FROM outbox ORDER BY seq")]
    closed = [b for b in bodies if b.get("status", {}).get("execution") == "closed"]
    assert len(closed) == 1, closed
    details = " ".join(closed[0]["status"]["details"])
    assert "resumed at byte" in details, details  # the relay went on from the device's resume record
    assert primary_version(emu) == ("1.2.0+0", "confirmed")
