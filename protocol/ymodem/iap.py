"""Finding an AN4657-style IAP bootloader's menu on a line, and choosing its download option.

ST's IAP examples (AN4657 and its kin) do not wait for a file: they print a main menu and wait for a key, and
only after ``1`` ("Download image to the internal Flash") ask for a YMODEM file with 'C'.  A harmless byte
(:data:`PROBE_BYTE`) makes a menu print itself again ("Invalid Number", then the menu), which a YMODEM
receiver such as ``rb`` ignores as line noise.

:class:`LineProbe` is a tiny sans-I/O core for that: it writes the probe byte (if any) and keeps what arrives
until the line has been quiet for a while.  ``stm32ota flash`` (:func:`protocol.flow.detect_protocol`) and
``stm32ota send`` both use it, with :func:`looks_like_iap` / :func:`is_iap_menu` to judge what came back.
"""

from __future__ import annotations

from ..sansio import Event
from .constants import CRC_REQUEST, NAK

__all__ = [
    "IAP_DOWNLOAD_KEY",
    "IAP_MENU_MARKERS",
    "IAP_WAITING_MARKER",
    "PROBE_BYTE",
    "PROBE_LISTEN_S",
    "PROBE_MAX_BYTES",
    "LineProbe",
    "is_iap_answer",
    "is_iap_menu",
    "is_start_request",
    "looks_like_iap",
]

PROBE_BYTE = b"\r"  # ignored by the stm32ota framing and by YMODEM receivers; makes an AN4657 menu answer
PROBE_LISTEN_S = 0.4  # how long a probe listens for menu text or YMODEM 'C's (quiet line)
PROBE_MAX_BYTES = 4096  # what a probe keeps of the answer
IAP_DOWNLOAD_KEY = b"1"  # AN4657 main menu: "Download image to the internal Flash"
IAP_MENU_MARKERS = (b"Main Menu", b"Download image", b"Invalid Number", b"IAP")
IAP_WAITING_MARKER = b"Waiting for the file"  # the download option was chosen: the menu asks with 'C' now
_REQUESTS = frozenset((CRC_REQUEST, NAK))


def is_iap_menu(data: bytes) -> bool:
    """``data`` is text of an AN4657-style IAP menu waiting for a key (not yet for a file)."""
    return IAP_WAITING_MARKER not in data and any(marker in data for marker in IAP_MENU_MARKERS)


def looks_like_iap(data: bytes) -> bool:
    """What a probe got back means a classic YMODEM device: a menu, or a receiver already asking with 'C's."""
    return any(marker in data for marker in (*IAP_MENU_MARKERS, IAP_WAITING_MARKER)) or data.count(b"C") >= 2


def is_iap_answer(data: bytes) -> bool:
    """Stricter than :func:`looks_like_iap`, for naming a device in an error: menu text, or nothing but YMODEM
    'C's (line noise at a wrong baud rate holds a 'C' now and then)."""
    markers = (*IAP_MENU_MARKERS, IAP_WAITING_MARKER)
    return any(marker in data for marker in markers) or (data.count(b"C") >= 2 and not data.strip(b"C\r\n"))


def is_start_request(data: bytes) -> bool:
    """``data`` is nothing but YMODEM start requests ('C' or NAK): a receiver waiting for a file."""
    return bool(data) and all(byte in _REQUESTS for byte in data)


class LineProbe:
    """Write ``send`` (default :data:`PROBE_BYTE`; ``b""`` only listens), then keep what arrives until the line
    has been quiet for ``listen`` seconds.  With ``until_request`` it also stops at a read that carries nothing
    but start requests (a receiver is already waiting: no need to wait out the quiet time)."""

    def __init__(self, listen: float = PROBE_LISTEN_S, *, send: bytes = PROBE_BYTE, until_request: bool = False):
        self.received = bytearray()
        self._out = send
        self._listen = listen
        self._until_request = until_request
        self._done = False

    def receive_data(self, data: bytes) -> None:
        room = PROBE_MAX_BYTES - len(self.received)
        self.received += data[:room]
        if self._until_request and is_start_request(data):
            self._done = True

    def handle_timeout(self) -> None:
        self._done = True

    def data_to_send(self) -> bytes:
        out, self._out = self._out, b""
        return out

    def next_event(self) -> Event | None:
        return None

    @property
    def timeout(self) -> float | None:
        return self._listen

    @property
    def finished(self) -> bool:
        return self._done
