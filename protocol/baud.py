"""Line rates: the default, and the range a port can be asked for.

A module of its own (no imports) so the command line can validate ``-b`` without importing the protocol
cores, and so the drivers, the update protocol and the CLI share one default.
"""

from __future__ import annotations

from .errors import BaudRateError

__all__ = ["DEFAULT_BAUD", "MAX_BAUD", "MIN_BAUD", "check_baud"]

DEFAULT_BAUD = 115200  # the rate every stm32ota and AN4657 bootloader starts at
MIN_BAUD = 50  # B50, the lowest rate POSIX termios names
# termios2 (BOTHER) takes any 32-bit rate, but no UART gets near that: FTDI's high-speed parts (FT232H, 12 Mbaud)
# are the fastest USB-UARTs in the field, and an STM32 USART tops out near fck/8 (10.5 Mbaud on a 84 MHz F4).
MAX_BAUD = 12_000_000


def check_baud(baud: int) -> int:
    """``baud`` if a port can be opened at it, else :class:`~protocol.errors.BaudRateError` (a ``PortError``)
    with the range.

    0 would hang the line up (``B0`` drops DTR) and divides the timing maths by zero; rates past 2**32
    overflow termios.
    """
    if isinstance(baud, bool) or not isinstance(baud, int) or not MIN_BAUD <= baud <= MAX_BAUD:
        raise BaudRateError(
            f"unsupported baud rate {baud!r}: use {MIN_BAUD} to {MAX_BAUD}",
            hint=f"the device's rate, usually {DEFAULT_BAUD}",
        )
    return baud
