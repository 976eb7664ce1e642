"""``stm32ota demo``: the README's first command."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "demo",
        help="update an emulated STM32F407 from demo 1.0.0 to 1.1.0 through the whole flow",
        description="Starts an emulated STM32F407VG running the signed demo firmware 1.0.0, then updates it to "
        "1.1.0 the way `stm32ota flash` updates a real board: info, transfer, verify, activate, reboot, "
        "confirm, showing the device's own log lines.  Needs nothing but this package.",
    )
    p.add_argument("-b", "--baud", type=int, default=115200, help="emulated line rate (default 115200)")
    p.add_argument("--latency-ms", type=float, default=2.0, help="USB-UART turnaround latency (default 2)")
    p.add_argument("--time-scale", type=float, default=1.0, help="flash timing: 1 = datasheet (default), 0 = instant")
    p.add_argument("--image", default=None, help="update to this signed image instead of demo 1.1.0")
    p.add_argument("--state", default=None, metavar="DIR", help="keep the emulated device's state here")
    p.add_argument("--compress", dest="compress", action="store_true", default=None, help="force deflate")
    p.add_argument("--no-compress", dest="compress", action="store_false", help="never compress")
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    p.add_argument("--local", action="store_true", help="only the single-device flow (no server, no gateway)")
    p.set_defaults(handler="relay.gateway.demo:cmd_demo")  # the full demo; --local hands over to emulator.demo
