"""Serial ports as a technician knows them: the USB bridge named from its VID:PID, plus the emulated STM32."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.device_commands import bridge_name as _commands_bridge
from protocol.device_commands import list_serial_ports as _list_ports

__all__ = ["EMULATED", "PortEntry", "bridge_name", "list_serial_ports"]

EMULATED = "emulated://stm32"  # the built-in entry: an emulator started in this process

# Names beyond protocol.device_commands.USB_BRIDGES (a vid alone names the maker's whole range).
_MORE_BRIDGES: dict[tuple[int, int | None], str] = {
    (0x0483, 0x5740): "STM32 USB CDC",
    (0x10C4, 0xEA70): "Silicon Labs CP2105",
    (0x10C4, 0xEA71): "Silicon Labs CP2108",
    (0x1A86, 0x5523): "WCH CH341",
    (0x1A86, 0x55D4): "WCH CH9102",
    (0x0403, 0x6011): "FTDI FT4232",
    (0x0483, None): "STMicroelectronics",
    (0x10C4, None): "Silicon Labs",
    (0x1A86, None): "WCH",
    (0x0403, None): "FTDI",
}


def bridge_name(vid: int | None, pid: int | None) -> str | None:
    """The USB-UART bridge's name from its VID:PID (protocol.device_commands' table first)."""
    if vid is None:
        return None
    return _commands_bridge(vid, pid) or _MORE_BRIDGES.get((vid, pid)) or _MORE_BRIDGES.get((vid, None))


@dataclass(frozen=True)
class PortEntry:
    url: str
    description: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None

    @property
    def vid_pid(self) -> str:
        return f"{self.vid:04X}:{self.pid:04X}" if self.vid is not None and self.pid is not None else ""

    @property
    def label(self) -> str:
        """What the combo box shows: ``/dev/ttyACM0 — ST-LINK/V2-1 VCP (0483:374B)``."""
        parts = [self.description] if self.description else []
        if self.vid_pid:
            parts.append(f"({self.vid_pid})")
        return f"{self.url} — {' '.join(parts)}" if parts else self.url


def list_serial_ports() -> list[PortEntry]:
    """The machine's serial ports (``protocol.device_commands.list_serial_ports``, on pyserial's list_ports)."""
    entries = []
    for port in _list_ports():
        named = bridge_name(port.vid, port.pid)
        description = port.description if port.description != "n/a" else ""
        if named and named not in description:
            description = f"{named}: {description}" if description else named
        entries.append(
            PortEntry(
                url=port.device,
                description=description,
                vid=port.vid,
                pid=port.pid,
                serial_number=port.serial_number,
            )
        )
    return entries
