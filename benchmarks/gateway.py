"""One gateway updating 1, 4 and 16 emulated STM32F407s at once at 921600 baud with the 252 KiB demo image,
from our OTA server on loopback (issue #11).  Target: 16 devices in at most 1.3 x the time of one.

The server (``python -m protocol serve``) and every emulator (``python -m protocol emulate``) run in processes of
their own, so this process's CPU time (``resource.getrusage``) is the gateway's alone; it is printed per device.
Each run: fresh devices factory-programmed with demo 1.0.0, registered with a gateway token, one forced action
per device for release 1.2.0; the clock runs from the actions' creation until every job has ended and every
result has been delivered.  Every device must end on 1.2.0 confirmed, or the run is reported as failed.

    python benchmarks/gateway.py                 # 1, 4, 16 devices, datasheet flash timings
    python benchmarks/gateway.py --counts 1,4 --time-scale 0 --json out.json
    STM32OTA_SERVER_TREE=/path/to/tree python benchmarks/gateway.py   # the server from another checkout
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from emulator.demo import demo_firmware, factory_program  # noqa: E402
from relay.gateway import Gateway, load_config  # noqa: E402

KEY = ROOT / "assets" / "keys" / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pub.pem"
BAUD = 921600
RUN_TIMEOUT_S = 900.0


def _env() -> dict[str, str]:
    tree = os.environ.get("STM32OTA_SERVER_TREE", str(ROOT))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys([str(ROOT), tree]))}


async def _line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()


async def _run(count: int, time_scale: float, folder: Path) -> dict[str, Any]:
    image = demo_firmware("demo-big-1.2.0.signed.bin").read_bytes()
    old = demo_firmware("demo-1.0.0.signed.bin").read_bytes()
    processes: list[asyncio.subprocess.Process] = []
    try:
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "protocol",
            "serve",
            "--data",
            str(folder / "server"),
            "--listen",
            "127.0.0.1:0",
            "--trusted-key",
            str(KEY),
            "--poll-interval",
            "1",
            "--no-access-log",
            cwd=folder,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        processes.append(server)
        url = await _line(server)
        admin = (folder / "server" / "admin-token").read_text().strip()
        ports = []
        for index in range(count):
            state = folder / f"device-{index}"
            factory_program(state, old)
            uid = hashlib.sha256(f"bench-{index}".encode()).hexdigest()[:24]
            (state / "state.json").write_text(json.dumps({"uid": uid}))
            emu = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "protocol",
                "emulate",
                "--baud",
                str(BAUD),
                "--state",
                str(state),
                "--time-scale",
                str(time_scale),
                cwd=folder,
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            processes.append(emu)
            ports.append(await _line(emu))
        cids = [f"stm32-{hashlib.sha256(f'bench-{i}'.encode()).hexdigest()[:24]}" for i in range(count)]
        headers = {"Authorization": f"Bearer {admin}"}
        async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as http:

            async def api(method: str, path: str, **kw: Any) -> Any:
                async with http.request(method, url + path, **kw) as response:
                    body = await response.json(content_type=None)
                    if response.status >= 400:
                        raise RuntimeError(f"{method} {path}: {response.status} {body}")
                    return body

            for cid in cids:
                await api("POST", "/api/v1/devices", json={"controller_id": cid, "chip": "0x413"})
            token = await api("POST", "/api/v1/gateway-tokens", json={"gateway": "bench", "devices": cids})
            await api(
                "POST",
                "/api/v1/releases?filename=demo-big.signed.bin",
                data=image,
                headers={"Content-Type": "application/octet-stream"},
            )
            config = load_config(
                None,
                server=url,
                ports=ports,
                baud=BAUD,
                state_dir=folder / "gateway",
                listen=None,
                trusted_keys=[KEY],
                gateway_token=token["token"],
            )
            async with Gateway(config, name="bench") as gateway:
                deadline = time.monotonic() + 60
                while len(gateway.by_controller) < count and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                cpu0 = resource.getrusage(resource.RUSAGE_SELF)
                start = time.monotonic()
                for cid in cids:
                    await api(
                        "POST", "/api/v1/actions", json={"controller_id": cid, "release": "1.2.0", "forced": True}
                    )
                for worker in gateway.workers:
                    worker.wake()
                while True:
                    jobs = await gateway.journal.jobs()
                    if len(jobs) == count and all(j.final for j in jobs) and not await gateway.journal.backlog():
                        break
                    if time.monotonic() - start > RUN_TIMEOUT_S:
                        raise RuntimeError(f"{count} devices: not done within {RUN_TIMEOUT_S:.0f} s")
                    await asyncio.sleep(0.05)
                seconds = time.monotonic() - start
                cpu1 = resource.getrusage(resource.RUSAGE_SELF)
                ok = sum(j.state == "succeeded" for j in jobs)
                versions = {w.status.version for w in gateway.workers}
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        return {
            "devices": count,
            "seconds": seconds,
            "succeeded": ok,
            "versions": sorted(v or "" for v in versions),
            "gateway_cpu_s": cpu,
            "cpu_per_device_s": cpu / count,
            "image_bytes": len(image),
        }
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            await process.wait()


async def _main(args: argparse.Namespace) -> int:
    results = []
    for count in args.counts:
        with tempfile.TemporaryDirectory(prefix="stm32ota-gw-bench-") as tmp:
            result = await _run(count, args.time_scale, Path(tmp))
        results.append(result)
        sys.stdout.write(
            f"{count:>3} devices: {result['seconds']:7.1f} s  {result['succeeded']}/{count} ok  "
            f"gateway CPU {result['gateway_cpu_s']:.2f} s ({result['cpu_per_device_s']:.3f} s per device)\n"
        )
        sys.stdout.flush()
    base = results[0]["seconds"]
    sys.stdout.write("\ndevices  seconds  ratio to 1  CPU s/device  ok\n")
    for r in results:
        sys.stdout.write(
            f"{r['devices']:>7}  {r['seconds']:7.1f}  {r['seconds'] / base:10.2f}  "
            f"{r['cpu_per_device_s']:12.3f}  {r['succeeded']}/{r['devices']}\n"
        )
    worst = results[-1]["seconds"] / base
    sys.stdout.write(
        f"target: {results[-1]['devices']} devices within 1.3 x one device: {worst:.2f} x "
        f"({'met' if worst <= 1.3 else 'NOT met'})\n"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if all(r["succeeded"] == r["devices"] for r in results) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16])
    parser.add_argument("--time-scale", type=float, default=1.0, help="emulated flash timing (1 = datasheet)")
    parser.add_argument("--json", default=None, metavar="FILE")
    return asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
