"""Issue #4's delivery benchmark: how close each sender gets to the line's limit on the emulated STM32.

For every baud rate x latency x flash time scale it delivers the big demo image and prints each run as a fraction
of the line limit: ``image bytes / (baud / 10) / seconds`` (8N1: ten bits per byte).  Above 1.0 means more image
bytes arrived than the line could have carried raw (compression).

Runs ("kinds"):

``flash-raw``      our update protocol into ``--mode ota``, data phase only, no compression
``flash-deflate``  the same with deflate
``flash-e2e``      the whole ``stm32ota flash`` flow (INFO, transfer with deflate, verify, activate, reboot with
                   the bootloader's swap, confirm); only with real flash timings unless ``--e2e-all``
``flash-e2e-used`` the same, but the secondary slot still holds a previous 252 KiB build (as after an earlier
                   update), so the chip must erase it: the brief's fresh chip has an erased secondary slot
``send``           our YMODEM sender (``protocol.ymodem.YmodemSender`` on a ``SerialLink``) into ``--mode iap``
``sb``             lrzsz ``sb --ymodem`` with stdin/stdout on the pty, into ``--mode iap`` (lrzsz's default:
                   128-byte blocks)
``sb-1k``          the same with ``-k`` (1024-byte blocks, as AN4657's own instructions and most terminals send)
``ymodem``         the PyPI ``ymodem`` package (``ModemSocket.send``) into ``--mode iap``

Timing:

* ``flash-raw``/``flash-deflate``: from the device's BEGIN acceptance (``TransferStarted``) to
  ``TransferComplete`` (the END reply: every byte is programmed).  ``begin_seconds`` in the JSON also counts the
  BEGIN round trip (on the F407 the slot is erased before BEGIN is answered).
* ``flash-e2e``: the whole ``flash_image`` flow, INFO to the confirmed image reporting back.
* IAP senders: the sender is already listening when '1' is pressed on the menu; the clock runs from pressing
  '1' to the sender's end (the final ACK of the empty batch header).  That includes the IAP's ~58-byte
  "Waiting for the file" line and its first 'C' (and, at time scale 1, its erase of the application area).

Every run is checked: the slot / the application area holds the image afterwards, or the run is marked failed.

The emulator runs as a subprocess (``stm32ota emulate``) by default: in one Python process the emulator's pacing
threads and the host compete for the GIL, which costs throughput that real hardware would not lose
(``--emulator inprocess`` to compare).

Usage::

    python benchmarks/delivery.py                       # the full matrix (about 15-20 minutes)
    python benchmarks/delivery.py --quick               # 921600 baud, 2 ms, time scale 0
    python benchmarks/delivery.py --baud 115200 --latency 2 --time-scale 0 --kinds flash-raw,sb --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import serial

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

from emulator.chips import CHIPS  # noqa: E402
from emulator.demo import factory_program  # noqa: E402
from emulator.iap import IAP_APP_ADDRESS  # noqa: E402
from protocol.drivers.link import SerialLink  # noqa: E402
from protocol.flow import FlashOptions, flash_image, read_info  # noqa: E402
from protocol.sansio import Event  # noqa: E402
from protocol.update.events import TransferComplete, TransferStarted  # noqa: E402
from protocol.update.host import HostConnection  # noqa: E402
from protocol.ymodem import BatchComplete, YmodemFile, YmodemSender  # noqa: E402

FIRMWARE = REPO / "assets" / "firmware"
OTA_IMAGE = FIRMWARE / "demo-big-1.2.0.signed.bin"
IAP_IMAGE = FIRMWARE / "demo-big-1.2.0.bin"
FACTORY_IMAGE = FIRMWARE / "demo-1.0.0.signed.bin"
CHIP = "stm32f407vg"
SECONDARY_SLOT = 1

BAUDS = (115200, 921600)
LATENCIES_MS = (0.0, 2.0, 10.0)
TIME_SCALES = (0.0, 1.0)
KINDS = ("flash-raw", "flash-deflate", "flash-e2e", "flash-e2e-used", "send", "sb", "sb-1k", "ymodem")
BITS_PER_BYTE = 10  # 8N1

EMULATOR_START_TIMEOUT_S = 20.0
EMULATOR_STOP_TIMEOUT_S = 20.0
SETTLE_QUIET_S = 0.3  # the IAP banner has drained once the port was quiet this long
SETTLE_MAX_S = 5.0
SENDER_LISTEN_S = 0.3  # head start for a sender process before '1' is pressed
RUN_TIMEOUT_FLOOR_S = 120.0  # a run may take this long, plus 4x its line time, before it counts as hung
MENU_KEY_DOWNLOAD = b"1"
EMULATOR_LOG_TAIL_LINES = 15  # of a failed run, kept in the JSON
PYPI_YMODEM_LOGGER = "ModemSocket"  # the PyPI ymodem package logs each retransmission there


@dataclass
class RunConfig:
    kind: str
    baud: int
    latency_ms: float
    time_scale: float

    @property
    def label(self) -> str:
        return f"{self.kind} @ {self.baud} baud, {self.latency_ms:g} ms, time scale {self.time_scale:g}"


@dataclass
class RunResult:
    kind: str
    baud: int
    latency_ms: float
    time_scale: float
    emulator: str
    image: str
    image_bytes: int
    ok: bool
    seconds: float | None = None
    fraction: float | None = None  # image bytes / (baud / 10) / seconds
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def line_fraction(image_bytes: int, baud: int, seconds: float) -> float:
    """Image bytes delivered per second, as a fraction of what the line carries raw."""
    return image_bytes / (baud / BITS_PER_BYTE) / seconds


# -- the emulator -----------------------------------------------------------------------------------------------


@dataclass
class _Emulator:
    port: str
    state_dir: Path


@contextlib.contextmanager
def _subprocess_emulator(
    mode: str, baud: int, latency_ms: float, time_scale: float, state_dir: Path
) -> Iterator[_Emulator]:
    log_path = state_dir.parent / f"{state_dir.name}.emulator.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "protocol",
                "emulate",
                "--mode",
                mode,
                "--chip",
                CHIP,
                "--baud",
                str(baud),
                "--latency-ms",
                str(latency_ms),
                "--time-scale",
                str(time_scale),
                "--state",
                str(state_dir),
            ],
            stdout=subprocess.PIPE,
            stderr=log_file,
            cwd=REPO,
        )
        try:
            assert proc.stdout is not None
            port = _first_line(proc, EMULATOR_START_TIMEOUT_S)
            if not port:
                raise RuntimeError(f"the emulator did not start: {log_path.read_text(errors='replace')[-500:]}")
            yield _Emulator(port=port, state_dir=state_dir)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(EMULATOR_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _first_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    got: list[bytes] = []

    def read() -> None:
        assert proc.stdout is not None
        got.append(proc.stdout.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return got[0].decode().strip() if got else ""


@contextlib.contextmanager
def _inprocess_emulator(
    mode: str, baud: int, latency_ms: float, time_scale: float, state_dir: Path
) -> Iterator[_Emulator]:
    from emulator.testing import running_emulator

    with running_emulator(
        mode=mode, chip=CHIP, baud=baud, latency_ms=latency_ms, time_scale=time_scale, state_dir=state_dir
    ) as emu:
        yield _Emulator(port=emu.port, state_dir=state_dir)


def _emulator(how: str, mode: str, cfg: RunConfig, state_dir: Path) -> contextlib.AbstractContextManager[_Emulator]:
    start = _subprocess_emulator if how == "subprocess" else _inprocess_emulator
    return start(mode, cfg.baud, cfg.latency_ms, cfg.time_scale, state_dir)


def _emulator_log_tail(state_dir: Path, lines: int = EMULATOR_LOG_TAIL_LINES) -> list[str]:
    """The last lines the subprocess emulator logged (for a failed run's JSON record)."""
    path = state_dir.parent / f"{state_dir.name}.emulator.log"
    if not path.is_file():
        return []
    return path.read_text(errors="replace").splitlines()[-lines:]


def _fill_secondary(state_dir: Path, data: bytes) -> None:
    """Put ``data`` at the start of the secondary slot of a factory-programmed chip (its trailer stays erased,
    so the bootloader sees no pending image): what an earlier update leaves there."""
    chip = CHIPS[CHIP]
    path = state_dir / "flash.bin"
    flash = bytearray(path.read_bytes())
    offset = chip.layout.secondary[0] - chip.flash_base
    flash[offset : offset + len(data)] = data
    path.write_bytes(bytes(flash))


def _flash_region(state_dir: Path, address: int, size: int) -> bytes:
    """What the stopped emulator's flash holds at ``address`` (read from its state folder)."""
    chip = CHIPS[CHIP]
    data = (state_dir / "flash.bin").read_bytes()
    offset = address - chip.flash_base
    return data[offset : offset + size]


# -- OTA runs ---------------------------------------------------------------------------------------------------


def _ota_data_phase(port: str, baud: int, image: bytes, compress: bool) -> dict[str, Any]:
    clock = time.monotonic
    marks: dict[str, float] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, TransferStarted):
            marks["started"] = clock()

    with SerialLink(port, baud) as link:
        host = HostConnection(baud=baud)
        link.execute(read_info(host, clock))
        begin = clock()
        host.begin_transfer(image, slot=SECONDARY_SLOT, compress=compress)
        event = link.run(host, until=lambda e: isinstance(e, TransferComplete), on_event=on_event)
        end = clock()
    assert isinstance(event, TransferComplete)
    started = marks.get("started", begin)
    return {
        "seconds": end - started,
        "begin_seconds": end - begin,
        "wire_bytes": event.wire_bytes,
        "payload_bytes": event.payload_bytes,
        "retransmits": event.retransmits,
    }


