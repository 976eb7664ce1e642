"""``stm32ota emulate``: an emulated STM32 on a virtual serial port, until SIGINT/SIGTERM.

The first line on stdout is what the host opens (a pty path, or ``socket://127.0.0.1:PORT`` with
``--socket``), so scripts can do ``PORT=$(stm32ota emulate ... | head -1)``.  Everything else goes to stderr
through logging.  On SIGINT/SIGTERM the emulator stops and flushes its state folder.

This module stays light: heavy imports happen inside the handler.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["cmd_emulate", "register"]

_CHIP_NAMES = ("stm32f407vg", "stm32f103c8", "stm32l476rg")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "emulate",
        help="run an emulated STM32 bootloader on a virtual serial port (prints the port first)",
        description="Run an emulated STM32 on a pty (or socket://).  The first line on stdout is the port to "
        "open.  Runs until SIGINT/SIGTERM, then flushes its state folder.",
    )
    p.add_argument(
        "--mode",
        choices=("ota", "iap"),
        default="ota",
        help="ota: stm32ota bootloader (default); iap: ST's AN4657 IAP menu with YMODEM",
    )
    p.add_argument("--chip", default="stm32f407vg", metavar="NAME", help=f"one of {', '.join(_CHIP_NAMES)}")
    p.add_argument("--baud", type=int, default=115200, help="initial line rate; 0 = unthrottled (default 115200)")
    p.add_argument("--no-pacing", action="store_true", help="do not throttle the line to the baud rate")
    p.add_argument("--latency-ms", type=float, default=0.0, help="turnaround latency per burst (USB-UART: 1-16)")
    p.add_argument("--rx-buffer", type=int, default=None, metavar="BYTES", help="device UART RX ring size")
    p.add_argument("--state", default=None, metavar="DIR", help="state folder (default: a new temp folder)")
    p.add_argument(
        "--trust",
        action="append",
        default=None,
        metavar="KEY.pem",
        help="trusted public key (repeatable; default: the dev key in assets/keys/)",
    )
    p.add_argument(
        "--enc-key",
        default=None,
        metavar="ENC_KEY.pem",
        help="ota mode: the private key the bootloader decrypts images with (X25519, P-256 or RSA-2048; kept in"
        " the state folder; imgtool sign -E takes its public half)",
    )
    p.add_argument(
        "--faults",
        default=None,
        metavar="SPEC",
        help="e.g. flip=1e-4,drop=0.001,noise=5s:32,reset-after=10000,powercut-op=123,"
        "powercut-at=2.5,mute-after=4096 (see docs/emulator.md)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for the faults (default 0)")
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="flash timing factor: 1 = datasheet times (default), 0 = instant",
    )
    p.add_argument(
        "--socket",
        type=int,
        default=None,
        metavar="PORT",
        help="serve socket://127.0.0.1:PORT instead of a pty (0 = any free port)",
    )
    p.add_argument(
        "--iap-quirks",
        default="all",
        metavar="LIST",
        help="IAP quirks to keep: all, none, or a comma list of "
        "erase-before-ack,ack-first-eot,nak-duplicates,five-errors,write-padding",
    )
    p.add_argument(
        "--no-auto-confirm",
        dest="auto_confirm",
        action="store_false",
        help="ota mode: the application never confirms a test image (the next reset reverts it)",
    )
    p.add_argument(
        "--no-fsync",
        dest="durable",
        action="store_false",
        help="do not fsync each flash commit (a killed emulator still loses nothing; a host crash might)",
    )
    p.set_defaults(handler="emulator.cli:cmd_emulate")


def cmd_emulate(args: argparse.Namespace) -> int:
    import logging
    import signal
    import sys
    import threading

    from .build import build_device
    from .faults import parse_faults

    log = logging.getLogger("emulator.cli")
    plan = parse_faults(args.faults, seed=args.seed)
    device = build_device(
        mode=args.mode,
        chip=args.chip,
        baud=args.baud,
        pacing=not args.no_pacing,
        latency_s=args.latency_ms / 1000.0,
        rx_buffer=args.rx_buffer,
        state_dir=args.state,
        trusted_keys=args.trust,
        faults=plan,
        time_scale=args.time_scale,
        socket_port=args.socket,
        iap_quirks=args.iap_quirks,
        auto_confirm=args.auto_confirm,
        durable=args.durable,
        enc_key=args.enc_key,
    )
    stop = threading.Event()
    received: list[int] = []

    def _on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        device.start()
        sys.stdout.write(device.line.url + "\n")
        sys.stdout.flush()
        log.warning(
            "emulating %s (%s mode) on %s at %s baud; state in %s",
            device.chip.name,
            args.mode,
            device.line.url,
            args.baud if args.baud else "unthrottled",
            device.state_dir,
        )
        while not stop.wait(0.2):
            if not device.running or device.crash is not None:
                break
    finally:
        device.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    stats = device.line.stats
    log.warning(
        "stopped%s: %d boots, %d power cuts, %d bytes in, %d bytes out, %d overrun; state flushed to %s",
        f" by signal {received[0]}" if received else "",
        device.boots,
        device.power_cuts,
        stats.rx_bytes,
        stats.tx_bytes,
        stats.overruns,
        device.state_dir,
    )
    device.raise_if_crashed()
    return 0
