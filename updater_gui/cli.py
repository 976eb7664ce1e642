"""``stm32ota gui``: the desktop app (PySide6, from the ``gui`` extra)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]

_HANDLERS = "updater_gui.app"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "gui",
        help="the desktop updater: one board or a tray of them (needs `pip install 'stm32ota[gui]'`)",
        description="A window to connect to a board, inspect and flash images, read the device's log, "
        "drive a classic IAP menu, and flash several boards at once.",
    )
    p.add_argument("--emulator", action="store_true", help="start connected to a built-in emulated STM32")
    p.add_argument("--emulator-mode", choices=("ota", "iap"), default="ota", help="what the emulator runs")
    p.add_argument("--port", default=None, help="connect to this port (or pyserial URL) at start")
    p.add_argument("-b", "--baud", type=int, default=None, help="baud rate for --port")
    p.add_argument("--language", choices=("en", "zh_CN"), default=None, help="default: the system's, or the last")
    p.add_argument("--open", dest="image", default=None, metavar="FILE", help="open this firmware file")
    p.add_argument("--quit-after", type=float, default=None, metavar="SECONDS", help=argparse.SUPPRESS)
    p.set_defaults(handler=f"{_HANDLERS}:cmd_gui")
