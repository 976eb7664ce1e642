"""Subcommands that speak classic YMODEM: ``send`` (a batch of files) and ``receive``."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_port_arguments

_HANDLERS = "protocol.cli.ymodem_commands"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "send",
        help="send files with YMODEM (to rb, an AN4657 IAP menu, a terminal program)",
        description="Send one or more files as a YMODEM batch.  Start the receiver first; text it prints "
        "before asking for the file (a bootloader menu, say) is ignored.",
    )
    add_port_arguments(p)
    p.add_argument(
        "--block-size",
        type=int,
        choices=(128, 1024),
        default=1024,
        help="data block size (default 1024; 128 for old or fragile receivers)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("files", metavar="FILE", nargs="+", help="files to send, in order")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_send")

    p = sub.add_parser(
        "receive",
        help="receive files with YMODEM (from sb, an IAP's upload option, a terminal program)",
        description="Receive a YMODEM batch (or a single XMODEM file) into a directory.  File names from "
        "the sender are reduced to a bare name: no directories, no '..'.",
    )
    add_port_arguments(p)
    p.add_argument("-d", "--dir", default=".", help="directory to store the files in (default: current)")
    p.add_argument("--overwrite", action="store_true", help="replace files that already exist")
    p.add_argument(
        "--wait",
        type=float,
        default=30.0,
        help="seconds to keep asking for the sender before giving up (default 30)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_receive")