def _ota_end_to_end(port: str, baud: int, image: bytes) -> dict[str, Any]:
    clock = time.monotonic
    with SerialLink(port, baud) as link:
        begin = clock()
        result = link.execute(
            flash_image(image, FlashOptions(protocol="ota", baud=baud), on_event=lambda _e: None, clock=clock)
        )
        end = clock()
    after = result.info_after
    running = after.slots[0].version_text if after is not None and after.slots else "?"
    return {
        "seconds": end - begin,
        "wire_bytes": result.wire_bytes,
        "retransmits": result.retransmits,
        "compressed": result.compressed,
        "running_after": running,
        "phases": {p.phase: round(p.seconds, 3) for p in result.phases},
    }


def _new_result(cfg: RunConfig, how: str, path: Path, image: bytes) -> RunResult:
    """A not-yet-successful result for one run of ``cfg`` delivering ``image`` (read from ``path``)."""
    return RunResult(
        kind=cfg.kind,
        baud=cfg.baud,
        latency_ms=cfg.latency_ms,
        time_scale=cfg.time_scale,
        emulator=how,
        image=path.name,
        image_bytes=len(image),
        ok=False,
    )


def run_ota(cfg: RunConfig, how: str, ota_image: Path, workdir: Path) -> RunResult:
    image = ota_image.read_bytes()
    result = _new_result(cfg, how, ota_image, image)
    state_dir = Path(tempfile.mkdtemp(prefix="ota-", dir=workdir))
    factory_program(state_dir, FACTORY_IMAGE.read_bytes(), CHIP)
    if cfg.kind == "flash-e2e-used":
        _fill_secondary(state_dir, IAP_IMAGE.read_bytes())
    try:
        with _emulator(how, "ota", cfg, state_dir) as emu:
            if cfg.kind.startswith("flash-e2e"):
                extra = _ota_end_to_end(emu.port, cfg.baud, image)
            else:
                extra = _ota_data_phase(emu.port, cfg.baud, image, compress=cfg.kind == "flash-deflate")
    except Exception as err:  # a benchmark reports a failed run and goes on with the matrix
        result.error = f"{type(err).__name__}: {err}"
        result.extra["emulator_log"] = _emulator_log_tail(state_dir)
        return result
    seconds = float(extra.pop("seconds"))
    chip = CHIPS[CHIP]
    slot_start = chip.layout.primary[0] if cfg.kind.startswith("flash-e2e") else chip.layout.secondary[0]
    if _flash_region(state_dir, slot_start, len(image)) != image:
        result.error = "the slot does not hold the image afterwards"
    else:
        result.ok = True
    result.seconds = seconds
    result.fraction = line_fraction(len(image), cfg.baud, seconds)
    result.extra = extra
    return result


