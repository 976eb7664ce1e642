"""``stm32ota gateway``: the field gateway (run it), and ``stm32ota gateway status``.  Handlers load lazily."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]

_HANDLERS = "relay.gateway.commands"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "gateway",
        help="relay a DDI server's updates (our server, hawkBit, gooseBit) to the STM32s on this box's UARTs",
        description="Runs until SIGINT/SIGTERM: one DDI controller per device (stm32-<uid>), every port at once, "
        "results journalled so that none is lost.  See docs/gateway.md.  `stm32ota gateway status` shows a "
        "running gateway's ports.",
    )
    p.add_argument("--config", default=None, metavar="FILE", help="TOML configuration (flags override it)")
    p.add_argument("--server", default=None, metavar="URL", help="the DDI server's base URL")
    p.add_argument("--tenant", default=None, help="DDI tenant (default DEFAULT)")
    p.add_argument("--gateway-token", default=None, metavar="T", help="GatewayToken for every device")
    p.add_argument(
        "--target-token",
        action="append",
        default=[],
        metavar="CID=TOKEN",
        help="a device's own TargetToken (repeatable)",
    )
    p.add_argument("-p", "--port", action="append", default=[], metavar="URL", help="serial port (repeatable)")
    p.add_argument(
        "--usb",
        action="append",
        default=[],
        metavar="VID:PID[,SERIAL]",
        help="every USB serial adapter with this id (e.g. 0483:5740), plugged in now or later (repeatable)",
    )
    p.add_argument(
        "--port-glob",
        action="append",
        default=[],
        metavar="PATTERN",
        help="every port path that matches, now or later, e.g. '/dev/serial/by-id/usb-STMicro*' (repeatable)",
    )
    p.add_argument("-b", "--baud", type=int, default=None, help="line rate of every port (default 115200)")
    p.add_argument("--trusted-key", action="append", default=[], metavar="PUB.pem", help="check signatures with it")
    p.add_argument("--state", default=None, metavar="DIR", help="artifact cache and journal folder")
    p.add_argument(
        "--listen", default=None, metavar="HOST:PORT", help="/healthz, /metrics, /status (default 127.0.0.1:9110)"
    )
    p.add_argument("--hw-boardname", default=None, help="configData hw_boardname (gooseBit matches bundles on it)")
    p.add_argument("--hw-revision", default=None, help="configData hw_revision")
    p.add_argument(
        "--no-events", action="store_true", help="never use our server's event stream; poll at the server's sleep"
    )
    p.add_argument("--log-json", action="store_true", help="log one JSON object a line (time, level, logger, message)")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_gateway")
    actions = p.add_subparsers(dest="gateway_command", metavar="ACTION")
    s = actions.add_parser("status", help="each port's device, job and progress, from a running gateway")
    s.add_argument("--url", default=None, help="the gateway's status URL (default: http://<listen> of --config)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(handler=f"{_HANDLERS}:cmd_status")
