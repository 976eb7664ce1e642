"""Serial ports as a technician knows them: the USB bridge named from its VID:PID, plus the emulated STM32."""

from __future__ import annotations

from dataclasses import dataclass

from serial.tools import list_ports

__all__ = ["EMULATED", "USB_BRIDGES", "PortEntry", "bridge_name", "list_serial_ports"]

EMULATED = "emulated://stm32"  # the built-in entry: an emulator started in this process

# (vid, pid) -> name; a vid alone (pid None) names the maker's whole range.
USB_BRIDGES: dict[tuple[int, int | None], str] = {
    (0x0483, 0x374B): "ST-LINK/V2-1 VCP",
    (0x0483, 0x3752): "ST-LINK/V2-1 VCP",
    (0x0483, 0x374E): "ST-LINK/V3 VCP",
    (0x0483, 0x374F): "ST-LINK/V3 VCP",
    (0x0483, 0x3753): "ST-LINK/V3 VCP",
    (0x0483, 0x5740): "STM32 USB CDC",
    (0x0483, 0xDF11): "STM32 DFU",
    (0x10C4, 0xEA60): "Silicon Labs CP210x",
    (0x10C4, 0xEA70): "Silicon Labs CP2105",
    (0x10C4, 0xEA71): "Silicon Labs CP2108",
    (0x1A86, 0x7523): "WCH CH340",
    (0x1A86, 0x5523): "WCH CH341",
    (0x1A86, 0x55D4): "WCH CH9102",
    (0x0403, 0x6001): "FTDI FT232R",
    (0x0403, 0x6010): "FTDI FT2232",
    (0x0403, 0x6011): "FTDI FT4232",
    (0x0403, 0x6014): "FTDI FT232H",
    (0x0403, 0x6015): "FTDI FT231X",
    (0x0483, None): "STMicroelectronics",
    (0x10C4, None): "Silicon Labs",
    (0x1A86, None): "WCH",
    (0x0403, None): "FTDI",
}


def bridge_name(vid: int | None, pid: int | None) -> str | None:
    if vid is None:
        return None
    return USB_BRIDGES.get((vid, pid)) or USB_BRIDGES.get((vid, None))


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
    """The machine's serial ports, sorted by device path (pyserial's ``list_ports.comports``)."""
    entries = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        named = bridge_name(port.vid, port.pid)
        description = port.description if port.description and port.description != "n/a" else ""
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
