"""Issue #8's driver benchmark: the asyncio driver on the event loop against the thread-hop driver it replaced.

Two measurements, each run with the old driver (every read and write an ``asyncio.to_thread`` hop through the
loop's shared default executor, as ``AsyncSerialLink`` did before) and the new one (readiness callbacks on the
port's descriptor), printed side by side with the ratio old / new:

``idle``   N links (default 32) wait on idle devices (ptys whose other end never speaks, as a gateway's
           links wait between jobs) while the benchmark calls an unrelated ``asyncio.to_thread()`` (what
           aiohttp's DNS lookups use) every 20 ms and records how long each call waited.  Printed: median and
           95th percentile latency with no links, then with the links on each driver.
``flash``  M emulated devices (default 16) flashed at once on one loop, the whole ``flash_image`` flow (INFO,
           transfer, verify, activate, reboot, confirm).  The emulators run in child processes, four to a
           process (in the host's process their threads would compete with it for the GIL; sixteen paced
           lines in one process miss their deadlines), so the host CPU printed -- user + system time of this
           process, all threads -- is the drivers' and the flow's alone; the emulators' CPU is printed beside.

Usage::

    python benchmarks/drivers.py                    # both, 32 idle links, 16 devices, the small demo image
    python benchmarks/drivers.py --links 40 --calls 200
    python benchmarks/drivers.py --only flash --devices 16 --image big --baud 921600
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from protocol.drivers.aio import AsyncSerialLink
from protocol.drivers.link import SerialLink
from protocol.flow import FlashOptions, FlashResult, flash_image, image_digests
from protocol.pump import IoRequest, PumpResult, Read, Write, pump
from protocol.update.host import HostConnection

T = TypeVar("T")
CALL_INTERVAL_S = 0.02  # between the unrelated to_thread() calls
IMAGES = {"small": "demo-1.1.0.signed.bin", "big": "demo-big-1.2.0.signed.bin"}


class ThreadHopLink:
    """The asyncio driver as it was: the blocking SerialLink, every request one hop through the default
    executor (kept here, verbatim in behaviour, as the baseline)."""

    def __init__(self, link: SerialLink) -> None:
        self.link = link

    async def execute(self, steps: Generator[IoRequest, PumpResult, T]) -> T:
        link = self.link
        reply: PumpResult = None
        try:
            while True:
                request = steps.send(reply)
                reply = None
                if isinstance(request, Write):
                    await asyncio.to_thread(link.write, request.data)
                elif isinstance(request, Read):
                    data = await asyncio.to_thread(link.exchange, request.out, request.wait)
                    reply = (data, time.monotonic())
                else:
                    await asyncio.to_thread(link.set_baud, request.baud)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            steps.close()


async def _open(driver: str, port: str, baud: int = 115200) -> tuple[Any, Callable[[], Awaitable[None]]]:
    if driver == "old":
        link = await asyncio.to_thread(SerialLink, port, baud)

        async def close_old() -> None:
            await asyncio.to_thread(link.close)

        return ThreadHopLink(link), close_old
    new = await AsyncSerialLink.open(port, baud)
    return new, new.close


# -- idle ----------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _idle_ptys(n: int) -> Iterator[list[str]]:
    fds = [os.openpty() for _ in range(n)]
    try:
        yield [os.ttyname(slave) for _, slave in fds]
    finally:
        for master, slave in fds:
            os.close(master)
            os.close(slave)


async def _to_thread_latencies(calls: int) -> list[float]:
    waits = []
    for _ in range(calls):
        start = time.perf_counter()
        await asyncio.to_thread(time.perf_counter)
        waits.append(time.perf_counter() - start)
        await asyncio.sleep(CALL_INTERVAL_S)
    return waits


async def _idle_run(driver: str | None, ports: Sequence[str], calls: int) -> list[float]:
    links: list[tuple[Any, Callable[[], Awaitable[None]]]] = []
    tasks: list[asyncio.Task[Any]] = []
    try:
        if driver is not None:
            for port in ports:
                links.append(await _open(driver, port))
            for link, _ in links:
                # a link waiting on an idle device: a host core with nothing outstanding, listening for logs
                tasks.append(asyncio.create_task(link.execute(pump(HostConnection(), time.monotonic()))))
            await asyncio.sleep(0.5)  # let every link settle into its wait
        return await _to_thread_latencies(calls)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for _, close in links:
            await close()


def _ms(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_idle(links: int, calls: int) -> dict[str, Any]:
    out: dict[str, Any] = {"links": links, "calls": calls}
    with _idle_ptys(links) as ports:
        for label, driver in (("no links", None), ("old", "old"), ("new", "new")):
            waits = asyncio.run(_idle_run(driver, ports, calls))
            out[label] = {"median_ms": 1000 * statistics.median(waits), "p95_ms": _ms(waits, 0.95)}
    print(f"\nidle: an unrelated asyncio.to_thread() call while {links} links wait on idle devices ({calls} calls)")
    print(f"  {'':<10} {'median':>10} {'p95':>10}")
    for label in ("no links", "old", "new"):
        row = out[label]
        print(f"  {label:<10} {row['median_ms']:>8.2f}ms {row['p95_ms']:>8.2f}ms")
    ratio = out["old"]["median_ms"] / max(out["new"]["median_ms"], 1e-6)
    out["ratio_median_old_over_new"] = ratio
    print(f"  old / new median: {ratio:.0f}x")
    return out


# -- flash ---------------------------------------------------------------------------------------------------
def _serve_emulators(devices: int, baud: int, state_root: str) -> None:
    """Child process: start the emulators, print their ports as one JSON line, run until stdin closes."""
    from emulator.demo import demo_firmware, factory_program
    from emulator.testing import running_emulator

    old = demo_firmware("demo-1.0.0.signed.bin").read_bytes()
    with contextlib.ExitStack() as stack:
        ports = []
        for n in range(devices):
            state = Path(state_root) / f"dev{n}"
            factory_program(state, old)
            emu = stack.enter_context(running_emulator("ota", baud=baud, time_scale=0, state_dir=state))
            ports.append(emu.port)
        print(json.dumps(ports), flush=True)
        sys.stdin.read()


async def _flash_all(driver: str, ports: Sequence[str], image: bytes, baud: int) -> list[FlashResult | BaseException]:
    rate = baud or 115200  # an unthrottled emulated line still checks that both ends agree on the rate

    async def one(port: str) -> FlashResult:
        link, close = await _open(driver, port, rate)
        try:
            flow = flash_image(image, FlashOptions(baud=rate), on_event=lambda e: None, clock=time.monotonic)
            result: FlashResult = await link.execute(flow)
            return result
        finally:
            await close()

    return await asyncio.gather(*(one(port) for port in ports), return_exceptions=True)


def bench_flash(devices: int, image_name: str, baud: int, per_process: int) -> dict[str, Any]:
    from emulator.demo import demo_firmware

    image = demo_firmware(IMAGES[image_name]).read_bytes()
    out: dict[str, Any] = {"devices": devices, "image_bytes": len(image), "baud": baud}
    for driver in ("old", "new"):
        with tempfile.TemporaryDirectory(prefix="stm32ota-bench-") as root:
            children: list[subprocess.Popen[str]] = []
            try:
                ports: list[str] = []
                for first in range(0, devices, per_process):
                    count = min(per_process, devices - first)
                    state = Path(root) / f"group{first}"
                    command = [sys.executable, __file__, "--serve-emulators", str(count), "--baud", str(baud)]
                    child = subprocess.Popen(
                        [*command, "--state", str(state)],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    children.append(child)
                    assert child.stdout is not None
                    ports += json.loads(child.stdout.readline())
                cpu0, wall0 = os.times(), time.perf_counter()
                results = asyncio.run(_flash_all(driver, ports, image, baud))
                wall, cpu1 = time.perf_counter() - wall0, os.times()
            finally:
                for child in children:
                    assert child.stdin is not None
                    child.stdin.close()
                    child.wait()
            reaped = os.times()  # a child's CPU is counted once it has been waited for: its whole life
            ok = sum(
                1
                for r in results
                if isinstance(r, FlashResult)
                and r.info_after is not None
                and r.info_after.slot(0).digest in image_digests(image)
            )
            errors = sorted({f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)})
            host_cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
            emu_cpu = (reaped.children_user - cpu0.children_user) + (reaped.children_system - cpu0.children_system)
            out[driver] = {
                "wall_s": wall,
                "host_cpu_s": host_cpu,
                "emulator_processes_cpu_s": emu_cpu,
                "flashed": ok,
                "errors": errors,
            }
    print(f"\nflash: {devices} emulated devices flashed at once on one loop ({len(image)}-byte image, baud {baud})")
    print(f"  {'':<6} {'wall':>8} {'host CPU':>10} {'flashed':>8}   (emulator processes' CPU, whole life)")
    for driver in ("old", "new"):
        row = out[driver]
        print(
            f"  {driver:<6} {row['wall_s']:>7.2f}s {row['host_cpu_s']:>9.2f}s {row['flashed']:>5}/{devices}"
            f"   ({row['emulator_processes_cpu_s']:.2f}s)"
        )
        for error in row["errors"]:
            print(f"         failed: {error}")
    cpu_ratio = out["old"]["host_cpu_s"] / max(out["new"]["host_cpu_s"], 1e-6)
    wall_ratio = out["old"]["wall_s"] / max(out["new"]["wall_s"], 1e-6)
    out["ratio_cpu_old_over_new"], out["ratio_wall_old_over_new"] = cpu_ratio, wall_ratio
    print(f"  old / new: host CPU {cpu_ratio:.2f}x, wall {wall_ratio:.2f}x")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--only", choices=("idle", "flash"), default=None)
    p.add_argument("--links", type=int, default=32, help="idle links (default 32)")
    p.add_argument("--calls", type=int, default=100, help="to_thread() calls measured per driver (default 100)")
    p.add_argument("--devices", type=int, default=16, help="devices flashed at once (default 16)")
    p.add_argument("--image", choices=tuple(IMAGES), default="small")
    p.add_argument("--baud", type=int, default=0, help="emulated line rate, 0 = unthrottled (default 0)")
    p.add_argument("--per-process", type=int, default=4, help="emulators per child process (default 4)")
    p.add_argument("--json", metavar="FILE", default=None)
    p.add_argument("--serve-emulators", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--state", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_emulators is not None:
        _serve_emulators(args.serve_emulators, args.baud, args.state)
        return 0
    report: dict[str, Any] = {"cpus": os.cpu_count()}
    if args.only in (None, "idle"):
        report["idle"] = bench_idle(args.links, args.calls)
    if args.only in (None, "flash"):
        report["flash"] = bench_flash(args.devices, args.image, args.baud, args.per_process)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
