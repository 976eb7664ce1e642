"""Issue #10's server benchmark: DDI polls per second one server process answers, against gooseBit in the same run.

For each server under test it starts one process on 127.0.0.1, registers ``--devices`` devices (10,000 by
default) each with its own TargetToken, writes their ``controllerId token`` pairs to a file, checks one poll by
hand (200, a ``config.polling.sleep``; a wrong token must be refused), and then drives it with ``wrk`` (the
load generator is C, not Python) and ``benchmarks/ddi_poll.lua``, which walks the devices round robin with each
one's own ``Authorization: TargetToken``.  A short warm-up run comes first; the measured run reports polls/s,
latency percentiles (wrk's own histogram), non-2xx answers and the server's CPU seconds.

Servers (``--servers``):

``stm32ota``  ours: ``stm32ota serve --config C --data DIR --listen 127.0.0.1:0 --no-access-log`` (SQLite in
              DIR), devices through ``POST /api/v1/devices/bulk`` (1,000 a request; one by one through
              ``POST /api/v1/devices`` where there is no bulk endpoint) with the admin token from
              ``DIR/admin-token``.  ``--server-tree`` names
              the source tree to run it from (its PYTHONPATH), by default this checkout.
``goosebit``  gooseBit 0.2.12 (PyPI), a Python hawkBit-DDI server on FastAPI/uvicorn, SQLite, device auth
              ``strict`` (so every poll is checked against the device's TargetToken, as ours does); devices are
              written into its database before it starts (10,000 admin API calls would take minutes), as
              Registered devices with no rollout, so every poll is a steady-state "nothing to do".

Neither writes an access log (uvicorn ``--no-access-log``, gooseBit's log level ERROR), so the figures compare
the servers' request paths.  Both answer the same request stream: one process each, the same wrk threads,
connections and duration, one after the other on this machine.  The ratio line is ours / gooseBit.  Targets
(issue #10): at least 2,000 polls/s, p99 under 50 ms, at least 3 x gooseBit.

Usage::

    python benchmarks/server.py                                   # both servers, 10,000 devices, 15 s each
    python benchmarks/server.py --servers goosebit --devices 1000 --duration 5
    python benchmarks/server.py --server-tree /path/to/checkout --json server.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import logging
import os
import platform
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

from tests.peers.goosebit import GooseBit, GooseBitError, find_goosebit, goosebit_venv  # noqa: E402

log = logging.getLogger("benchmarks.server")

LUA_SCRIPT = Path(__file__).resolve().parent / "ddi_poll.lua"
SERVERS = ("stm32ota", "goosebit")
TENANT = "DEFAULT"
START_TIMEOUT_S = 60.0
REGISTER_CONCURRENCY = 16
BULK_BATCH = 1000
REGISTER_TIMEOUT_S = 600.0
WRK_GRACE_S = 30.0
TARGET_POLLS_PER_S = 2000.0
TARGET_P99_MS = 50.0
TARGET_RATIO = 3.0


class BenchmarkError(RuntimeError):
    """A server did not start, refused the set-up, or answered a poll wrongly: no figure is reported for it."""


@dataclass
class Result:
    server: str
    devices: int
    ok: bool = False
    error: str | None = None
    polls_per_s: float = 0.0
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    non_2xx: int = 0
    socket_errors: int = 0
    server_cpu_s: float = 0.0
    setup_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


# -- helpers ---------------------------------------------------------------------------------------------------
def _http(method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (and its reaped children) from /proc, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _seconds(hhmmss: str) -> int:
    hours, minutes, seconds = (int(part) for part in hhmmss.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def _device_ids(count: int) -> list[str]:
    # The gateway's controllerIds look like this: stm32-<96-bit unique id as 24 hex digits>.
    return [f"stm32-{index:024x}" for index in range(count)]


def _check_poll(base_url: str, controller_id: str, token: str) -> dict[str, Any]:
    """One poll by hand before the load: it must be a DDI answer, and a wrong token must be refused."""
    url = f"{base_url}/{TENANT}/controller/v1/{controller_id}"
    status, body = _http("GET", url, {"Authorization": f"TargetToken {token}", "Accept": "application/hal+json"})
    if status != 200:
        raise BenchmarkError(f"poll answered {status}: {body[:300]!r}")
    document = json.loads(body)
    sleep = document.get("config", {}).get("polling", {}).get("sleep")
    if not isinstance(sleep, str) or sleep.count(":") != 2:
        raise BenchmarkError(f"poll answer has no config.polling.sleep: {document}")
    wrong, _ = _http("GET", url, {"Authorization": f"TargetToken {secrets.token_hex(16)}"})
    if wrong not in (401, 403):
        raise BenchmarkError(f"a poll with a wrong token answered {wrong}, not 401/403: auth is off")
    return dict(document)


# -- the servers -----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _goosebit(workdir: Path, pairs: list[tuple[str, str]], poll_time: str) -> Iterator[tuple[str, int]]:
    python = find_goosebit()
    if python is None:
        raise BenchmarkError(f"gooseBit venv not found at {goosebit_venv()} (.ci/run creates it)")
    server = GooseBit(python, workdir, device_auth="strict", poll_time=poll_time, log_level="ERROR")
    try:
        server.prepare()
        server.seed_devices(pairs)
        server.start()
    except GooseBitError as error:
        server.stop()
        raise BenchmarkError(str(error)) from error
    try:
        assert server.pid is not None
        yield server.base_url, server.pid
    finally:
        server.stop()


async def _register_stm32ota(base_url: str, admin_token: str, pairs: list[tuple[str, str]]) -> str:
    """Register the devices; ``POST /api/v1/devices/bulk`` in batches where the server has it, else one by one.

    Returns how they were registered ("bulk" or "single").
    """
    import aiohttp

    headers = {"Authorization": f"Bearer {admin_token}"}
    timeout = aiohttp.ClientTimeout(total=REGISTER_TIMEOUT_S)

    async def check(reply: aiohttp.ClientResponse, what: str) -> Any:
        if reply.status != 201:
            raise BenchmarkError(f"registering {what} answered {reply.status}: {(await reply.text())[:300]}")
        return await reply.json()

    async with aiohttp.ClientSession(timeout=timeout) as session:
        first, rest = pairs[:BULK_BATCH], pairs[BULK_BATCH:]
        body = {"devices": [{"controller_id": cid, "token": token} for cid, token in first]}
        async with session.post(f"{base_url}/api/v1/devices/bulk", json=body, headers=headers) as reply:
            bulk = reply.status not in (404, 405)
            if bulk:
                await check(reply, f"{len(first)} devices in bulk")
        if bulk:
            for start in range(0, len(rest), BULK_BATCH):
                batch = rest[start : start + BULK_BATCH]
                body = {"devices": [{"controller_id": cid, "token": token} for cid, token in batch]}
                async with session.post(f"{base_url}/api/v1/devices/bulk", json=body, headers=headers) as reply:
                    await check(reply, f"{len(batch)} devices in bulk")
            return "bulk"

        queue = list(reversed(pairs))

        async def worker() -> None:
            while queue:
                controller_id, token = queue.pop()
                body = {"controller_id": controller_id, "token": token}
                async with session.post(f"{base_url}/api/v1/devices", json=body, headers=headers) as reply:
                    document = await check(reply, controller_id)
                if document.get("token") not in (None, token):
                    raise BenchmarkError(f"the server replaced the token of {controller_id}")

        await asyncio.gather(*(worker() for _ in range(REGISTER_CONCURRENCY)))
        return "single"


@contextlib.contextmanager
def _stm32ota(
    workdir: Path,
    pairs: list[tuple[str, str]],
    tree: Path,
    serve: Sequence[str],
    poll_seconds: int,
    *,
    serve_flags: Sequence[str] = ("--no-access-log",),
) -> Iterator[tuple[str, int]]:
    data = workdir / "data"
    data.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(tree))
    config = workdir / "server.toml"
    config.write_text(f"poll_interval = {poll_seconds}\n")
    log_path = workdir / "stm32ota-serve.log"
    with log_path.open("wb") as server_log:
        process = subprocess.Popen(
            [*serve, "--config", str(config), "--data", str(data), "--listen", "127.0.0.1:0", *serve_flags],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=server_log,
        )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().decode(errors="replace").strip()
        if not first.startswith("http"):
            process.kill()
            process.wait(timeout=10)
            tail = log_path.read_text(errors="replace")[-800:]
            raise BenchmarkError(f"`stm32ota serve` printed {first!r}, not a base URL (exit {process.poll()}): {tail}")
        base_url = first.rstrip("/")
        token_file = data / "admin-token"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not token_file.exists():
            if time.monotonic() > deadline:
                raise BenchmarkError(f"no admin token at {token_file}")
            time.sleep(0.05)
        how = asyncio.run(_register_stm32ota(base_url, token_file.read_text().strip(), pairs))
        log.info("registered %d devices (%s)", len(pairs), how)
        yield base_url, process.pid
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


# -- wrk -------------------------------------------------------------------------------------------------------
def _wrk(
    wrk: str, base_url: str, devices_file: Path, *, threads: int, connections: int, seconds: float
) -> dict[str, Any]:
    env = dict(os.environ, DDI_DEVICES=str(devices_file), DDI_TENANT=TENANT, DDI_THREADS=str(threads))
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA_SCRIPT),
        base_url + "/",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + WRK_GRACE_S, check=False)
    if done.returncode != 0:
        raise BenchmarkError(f"wrk exited {done.returncode}: {done.stderr[-800:]}")
    for line in done.stdout.splitlines():
        if line.startswith("DDI_RESULT "):
            return dict(json.loads(line.removeprefix("DDI_RESULT ")))
    raise BenchmarkError(f"wrk printed no DDI_RESULT line: {done.stdout[-800:]} {done.stderr[-800:]}")


def run_server(
    name: str,
    args: argparse.Namespace,
    wrk: str,
    start: Callable[[Path, list[tuple[str, str]]], contextlib.AbstractContextManager[tuple[str, int]]],
) -> Result:
    result = Result(server=name, devices=args.devices)
    pairs = [(controller_id, secrets.token_hex(16)) for controller_id in _device_ids(args.devices)]
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        workdir = Path(tmp)
        devices_file = workdir / "devices.txt"
        devices_file.write_text("".join(f"{cid} {token}\n" for cid, token in pairs))
        started = time.monotonic()
        try:
            with start(workdir, pairs) as (base_url, pid):
                result.setup_s = time.monotonic() - started
                document = _check_poll(base_url, *pairs[len(pairs) // 2])
                result.extra["poll_answer"] = document
                if args.warmup > 0:
                    _wrk(
                        wrk,
                        base_url,
                        devices_file,
                        threads=args.threads,
                        connections=args.connections,
                        seconds=args.warmup,
                    )
                cpu_before = _cpu_seconds(pid)
                figures = _wrk(
                    wrk,
                    base_url,
                    devices_file,
                    threads=args.threads,
                    connections=args.connections,
                    seconds=args.duration,
                )
                result.server_cpu_s = _cpu_seconds(pid) - cpu_before
        except (BenchmarkError, OSError, subprocess.SubprocessError, json.JSONDecodeError) as error:
            result.error = f"{type(error).__name__}: {error}"
            return result
    result.requests = int(figures["requests"])
    result.seconds = float(figures["seconds"])
    result.non_2xx = int(figures["status_errors"])
    result.socket_errors = sum(
        int(figures[key]) for key in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    good = result.requests - result.non_2xx
    result.polls_per_s = good / result.seconds if result.seconds > 0 else 0.0
    result.p50_ms = figures["p50_us"] / 1000
    result.p90_ms = figures["p90_us"] / 1000
    result.p99_ms = figures["p99_us"] / 1000
    result.max_ms = figures["max_us"] / 1000
    result.extra["wrk"] = figures
    result.ok = result.requests > 0 and result.non_2xx == 0 and result.socket_errors == 0
    if not result.ok:
        result.error = f"{result.non_2xx} non-2xx answers, {result.socket_errors} socket errors"
    return result


def _source() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return "unknown"
    return commit or "unknown"


def print_table(results: Sequence[Result]) -> None:
    print(
        f"{'server':<10} {'devices':>7} {'polls/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        f" {'non-2xx':>8} {'CPU s':>6} {'CPU ms/1k polls':>15}"
    )
    print("-" * 100)
    for r in results:
        if r.error and not r.requests:
            print(f"{r.server:<10} {r.devices:>7}   FAILED: {r.error}")
            continue
        per_k = 1000 * r.server_cpu_s / (r.requests / 1000) if r.requests else 0.0
        print(
            f"{r.server:<10} {r.devices:>7} {r.polls_per_s:>9.0f} {r.p50_ms:>8.2f} {r.p90_ms:>8.2f}"
            f" {r.p99_ms:>8.2f} {r.max_ms:>8.1f} {r.non_2xx:>8} {r.server_cpu_s:>6.1f} {per_k:>15.1f}"
        )
        if r.error:
            print(f"{'':<10} {'':>7}   NOT OK: {r.error}")
    by_name = {r.server: r for r in results}
    ours, peer = by_name.get("stm32ota"), by_name.get("goosebit")
    if ours and ours.ok:
        rate_met = "met" if ours.polls_per_s >= TARGET_POLLS_PER_S else "NOT met"
        p99_met = "met" if ours.p99_ms < TARGET_P99_MS else "NOT met"
        print(f"targets: polls/s >= {TARGET_POLLS_PER_S:.0f}: {rate_met}; p99 < {TARGET_P99_MS:.0f} ms: {p99_met}")
    if ours and peer and ours.ok and peer.ok and peer.polls_per_s > 0:
        ratio = ours.polls_per_s / peer.polls_per_s
        print(
            f"ratio stm32ota / goosebit: {ratio:.2f} x (target >= {TARGET_RATIO:.0f} x:"
            f" {'met' if ratio >= TARGET_RATIO else 'NOT met'})"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated, of {', '.join(SERVERS)}")
    parser.add_argument("--devices", type=int, default=10_000, help="registered devices (default 10000)")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per server (default 15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds before it (default 3; 0: none)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: the server gets a core)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--poll-time", default="00:05:00", help="the poll interval the servers announce")
    parser.add_argument("--server-tree", type=Path, default=REPO, help="source tree `stm32ota serve` runs from")
    parser.add_argument(
        "--serve-command",
        default=f"{shlex.quote(sys.executable)} -m protocol serve",
        help="how to start our server (--config/--data/--listen are appended; default: %(default)s)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = sorted(set(servers) - set(SERVERS))
    if unknown:
        parser.error(f"unknown server(s): {', '.join(unknown)} (known: {', '.join(SERVERS)})")
    if args.devices < 1 or args.duration <= 0 or args.threads < 1 or args.connections < args.threads:
        parser.error("--devices and --duration must be positive, --connections at least --threads")
    args.servers = servers
    args.serve_command = shlex.split(args.serve_command)
    try:
        _seconds(args.poll_time)
    except ValueError:
        parser.error(f"--poll-time must be HH:MM:SS, not {args.poll_time!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    starters: dict[str, Callable[[Path, list[tuple[str, str]]], contextlib.AbstractContextManager[tuple[str, int]]]]
    starters = {
        "goosebit": lambda workdir, pairs: _goosebit(workdir, pairs, args.poll_time),
        "stm32ota": lambda workdir, pairs: _stm32ota(
            workdir, pairs, args.server_tree.resolve(), args.serve_command, _seconds(args.poll_time)
        ),
    }
    results = []
    for name in args.servers:
        print(
            f"# {name}: {args.devices} devices, wrk -t{args.threads} -c{args.connections}, "
            f"{args.warmup:g} s warm-up + {args.duration:g} s",
            file=sys.stderr,
            flush=True,
        )
        results.append(run_server(name, args, wrk, starters[name]))
    print_table(results)
    if args.json:
        document = {
            "benchmark": "server",
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "source": _source(),
            "server_tree": str(args.server_tree.resolve()),
            "serve_command": args.serve_command,
            "settings": {
                "devices": args.devices,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "threads": args.threads,
                "connections": args.connections,
            },
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
