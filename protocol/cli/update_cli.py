"""Subcommands that talk the stm32ota update protocol: ``info``, ``flash``, ``monitor``."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_port_arguments, baud_rate

_HANDLERS = "protocol.cli.update_commands"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("info", help="show what a device reports: chip, flash layout, slot table, limits")
    add_port_arguments(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_info")

    p = sub.add_parser(
        "flash",
        help="update a device: info, transfer, verify, activate, reboot, confirm",
        description="The whole update flow.  Devices that only speak classic YMODEM (an AN4657 IAP menu) "
        "are detected and sent the file with YMODEM.",
    )
    add_port_arguments(p)
    p.add_argument(
        "image",
        help="signed image (.bin/.hex/.srec/.elf from `stm32ota sign`, or a raw application for an IAP device)",
    )
    p.add_argument("--protocol", choices=("auto", "ota", "ymodem"), default="auto", help="default: detect")
    p.add_argument("--fast-baud", type=baud_rate, default=None, help="switch to this rate after INFO if offered")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--compress", dest="compress", action="store_true", default=None, help="force deflate")
    group.add_argument("--no-compress", dest="compress", action="store_false", help="never compress")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="always start from offset 0")
    p.add_argument("--permanent", action="store_true", help="activate permanently (no test boot)")
    p.add_argument("--no-confirm", dest="confirm", action="store_false", help="leave the new image in test")
    p.add_argument("--no-reboot", dest="reboot", action="store_false", help="stop after activate")
    p.add_argument("--allow-downgrade", action="store_true", help="install an image not newer than the running one")
    p.add_argument("--force", action="store_true", help="install the version that already runs")
    p.add_argument(
        "-k",
        "--key",
        action="append",
        default=[],
        metavar="PUB.pem",
        help="public key to check the signature"
        " with before sending (repeatable; without it the device checks the signature)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or device logs")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_flash")

    p = sub.add_parser("monitor", help="stream the device's log lines until Ctrl-C")
    add_port_arguments(p)
    p.add_argument("--level", choices=("error", "warning", "info", "debug"), default="info")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_monitor")
