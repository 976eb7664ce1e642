"""``stm32ota demo``: the whole system on 127.0.0.1 — our OTA server, a gateway and three emulated STM32F407s
on ptys running demo 1.0.0.  Publishes 1.1.0, rolls it out in two groups (a canary of one, then the rest),
shows each device's progress, and ends when all three run 1.1.0 confirmed, with a summary.  ``--local`` runs
the single-device flow (:func:`emulator.demo.cmd_demo`) instead.

The console output is the demo's product, so this handler writes to stderr/stdout itself (it is the CLI).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from protocol.errors import Stm32OtaError

from .config import load_config
from .service import Gateway

__all__ = ["cmd_demo"]

DEVICES = 3
SERVER_START_S = 60.0
DEMO_TIMEOUT_S = 600.0
REFRESH_S = 0.5


class DemoError(Stm32OtaError):
    """The demo could not run to its end."""


def cmd_demo(args: argparse.Namespace) -> int:
    if getattr(args, "local", False):
        from emulator.demo import cmd_demo as local_demo

        return local_demo(args)
    return asyncio.run(_demo(args))


@dataclass
class _Row:
    cid: str
    before: str
    port: str
    after: str = ""
    result: str = "waiting"
    started: float = 0.0
    seconds: float = 0.0
    size: int = 0


async def _start_server(folder: Path, key: Path) -> tuple[asyncio.subprocess.Process, str, str]:
    command = [
        sys.executable,
        "-m",
        "protocol",
        "serve",
        "--data",
        str(folder),
        "--listen",
        "127.0.0.1:0",
        "--trusted-key",
        str(key),
        "--poll-interval",
        "2",
        "--no-access-log",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        *command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=dict(os.environ)
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), SERVER_START_S)
    except TimeoutError as err:
        process.kill()
        raise DemoError("the OTA server did not start within a minute") from err
    url = line.decode().strip()
    if not url.startswith("http"):
        process.kill()
        raise DemoError(
            "`stm32ota serve` did not start", hint="run it by hand to see why: stm32ota serve --data /tmp/x"
        )
    return process, url, (folder / "admin-token").read_text().strip()


async def _demo(args: argparse.Namespace) -> int:
    from emulator.demo import demo_firmware, factory_program
    from emulator.testing import running_emulator

    root = Path(__file__).resolve().parents[2]
    key = root / "assets" / "keys" / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pub.pem"
    new_path = Path(args.image) if args.image else demo_firmware("demo-1.1.0.signed.bin")
    new, old = new_path.read_bytes(), demo_firmware("demo-1.0.0.signed.bin").read_bytes()
    out = sys.stderr
    with tempfile.TemporaryDirectory(prefix="stm32ota-demo-") as tmp, contextlib.ExitStack() as stack:
        folder = Path(args.state) if args.state else Path(tmp)
        process, url, admin = await _start_server(folder / "server", key)
        out.write(f"-- OTA server on {url}\n")
        try:
            ports, rows = [], []
            for index in range(DEVICES):
                state = folder / f"device-{index + 1}"
                if not (state / "state.json").exists():
                    factory_program(state, old)
                    uid = hashlib.sha256(f"stm32ota-demo-{index}".encode()).hexdigest()[:24]
                    (state / "state.json").write_text(json.dumps({"uid": uid}))
                emu = stack.enter_context(
                    running_emulator(
                        mode="ota",
                        baud=args.baud,
                        latency_ms=args.latency_ms,
                        time_scale=args.time_scale,
                        state_dir=state,
                    )
                )
                ports.append(emu.port)
            out.write(f"-- {DEVICES} emulated STM32F407s on {', '.join(ports)} at {args.baud} baud, running 1.0.0\n")
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                api = _Admin(http, url, admin)
                # find the devices first (INFO), so the admin can register them by controllerId
                cids = await _discover(ports, args.baud)
                for cid in cids:
                    await api.call(
                        "POST", "/api/v1/devices", {"controller_id": cid, "name": f"demo-{cid[-4:]}", "chip": "0x413"}
                    )
                token = await api.call("POST", "/api/v1/gateway-tokens", {"gateway": "demo-gateway", "devices": cids})
                config = load_config(
                    None,
                    server=url,
                    ports=ports,
                    state_dir=folder / "gateway",
                    listen="127.0.0.1:0",
                    trusted_keys=[key],
                    gateway_token=token["token"],
                    progress_interval=0.5,
                    baud=args.baud,
                )
                gateway = Gateway(config, name="demo-gateway")
                rows = [_Row(cid=cid, before="1.0.0", port=port) for cid, port in zip(cids, ports, strict=True)]
                async with gateway:
                    release = await api.call("POST", f"/api/v1/releases?filename={new_path.name}", data=new)
                    version = str(release.get("version", "1.1.0"))
                    out.write(f"-- published release {version} ({len(new)} bytes, signed)\n")
                    rollout = await api.call(
                        "POST", "/api/v1/rollouts", {"release": version, "canary": 1, "percentages": [100]}
                    )
                    out.write("-- rollout: group 1 = a canary of one device, group 2 = the rest\n")
                    await _watch(gateway, api, rollout["id"], rows, out)
                    for row in rows:
                        row.size = len(new) if row.result == "ok" else 0
        finally:
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 10)
    out.write("\n" + _summary(rows) + "\n")
    return 0 if all(row.result == "ok" for row in rows) else 1


def _fields(config: Any) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


async def _discover(ports: list[str], baud: int) -> list[str]:
    import time as _time

    from protocol.drivers.aio import AsyncSerialLink
    from protocol.flow import read_info
    from protocol.update.host import HostConnection

    from .relay import controller_id

    cids = []
    for port in ports:
        async with await AsyncSerialLink.open(port, baud) as link:
            info = await link.execute(read_info(HostConnection(baud=baud), _time.monotonic))
        cids.append(controller_id(info))
    return cids


class _Admin:
    def __init__(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        self.http, self.url, self.token = http, url, token

    async def call(self, method: str, path: str, payload: Any = None, *, data: bytes | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        if data is not None:
            headers["Content-Type"] = "application/octet-stream"
        async with self.http.request(
            method, self.url + path, json=payload if data is None else None, data=data, headers=headers
        ) as response:
            body = await response.json(content_type=None)
            if response.status >= 400:
                raise DemoError(f"the OTA server refused {method} {path}: {response.status} {body}")
            return body


async def _watch(gateway: Gateway, api: _Admin, rollout_id: Any, rows: list[_Row], out: Any) -> None:
    deadline = time.monotonic() + DEMO_TIMEOUT_S
    by_cid = {row.cid: row for row in rows}
    last = ""
    while True:
        for worker in gateway.workers:
            row = by_cid.get(worker.cid or "")
            if row is None:
                continue
            status = worker.status
            if status.state in ("downloading", "relaying") and not row.started:
                row.started = time.monotonic()
            if status.state == "relaying":
                row.result = f"{status.phase} {100 * status.progress:.0f}%"
        for job in await gateway.journal.jobs():
            row = by_cid.get(job.controller_id)
            if row is not None and job.final and row.result not in ("ok", "failed"):
                row.result = "ok" if job.state == "succeeded" else "failed"
                row.seconds = time.monotonic() - (row.started or time.monotonic())
                row.after = gateway.by_controller[job.controller_id].status.version or ""
        line = " | ".join(f"{row.cid[-6:]}: {row.result}" for row in rows)
        if line != last:
            out.write(f"   {line}\n")
            last = line
        status = await api.call("GET", f"/api/v1/rollouts/{rollout_id}")
        done = all(row.result in ("ok", "failed") for row in rows)
        if done and status.get("status") in ("finished", "paused", "canceled") and not await gateway.journal.backlog():
            return
        if time.monotonic() > deadline:
            raise DemoError(f"the rollout did not finish within {DEMO_TIMEOUT_S:.0f} s ({status.get('status')})")
        await asyncio.sleep(REFRESH_S)


def _summary(rows: list[_Row]) -> str:
    lines = [f"{'DEVICE':<32} {'PORT':<14} {'BEFORE':<8} {'AFTER':<8} {'TIME':>7} {'BYTES':>7}  RESULT"]
    for row in rows:
        lines.append(
            f"{row.cid:<32} {row.port:<14} {row.before:<8} {row.after or '-':<8} {row.seconds:>6.1f}s {row.size:>7}  "
            f"{'updated and confirmed' if row.result == 'ok' else row.result}"
        )
    ok = sum(row.result == "ok" for row in rows)
    lines.append(f"{ok} of {len(rows)} devices run the new version, confirmed")
    return "\n".join(lines)