# -- IAP runs ---------------------------------------------------------------------------------------------------


def _settle(port: serial.SerialBase) -> bytes:
    """Read until the IAP's boot banner and menu have drained (the port stayed quiet for a moment)."""
    got = bytearray()
    end = time.monotonic() + SETTLE_MAX_S
    quiet_since = time.monotonic()
    port.timeout = 0.05
    while time.monotonic() < end and time.monotonic() - quiet_since < SETTLE_QUIET_S:
        chunk = port.read(4096)
        if chunk:
            got += chunk
            quiet_since = time.monotonic()
    return bytes(got)


def _send_ours(port_name: str, baud: int, image: bytes) -> float:
    with SerialLink(port_name, baud) as link:
        _settle(link.port)
        sender = YmodemSender([YmodemFile(name="demo-big.bin", data=image)])
        start = time.monotonic()
        link.write(MENU_KEY_DOWNLOAD)
        link.run(sender, until=lambda e: isinstance(e, BatchComplete))
        return time.monotonic() - start


class _CountingHandler(logging.Handler):
    """Counts the PyPI package's warnings (its retransmissions) instead of letting them scroll past."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _send_pypi(port_name: str, baud: int, image_path: Path, extra: dict[str, Any]) -> float:
    from ymodem.Socket import ModemSocket

    package_log = logging.getLogger(PYPI_YMODEM_LOGGER)
    counter = _CountingHandler()
    package_log.addHandler(counter)
    package_log.propagate = False
    try:
        return _send_pypi_counted(port_name, baud, image_path, ModemSocket)
    finally:
        package_log.removeHandler(counter)
        package_log.propagate = True
        extra["package_warnings"] = len(counter.messages)
        if counter.messages:
            extra["package_last_message"] = counter.messages[-1]


def _send_pypi_counted(port_name: str, baud: int, image_path: Path, modem_socket: Any) -> float:

    with serial.Serial(port_name, baud, timeout=1, exclusive=True) as port:
        _settle(port)

        def read(size: int, timeout: float | None = 1) -> bytes:
            port.timeout = timeout
            return bytes(port.read(size))

        def write(data: bytes | bytearray, timeout: float | None = 1) -> None:
            port.write_timeout = timeout
            port.write(data)
            port.flush()

        modem = modem_socket(read, write, packet_size=1024)
        start = time.monotonic()
        port.write(MENU_KEY_DOWNLOAD)
        if not modem.send([str(image_path)]):
            raise RuntimeError("the ymodem package reported a failed send")
        return time.monotonic() - start


def _send_sb(port_name: str, baud: int, image_path: Path, timeout: float, *, one_k: bool) -> float:
    sb = shutil.which("sb")
    if sb is None:
        raise RuntimeError("lrzsz `sb` is not installed (apt-get install lrzsz)")
    with serial.Serial(port_name, baud, timeout=0.05, exclusive=False) as term:
        _settle(term)
        fd = os.open(port_name, os.O_RDWR | os.O_NOCTTY)
        try:
            proc = subprocess.Popen(
                [sb, "--ymodem", *(["-k"] if one_k else []), "-q", str(image_path)],
                stdin=fd,
                stdout=fd,
                stderr=subprocess.PIPE,
            )
        finally:
            os.close(fd)
        time.sleep(SENDER_LISTEN_S)  # sb is waiting for the receiver's 'C'
        start = time.monotonic()
        term.write(MENU_KEY_DOWNLOAD)
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"sb exited with {proc.returncode}: {stderr.decode(errors='replace').strip()}")
    return seconds


def run_iap(cfg: RunConfig, how: str, iap_image: Path, workdir: Path) -> RunResult:
    image = iap_image.read_bytes()
    result = _new_result(cfg, how, iap_image, image)
    state_dir = Path(tempfile.mkdtemp(prefix="iap-", dir=workdir))
    timeout = RUN_TIMEOUT_FLOOR_S + 4 * len(image) * BITS_PER_BYTE / cfg.baud
    extra: dict[str, Any] = {}
    result.extra = extra
    try:
        with _emulator(how, "iap", cfg, state_dir) as emu:
            if cfg.kind == "send":
                seconds = _send_ours(emu.port, cfg.baud, image)
            elif cfg.kind in ("sb", "sb-1k"):
                seconds = _send_sb(emu.port, cfg.baud, iap_image, timeout, one_k=cfg.kind == "sb-1k")
            else:
                seconds = _send_pypi(emu.port, cfg.baud, iap_image, extra)
    except Exception as err:  # a benchmark reports a failed run and goes on with the matrix
        result.error = f"{type(err).__name__}: {err}"
        result.extra["emulator_log"] = _emulator_log_tail(state_dir)
        return result
    result.seconds = seconds
    result.fraction = line_fraction(len(image), cfg.baud, seconds)
    if _flash_region(state_dir, IAP_APP_ADDRESS[CHIP], len(image)) != image:
        result.error = "the application area does not hold the image afterwards"
    else:
        result.ok = True
    return result


# -- the matrix -------------------------------------------------------------------------------------------------


def build_matrix(
    bauds: Sequence[int],
    latencies: Sequence[float],
    time_scales: Sequence[float],
    kinds: Sequence[str],
    *,
    e2e_all: bool = False,
) -> list[RunConfig]:
    configs: list[RunConfig] = []
    for time_scale in time_scales:
        for baud in bauds:
            for latency in latencies:
                for kind in kinds:
                    if kind.startswith("flash-e2e") and time_scale == 0 and not e2e_all:
                        continue
                    configs.append(RunConfig(kind=kind, baud=baud, latency_ms=latency, time_scale=time_scale))
    return configs


def run_one(cfg: RunConfig, how: str, ota_image: Path, iap_image: Path, workdir: Path) -> RunResult:
    if cfg.kind.startswith("flash"):
        return run_ota(cfg, how, ota_image, workdir)
    return run_iap(cfg, how, iap_image, workdir)


def format_table(results: Sequence[RunResult]) -> str:
    """One row per (time scale, kind, baud); one column per latency: fraction of the line limit (seconds)."""
    latencies = sorted({r.latency_ms for r in results})
    head = f"{'time scale':>10}  {'kind':<14} {'baud':>7}  " + "  ".join(f"{f'{lat:g} ms':>16}" for lat in latencies)
    lines = [head, "-" * len(head)]
    keys: list[tuple[float, str, int]] = []
    for r in results:
        key = (r.time_scale, r.kind, r.baud)
        if key not in keys:
            keys.append(key)
    for time_scale, kind, baud in keys:
        cells = []
        for lat in latencies:
            match = [
                r for r in results if (r.time_scale, r.kind, r.baud, r.latency_ms) == (time_scale, kind, baud, lat)
            ]
            if not match:
                cells.append(f"{'':>16}")
            elif not match[0].ok or match[0].fraction is None or match[0].seconds is None:
                cells.append(f"{'FAILED':>16}")
            else:
                cells.append(f"{match[0].fraction:>6.3f} ({match[0].seconds:6.2f}s)")
        lines.append(f"{time_scale:>10g}  {kind:<14} {baud:>7}  " + "  ".join(cells))
    return "\n".join(lines)


def source_version() -> str:
    """The commit the emulator and the senders run from, with ``+dirty`` when their files have local edits
    (other people commit while a long matrix runs; each run records what it measured)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "emulator", "protocol"],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    return kinds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--baud", type=_ints, default=list(BAUDS), help="comma list (default 115200,921600)")
    p.add_argument("--latency", type=_floats, default=list(LATENCIES_MS), help="ms, comma list (default 0,2,10)")
    p.add_argument("--time-scale", type=_floats, default=list(TIME_SCALES), help="comma list (default 0,1)")
    p.add_argument("--kinds", type=_kinds, default=list(KINDS), help=f"comma list of {', '.join(KINDS)}")
    p.add_argument("--quick", action="store_true", help="921600 baud, 2 ms, time scale 0 only")
    p.add_argument("--e2e-all", action="store_true", help="also run flash-e2e at time scale 0")
    p.add_argument("--emulator", choices=("subprocess", "inprocess"), default="subprocess")
    p.add_argument("--ota-image", type=Path, default=OTA_IMAGE, help="signed image for the OTA runs")
    p.add_argument("--iap-image", type=Path, default=IAP_IMAGE, help="raw application for the IAP runs")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.baud, args.latency, args.time_scale = [921600], [2.0], [0.0]
    return args


def main(argv: Sequence[str] | None = None, *, out: Callable[[str], None] = print) -> int:
    args = parse_args(argv)
    configs = build_matrix(args.baud, args.latency, args.time_scale, args.kinds, e2e_all=args.e2e_all)
    results: list[RunResult] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stm32ota-bench-") as tmp:
        for n, cfg in enumerate(configs, 1):
            version = source_version()
            result = run_one(cfg, args.emulator, args.ota_image, args.iap_image, Path(tmp))
            result.extra["source"] = version
            results.append(result)
            status = (
                f"{result.fraction:.3f} of the line ({result.seconds:.2f} s)"
                if result.ok and result.fraction is not None and result.seconds is not None
                else f"FAILED: {result.error}"
            )
            out(f"[{n}/{len(configs)}] {cfg.label}: {status}")
    out("")
    out(
        "fraction of the line limit = image bytes / (baud/10) / seconds  "
        f"(OTA image {args.ota_image.name}, IAP image {args.iap_image.name}, emulator {args.emulator})"
    )
    out(format_table(results))
    if args.json is not None:
        document = {
            "benchmark": "delivery",
            "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "emulator": args.emulator,
            "elapsed_s": round(time.monotonic() - started, 1),
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
