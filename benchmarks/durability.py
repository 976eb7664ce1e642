"""What the emulator's non-volatile flash costs: a 252 KiB update at emulated 921600 baud, durable vs not.

The emulator commits every flash erase and program to its state folder before the operation returns
(``pwrite`` of the changed range, then ``fdatasync``), and ``state.json`` atomically whenever it changed, so
``kill -9`` is a power cut.  ``--no-fsync`` keeps the write-through but skips the syncs (the OS has every write
at once: a killed emulator still loses nothing, a crash of the host machine might).  This script runs the same
update both ways against a subprocess emulator (``stm32ota emulate``) and prints the seconds and the ratio
durable / no-fsync for:

``data``  the data phase of our update protocol (BEGIN accepted -> END reply: every byte programmed), raw
``e2e``   the whole ``flash_image`` flow (INFO ... transfer, verify, activate, reboot with the swap, confirm)

at flash time scale 0 (instant flash: the syncs are all the device's flash time there is) and 1 (datasheet
times: a commit is part of the operation's typical time, so it should vanish).  Runs alternate between the
modes, and each figure is the median of ``--repeat`` runs.

Usage::

    python benchmarks/durability.py                   # 3 repeats, time scales 0 and 1 (about 4 minutes)
    python benchmarks/durability.py --repeat 1 --time-scale 0 --image assets/firmware/demo-1.1.0.signed.bin
    python benchmarks/durability.py --json durability.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from emulator.demo import factory_program  # noqa: E402
from protocol.drivers.link import SerialLink  # noqa: E402
from protocol.flow import FlashOptions, flash_image, read_info  # noqa: E402
from protocol.sansio import Event  # noqa: E402
from protocol.update import HostConnection, TransferComplete, TransferStarted  # noqa: E402

FIRMWARE = REPO / "assets" / "firmware"
DEFAULT_IMAGE = FIRMWARE / "demo-big-1.2.0.signed.bin"
FACTORY_IMAGE = FIRMWARE / "demo-1.0.0.signed.bin"
BAUD = 921600
LATENCY_MS = 2.0
MODES = ("durable", "no-fsync")
KINDS = ("data", "e2e")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


@contextlib.contextmanager
def _emulator(state: Path, time_scale: float, durable: bool) -> Iterator[str]:
    args = [sys.executable, "-m", "protocol", "emulate", "--mode", "ota", "--baud", str(BAUD)]
    args += ["--latency-ms", str(LATENCY_MS), "--time-scale", str(time_scale), "--state", str(state)]
    if not durable:
        args.append("--no-fsync")
    log = state.parent / f"{state.name}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, cwd=REPO, env={**os.environ})
    try:
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(proc.stdout.readline() if proc.stdout else b""))
        reader.start()
        reader.join(START_TIMEOUT_S)
        port = got[0].decode().strip() if got else ""
        if not port:
            raise RuntimeError(f"the emulator did not start: {log.read_text(errors='replace')[-500:]}")
        yield port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _data_phase(port: str, image: bytes) -> float:
    clock = time.monotonic
    marks: dict[str, float] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, TransferStarted):
            marks["started"] = clock()

    with SerialLink(port, BAUD) as link:
        host = HostConnection(baud=BAUD)
        link.execute(read_info(host, clock))
        host.begin_transfer(image, slot=1, compress=False)
        event = link.run(host, until=lambda e: isinstance(e, TransferComplete), on_event=on_event)
        assert isinstance(event, TransferComplete)
    return clock() - marks["started"]


def _end_to_end(port: str, image: bytes) -> float:
    clock = time.monotonic
    with SerialLink(port, BAUD) as link:
        started = clock()
        options = FlashOptions(protocol="ota", compress=False, baud=BAUD)
        link.execute(flash_image(image, options, on_event=lambda _e: None, clock=clock))
    return clock() - started


def run_once(kind: str, mode: str, time_scale: float, image: bytes, workdir: Path) -> float:
    state = Path(tempfile.mkdtemp(prefix=f"{kind}-{mode}-", dir=workdir))
    factory_program(state, FACTORY_IMAGE.read_bytes())
    with _emulator(state, time_scale, durable=mode == "durable") as port:
        return _data_phase(port, image) if kind == "data" else _end_to_end(port, image)


def measure(
    image: bytes, time_scales: Sequence[float], repeat: int, kinds: Sequence[str], out: Callable[[str], None]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="stm32ota-durability-") as tmp:
        for scale in time_scales:
            for kind in kinds:
                runs: dict[str, list[float]] = {mode: [] for mode in MODES}
                for _ in range(repeat):
                    for mode in MODES:  # alternate, so a change in machine load hits both alike
                        runs[mode].append(run_once(kind, mode, scale, image, Path(tmp)))
                durable, plain = (statistics.median(runs[m]) for m in MODES)
                row = {
                    "kind": kind,
                    "time_scale": scale,
                    "durable_s": round(durable, 4),
                    "no_fsync_s": round(plain, 4),
                    "ratio": round(durable / plain, 4),
                    "runs": {m: [round(x, 4) for x in runs[m]] for m in MODES},
                }
                rows.append(row)
                out(
                    f"{kind:5} time scale {scale:g}: durable {durable:7.3f} s, no-fsync {plain:7.3f} s,"
                    f" ratio {durable / plain:.3f}"
                )
    return rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="signed image to deliver")
    p.add_argument("--time-scale", type=float, action="append", default=None, help="repeatable (default 0, 1)")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    p.add_argument("--kinds", default=",".join(KINDS), help="data, e2e or both")
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None, *, out: Callable[[str], None] = print) -> int:
    args = parse_args(argv)
    image = args.image.read_bytes()
    scales = args.time_scale if args.time_scale else [0.0, 1.0]
    kinds = [k for k in args.kinds.split(",") if k]
    out(f"{args.image.name}: {len(image)} bytes at {BAUD} baud, {LATENCY_MS:g} ms latency, F407")
    rows = measure(image, scales, max(1, args.repeat), kinds, out)
    if args.json is not None:
        args.json.write_text(json.dumps({"image": args.image.name, "baud": BAUD, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
