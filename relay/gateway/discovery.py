"""Ports found by rule rather than named: USB serial adapters by VID:PID (and serial number), or every path
that matches a glob — plugged in now or later.

pyserial has no hot-plug events, so :class:`PortScanner` reads the port list every ``discovery_interval``
seconds, in a thread (``comports()`` reads sysfs, a glob reads a folder: neither may stall the event loop),
and the gateway starts a port worker for each path that appeared and reports each that vanished.

The one source of USB facts is a *comports* callable with :func:`serial.tools.list_ports.comports`'s shape
(objects with ``device``, ``vid``, ``pid``, ``serial_number``); tests pass one that lists real emulator ptys
appearing and disappearing, since no USB device can exist on a test box.  A USB port is opened by its
``/dev/serial/by-id`` link when it has one, so a board that comes back gets the same name (and the same job).
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, Protocol

from .config import PortConfig

__all__ = ["BY_ID", "Comports", "PortInfo", "PortScanner", "system_comports"]

log = logging.getLogger(__name__)

BY_ID = "/dev/serial/by-id"


class PortInfo(Protocol):
    """What :func:`serial.tools.list_ports.comports` yields (``ListPortInfo``), as far as we read it."""

    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None


Comports = Callable[[], Iterable[Any]]


def system_comports() -> Iterable[Any]:
    """The host's serial ports, with USB VID:PID and serial number from sysfs."""
    from serial.tools.list_ports import comports

    ports: list[Any] = comports()
    return ports


def _by_id_links() -> dict[str, str]:
    """Real device path -> its stable ``/dev/serial/by-id`` name."""
    links: dict[str, str] = {}
    for link in sorted(glob.glob(os.path.join(BY_ID, "*"))):
        links.setdefault(os.path.realpath(link), link)
    return links


class PortScanner:
    """Which concrete ports the rules in ``rules`` (``usb`` or ``glob`` :class:`PortConfig`) match now."""

    def __init__(self, rules: Iterable[PortConfig], comports: Comports | None = None) -> None:
        self.rules = [r for r in rules if r.discovered]
        self._comports = comports or system_comports

    def scan(self) -> dict[str, PortConfig]:
        """Path -> the port's configuration (the first rule that matches wins).  Blocking: run it in a thread."""
        found: dict[str, PortConfig] = {}
        usb_rules = [r for r in self.rules if r.usb is not None]
        if usb_rules:
            try:
                infos = list(self._comports())
            except OSError as err:  # sysfs unreadable: nothing found this time, say so
                log.warning("cannot list serial ports: %s", err)
                infos = []
            links = _by_id_links() if infos else {}
            for info in infos:
                rule = next((r for r in usb_rules if _usb_match(r, info)), None)
                if rule is None:
                    continue
                path = links.get(os.path.realpath(info.device), info.device)
                found.setdefault(path, replace(rule, url=path, usb=None, serial_number=None))
        for rule in self.rules:
            if rule.glob is None:
                continue
            for path in sorted(glob.glob(rule.glob)):
                if os.path.exists(path):  # a dangling by-id link is an unplugged board
                    found.setdefault(path, replace(rule, url=path, glob=None))
        return found


def _usb_match(rule: PortConfig, info: Any) -> bool:
    wanted = rule.vid_pid
    if wanted is None or (getattr(info, "vid", None), getattr(info, "pid", None)) != wanted:
        return False
    return rule.serial_number is None or getattr(info, "serial_number", None) == rule.serial_number
